import Foundation
import Hummingbird
import HummingbirdTesting
import Logging
import StriveCore
import StriveDatabase
import StriveServer
import StriveTestSupport
import Testing

@Suite("Ops routes")
struct OpsRoutesTests {
    let logger = {
        var logger = Logger(label: "test.ops")
        logger.logLevel = .critical
        return logger
    }()

    func app(_ db: Database, migrator: Migrator) async throws -> some ApplicationProtocol {
        let services = try await StriveApplication.Services.make(
            config: try await TestServer.config(), database: db, migrator: migrator, logger: logger)
        return StriveApplication.make(host: "127.0.0.1", port: 0, services: services, logger: logger)
    }

    func json(_ buffer: ByteBuffer) throws -> [String: Any] {
        try #require(JSONSerialization.jsonObject(with: Data(buffer.readableBytesView)) as? [String: Any])
    }

    /// `/ready`'s status and body once the database has answered: on a machine busy with the whole suite
    /// a fresh database can miss the probe's 3 s deadline ("database": "down"), which is the probe working,
    /// not what these tests are about.
    func readiness(_ client: some TestClientProtocol) async throws -> (HTTPResponse.Status, [String: Any]) {
        var answer: (HTTPResponse.Status, [String: Any]) = (.internalServerError, [:])
        for _ in 0..<10 {
            answer = try await client.execute(uri: "/ready", method: .get) { response in (response.status, try json(response.body)) }
            if answer.1["database"] as? String != "down" { break }
            try await Task.sleep(for: .milliseconds(500))
        }
        return answer
    }

    @Test func healthAndReadyOnACurrentDatabase() async throws {
        let database = try await TestCluster.shared.makeDatabase()
        let migrator = try Migrator(migrations: try Migration.bundled())
        try await database.withDatabase { db in
            try await app(db, migrator: migrator).test(.live) { client in
                try await client.execute(uri: "/health", method: .get) { response in
                    #expect(response.status == .ok)
                    let body = try json(response.body)
                    #expect(body["status"] as? String == "ok")
                }
                let (status, body) = try await readiness(client)
                #expect(status == .ok)
                #expect(body["status"] as? String == "ready")
                let migrations = try #require(body["migrations"] as? [String: Any])
                #expect(migrations["applied"] as? Int == migrator.migrations.count)
            }
        }
    }

    @Test func notReadyWhileMigrationsArePending() async throws {
        let database = try await TestCluster.shared.makeDatabase()
        let ahead = try Migrator(migrations: try Migration.bundled() + [try Migration(fileName: "9999_future.sql", sql: "select 1;")])
        try await database.withDatabase { db in
            try await app(db, migrator: ahead).test(.live) { client in
                let (status, body) = try await readiness(client)
                #expect(status == .serviceUnavailable)
                #expect(body["status"] as? String == "not_ready")
                let migrations = try #require(body["migrations"] as? [String: Any], "\(body)")
                #expect(migrations["pending"] as? [String] == ["9999_future.sql"])
            }
        }
    }

    @Test func notReadyWhenTheDatabaseIsUnreachable() async throws {
        let port = try #require(LoopbackPort.free())
        let target = DatabaseTarget(
            endpoint: .tcp(host: "127.0.0.1", port: port, sslMode: .disable), database: "nowhere",
            owner: .init(username: "nobody", password: nil)
        )
        let db = try Database(
            target: target, authenticator: .authenticator(derivedFrom: TestCluster.jwtSecret), requestPoolSize: 2,
            statementTimeout: .seconds(8),
            acquireTimeout: .seconds(10), logger: logger)
        let migrator = try Migrator(migrations: try Migration.bundled())
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { try await db.run() }
            try await app(db, migrator: migrator).test(.live) { client in
                try await client.execute(uri: "/health", method: .get) { response in
                    #expect(response.status == .ok)
                }
                try await client.execute(uri: "/ready", method: .get) { response in
                    #expect(response.status == .serviceUnavailable)
                    let body = try json(response.body)
                    #expect(body["database"] as? String == "down")
                }
            }
            group.cancelAll()
        }
    }

    /// A live server on a fresh, current database.
    func withLiveServer(_ body: @Sendable (any TestClientProtocol) async throws -> Void) async throws {
        let database = try await TestCluster.shared.makeDatabase()
        let migrator = try Migrator(migrations: try Migration.bundled())
        try await database.withDatabase { db in
            try await app(db, migrator: migrator).test(.live) { client in try await body(client) }
        }
    }

    @Test func aWellFormedRequestIDIsEchoed() async throws {
        try await withLiveServer { client in
            try await client.execute(uri: "/health", method: .get, headers: [.init("X-Request-Id")!: "trace-42"]) { response in
                #expect(response.headers[.init("X-Request-Id")!] == "trace-42")
            }
        }
    }

    /// A request id that is not a plain token (here: a log-injection attempt) is replaced.
    @Test func anUnsafeRequestIDIsReplacedByAGeneratedOne() async throws {
        try await withLiveServer { client in
            try await client.execute(uri: "/health", method: .get, headers: [.init("X-Request-Id")!: "a b\"c"]) { response in
                let id = try #require(response.headers[.init("X-Request-Id")!])
                #expect(id != "a b\"c")
                #expect(UUID(uuidString: id) != nil)
            }
        }
    }

    @Test func anUnknownRouteIsAJSON404WithARequestID() async throws {
        try await withLiveServer { client in
            try await client.execute(uri: "/no/such/route", method: .get) { response in
                #expect(response.status == .notFound)
                let body = try json(response.body)
                #expect(body["code"] as? String == "not_found")
                #expect(body["message"] as? String == "no route for GET /no/such/route")
                #expect(response.headers[.init("X-Request-Id")!] != nil)
            }
            try await client.execute(uri: "/health", method: .post) { response in
                #expect(response.status.code >= 400 && response.status.code < 500)
            }
        }
    }
}
