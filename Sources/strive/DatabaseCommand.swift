import ArgumentParser
import Foundation
import Logging
import StriveCore
import StriveDatabase
import StriveServer

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

struct DatabaseCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "db",
        abstract: "Manage the self-managed PostgreSQL cluster in the data directory.",
        discussion: """
            `strive serve` starts and stops this cluster by itself; these commands
            are for working with the database directly. A cluster started with
            `db start` keeps running after serve exits, until `db stop`.
            """,
        subcommands: [Start.self, Stop.self, Status.self, URL.self, Psql.self]
    )

    struct Start: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Create (first time) and start the cluster; it keeps running.")
        @OptionGroup var options: DataDirectoryOption

        func run() async throws {
            let logger = makeLogger(level: try commandLogLevel())
            try await reportingFailure { () async throws(StartupError) in
                let managed = try await ManagedCluster.open(try options.settings(), detached: true, logger: logger)
                let url = try await wrapCluster { () throws(LocalClusterError) in try managed.cluster.url(port: managed.running.port) }
                print(managed.running.startedNow ? "started" : "already running")
                print(url)
            }
        }
    }

    struct Stop: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Stop the cluster (refused while strive serve uses it).")
        @OptionGroup var options: DataDirectoryOption

        func run() async throws {
            let logger = makeLogger(level: try commandLogLevel())
            try await reportingFailure { () async throws(StartupError) in
                let cluster = try options.cluster()
                try await wrapCluster { () throws(LocalClusterError) in
                    _ = try DataDirectoryLock(dataDirectory: cluster.dataDirectory)
                }
                try await wrapCluster { () async throws(LocalClusterError) in try await cluster.stop(logger: logger) }
                print("stopped")
            }
        }
    }

    struct Status: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Say whether the cluster runs, and where.")
        @OptionGroup var options: DataDirectoryOption

        func run() async throws {
            try await reportingFailure { () async throws(StartupError) in
                let cluster = try options.cluster()
                let status = try await wrapCluster { () async throws(LocalClusterError) in try await cluster.status() }
                switch status {
                case .uninitialized:
                    print("not initialised: \(cluster.dataDirectory) has no cluster yet")
                case .stopped:
                    print("stopped (data in \(cluster.clusterDirectory))")
                case .running(let port, let socketPath, let detached):
                    print("running on 127.0.0.1:\(port), socket \(socketPath)\(detached ? " (started by strive db start)" : "")")
                }
            }
        }
    }

    struct URL: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Print the owner's connection URL of the running cluster (it holds the password).")
        @OptionGroup var options: DataDirectoryOption

        func run() async throws {
            try await reportingFailure { () async throws(StartupError) in
                let (cluster, port) = try await options.runningPort()
                print(try await wrapCluster { () throws(LocalClusterError) in try cluster.url(port: port) })
            }
        }
    }

    struct Psql: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Open psql on the running cluster as its owner.")
        @OptionGroup var options: DataDirectoryOption
        @Argument(parsing: .captureForPassthrough, help: "Arguments passed on to psql.") var psqlArguments: [String] = []

        func run() async throws {
            try await reportingFailure { () async throws(StartupError) in
                let (cluster, port) = try await options.runningPort()
                let url = try await wrapCluster { () throws(LocalClusterError) in try cluster.url(port: port) }
                let psql = [cluster.binaries.psql, "/usr/bin/psql"].first { FileManager.default.isExecutableFile(atPath: $0) }
                guard let psql else {
                    throw .server("psql was not found; install the PostgreSQL client")
                }
                // Replace this process so psql owns the terminal.
                let arguments = [psql, url] + psqlArguments
                let cArguments = arguments.map { strdup($0) } + [nil]
                execv(psql, cArguments)
                throw .server("could not run \(psql): \(String(cString: strerror(errno)))")
            }
        }
    }
}

func wrapCluster<T>(_ body: () async throws(LocalClusterError) -> T) async throws(StartupError) -> T {
    do { return try await body() } catch { throw .cluster(error) }
}
