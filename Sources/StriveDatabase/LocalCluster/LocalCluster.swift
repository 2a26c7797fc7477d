import Foundation
import Logging
import PostgresNIO

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// A PostgreSQL cluster that Strive creates and runs itself inside its data directory:
///
///     <data>/pg            the cluster (initdb once)
///     <data>/run           its unix socket and server log, owned by the server's OS user
///     <data>/pg-password   the superuser password (mode 0600)
///
/// It listens on that socket and on a free loopback port. When Strive runs as root, PostgreSQL (which
/// refuses root) runs as an unprivileged OS user (`STRIVE_PG_USER`, default `postgres`) who owns
/// `<data>/pg` and `<data>/run`.
public struct LocalCluster: Sendable {
    public let dataDirectory: String
    public let binaries: PostgresBinaries
    /// The OS user the server runs as when this process is root; nil otherwise.
    public let serverUser: String?

    public static let superuser = "strive"
    public static let databaseName = "strive"

    public var clusterDirectory: String { dataDirectory + "/pg" }
    public var runDirectory: String { dataDirectory + "/run" }
    public var logFile: String { runDirectory + "/postgres.log" }
    /// Server settings (`name = value` lines) written after Strive's own at every start, so they win:
    /// the test harness's throwaway cluster trades durability and connection limits for a parallel suite.
    public var additionalSettings: [String] = []
    var passwordFile: String { dataDirectory + "/pg-password" }
    /// Present while a cluster started by `strive db start` should outlive `strive serve`.
    var detachedMarker: String { dataDirectory + "/pg-detached" }

    public struct Running: Sendable, Equatable {
        public let port: Int
        public let socketPath: String
        /// False when the cluster was already running (started by `strive db start`, or left behind by a
        /// killed Strive) and this call adopted it.
        public let startedNow: Bool
        /// True when `strive db start` started it to outlive any one Strive process.
        public let detached: Bool
    }

    /// `serverUserWhenRoot` runs the server when this process is root (PostgreSQL refuses root); otherwise
    /// the server runs as this process's user.
    public init(dataDirectory: String, binaries: PostgresBinaries, serverUserWhenRoot: String) {
        self.dataDirectory = dataDirectory
        self.binaries = binaries
        self.serverUser = getuid() == 0 ? serverUserWhenRoot : nil
    }

    var runner: ProcessRunner { ProcessRunner(user: serverUser, workingDirectory: dataDirectory) }

    // MARK: - Preparing the data directory

