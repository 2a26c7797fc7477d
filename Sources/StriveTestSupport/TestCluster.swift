import Foundation
import Logging
import PostgresNIO
import StriveCore
import StriveDatabase

/// One throwaway PostgreSQL cluster per test process, in a temporary directory.
///
/// The first caller pays for initdb, start-up and migrating a template database; every later caller
/// gets its own database cloned from the template (`CREATE DATABASE … TEMPLATE`), so suites run in
/// parallel without sharing rows. A watchdog process stops the cluster and deletes the directory when
/// the test process ends, however it ends (normal exit, failed expectations, a crash).
public actor TestCluster {
    public static let shared = TestCluster()

    /// The JWT secret every test server and token shares; the authenticator password derives from it.
    public static let jwtSecret = Secret("strive-test-secret-7f3a9c1e5b2d8f4a6c0e9b7d5f3a1c8e")
    public static let templateDatabase = "strive_template"

    public struct Started: Sendable {
        public let cluster: LocalCluster
        public let running: LocalCluster.Running
        public let migrations: [Migration]
    }

    private var started: Task<Started, any Error>?
    private var counter = 0
    public let logger: Logger

    init() {
        var logger = Logger(label: "strive.test")
        logger.logLevel = .warning
        self.logger = logger
    }

    /// The cluster, started (and its template migrated) on first use.
    public func cluster() async throws -> Started {
        if let started { return try await started.value }
        let logger = self.logger
        let task = Task { try await Self.start(logger: logger) }
        started = task
        return try await task.value
    }

    /// A new, empty-of-rows database: migrated (a clone of the template) or, with `migrated: false`,
    /// bare (for migrator tests).
    public func makeDatabase(migrated: Bool = true) async throws -> TestDatabase {
        let started = try await cluster()
        counter += 1
        let name = "test_\(ProcessInfo.processInfo.processIdentifier)_\(counter)"
        let source = migrated ? Self.templateDatabase : "template0"
        let admin = try started.cluster.target(started.running, database: "postgres")
        try await Self.createDatabase(name, template: source, on: admin, logger: logger)
        return TestDatabase(target: admin.with(database: name), started: started, logger: logger)
    }

    private static func start(logger: Logger) async throws -> Started {
        let directory = FileManager.default.temporaryDirectory
            .appendingPathComponent("strive-test-\(ProcessInfo.processInfo.processIdentifier)-\(UUID().uuidString.prefix(8))").path
        var cluster = try localCluster(at: directory)
        // A throwaway cluster for a suite of some forty servers at once: more connections than the 500 a
        // self-managed cluster allows, and no durability — every test's CREATE DATABASE writes the whole
        // template through the WAL, and with fsync the bursts stalled the server for seconds (its availability
        // probe timed out, tests got 503s). Tests of durability run clusters of their own.
        cluster.additionalSettings = ["max_connections = 2000", "fsync = off", "synchronous_commit = off", "full_page_writes = off"]
        try await cluster.prepareDataDirectory()
        try startWatchdog(cluster: cluster)
        try await cluster.initializeIfNeeded(logger: logger)
        let running = try await cluster.start(logger: logger)

        let migrations = try Migration.bundled()
        let admin = try cluster.target(running, database: "postgres")
        try await withConnection(admin, logger: logger) { connection in
            // Loopback trust instead of SCRAM: the suite opens hundreds of connections in its first seconds,
            // and 4096 PBKDF2 rounds each (in a debug build of the client) made them time out connecting.
            // The roles and their passwords are still set; tests of logins run clusters of their own.
            let hba = "local all all trust\nhost all all 127.0.0.1/32 trust\nhost all all ::1/128 trust\n"
            try hba.write(toFile: cluster.clusterDirectory + "/pg_hba.conf", atomically: false, encoding: .utf8)
            try await connection.run("select pg_reload_conf()", logger: logger)
            try await connection.run(PostgresQuery(unsafeSQL: "create database \(templateDatabase)"), logger: logger)
        }
        try await withConnection(admin.with(database: templateDatabase), logger: logger) { connection in
            try await Migrator(migrations: migrations).migrate(on: connection, logger: logger)
            let password = DatabaseCredentials.authenticator(derivedFrom: jwtSecret).password?.value ?? ""
            try await connection.run(
                PostgresQuery(unsafeSQL: "alter role authenticator with login password '\(password)'"), logger: logger
            )
        }
        return Started(cluster: cluster, running: running, migrations: migrations)
    }

    private static func createDatabase(_ name: String, template: String, on admin: DatabaseTarget, logger: Logger) async throws {
        try await withConnection(admin, logger: logger) { connection in
            try await connection.run(PostgresQuery(unsafeSQL: "create database \(name) template \(template)"), logger: logger)
        }
    }

    /// Opens one connection as `target`'s owner for `body`, then closes it.
    public static func withConnection<T: Sendable>(
        _ target: DatabaseTarget,
        logger: Logger,
        _ body: (PostgresConnection) async throws -> T
    ) async throws -> T {
        try await target.withConnection(as: target.owner, logger: logger, body)
    }

    /// A shell that waits for this process to end, then stops the cluster and removes its directory.
    private static func startWatchdog(cluster: LocalCluster) throws {
        let pgCtl = cluster.binaries.pgCtl
        let stop = cluster.serverUser.map { "\(ProcessRunner.runuser) -u \($0) -- \(pgCtl)" } ?? pgCtl
        let script = """
            while kill -0 \(ProcessInfo.processInfo.processIdentifier) 2>/dev/null; do sleep 0.5; done
            \(stop) stop -D '\(cluster.clusterDirectory)' -m immediate -w >/dev/null 2>&1
            rm -rf '\(cluster.dataDirectory)'
            """
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/bin/sh")
        process.arguments = ["-c", script]
        process.currentDirectoryURL = URL(fileURLWithPath: "/")
        process.standardInput = FileHandle.nullDevice
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        try process.run()
    }
}

