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
        enum Role: String, ExpressibleByArgument, CaseIterable {
            case owner, service, app
        }

        static let configuration = CommandConfiguration(
            abstract: "Print a connection URL of the database (it holds the password): the owner's, or a login for your server code.",
            discussion: """
                --role owner (default): the schema owner, for migrations and psql.
                --role service: strive_service, whose sessions run as service_role: every row, no DDL.
                --role app: strive_app, whose sessions run as authenticated under row-level security. In each
                transaction, before anything else, say whose request it serves:
                  select set_config('request.jwt.claims', '{"sub": "<user id>", "role": "authenticated"}', true);
                Without it auth.uid() is null and the policies show no tenant's rows.
                The service and app passwords are derived from the JWT secret (STRIVE_JWT_SECRET) and stay the same
                until it changes; printing the URL enables the login. With DATABASE_URL (or --database-url), the URL
                is for that server; else the self-managed cluster must be running (strive db start, or strive serve).
                """)
        @Option(help: "owner, service or app.") var role: Role = .owner
        @OptionGroup var database: DatabaseOptions

        func run() async throws {
            let logger = makeLogger(level: try commandLogLevel())
            let loader = ConfigLoader(environment: ProcessInfo.processInfo.environment, overrides: database.overrides)
            try await reportingFailure { () async throws(StartupError) in
                let target: DatabaseTarget
                switch try database.settings().location {
                case .external(let url):
                    target = DatabaseTarget(url: url)
                case .managed:
                    let (cluster, port) = try await database.dataDirectory.runningPort()
                    let owner = try await wrapCluster { () throws(LocalClusterError) in try cluster.url(port: port) }
                    guard let url = try? DatabaseURL(parsing: owner) else { throw .server("the cluster's own URL did not parse") }
                    target = DatabaseTarget(url: url)
                }
                let login: ServerLogin
                switch role {
                case .owner:
                    print(target.url(as: target.owner))
                    return
                case .service: login = .service
                case .app: login = .app
                }
                let secret: Secret
                do throws(ConfigurationError) {
                    secret = try await loader.load(developmentSecret: DevelopmentSecrets.jwtSecret).jwtSecret
                } catch {
                    throw .configuration(error)
                }
                let credentials = DatabaseCredentials.serverLogin(login, derivedFrom: secret)
                try await DatabaseBootstrap.withOwnerConnection(target, logger: logger) { connection throws(StartupError) in
                    try await DatabaseBootstrap.enableLogin(credentials, on: connection, logger: logger)
                }
                print(target.url(as: credentials))
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
