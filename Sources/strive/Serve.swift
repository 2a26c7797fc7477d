import ArgumentParser
import Foundation
import StriveCore
import StriveServer

struct Serve: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Run the Strive server until SIGINT or SIGTERM.",
        discussion: "Settings come from environment variables; the flags below override them.\n\n"
            + ConfigVariable.helpText()
            + "\n\nProduction requires the secret and both keys. Invalid settings are all reported at once and the exit code is 78."
    )

    @Option(help: "Address to listen on (STRIVE_HOST).") var host: String?
    @Option(help: "Port to listen on, 0 for any free port (STRIVE_PORT).") var port: String?
    @Option(name: .customLong("log-level"), help: "Log level (STRIVE_LOG_LEVEL).") var logLevel: String?
    @OptionGroup var database: DatabaseOptions

    func run() async throws {
        var overrides = database.overrides
        if let host { overrides[.host] = ("--host", host) }
        if let port { overrides[.port] = ("--port", port) }
        if let logLevel { overrides[.logLevel] = ("--log-level", logLevel) }
        try await reportingFailure { () async throws(StartupError) in
            let config = try await loadConfiguration(overrides)
            let logger = makeLogger(level: config.logLevel)
            let launcher = StriveLauncher(config: config, logger: logger)
            try await launcher.serve { url in
                var lines = ["Strive is ready on \(url)"]
                if config.environment == .development {
                    lines.append("  anon key:         \(config.apiKeys.anon)")
                    lines.append("  service role key: \(config.apiKeys.serviceRole.value)  (server-side only)")
                }
                // Unbuffered: scripts and tests wait for this line on a pipe.
                FileHandle.standardOutput.write(Data((lines.joined(separator: "\n") + "\n").utf8))
            }
        }
    }
}
