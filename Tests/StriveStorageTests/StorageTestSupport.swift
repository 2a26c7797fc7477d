import Foundation
import HTTPTypes
import HummingbirdTesting
import Logging
import NIOCore
import NIOPosix
import PostgresNIO
import StriveAuth
import StriveCore
import StriveDatabase
import StriveIdentity
import StriveS3
import StriveServer
import StriveStorage
import StriveTestSupport
import Testing

/// A live Strive over real HTTP with the tenant fixture, a signed-in token for every actor, and a storage
/// directory of its own (so tests can look at the files).
struct StorageHarness: Sendable {
    let client: any TestClientProtocol
    let database: TestDatabase
    let fixture: TenantFixture
    let services: StriveApplication.Services
    let storageDirectory: String
    /// The bucket's client when the objects are in S3 (moto); nil for the local store.
    let s3: S3Client?
    let anonKey: String
    let serviceKey: String
    let tokens: [TenantFixture.Actor: String]

    static func run<T: Sendable>(
        backend: StorageBackendKind = .local, s3Server: TestS3Server? = nil, environment: [String: String] = [:],
        _ body: @Sendable (StorageHarness) async throws -> T
    ) async throws -> T {
        let database = try await TestCluster.shared.makeDatabase()
        let fixture = try await database.withOwnerConnection { try await TenantFixture.create(on: $0, logger: database.logger) }
        let directory = NSTemporaryDirectory() + "strive-storage-" + UUID().uuidString.prefix(8)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let anonKey = try await APIKeys.derive(role: .anon, secret: TestCluster.jwtSecret)
        let serviceKey = try await APIKeys.derive(role: .serviceRole, secret: TestCluster.jwtSecret)
        let tokens = try await fixture.accessTokens(on: database)
        var variables = environment
        variables["STRIVE_STORAGE_DIR"] = directory
        var s3: S3Client?
        if backend == .s3 {
            let server: TestS3Server
            if let s3Server { server = s3Server } else { server = try await TestS3Server.shared() }
            let bucket = TestS3Server.bucketName()
            try await server.createBucket(bucket)
            variables.merge(server.environment(bucket: bucket)) { mine, _ in mine }
            s3 = server.client(bucket: bucket)
        }
        do {
            let result = try await database.withLiveApp(environment: variables) { [s3] client, services in
                try await body(
                    StorageHarness(
                        client: client, database: database, fixture: fixture, services: services, storageDirectory: directory, s3: s3,
                        anonKey: anonKey, serviceKey: serviceKey, tokens: tokens))
            }
            try await s3?.shutdown()
            return result
        } catch {
            try? await s3?.shutdown()
            throw error
        }
    }

    typealias Reply = TestHTTP.Reply

    /// A request to `/storage/v1/<path>` as `actor` (nil: no credentials at all), as storage-js sends it.
    func send(
        _ method: HTTPRequest.Method, _ path: String, as actor: TenantFixture.Actor? = .service, headers extra: [String: String] = [:],
        json: String? = nil, body: ByteBuffer? = nil
    ) async throws -> Reply {
        let apikey = actor.map { $0 == .service ? serviceKey : anonKey }
        let bearer = actor.map { tokens[$0] ?? anonKey }
        return try await TestHTTP(client).send(
            method, "/storage/v1/" + path, apikey: apikey, bearer: bearer, headers: TestHTTP.fields(extra), json: json, body: body)
    }

    /// A raw-body upload (storage-js with a Buffer or string body).
    func upload(
        _ bucket: String, _ key: String, _ bytes: [UInt8], type: String = "application/octet-stream", as actor: TenantFixture.Actor?,
        upsert: Bool = false, method: HTTPRequest.Method = .post
    ) async throws -> Reply {
        try await send(
            method, "object/\(bucket)/\(key)", as: actor,
            headers: ["content-type": type, "x-upsert": upsert ? "true" : "false", "cache-control": "max-age=3600"],
            body: ByteBuffer(bytes: bytes))
    }

