import ArgumentParser
import Foundation
import Logging
import PostgresNIO
import StriveCore
import StriveDatabase
import StriveServer

enum StriveVersionText {
    static let full = "strive \(StriveVersion.current)"
}

/// Runs a command's body; a failure becomes one clear line on stderr and the error's exit code.
func reportingFailure(_ body: () async throws(StartupError) -> Void) async throws {
    do {
        try await body()
    } catch {
        FileHandle.standardError.write(Data("strive: \(error.description)\n".utf8))
        throw ExitCode(error.exitCode)
    }
}

func makeLogger(level: LogLevel) -> Logger {
    LoggingSystem.bootstrap { label in
        StderrLogHandler(label: label, level: Logger.Level(rawValue: level.rawValue) ?? .info)
    }
    return Logger(label: "strive")
}

/// Log level for commands other than serve: `STRIVE_LOG_LEVEL`, else only warnings and worse.
func commandLogLevel() -> LogLevel {
    ProcessInfo.processInfo.environment["STRIVE_LOG_LEVEL"].flatMap { LogLevel(rawValue: $0.lowercased()) } ?? .warning
}

/// Options shared by commands that reach the database.
struct DatabaseOptions: ParsableArguments {
    @Option(name: .customLong("data-dir"), help: "Data directory of the self-managed cluster (STRIVE_DATA_DIR, default ./.strive).")
    var dataDirectory: String?

    @Option(name: .customLong("database-url"), help: "Use this PostgreSQL server instead of the self-managed one (DATABASE_URL).")
    var databaseURL: String?

    var overrides: [ConfigVariable: (flag: String, value: String)] {
        var result: [ConfigVariable: (flag: String, value: String)] = [:]
        if let dataDirectory { result[.dataDirectory] = ("--data-dir", dataDirectory) }
        if let databaseURL { result[.databaseURL] = ("--database-url", databaseURL) }
        return result
    }

    /// The data directory and database location only, validated like `serve` would.
    func location() throws(StartupError) -> (dataDirectory: String, database: DatabaseLocation) {
        let environment = ProcessInfo.processInfo.environment
        let dataValue = overrides[.dataDirectory]?.value ?? environment[ConfigVariable.dataDirectory.rawValue]
        let dataDirectory = ConfigLoader.absolutePath(
            dataValue.flatMap { $0.isEmpty ? nil : $0 } ?? StriveConfig.defaultDataDirectory
        )
        let urlValue = overrides[.databaseURL]?.value ?? environment[ConfigVariable.databaseURL.rawValue]
        guard let text = urlValue, !text.isEmpty else { return (dataDirectory, .managed) }
        do {
            return (dataDirectory, .external(try DatabaseURL(parsing: text)))
        } catch {
            let label = databaseURL != nil ? "--database-url (DATABASE_URL)" : "DATABASE_URL"
            throw .configuration(.init(problems: [.init(variable: label, rule: error.rule, observed: error.observed)]))
        }
    }
}

extension DatabaseOptions {
    /// Runs `body` on an owner connection to DATABASE_URL, or to the self-managed cluster: the one a
    /// running `strive serve` holds, else started for this command and stopped afterwards.
    func withOwnerConnection<T: Sendable>(
        logger: Logger,
        _ body: (PostgresConnection, DatabaseTarget) async throws(StartupError) -> T
    ) async throws(StartupError) -> T {
        let (dataDirectory, location) = try location()
        switch location {
        case .external(let url):
            let target = DatabaseTarget(url: url)
            return try await DatabaseBootstrap.withOwnerConnection(target, logger: logger) { connection throws(StartupError) in
                try await body(connection, target)
            }
        case .managed:
            let managed = try await ManagedCluster.openForCommand(dataDirectory: dataDirectory, logger: logger)
            do throws(StartupError) {
                let target = try managed.target()
                let result = try await DatabaseBootstrap.withOwnerConnection(target, logger: logger) { connection throws(StartupError) in
                    try await body(connection, target)
                }
                await managed.close(logger: logger)
                return result
            } catch {
                await managed.close(logger: logger)
                throw error
            }
        }
    }
}
