import ArgumentParser
import Foundation
import Logging
import PostgresNIO
import StriveCore
import StriveDatabase
import StriveServer

struct Migrate: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Apply pending migrations — Strive's, then the project's folder — (serve does this at start), or show their status.",
        discussion: """
            Uses DATABASE_URL when set, else the self-managed cluster in the data directory. The project's
            migrations are the .sql files of STRIVE_MIGRATIONS_DIR (default ./migrations), applied in name
            order after Strive's built-in ones, each once and in its own transaction.
            """
    )

    @Flag(help: "List applied and pending migrations without changing anything.") var status = false
    @Flag(name: .customLong("dry-run"), help: "Run the pending migrations in one transaction and roll it back.") var dryRun = false
    @OptionGroup var database: DatabaseOptions

    func validate() throws {
        if status && dryRun { throw ValidationError("--status and --dry-run cannot be combined") }
    }

    func run() async throws {
        let logger = makeLogger(level: try commandLogLevel())
        try await reportingFailure { () async throws(StartupError) in
            let settings = try database.settings()
            let migrator = try await wrap { () throws(MigrationError) in
                try Migrator.standard(projectDirectory: settings.migrationsDirectory, product: settings.productSchema)
            }
            try await database.withOwnerConnection(logger: logger) { connection, _ throws(StartupError) in
                try await perform(migrator, on: connection, logger: logger)
            }
        }
    }

    private func perform(_ migrator: Migrator, on connection: PostgresConnection, logger: Logger) async throws(StartupError) {
        if status {
            let current = try await wrap { () async throws(MigrationError) in try await migrator.status(on: connection, logger: logger) }
            for row in current.applied { print("applied  built-in  \(String(format: "%04d", row.version))_\(row.name)") }
            for migration in current.pending { print("pending  built-in  \(migration.fileName)") }
            for fileName in current.projectApplied { print("applied  project   \(fileName)") }
            for migration in current.projectPending { print("pending  project   \(migration.fileName)") }
            for problem in current.problems { print("problem  \(problem)") }
            print(current.isCurrent ? "database is current" : "database is not current")
        } else if dryRun {
            let pending = try await wrap { () async throws(MigrationError) in try await migrator.dryRun(on: connection, logger: logger) }
            for fileName in pending { print("would apply  \(fileName)") }
            print(pending.isEmpty ? "nothing to apply: database is current" : "\(pending.count) migration(s) apply cleanly; rolled back")
        } else {
            let applied = try await wrap { () async throws(MigrationError) in try await migrator.migrate(on: connection, logger: logger) }
            for fileName in applied { print("applied  \(fileName)") }
            print(applied.isEmpty ? "nothing to apply: database is current" : "applied \(applied.count) migration(s)")
        }
    }
}

/// `strive migration new NAME`: the project's next migration file.
struct MigrationCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "migration", abstract: "Create project migration files.", subcommands: [New.self])

    struct New: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Create the next migration file in STRIVE_MIGRATIONS_DIR (default ./migrations) and print its path.")

        @Argument(help: "What the migration does, in a few words (becomes the file name: add_widgets).") var name: String

        func run() async throws {
            try await reportingFailure { () async throws(StartupError) in
                let loader = ConfigLoader(environment: ProcessInfo.processInfo.environment)
                let settings: DatabaseSettings
                do throws(ConfigurationError) {
                    settings = try loader.loadDatabaseSettings()
                } catch {
                    throw .configuration(error)
                }
                let directory = settings.migrationsDirectory
                let path = try await wrap { () throws(MigrationError) -> String in
                    let existing = try ProjectMigration.load(directory: directory)
                    let fileName = try ProjectMigration.newFileName(name, at: Date(), after: existing)
                    return directory + "/" + fileName
                }
                do {
                    try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
                    let fileName = URL(fileURLWithPath: path).lastPathComponent
                    try Data(ProjectMigration.template(fileName: fileName).utf8).write(
                        to: URL(fileURLWithPath: path), options: .withoutOverwriting)
                } catch {
                    throw .server("could not create \(path): \(error.localizedDescription)")
                }
                print(path)
            }
        }
    }
}

private func wrap<T>(_ body: () async throws(MigrationError) -> T) async throws(StartupError) -> T {
    do { return try await body() } catch { throw .migration(error) }
}
