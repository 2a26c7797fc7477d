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

    typealias Reply = TestHTTP.Reply

    /// Signs in a seeded account and returns its access token.
    func token(_ email: String) async throws -> String {
        try await TestHTTP(client).accessToken(email: email, password: DemoSeed.password, apikey: anonKey)
    }

    func send(
        _ method: HTTPRequest.Method, _ path: String, token: String?, json: String? = nil, headers extra: [String: String] = [:],
        rawBody: ByteBuffer? = nil
    ) async throws -> Reply {
        try await TestHTTP(client).send(
            method, "/rest/v1/" + path, apikey: anonKey, bearer: token, headers: TestHTTP.fields(extra), json: json, body: rawBody)
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

extension TestHTTP.Reply {
    var code: String? { object["code"] as? String }
    var contentRange: String? { self["Content-Range"] }
}
