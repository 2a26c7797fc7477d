import Foundation
import Hummingbird
import HummingbirdTesting
import Logging
import StriveCore
import StriveDatabase
import StriveServer

public enum TestServer {
    /// The configuration a test server runs with: test mode, the cluster's JWT secret, a cheap bcrypt
    /// cost, and `environment` on top (e.g. a short `STRIVE_JWT_EXPIRY`).
    public static func config(_ environment: [String: String] = [:]) async throws -> StriveConfig {
        var variables = [
            "STRIVE_ENV": "test",
            "STRIVE_JWT_SECRET": TestCluster.jwtSecret.value,
            "STRIVE_BCRYPT_COST": "4",
            "STRIVE_DATA_DIR": NSTemporaryDirectory() + "strive-test-data",
            "STRIVE_PORT": "0",
        ]
        variables.merge(environment) { $1 }
        return try await ConfigLoader(environment: variables).load { _ in TestCluster.jwtSecret.value }
    }
}

extension TestDatabase {
    /// Runs the whole Strive HTTP application on a loopback port against this database, and `body` with
    /// a client that speaks real HTTP to it.
    public func withLiveApp<T: Sendable>(
        environment: [String: String] = [:], product: ProductSchema = .strive,
        _ body: @Sendable (any TestClientProtocol, StriveApplication.Services) async throws -> T
    ) async throws -> T {
        let config = try await TestServer.config(environment)
        var quiet = logger
        // STRIVE_TEST_LOG_LEVEL=debug shows what the in-process server does (warnings only by default).
        quiet.logLevel = ProcessInfo.processInfo.environment["STRIVE_TEST_LOG_LEVEL"].flatMap(Logger.Level.init(rawValue:)) ?? .warning
        let logger = quiet
        return try await withDatabase { database in
            let migrator = try Migrator(migrations: try Migration.bundled(product: product))
            let services = try await StriveApplication.Services.make(config: config, database: database, migrator: migrator, logger: logger)
            let app = StriveApplication.make(host: "127.0.0.1", port: 0, services: services, logger: logger)
            return try await app.test(.live) { client in try await body(client, services) }
        }
    }
}
