import Logging
import PostgresNIO
import StriveCore

/// Applies migrations in order — Strive's built-in ones, then the project's own folder — each in its own
/// transaction, under a Postgres advisory lock so that several processes starting at once apply each
/// file exactly once.
public struct Migrator: Sendable {
    public let migrations: [Migration]
    public let project: [ProjectMigration]

    /// Arbitrary but fixed: every Strive process contends for this advisory lock key.
    static let advisoryLockKey: Int64 = 0x5374_7269_7665 // "Strive"

    public init(migrations: [Migration], project: [ProjectMigration] = []) throws(MigrationError) {
        self.migrations = try Migration.ordered(migrations)
        self.project = project.sorted { $0.fileName < $1.fileName }
    }

    /// Strive's built-in migrations for `product`, then the `.sql` files of the project's folder (none if it
    /// does not exist).
    public static func standard(projectDirectory: String, product: ProductSchema = .strive) throws(MigrationError) -> Migrator {
        try Migrator(migrations: try Migration.bundled(product: product), project: try ProjectMigration.load(directory: projectDirectory))
    }

    /// Every migration file this migrator knows, built-in and project.
    public var fileCount: Int { migrations.count + project.count }

    public struct AppliedMigration: Sendable, Equatable {
        public let version: Int
        public let name: String
        public let checksum: String
    }

    public struct Status: Sendable {
        public let applied: [AppliedMigration]
        public let pending: [Migration]
        /// Applied project migrations, by file name, in order.
        public let projectApplied: [String]
        public let projectPending: [ProjectMigration]
        /// Problems that stop migrating: edited files, versions or files unknown to this build and folder.
        public let problems: [MigrationError]
        public var isCurrent: Bool { pending.isEmpty && projectPending.isEmpty && problems.isEmpty }
        /// Pending files, built-in first, by file name.
        public var pendingFileNames: [String] { pending.map(\.fileName) + projectPending.map(\.fileName) }
    }

    /// Applies every pending migration; returns the file names applied by this call.
    @discardableResult
    public func migrate(on connection: PostgresConnection, logger: Logger) async throws(MigrationError) -> [String] {
        try await locked(on: connection, logger: logger) { () async throws(MigrationError) in
            try await applyPending(on: connection, logger: logger, record: true)
        }
    }

    /// Runs every pending migration in one transaction and rolls it back: whether they would apply, without
    /// changing anything. Returns the file names that would be applied.
    public func dryRun(on connection: PostgresConnection, logger: Logger) async throws(MigrationError) -> [String] {
        try await locked(on: connection, logger: logger) { () async throws(MigrationError) in
            try await applyPending(on: connection, logger: logger, record: false)
        }
    }

    private func locked<T>(on connection: PostgresConnection, logger: Logger, _ body: () async throws(MigrationError) -> T)
        async throws(MigrationError) -> T
    {
        do {
            try await connection.run("select pg_advisory_lock(\(Self.advisoryLockKey))", logger: logger)
        } catch {
            throw .connection(Self.describe(error))
        }
        do {
            let result = try await body()
            _ = try? await connection.run("select pg_advisory_unlock(\(Self.advisoryLockKey))", logger: logger)
            return result
        } catch {
            _ = try? await connection.run("select pg_advisory_unlock(\(Self.advisoryLockKey))", logger: logger)
            throw error
        }
    }

    /// What is applied and what is pending, without changing anything.
    public func status(on connection: PostgresConnection, logger: Logger) async throws(MigrationError) -> Status {
        let applied: [AppliedMigration]
        let appliedProject: [(fileName: String, checksum: String)]
        do {
            applied = try await Self.appliedMigrations(on: connection, logger: logger)
            appliedProject = try await Self.appliedProjectMigrations(on: connection, logger: logger)
        } catch {
            throw .connection(Self.describe(error))
        }
        return evaluate(applied: applied, appliedProject: appliedProject)
    }

