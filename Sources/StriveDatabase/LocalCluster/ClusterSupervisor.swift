import Logging
import ServiceLifecycle

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
    let maximumRestarts: Int
    let window: Duration
    let logger: Logger

    public init(
        cluster: LocalCluster, running: LocalCluster.Running, availability: DatabaseAvailability, interval: Duration = .milliseconds(200),
        maximumRestarts: Int = 5, window: Duration = .seconds(60), logger: Logger
    ) {
        self.cluster = cluster
        self.port = running.port
        self.availability = availability
        self.interval = interval
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
            let now = ContinuousClock.now
            restarts = restarts.filter { now - $0 < window } + [now]
            if restarts.count > maximumRestarts {
                throw GaveUp(restarts: restarts.count - 1, window: window, lastError: lastError)
            }
            availability.set(.unavailable(reason: "the local PostgreSQL stopped; restarting it"))
            logger.error("the local PostgreSQL is not running; starting it again", metadata: ["attempt": "\(restarts.count)"])
            do {
                let running = try await cluster.start(logger: logger)
                guard running.port == port else {
                    // The pools address the old socket; serving on another port would look up but fail every request.
                    try? await cluster.stop(logger: logger)
                    throw LocalClusterError.commandFailed(command: "restarting on port \(port)", output: "came back on port \(running.port)")
                }
                logger.notice("the local PostgreSQL runs again", metadata: ["port": "\(port)", "attempt": "\(restarts.count)"])
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
}
