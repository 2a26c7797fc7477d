import ArgumentParser
import Foundation
import Logging
import PostgresNIO
import StriveDatabase
import StriveServer

struct Migrate: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Apply pending database migrations (serve does this at start), or show their status.",
        discussion: "Uses DATABASE_URL when set, else the self-managed cluster in the data directory."
    )

    @Flag(help: "List applied and pending migrations without changing anything.") var status = false
    @OptionGroup var database: DatabaseOptions

    func run() async throws {
        let logger = makeLogger(level: try commandLogLevel())
        try await reportingFailure { () async throws(StartupError) in
            let migrator = try await wrap { () throws(MigrationError) in try Migrator(migrations: try Migration.bundled()) }
            try await database.withOwnerConnection(logger: logger) { connection, _ throws(StartupError) in
                try await perform(migrator, on: connection, logger: logger)
            }
        }
    }

    private func perform(_ migrator: Migrator, on connection: PostgresConnection, logger: Logger) async throws(StartupError) {
        if status {
            let current = try await wrap { () async throws(MigrationError) in try await migrator.status(on: connection, logger: logger) }
            for row in current.applied { print("applied  \(String(format: "%04d", row.version))_\(row.name)") }
            for migration in current.pending { print("pending  \(migration.fileName)") }
            for problem in current.problems { print("problem  \(problem)") }
            print(current.isCurrent ? "database is current" : "database is not current")
        } else {
            let applied = try await wrap { () async throws(MigrationError) in try await migrator.migrate(on: connection, logger: logger) }
            for migration in applied { print("applied  \(migration.fileName)") }
            print(applied.isEmpty ? "nothing to apply: database is current" : "applied \(applied.count) migration(s)")
        }
    }
}

private func wrap<T>(_ body: () async throws(MigrationError) -> T) async throws(StartupError) -> T {
    do { return try await body() } catch { throw .migration(error) }
}