    func evaluate(applied: [AppliedMigration], appliedProject: [(fileName: String, checksum: String)] = []) -> Status {
        let known = Dictionary(uniqueKeysWithValues: migrations.map { ($0.version, $0) })
        var problems: [MigrationError] = []
        // A database is built for one product schema from its first migration on: the other one's files
        // would not fit it. Said once, instead of as a file-by-file mismatch.
        let expectsBaseline = migrations.contains { $0.name == Migration.baselineName }
        let hasBaseline = applied.contains { $0.name == Migration.baselineName }
        if !applied.isEmpty, expectsBaseline != hasBaseline {
            let (database, configured): (ProductSchema, ProductSchema) = hasBaseline ? (.none, .strive) : (.strive, .none)
            return Status(
                applied: applied, pending: [], projectApplied: appliedProject.map(\.fileName), projectPending: [],
                problems: [.productSchemaMismatch(database: database, configured: configured)])
        }
        for row in applied {
            if let file = known[row.version] {
                if file.checksum != row.checksum { problems.append(.checksumMismatch(fileName: file.fileName)) }
            } else {
                problems.append(.unknownAppliedVersion(version: row.version, name: row.name))
            }
        }
        let appliedVersions = Set(applied.map(\.version))
        let pending = migrations.filter { !appliedVersions.contains($0.version) }
        let files = Dictionary(uniqueKeysWithValues: project.map { ($0.fileName, $0) })
        for row in appliedProject {
            if let file = files[row.fileName] {
                if file.checksum != row.checksum { problems.append(.checksumMismatch(fileName: file.fileName)) }
            } else {
                problems.append(.unknownAppliedProjectMigration(fileName: row.fileName))
            }
        }
        let appliedFiles = Set(appliedProject.map(\.fileName))
        return Status(
            applied: applied, pending: pending, projectApplied: appliedProject.map(\.fileName),
            projectPending: project.filter { !appliedFiles.contains($0.fileName) }, problems: problems)
    }

    /// `record`: apply and record each file in its own transaction; otherwise run them all in one
    /// transaction that is rolled back (a dry run).
    private func applyPending(on connection: PostgresConnection, logger: Logger, record: Bool) async throws(MigrationError) -> [String] {
        do {
            try await Self.bootstrap(on: connection, logger: logger)
        } catch {
            throw .connection(Self.describe(error))
        }
        let status = try await self.status(on: connection, logger: logger)
        if let problem = status.problems.first { throw problem }
        let steps: [Step] =
            status.pending.map { migration in
                Step(
                    fileName: migration.fileName, sql: migration.sql,
                    record: """
                        insert into strive_meta.schema_migrations (version, name, checksum)
                        values (\(migration.version), \(migration.name), \(migration.checksum))
                        """)
            }
            + status.projectPending.map { migration in
                Step(
                    fileName: migration.fileName, sql: migration.sql,
                    record: """
                        insert into strive_meta.project_migrations (file_name, checksum)
                        values (\(migration.fileName), \(migration.checksum))
                        """)
            }
        if record {
            for step in steps {
                logger.info("applying migration", metadata: ["migration": "\(step.fileName)"])
                try await Self.run(step, on: connection, logger: logger) { connection in
                    try await connection.run(step.record, logger: logger)
                }
            }
        } else {
            try await Self.dryRun(steps, on: connection, logger: logger)
        }
        return steps.map(\.fileName)
    }

    struct Step: Sendable {
        let fileName: String
        let sql: String
        let record: PostgresQuery
    }

    private static func run(
        _ step: Step, on connection: PostgresConnection, logger: Logger, then: (PostgresConnection) async throws -> Void
    ) async throws(MigrationError) {
        do {
            try await connection.inTransaction(logger: logger) { connection in
                try await execute(step, on: connection, logger: logger)
                try await then(connection)
            }
        } catch let error as MigrationError {
            throw error
        } catch {
            throw failure(of: step, error)
        }
    }