    /// Creates the data directory (if needed) and checks the server user can use it. Changes nothing else.
    public func prepareDataDirectory() async throws(LocalClusterError) {
        var isDirectory: ObjCBool = false
        if FileManager.default.fileExists(atPath: dataDirectory, isDirectory: &isDirectory) {
            guard isDirectory.boolValue else { throw .dataDirectoryIsNotADirectory(dataDirectory) }
        } else {
            do {
                try FileManager.default.createDirectory(
                    atPath: dataDirectory, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700]
                )
            } catch {
                throw .dataDirectoryNotWritable(dataDirectory, reason: Self.reason(error))
            }
        }
        guard access(dataDirectory, W_OK | X_OK) == 0 else {
            throw .dataDirectoryNotWritable(dataDirectory, reason: String(cString: strerror(errno)))
        }
        let socketPath = runDirectory + "/.s.PGSQL.65535"
        guard socketPath.utf8.count <= 107 else { throw .socketPathTooLong(socketPath) }
        try makeServerDirectory(runDirectory)
        if let serverUser {
            // The server user must be able to pass through the data directory to reach pg/ and run/.
            if !(await serverUserCanEnter(dataDirectory)) {
                chmod(dataDirectory, Self.mode(of: dataDirectory) | 0o001)
            }
            guard await serverUserCanEnter(runDirectory) else {
                throw .unreachableForServerUser(user: serverUser, path: dataDirectory)
            }
        }
    }

    private func makeServerDirectory(_ path: String) throws(LocalClusterError) {
        do {
            try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        } catch {
            throw .dataDirectoryNotWritable(dataDirectory, reason: Self.reason(error))
        }
        chmod(path, 0o700)
        if let serverUser {
            guard let account = getpwnam(serverUser) else { throw .noUnprivilegedUser(serverUser) }
            guard chown(path, account.pointee.pw_uid, account.pointee.pw_gid) == 0 else {
                throw .dataDirectoryNotWritable(path, reason: String(cString: strerror(errno)))
            }
        }
    }

    private func serverUserCanEnter(_ path: String) async -> Bool {
        guard let result = try? await ProcessRunner(user: serverUser, workingDirectory: "/").run("/usr/bin/test", ["-x", path])
        else { return false }
        return result.succeeded
    }

    // MARK: - Initialising

    public var isInitialized: Bool {
        FileManager.default.fileExists(atPath: clusterDirectory + "/PG_VERSION")
    }

    /// Runs `initdb` unless the cluster exists. It initialises a temporary directory and renames it into
    /// place, so an interrupted first start never leaves a half-made cluster behind.
    /// Returns whether it created the cluster.
    @discardableResult
    public func initializeIfNeeded(logger: Logger) async throws(LocalClusterError) -> Bool {
        guard !isInitialized else { return false }
        let staging = dataDirectory + "/pg.initializing"
        try? FileManager.default.removeItem(atPath: staging)
        try makeServerDirectory(staging)

        let password = try superuserPassword()
        // initdb reads the password from a file the server user can read; it lives only for this call.
        let passwordCopy = runDirectory + "/initdb-password"
        _ = FileManager.default.createFile(atPath: passwordCopy, contents: Data(password.utf8), attributes: [.posixPermissions: 0o600])
        defer { try? FileManager.default.removeItem(atPath: passwordCopy) }
        if let serverUser, let account = getpwnam(serverUser) {
            chown(passwordCopy, account.pointee.pw_uid, account.pointee.pw_gid)
        }

        logger.info("initialising local PostgreSQL cluster", metadata: ["path": "\(clusterDirectory)"])
        let result = try await run(
            binaries.initdb,
            [
                "-D", staging, "-U", Self.superuser, "--pwfile=\(passwordCopy)",
                "--auth-local=scram-sha-256", "--auth-host=scram-sha-256", "-E", "UTF8", "--no-locale",
            ])
        guard result.succeeded else {
            try? FileManager.default.removeItem(atPath: staging)
            throw .commandFailed(command: "initdb", output: result.output)
        }
        let include = "\n# Written by Strive at every start: port, listen address, socket directory.\ninclude_if_exists 'strive.conf'\n"
        if let handle = FileHandle(forWritingAtPath: staging + "/postgresql.conf") {
            handle.seekToEndOfFile()
            handle.write(Data(include.utf8))
            try? handle.close()
        }
        do {
            try FileManager.default.moveItem(atPath: staging, toPath: clusterDirectory)
        } catch {
            throw .dataDirectoryNotWritable(dataDirectory, reason: Self.reason(error))
        }
        return true
    }

    /// The superuser's password, generated on first use and kept in `<data>/pg-password` (0600).
    public func superuserPassword() throws(LocalClusterError) -> String {
        if let existing = try? String(contentsOfFile: passwordFile, encoding: .utf8) {
            let trimmed = existing.trimmingCharacters(in: .whitespacesAndNewlines)
            if !trimmed.isEmpty { return trimmed }
        }
        let password = (0..<32).map { _ in String(format: "%02x", UInt8.random(in: 0...255)) }.joined()
        guard
            FileManager.default.createFile(
                atPath: passwordFile, contents: Data(password.utf8), attributes: [.posixPermissions: 0o600]
            )
        else {
            throw .dataDirectoryNotWritable(dataDirectory, reason: "cannot write \(passwordFile)")
        }
        return password
    }

    // MARK: - Running

    /// Starts the cluster (or adopts one already running on this data directory) and waits until it
    /// accepts connections. Callers hold the data directory's `DataDirectoryLock`.
    public func start(detached: Bool = false, logger: Logger) async throws(LocalClusterError) -> Running {
        guard isInitialized else { throw .notInitialized(dataDirectory: dataDirectory) }
        if let running = try await adoptRunning(logger: logger) {
            guard detached, !running.detached else { return running }
            _ = FileManager.default.createFile(atPath: detachedMarker, contents: Data())
            return Running(port: running.port, socketPath: running.socketPath, startedNow: false, detached: true)
        }
        try removeStalePidFile(logger: logger)

        let previous = configuredPort()
        let port = previous.flatMap { LoopbackPort.isAvailable($0, host: "127.0.0.1") ? $0 : nil } ?? LoopbackPort.free()
        guard let port else {
            throw .commandFailed(command: "choosing a loopback port", output: "no free TCP port on 127.0.0.1")
        }
        let settings = """
            # Managed by Strive; rewritten at every start.
            listen_addresses = '127.0.0.1'
            port = \(port)
            unix_socket_directories = '\(runDirectory)'
            # Each Strive instance holds a request pool, an admin pool and two LISTEN connections (realtime);
            # the default of 100 runs out with a few instances or a parallel test run.
            max_connections = 500

            """ + additionalSettings.map { $0 + "\n" }.joined()
        guard FileManager.default.createFile(atPath: clusterDirectory + "/strive.conf", contents: Data(settings.utf8)) else {
            throw .dataDirectoryNotWritable(clusterDirectory, reason: "cannot write strive.conf")
        }
        logger.info("starting local PostgreSQL", metadata: ["port": "\(port)", "socket": "\(runDirectory)"])
        let result = try await run(binaries.pgCtl, ["start", "-D", clusterDirectory, "-l", logFile, "-w", "-t", "60", "-s"])
        guard result.succeeded else {
            let log = (try? String(contentsOfFile: logFile, encoding: .utf8)) ?? ""
            throw .commandFailed(
                command: "pg_ctl start", output: result.output + "\n" + log.split(separator: "\n").suffix(3).joined(separator: "\n"))
        }
        if detached {
            _ = FileManager.default.createFile(atPath: detachedMarker, contents: Data())
        } else {
            try? FileManager.default.removeItem(atPath: detachedMarker)
        }
        let running = Running(port: port, socketPath: socketPath(port: port), startedNow: true, detached: detached)
        try await ensureDatabase(running, logger: logger)
        return running
    }

    /// PostgreSQL's shutdown modes: `fast` ends sessions and flushes data; `immediate` stops at once and
    /// leaves crash recovery to the next start (as a power cut would).
    public enum ShutdownMode: String, Sendable {
        case fast, immediate
    }

    /// Stops the cluster if it runs.
    public func stop(mode: ShutdownMode = .fast, logger: Logger) async throws(LocalClusterError) {
        guard case .running = try await status() else { return }
        logger.info("stopping local PostgreSQL", metadata: ["path": "\(clusterDirectory)", "mode": "\(mode.rawValue)"])
        let result = try await run(binaries.pgCtl, ["stop", "-D", clusterDirectory, "-m", mode.rawValue, "-w", "-t", "60", "-s"])
        try? FileManager.default.removeItem(atPath: detachedMarker)
        guard result.succeeded else { throw .commandFailed(command: "pg_ctl stop", output: result.output) }
    }

    /// `pg_ctl restart`: stops the running cluster in `mode` and starts it again with its settings.
    public func restart(mode: ShutdownMode = .fast, logger: Logger) async throws(LocalClusterError) {
        logger.info("restarting local PostgreSQL", metadata: ["path": "\(clusterDirectory)", "mode": "\(mode.rawValue)"])
        let result = try await run(
            binaries.pgCtl, ["restart", "-D", clusterDirectory, "-m", mode.rawValue, "-l", logFile, "-w", "-t", "60", "-s"])
        guard result.succeeded else { throw .commandFailed(command: "pg_ctl restart", output: result.output) }
    }

    public enum Status: Sendable, Equatable {
        case uninitialized
        case stopped
        case running(port: Int, socketPath: String, detached: Bool)
    }

    public func status() async throws(LocalClusterError) -> Status {
        guard isInitialized else { return .uninitialized }
        let result = try await run(binaries.pgCtl, ["status", "-D", clusterDirectory])
        guard result.succeeded, let port = pidFilePort(),
            let pid = ProcessLiveness.pid(inLockFile: clusterDirectory + "/postmaster.pid"), ProcessLiveness.isRunning(pid)
        else { return .stopped }
        return .running(port: port, socketPath: socketPath(port: port), detached: FileManager.default.fileExists(atPath: detachedMarker))
    }

    /// How the owner logs in to `database` on the running cluster (over its unix socket).
    public func target(_ running: Running, database: String = LocalCluster.databaseName) throws(LocalClusterError) -> DatabaseTarget {
        DatabaseTarget(
            endpoint: .unixSocket(path: running.socketPath),
            database: database,
            owner: DatabaseCredentials(username: Self.superuser, password: .init(try superuserPassword()))
        )
    }

    /// A libpq URL for the owner over loopback TCP, for `strive db url` and tools like psql.
    public func url(port: Int, database: String = LocalCluster.databaseName) throws(LocalClusterError) -> String {
        "postgres://\(Self.superuser):\(try superuserPassword())@127.0.0.1:\(port)/\(database)"
    }

    /// The cluster another Strive process runs and holds the data directory lock for, to connect to
    /// without managing it (`strive verify` or `strive seed` while `strive serve` runs).
    public func runningElsewhere() async throws(LocalClusterError) -> Running? {
        guard case .running(let port, let socketPath, _) = try await status() else { return nil }
        return Running(port: port, socketPath: socketPath, startedNow: false, detached: true)
    }

    // MARK: - Internals

    private func adoptRunning(logger: Logger) async throws(LocalClusterError) -> Running? {
        guard case .running(let port, let socketPath, let detached) = try await status() else { return nil }
        let running = Running(port: port, socketPath: socketPath, startedNow: false, detached: detached)
        do {
            try await ensureDatabase(running, logger: logger)
        } catch {
            // pg_ctl trusted a pid that now belongs to something else; the cluster is not really up.
            logger.warning("local PostgreSQL looked alive but does not answer; restarting it")
            return nil
        }
        logger.info("using the local PostgreSQL that is already running", metadata: ["port": "\(port)"])
        return running
    }

    /// After a kill -9 the lock files outlive the server: postmaster.pid, and the socket's lock in run/.
    /// PostgreSQL refuses to start while their pid still exists, which a zombie does. We hold the data
    /// directory lock and found no working server, so lock files whose process is not running are stale.
    private func removeStalePidFile(logger: Logger) throws(LocalClusterError) {
        let socketLocks = ((try? FileManager.default.contentsOfDirectory(atPath: runDirectory)) ?? [])
            .filter { $0.hasPrefix(".s.PGSQL.") && $0.hasSuffix(".lock") }
            .map { runDirectory + "/" + $0 }
        for lockFile in [clusterDirectory + "/postmaster.pid"] + socketLocks
        where FileManager.default.fileExists(atPath: lockFile) {
            if let pid = ProcessLiveness.pid(inLockFile: lockFile), ProcessLiveness.isRunning(pid) { continue }
            logger.notice("removing a stale lock file left by a PostgreSQL that did not stop cleanly", metadata: ["file": "\(lockFile)"])
            do {
                try FileManager.default.removeItem(atPath: lockFile)
            } catch {
                throw .dataDirectoryNotWritable(clusterDirectory, reason: Self.reason(error))
            }
        }
    }

    /// The server creates the `strive` database on first start; later starts find it.
    private func ensureDatabase(_ running: Running, logger: Logger) async throws(LocalClusterError) {
        let target = try target(running, database: "postgres")
        do {
            try await target.withConnection(as: target.owner, logger: logger) { connection in
                let exists =
                    try await connection.rows(
                        "select 1 from pg_database where datname = \(Self.databaseName)", logger: logger
                    ).isEmpty == false
                if !exists {
                    try await connection.run(PostgresQuery(unsafeSQL: "create database \(Self.databaseName)"), logger: logger)
                }
            }
        } catch {
            throw .commandFailed(command: "connecting to the local PostgreSQL", output: String(describing: error))
        }
    }

    private func run(_ executable: String, _ arguments: [String]) async throws(LocalClusterError) -> ProcessRunner.Result {
        do {
            return try await runner.run(executable, arguments)
        } catch {
            throw .commandFailed(command: (executable as NSString).lastPathComponent, output: Self.reason(error))
        }
    }

    private func socketPath(port: Int) -> String { "\(runDirectory)/.s.PGSQL.\(port)" }

    /// Line 4 of postmaster.pid is the port the running server listens on.
    private func pidFilePort() -> Int? {
        guard let text = try? String(contentsOfFile: clusterDirectory + "/postmaster.pid", encoding: .utf8) else { return nil }
        let lines = text.split(separator: "\n", omittingEmptySubsequences: false)
        return lines.count > 3 ? Int(lines[3].trimmingCharacters(in: .whitespaces)) : nil
    }

    private func configuredPort() -> Int? {
        guard let text = try? String(contentsOfFile: clusterDirectory + "/strive.conf", encoding: .utf8) else { return nil }
        for line in text.split(separator: "\n") where line.hasPrefix("port = ") {
            return Int(line.dropFirst("port = ".count))
        }
        return nil
    }

    private static func mode(of path: String) -> mode_t {
        var info = stat()
        return stat(path, &info) == 0 ? info.st_mode & 0o7777 : 0o700
    }

    static func reason(_ error: any Error) -> String {
        (error as NSError).localizedFailureReason ?? (error as NSError).localizedDescription
    }
}
