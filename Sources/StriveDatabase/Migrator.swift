import Logging
import PostgresNIO

/// Applies migrations in order, each in its own transaction, under a Postgres advisory lock so that
/// several processes starting at once apply each file exactly once.
public struct Migrator: Sendable {
    public let migrations: [Migration]

    /// Arbitrary but fixed: every Strive process contends for this advisory lock key.
    static let advisoryLockKey: Int64 = 0x5374_7269_7665 // "Strive"

    public init(migrations: [Migration]) throws(MigrationError) {
        self.migrations = try Migration.ordered(migrations)
    }

    public struct AppliedMigration: Sendable, Equatable {
        public let version: Int
        public let name: String
        public let checksum: String
    }

    public struct Status: Sendable {
        public let applied: [AppliedMigration]
        public let pending: [Migration]
        /// Problems that stop migrating: edited files, versions unknown to this build.
        public let problems: [MigrationError]
        public var isCurrent: Bool { pending.isEmpty && problems.isEmpty }
    }

    /// Applies every pending migration; returns the ones applied by this call.
    @discardableResult
    public func migrate(on connection: PostgresConnection, logger: Logger) async throws(MigrationError) -> [Migration] {
        do {
            try await connection.run("select pg_advisory_lock(\(Self.advisoryLockKey))", logger: logger)
        } catch {
            throw .connection(Self.describe(error))
        }
        do {
            let result = try await applyPending(on: connection, logger: logger)
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
        do {
            applied = try await Self.appliedMigrations(on: connection, logger: logger)
        } catch {
            throw .connection(Self.describe(error))
        }
        return evaluate(applied: applied)
    }

    func evaluate(applied: [AppliedMigration]) -> Status {
        let known = Dictionary(uniqueKeysWithValues: migrations.map { ($0.version, $0) })
        var problems: [MigrationError] = []
        for row in applied {
            if let file = known[row.version] {
                if file.checksum != row.checksum { problems.append(.checksumMismatch(fileName: file.fileName)) }
            } else {
                problems.append(.unknownAppliedVersion(version: row.version, name: row.name))
            }
        }
        let appliedVersions = Set(applied.map(\.version))
        let pending = migrations.filter { !appliedVersions.contains($0.version) }
        return Status(applied: applied, pending: pending, problems: problems)
    }

    private func applyPending(on connection: PostgresConnection, logger: Logger) async throws(MigrationError) -> [Migration] {
        do {
            try await Self.bootstrap(on: connection, logger: logger)
        } catch {
            throw .connection(Self.describe(error))
        }
        let status = try await self.status(on: connection, logger: logger)
        if let problem = status.problems.first { throw problem }
        for migration in status.pending {
            logger.info("applying migration", metadata: ["migration": "\(migration.fileName)"])
            do {
                try await connection.inTransaction(logger: logger) { connection in
                    // Unqualified names in a migration mean public, whatever the owner's own search_path says.
                    try await connection.run("select set_config('search_path', 'public', true)", logger: logger)
                    try await connection.run("select pg_temp.strive_run_migration(\(migration.sql))", logger: logger)
                    try await connection.run(
                        """
                        insert into strive_meta.schema_migrations (version, name, checksum)
                        values (\(migration.version), \(migration.name), \(migration.checksum))
                        """,
                        logger: logger
                    )
                }
            } catch {
                let server = DatabaseError.serverError(in: error)
                throw .failed(
                    fileName: migration.fileName, sqlState: server?.sqlState,
                    message: server?.message ?? Self.describe(error)
                )
            }
        }
        return status.pending
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

    static func describe(_ error: any Error) -> String {
        if let server = DatabaseError.serverError(in: error) { return server.message }
        return String(describing: error)
    }
}