    private static func dryRun(_ steps: [Step], on connection: PostgresConnection, logger: Logger) async throws(MigrationError) {
        do {
            try await connection.run("BEGIN", logger: logger)
        } catch {
            throw .connection(describe(error))
        }
        var failed: MigrationError?
        for step in steps {
            do {
                try await execute(step, on: connection, logger: logger)
            } catch {
                failed = failure(of: step, error)
                break
            }
        }
        do {
            try await connection.run("ROLLBACK", logger: logger)
        } catch {
            connection.closeNow()
            throw .connection(describe(error))
        }
        if let failed { throw failed }
    }

    private static func execute(_ step: Step, on connection: PostgresConnection, logger: Logger) async throws {
        // Unqualified names in a migration mean public, whatever the owner's own search_path says.
        try await connection.run("select set_config('search_path', 'public', true)", logger: logger)
        try await connection.run("select pg_temp.strive_run_migration(\(step.sql))", logger: logger)
    }

    /// The file, the line PostgreSQL points at (its position is a character offset into the file's text,
    /// which the runner EXECUTEs whole) and the SQLSTATE.
    private static func failure(of step: Step, _ error: any Error) -> MigrationError {
        let server = DatabaseError.serverFields(in: error)
        let line = server?.position.flatMap { position -> Int? in
            guard position >= 1, position <= step.sql.count + 1 else { return nil }
            return step.sql.prefix(position - 1).filter { $0 == "\n" }.count + 1
        }
        return .failed(fileName: step.fileName, line: line, sqlState: server?.sqlState, message: server?.message ?? describe(error))
    }

    /// The migrator's own bookkeeping, in its own schema (not `strive`: an owner role named strive would
    /// find a schema of its own name first on its search_path). The runner is a session-local function: it takes the file's text as
    /// a bind parameter (extended protocol allows one statement per query; EXECUTE runs many) and
    /// disappears with the session, so no persistent "run any SQL" function exists for anyone to call.
    static func bootstrap(on connection: PostgresConnection, logger: Logger) async throws {
        try await connection.run("create schema if not exists strive_meta", logger: logger)
        try await connection.run(
            """
            create table if not exists strive_meta.schema_migrations (
                version integer primary key,
                name text not null,
                checksum text not null,
                applied_at timestamptz not null default now()
            )
            """,
            logger: logger
        )
        try await connection.run(
            """
            create table if not exists strive_meta.project_migrations (
                file_name text primary key,
                checksum text not null,
                applied_at timestamptz not null default now()
            )
            """,
            logger: logger
        )
        try await connection.run(
            """
            create or replace function pg_temp.strive_run_migration(migration_sql text) returns void
            language plpgsql as $$ begin execute migration_sql; end $$
            """,
            logger: logger
        )
    }

    static func appliedMigrations(on connection: PostgresConnection, logger: Logger) async throws -> [AppliedMigration] {
        let exists =
            try await connection.rows(
                "select to_regclass('strive_meta.schema_migrations') is not null", logger: logger
            ).first?.decode(Bool.self) ?? false
        guard exists else { return [] }
        var applied: [AppliedMigration] = []
        let rows = try await connection.rows(
            "select version, name, checksum from strive_meta.schema_migrations order by version", logger: logger
        )
        for row in rows {
            let (version, name, checksum) = try row.decode((Int, String, String).self)
            applied.append(AppliedMigration(version: version, name: name, checksum: checksum))
        }
        return applied
    }

    static func appliedProjectMigrations(on connection: PostgresConnection, logger: Logger) async throws -> [(
        fileName: String, checksum: String
    )] {
        let exists =
            try await connection.rows(
                "select to_regclass('strive_meta.project_migrations') is not null", logger: logger
            ).first?.decode(Bool.self) ?? false
        guard exists else { return [] }
        return try await connection.rows(
            "select file_name, checksum from strive_meta.project_migrations order by file_name", logger: logger
        ).map { row in
            let (fileName, checksum) = try row.decode((String, String).self)
            return (fileName, checksum)
        }
    }

    static func describe(_ error: any Error) -> String {
        if let server = DatabaseError.serverError(in: error) { return server.message }
        return String(describing: error)
    }
}
