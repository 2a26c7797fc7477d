import Foundation
import HummingbirdTesting
import Logging
import NIOCore
import PostgresNIO
import StriveCore
import StriveDatabase
import StriveRealtime
import StriveServer
import StriveTestSupport
import Testing

/// A live Strive with the tenant fixture and a token per actor, and WebSocket clients to it.
struct RealtimeHarness: Sendable {
    let client: any TestClientProtocol
    let database: TestDatabase
    let fixture: TenantFixture
    let services: StriveApplication.Services
    let tokens: [TenantFixture.Actor: String]

    static func run<T: Sendable>(
        environment: [String: String] = [:], database existing: TestDatabase? = nil, fixture existingFixture: TenantFixture? = nil,
        _ body: @Sendable (RealtimeHarness) async throws -> T
    ) async throws -> T {
        let database: TestDatabase
        if let existing { database = existing } else { database = try await TestCluster.shared.makeDatabase() }
        let fixture: TenantFixture
        if let existingFixture {
            fixture = existingFixture
        } else {
            fixture = try await database.withOwnerConnection { try await TenantFixture.create(on: $0, logger: database.logger) }
        }
        let tokens = try await fixture.accessTokens(on: database)
        return try await database.withLiveApp(environment: environment) { client, services in
            try await body(RealtimeHarness(client: client, database: database, fixture: fixture, services: services, tokens: tokens))
        }
    }

    func id(_ key: String) -> String { fixture.id(key).uuidString.lowercased() }

    /// Runs SQL as the database owner (`:key` names fixture ids).
    func owner(_ sql: String) async throws {
        try await database.withOwnerConnection { connection in
            try await connection.run(PostgresQuery(unsafeSQL: fixture.substitute(sql)), logger: database.logger)
        }
    }

    /// A WebSocket to this server's realtime endpoint, with `key` as the URL's apikey.
    func withSocket<T: Sendable>(key: String? = nil, _ body: @Sendable (TestSocket) async throws -> T) async throws -> T {
        let port = try #require(client.port)
        let apikey = key ?? tokens[.anon]!
        return try await TestSocket.connect(url: TestSocket.realtimeURL(base: "http://127.0.0.1:\(port)", apikey: apikey), body)
    }
}