    /// A multipart upload as storage-js builds it from a Blob: `cacheControl`, then the file in a part named ''.
    func uploadForm(
        _ bucket: String, _ key: String, _ bytes: [UInt8], type: String, as actor: TenantFixture.Actor?, metadata: String? = nil
    ) async throws -> Reply {
        let boundary = "----strive\(UUID().uuidString.prefix(8))"
        var body = ByteBuffer()
        body.writeString("--\(boundary)\r\nContent-Disposition: form-data; name=\"cacheControl\"\r\n\r\n3600\r\n")
        if let metadata {
            body.writeString("--\(boundary)\r\nContent-Disposition: form-data; name=\"metadata\"\r\n\r\n\(metadata)\r\n")
        }
        body.writeString("--\(boundary)\r\nContent-Disposition: form-data; name=\"\"; filename=\"blob\"\r\nContent-Type: \(type)\r\n\r\n")
        body.writeBytes(bytes)
        body.writeString("\r\n--\(boundary)--\r\n")
        return try await send(
            .post, "object/\(bucket)/\(key)", as: actor, headers: ["content-type": "multipart/form-data; boundary=\(boundary)"], body: body)
    }

    func id(_ key: String) -> String { fixture.id(key).uuidString.lowercased() }

    /// What the blob store holds, by area: `blobs`, or `staging` (local: staged files; S3: open multipart uploads).
    func files(in area: String) async throws -> [String] {
        if let s3 {
            if area == "staging" { return try await s3.listMultipartUploads(prefix: "").map(\.key) }
            return try await s3.listObjects(prefix: area + "/").objects.map(\.key)
        }
        let root = storageDirectory + "/" + area
        let paths = (try? FileManager.default.subpathsOfDirectory(atPath: root)) ?? []
        return paths.filter { path in
            var isDirectory: ObjCBool = false
            return FileManager.default.fileExists(atPath: root + "/" + path, isDirectory: &isDirectory) && !isDirectory.boolValue
        }
    }

    func ownerValue<T: PostgresDecodable & Sendable>(_ sql: String, as type: T.Type = T.self) async throws -> T? {
        try await database.withOwnerConnection { connection in
            try await connection.query(PostgresQuery(unsafeSQL: fixture.substitute(sql)), logger: database.logger).collect().first?.decode(
                T.self)
        }
    }

    /// Writes `request` on a plain TCP connection and closes it without reading: a client that gives up mid-body.
    func sendAndHangUp(_ request: ByteBuffer) async throws {
        let port = try #require(client.port)
        let channel = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .connect(host: "127.0.0.1", port: port).get()
        try await channel.writeAndFlush(request).get()
        try await Task.sleep(for: .milliseconds(200))
        try await channel.close().get()
    }

    /// Writes `request` on a plain TCP connection and returns everything the server answers.
    func sendRaw(_ request: ByteBuffer) async throws -> String {
        let port = try #require(client.port)
        let collector = Collector()
        let channel = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .channelInitializer { channel in channel.pipeline.addHandler(collector) }
            .connect(host: "127.0.0.1", port: port).get()
        try await channel.writeAndFlush(request).get()
        try await channel.closeFuture.get()
        return collector.text
    }

    final class Collector: ChannelInboundHandler, @unchecked Sendable {
        typealias InboundIn = ByteBuffer
        private var received = ByteBuffer()
        var text: String { String(buffer: received) }

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            var buffer = unwrapInboundIn(data)
            received.writeBuffer(&buffer)
        }
    }
}

/// Polls `condition` for up to `seconds`: cleanup that happens after a response (or a hang-up) is seen.
func eventually(_ seconds: Double = 15, _ condition: @Sendable () async throws -> Bool) async throws -> Bool {
    let deadline = Date(timeIntervalSinceNow: seconds)
    while Date() < deadline {
        if try await condition() { return true }
        try await Task.sleep(for: .milliseconds(50))
    }
    return try await condition()
}

extension TestHTTP.Reply {
    var error: String? { object["error"] as? String }
}
