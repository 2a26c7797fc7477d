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

/// The whole configuration, validated as `serve` validates it (a development secret generated once).
func loadConfiguration(_ overrides: [ConfigVariable: (flag: String, value: String)]) async throws(StartupError) -> StriveConfig {
    let loader = ConfigLoader(environment: ProcessInfo.processInfo.environment, overrides: overrides)
    do throws(ConfigurationError) {
        return try await loader.load(developmentSecret: DevelopmentSecrets.jwtSecret)
    } catch {
        throw .configuration(error)
    }
}

func makeLogger(level: LogLevel) -> Logger {
    LoggingSystem.bootstrap { label in
        StderrLogHandler(label: label, level: Logger.Level(rawValue: level.rawValue) ?? .info)
    }
    return Logger(label: "strive")
}

/// Log level for commands other than serve: `STRIVE_LOG_LEVEL`, else only warnings and worse. A value
/// that is not a level ends the command like any other configuration problem.
func commandLogLevel() throws -> LogLevel {
    do {
        return try ConfigLoader(environment: ProcessInfo.processInfo.environment).loadCommandLogLevel()
    } catch {
        let failure = StartupError.configuration(error)
        FileHandle.standardError.write(Data("strive: \(failure.description)\n".utf8))
        throw ExitCode(failure.exitCode)
    }
}

/// `--data-dir`, for every command that uses the self-managed cluster.
struct DataDirectoryOption: ParsableArguments {
    @Option(name: .customLong("data-dir"), help: "Data directory (STRIVE_DATA_DIR, default ./.strive).")
    var dataDirectory: String?

    var overrides: [ConfigVariable: (flag: String, value: String)] {
        dataDirectory.map { [.dataDirectory: ("--data-dir", $0)] } ?? [:]
    }

    /// The database settings, validated like `serve` validates them.
    func settings(overrides more: [ConfigVariable: (flag: String, value: String)] = [:]) throws(StartupError) -> DatabaseSettings {
        let loader = ConfigLoader(environment: ProcessInfo.processInfo.environment, overrides: overrides.merging(more) { $1 })
        do { return try loader.loadDatabaseSettings() } catch { throw .configuration(error) }
    }

    /// The self-managed cluster of the data directory (not started).
    func cluster() throws(StartupError) -> LocalCluster {
        let settings = try settings()
        do { return try ManagedCluster.cluster(settings) } catch { throw .cluster(error) }
    }

    /// The running cluster's port, or the error telling how to start it.
    func runningPort() async throws(StartupError) -> (LocalCluster, Int) {
        let cluster = try cluster()
        return try await wrapCluster { () async throws(LocalClusterError) in
            switch try await cluster.status() {
            case .running(let port, _, _): return (cluster, port)
            case .stopped: throw .notRunning(dataDirectory: cluster.dataDirectory)
            case .uninitialized: throw .notInitialized(dataDirectory: cluster.dataDirectory)
            }
        }
    }
}

/// Options shared by commands that reach the database: the self-managed cluster or `--database-url`.
struct DatabaseOptions: ParsableArguments {
    @OptionGroup var dataDirectory: DataDirectoryOption

    @Option(name: .customLong("database-url"), help: "Use this PostgreSQL server instead of the self-managed one (DATABASE_URL).")
    var databaseURL: String?

    var overrides: [ConfigVariable: (flag: String, value: String)] {
        var result = dataDirectory.overrides
        if let databaseURL { result[.databaseURL] = ("--database-url", databaseURL) }
        return result
    }

    /// The database settings, validated like `serve` validates them.
    func settings() throws(StartupError) -> DatabaseSettings {
        try dataDirectory.settings(overrides: overrides)
    }
}

extension DatabaseOptions {
    /// Runs `body` on an owner connection to DATABASE_URL, or to the self-managed cluster: the one a
    /// running `strive serve` holds, else started for this command and stopped afterwards.
    func withOwnerConnection<T: Sendable>(
        logger: Logger,
        _ body: (PostgresConnection, DatabaseTarget) async throws(StartupError) -> T
    ) async throws(StartupError) -> T {
        try await withTarget(logger: logger) { target throws(StartupError) in
            try await DatabaseBootstrap.withOwnerConnection(target, logger: logger) { connection throws(StartupError) in
                try await body(connection, target)
            }
        }
    }

    /// Runs `body` with the owner's way into DATABASE_URL, or into the self-managed cluster (the one a
    /// running `strive serve` holds, else started for this command and stopped afterwards).
    func withTarget<T: Sendable>(
        logger: Logger,
        _ body: (DatabaseTarget) async throws(StartupError) -> T
    ) async throws(StartupError) -> T {
        let settings = try settings()
        switch settings.location {
        case .external(let url):
            return try await body(DatabaseTarget(url: url))
        case .managed:
            let managed = try await ManagedCluster.openForCommand(settings, logger: logger)
            do throws(StartupError) {
                let result = try await body(try managed.target())
                await managed.close(logger: logger)
                return result
            } catch {
                await managed.close(logger: logger)
                throw error
            }
        }
    }
}
