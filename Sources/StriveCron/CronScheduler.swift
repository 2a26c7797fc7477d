import Foundation
import Logging
import NIOConcurrencyHelpers
import PostgresNIO
import ServiceLifecycle
import StriveCore
import StriveDatabase
import StriveMetrics

/// Runs the jobs of `cron.job` (pg_cron's interface, migration 0040) on every instance. Each second,
/// just after the second turns, it claims the runs that are due (`cron._claim_due`, under one advisory
/// lock across instances: a tick's run is a row unique per job and tick, so it happens once, on one
/// instance) and runs each on a connection of its own, as the role that scheduled the job with the
/// claims of the session that scheduled it, cancelled after `timeout`. While a job runs, its instance
/// refreshes the run's heartbeat; a run whose heartbeat stops (its instance died) is failed, and only
/// then may the job start again — so a long run is never started twice.
public struct CronScheduler: Service {
    let database: Database
    let instance: String
    let timeout: Duration
    let logger: Logger
    static let heartbeatInterval: Duration = .seconds(10)

    public init(database: Database, instance: String, timeout: Duration, logger: Logger) {
        self.database = database
        self.instance = instance
        self.timeout = timeout
        self.logger = logger
    }

    struct ClaimedRun: Sendable {
        let runID: Int64
        let jobID: Int64
        let command: String
        let username: String
        let claims: String?
        let scheduled: Date
    }

    /// The runs this instance is executing, for their heartbeats.
    final class Running: Sendable {
        private let runs = NIOLockedValueBox<Set<Int64>>([])
        func insert(_ id: Int64) { runs.withLockedValue { _ = $0.insert(id) } }
        func remove(_ id: Int64) { runs.withLockedValue { _ = $0.remove(id) } }
        var all: [Int64] { runs.withLockedValue { Array($0) } }
    }

    public func run() async throws {
        let running = Running()
        await withDiscardingTaskGroup { group in
            group.addTask {
                try? await cancelWhenGracefulShutdown {
                    while true {
                        try await Task.sleep(for: Self.heartbeatInterval)
                        await heartbeat(running.all)
                    }
                }
            }
            // Runs already started finish (or are cancelled at the shutdown deadline); no new one starts.
            while !Task.isShuttingDownGracefully && !Task.isCancelled {
                do {
                    try await cancelWhenGracefulShutdown { try await Task.sleep(until: Self.nextTick(), clock: .continuous) }
                } catch {
                    break
                }
                // A job's runs one after another (several when ticks were missed); jobs side by side.
                for runs in Dictionary(grouping: await claimDue(), by: \.jobID).values {
                    for run in runs { running.insert(run.runID) }
                    group.addTask {
                        for run in runs.sorted(by: { $0.scheduled < $1.scheduled }) {
                            await execute(run)
                            running.remove(run.runID)
                        }
                    }
                }
            }
        }
    }

    /// 20 ms past the next whole second: ticks are whole seconds, and a run claimed a little after its
    /// tick is still that tick's.
    static func nextTick() -> ContinuousClock.Instant {
        let now = Date().timeIntervalSince1970
        let wait = (now.rounded(.down) + 1.02) - now
        return .now + .milliseconds(Int64(wait * 1000))
    }

    func claimDue() async -> [ClaimedRun] {
        do {
            return try await database.withServiceRoleTransaction(method: "CRON", path: "claim", logger: logger) { connection in
                try await connection.rows(
                    "select runid, jobid, command, username, claims::text, scheduled_time from cron._claim_due(\(instance))",
                    logger: logger
                ).map { row in
                    let (runID, jobID, command, username, claims, scheduled) = try row.decode(
                        (Int64, Int64, String, String, String?, Date).self)
                    return ClaimedRun(
                        runID: runID, jobID: jobID, command: command, username: username, claims: claims, scheduled: scheduled)
                }
            }
        } catch {
            logger.warning("could not claim due jobs", metadata: ["error": "\(String(reflecting: error))"])
            return []
        }
    }

    private func heartbeat(_ runs: [Int64]) async {
        guard !runs.isEmpty else { return }
        do {
            try await database.withServiceRoleTransaction(method: "CRON", path: "heartbeat", logger: logger) { connection in
                try await connection.run("select cron._heartbeat(\(runs))", logger: logger)
            }
        } catch {
            logger.warning("could not refresh running jobs", metadata: ["error": "\(String(reflecting: error))"])
        }
    }

    /// The identity a job runs as: a request role with the scheduler's claims, or nil for the owner (and
    /// superusers), whose jobs run on the owner's connection.
    static func identity(of run: ClaimedRun) -> RequestIdentity? {
        guard let role = DatabaseRole(rawValue: run.username) else { return nil }
        return RequestIdentity(
            role: role, claimsJSON: run.claims ?? #"{"role":"\#(role.rawValue)"}"#, method: "CRON", path: "job \(run.jobID)")
    }

    func execute(_ run: ClaimedRun) async {
        var metadata: Logger.Metadata = [
            "job_id": "\(run.jobID)", "run_id": "\(run.runID)", "username": "\(run.username)",
            "jitter_ms": "\(Int((Date().timeIntervalSince(run.scheduled)) * 1000))",
        ]
        let identity = Self.identity(of: run)
        // Trusted jobs (the owner's, service_role's) may hold several statements; anyone else's is the
        // one function call `cron._check_command` let through.
        let trusted = identity == nil || identity?.role == .serviceRole
        let outcome: Result<String, any Error>
        do {
            let message = try await database.withJobTransaction(identity, timeout: timeout, logger: logger) { connection in
                let pid = try await connection.rows("select pg_backend_pid()", logger: logger).first?.decode(Int32.self) ?? 0
                await started(run, pid: pid)
                if trusted {
                    return try await connection.rows("select cron._execute(\(run.command))", logger: logger).first?.decode(String.self)
                        ?? ""
                }
                let rows = try await connection.rows(PostgresQuery(unsafeSQL: run.command), logger: logger).count
                return rows == 1 ? "1 row" : "\(rows) rows"
            }
            outcome = .success(message)
        } catch {
            outcome = .failure(error)
        }
        switch outcome {
        case .success(let message):
            logger.info("job ran", metadata: metadata)
            await finished(run, succeeded: true, message: message)
        case .failure(let error):
            let message = DatabaseError.serverFields(in: error)?.message ?? String(describing: error)
            metadata["error"] = "\(message)"
            logger.warning("job failed", metadata: metadata)
            await finished(run, succeeded: false, message: message)
        }
    }

    private func started(_ run: ClaimedRun, pid: Int32) async {
        do {
            try await database.withServiceRoleTransaction(method: "CRON", path: "started", logger: logger) { connection in
                try await connection.run("select cron._started(\(run.runID), \(pid))", logger: logger)
            }
        } catch {
            logger.warning("could not record a job's start", metadata: ["run_id": "\(run.runID)", "error": "\(error)"])
        }
    }

    private func finished(_ run: ClaimedRun, succeeded: Bool, message: String) async {
        StriveMetrics.cronRun(succeeded: succeeded)
        do {
            try await database.withServiceRoleTransaction(method: "CRON", path: "finished", logger: logger) { connection in
                try await connection.run("select cron._finished(\(run.runID), \(succeeded), \(message))", logger: logger)
            }
        } catch {
            // The heartbeat stops with this task: the run is failed as abandoned within 30 s.
            logger.warning("could not record a job's end", metadata: ["run_id": "\(run.runID)", "error": "\(error)"])
        }
    }
}
