import Foundation
import Logging
import ServiceLifecycle

#if canImport(Glibc)
    import Glibc
#endif

/// Keeps the self-managed cluster running: if its postmaster dies (killed, crashed, stopped from
/// outside), PostgreSQL is started again — it runs its own crash recovery — with capped backoff, each
/// restart logged. Restarts are bounded: more than `maximumRestarts` within `window` means something is
/// wrong that restarting will not fix, and the supervisor fails, which ends `strive serve` with a
/// non-zero status so a process supervisor can take over.
public struct ClusterSupervisor: Service {
    public struct GaveUp: Error, CustomStringConvertible {
        public let restarts: Int
        public let window: Duration
        public let lastError: String?
        public var description: String {
            "the local PostgreSQL stopped \(restarts) times within \(window); giving up"
                + (lastError.map { " (last restart failure: \($0))" } ?? "") + ". See its log in <data dir>/run/postgres.log."
        }
    }

    let cluster: LocalCluster
    /// The port the pools connect through: a restart must come back on it.
    let port: Int
    let availability: DatabaseAvailability
    let interval: Duration
    let cleanStopGrace: Duration
    let maximumRestarts: Int
    let window: Duration
    let logger: Logger

    public init(
        cluster: LocalCluster, running: LocalCluster.Running, availability: DatabaseAvailability, interval: Duration = .milliseconds(200),
        cleanStopGrace: Duration = .seconds(2), maximumRestarts: Int = 5, window: Duration = .seconds(60), logger: Logger
    ) {
        self.cluster = cluster
        self.port = running.port
        self.availability = availability
        self.interval = interval
        self.cleanStopGrace = cleanStopGrace
        self.maximumRestarts = maximumRestarts
        self.window = window
        self.logger = logger
    }

    public func run() async throws {
        do {
            try await cancelWhenGracefulShutdown { try await supervise() }
        } catch is CancellationError {
            // Shutting down: the cluster is stopped by whoever started it.
        }
    }

    func supervise() async throws {
        var restarts: [ContinuousClock.Instant] = []
        var backoff = Backoff(initial: .milliseconds(200), maximum: .seconds(5))
        var lastError: String?
        while !Task.isCancelled {
            try await Task.sleep(for: interval)
            guard !cluster.postmasterIsRunning else { continue }
            if !cluster.hasPidFile {
                // A clean stop (pg_ctl stop or restart by an operator) removes postmaster.pid: give a restart
                // in progress the time to start it before this one competes with it.
                availability.set(.unavailable(reason: "the local PostgreSQL was stopped"))
                try await Task.sleep(for: cleanStopGrace)
                guard !cluster.postmasterIsRunning else { continue }
            }
            let now = ContinuousClock.now
            restarts = restarts.filter { now - $0 < window } + [now]
            if restarts.count > maximumRestarts {
                let gaveUp = GaveUp(restarts: restarts.count - 1, window: window, lastError: lastError)
                logger.critical("\(gaveUp.description)")
                throw gaveUp
            }
            availability.set(.unavailable(reason: "the local PostgreSQL stopped; restarting it"))
            logger.error("the local PostgreSQL is not running; starting it again", metadata: ["attempt": "\(restarts.count)"])
            // Shutting down: whoever stops the cluster must not race a start made now.
            if Task.isCancelled { return }
            let orphans = cluster.killOrphanedServerProcesses()
            if orphans > 0 {
                logger.warning("killed server processes the dead postmaster left behind", metadata: ["processes": "\(orphans)"])
            }
            do {
                // Not cancelled halfway: pg_ctl would be stopped after forking a postmaster that then runs on
                // unowned. A start takes a second or two (pg_ctl's own -t 60 bounds it); a shutdown waits for it.
                let running = try await Task { [cluster, logger] in try await cluster.start(logger: logger) }.value
                if Task.isCancelled {
                    // The shutdown began while the cluster was starting: stop it again, as the shutdown expects.
                    try? await cluster.stop(logger: logger)
                    return
                }
                guard running.port == port else {
                    // The pools address the old socket; serving on another port would look up but fail every request.
                    try? await cluster.stop(logger: logger)
                    throw LocalClusterError.commandFailed(
                        command: "restarting on port \(port)", output: "came back on port \(running.port)")
                }
                logger.notice("the local PostgreSQL runs again", metadata: ["port": "\(port)", "attempt": "\(restarts.count)"])
                // It accepts connections (start waited for that): serve now rather than at the monitor's next
                // reconnect, which may be seconds away on its backoff. The monitor marks it down again if not.
                availability.set(.available)
                backoff.reset()
                lastError = nil
            } catch is CancellationError {
                return
            } catch {
                lastError = String(describing: error)
                logger.error("could not start the local PostgreSQL", metadata: ["error": "\(error)"])
                try await Task.sleep(for: backoff.next())
            }
        }
    }
}

extension LocalCluster {
    /// Whether the postmaster named in postmaster.pid is alive: a cheap check (a file read and a
    /// signal 0), made often.
    public var postmasterIsRunning: Bool {
        guard let pid = ProcessLiveness.pid(inLockFile: clusterDirectory + "/postmaster.pid") else { return false }
        return ProcessLiveness.isRunning(pid)
    }

    /// `pg_ctl stop -m immediate`, waiting on this thread: for a process that must exit now and cannot
    /// rely on its tasks.
    public func stopImmediatelyBlocking() {
        let (launchPath, arguments) = runner.command(
            binaries.pgCtl, ["stop", "-D", clusterDirectory, "-m", "immediate", "-w", "-t", "10", "-s"])
        let process = Process()
        process.executableURL = URL(fileURLWithPath: launchPath)
        process.arguments = arguments
        process.currentDirectoryURL = runner.workingDirectory.map { URL(fileURLWithPath: $0) }
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        guard (try? process.run()) != nil else { return }
        process.waitUntilExit()
    }

    var hasPidFile: Bool { FileManager.default.fileExists(atPath: clusterDirectory + "/postmaster.pid") }

    /// Kills the processes a dead postmaster left behind (every PostgreSQL process works in its data
    /// directory). A backend whose postmaster was killed can keep its client's socket open without ever
    /// answering again — each request on it would hang — and it pins the shared memory a new postmaster
    /// needs. Call only when the postmaster is known to be dead. Returns how many were killed.
    func killOrphanedServerProcesses() -> Int {
        let directory = URL(fileURLWithPath: clusterDirectory).resolvingSymlinksInPath().path
        let own = getpid()
        var killed = 0
        for entry in (try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? [] {
            guard let pid = Int32(entry), pid != own,
                let cwd = try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/\(entry)/cwd"), cwd == directory
            else { continue }
            if kill(pid, SIGKILL) == 0 { killed += 1 }
        }
        return killed
    }
}