/// A database of the test cluster that belongs to one test or suite.
public struct TestDatabase: Sendable {
    public let target: DatabaseTarget
    public let started: TestCluster.Started
    public let logger: Logger

    public var authenticator: DatabaseCredentials { .authenticator(derivedFrom: TestCluster.jwtSecret) }

    /// Runs `body` as the database owner on one connection.
    public func withOwnerConnection<T: Sendable>(_ body: (PostgresConnection) async throws -> T) async throws -> T {
        try await TestCluster.withConnection(target, logger: logger, body)
    }

    /// Runs `body` with the server's database service running (both pools), stopping it afterwards.
    public func withDatabase<T: Sendable>(
        requestPoolSize: Int = 4,
        statementTimeout: Duration = .seconds(8),
        deadlineMargin: Duration = .seconds(2),
        _ body: @Sendable (Database) async throws -> T
    ) async throws -> T {
        // One of the test process's slots (`TestCapacity`): databases, and the servers tests run on them,
        // queue rather than all start at once.
        try await TestCapacity.shared.withSlot {
            // Small pools and a parallel suite on two cores: a request may wait long for a connection here
            // without anything being wrong, so the acquire timeout is far above the server's default.
            let database = try Database(
                target: target, authenticator: authenticator, requestPoolSize: requestPoolSize, statementTimeout: statementTimeout,
                acquireTimeout: .seconds(30), deadlineMargin: deadlineMargin, logger: logger)
            return try await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask { try await database.run() }
                defer { group.cancelAll() }
                return try await body(database)
            }
        }
    }
}

extension TestCluster {
    /// A cluster at `directory` run the way `strive` would run it here (`STRIVE_PG_USER`, `STRIVE_PG_BIN_DIR`).
    public static func localCluster(at directory: String) throws -> LocalCluster {
        let settings = try ConfigLoader(environment: ProcessInfo.processInfo.environment).loadDatabaseSettings()
        return LocalCluster(
            dataDirectory: directory, binaries: try PostgresBinaries.locate(in: settings.postgresBinDirectory),
            serverUserWhenRoot: settings.postgresUser)
    }
}
