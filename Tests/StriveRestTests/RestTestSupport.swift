import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import Logging
import PostgresNIO
import StriveAuth
import StriveCore
import StriveDatabase
import StriveIdentity
import StriveServer
import StriveTestSupport
import Testing

/// A seeded database served over real HTTP, with the demo accounts signed in as the Supabase clients do.
struct RestHarness: Sendable {
    let client: any TestClientProtocol
    let database: TestDatabase
    let anonKey: String
    let serviceKey: String

    static func run<T: Sendable>(_ body: @Sendable (RestHarness) async throws -> T) async throws -> T {
        let database = try await TestCluster.shared.makeDatabase()
        try await database.withOwnerConnection { _ = try await DemoSeed.run(scale: 1, on: $0, logger: database.logger) }
        return try await database.withLiveApp { client, _ in
            let harness = RestHarness(
                client: client, database: database,
                anonKey: try await APIKeys.derive(role: .anon, secret: TestCluster.jwtSecret),
                serviceKey: try await APIKeys.derive(role: .serviceRole, secret: TestCluster.jwtSecret))
            return try await body(harness)
        }
    }

    struct Reply: Sendable {
        let status: HTTPResponse.Status
        let headers: HTTPFields
        let body: Data

        var text: String { String(decoding: body, as: UTF8.self) }
        var array: [[String: Any]] { (try? JSONSerialization.jsonObject(with: body) as? [[String: Any]]) ?? [] }
        var object: [String: Any] { (try? JSONSerialization.jsonObject(with: body) as? [String: Any]) ?? [:] }
        var code: String? { object["code"] as? String }
        var contentRange: String? { headers[HTTPField.Name("Content-Range")!] }
    }

    /// Signs in a seeded account and returns its access token.
    func token(_ email: String) async throws -> String {
        let reply = try await client.execute(
            uri: "/auth/v1/token?grant_type=password", method: .post,
            headers: [HTTPField.Name("apikey")!: anonKey, .contentType: "application/json"],
            body: ByteBuffer(string: #"{"email":"\#(email)","password":"\#(DemoSeed.password)"}"#)
        ) { response in Data(response.body.readableBytesView) }
        let json = try #require(try JSONSerialization.jsonObject(with: reply) as? [String: Any])
        return try #require(json["access_token"] as? String, "sign-in of \(email) failed: \(String(decoding: reply, as: UTF8.self))")
    }

    func send(
        _ method: HTTPRequest.Method, _ path: String, token: String?, json: String? = nil, headers extra: [String: String] = [:],
        rawBody: ByteBuffer? = nil
    ) async throws -> Reply {
        var headers: HTTPFields = [HTTPField.Name("apikey")!: anonKey]
        if let token { headers[.authorization] = "Bearer \(token)" }
        for (name, value) in extra { headers[HTTPField.Name(name)!] = value }
        var body = rawBody
        if let json {
            headers[.contentType] = "application/json"
            body = ByteBuffer(string: json)
        }
        return try await client.execute(uri: "/rest/v1/" + path, method: method, headers: headers, body: body) { response in
            Reply(status: response.status, headers: response.headers, body: Data(response.body.readableBytesView))
        }
    }

    /// One value read as the database owner (outside RLS), for checking what really happened.
    func ownerValue<T: PostgresDecodable & Sendable>(_ sql: String, as type: T.Type = T.self) async throws -> T? {
        try await database.withOwnerConnection { connection in
            try await connection.query(PostgresQuery(unsafeSQL: sql), logger: database.logger).collect().first?.decode(T.self)
        }
    }

    static func seeded(_ path: String) -> String {
        "md5('strive-seed/\(path)')::uuid"
    }

    func seededID(_ path: String) async throws -> String {
        try #require(try await ownerValue("select \(Self.seeded(path))::text", as: String.self))
    }
}

func encoded(_ text: String) -> String {
    text.addingPercentEncoding(withAllowedCharacters: .alphanumerics.union(CharacterSet(charactersIn: "-._~"))) ?? text
}
