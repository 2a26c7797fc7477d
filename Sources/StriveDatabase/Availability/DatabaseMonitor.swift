import Logging
import NIOConcurrencyHelpers
import NIOCore
import PostgresNIO
import ServiceLifecycle

/// Keeps `DatabaseAvailability` current from a connection of its own: a `select 1` every `interval`,
/// each with a deadline; a failure (refused, closed, or no answer within the deadline) marks the database
/// unavailable at once and the monitor reconnects with capped backoff until it answers again. The
/// deadline is generous: a busy database answers slowly, and a false outage would refuse every request. Requests then fail fast with 503 instead of waiting on
/// the pool, and serve again as soon as the database does — for the self-managed cluster and for a
/// `DATABASE_URL` alike.
public struct DatabaseMonitor: Service {
    let target: DatabaseTarget
    let credentials: DatabaseCredentials
    let availability: DatabaseAvailability
    let interval: Duration
    let deadline: Duration
    /// Probes or connections that time out in a row before the database counts as down.
    let slowAnswersForAnOutage = 3
    let logger: Logger

    public init(
        target: DatabaseTarget, credentials: DatabaseCredentials, availability: DatabaseAvailability,
        interval: Duration = .milliseconds(250), deadline: Duration = .seconds(3), logger: Logger
    ) {
        self.target = target
        self.credentials = credentials
        self.availability = availability
        self.interval = interval
        self.deadline = deadline
        self.logger = logger
    }

    public func run() async {
        await cancelWhenGracefulShutdown { await watch() }
    }

    func watch() async {
        var backoff = Backoff.reconnect
        var lostAt: ContinuousClock.Instant?
        var slowAnswers = 0
        while !Task.isCancelled {
            do {
                try await session {
                    slowAnswers = 0
                    if let since = lostAt {
                        logger.notice("the database answers again", metadata: ["unavailable_s": "\(ContinuousClock.now - since)"])
                        lostAt = nil
                    }
                    backoff.reset()
                    availability.set(.available)
                }
            } catch is CancellationError {
                return
            } catch {
                if Task.isCancelled { return }
                let reason = DatabaseError.connectionFailureReason(error)
                // A refused or dropped connection is an outage at once. Slowness is not, until it lasts: a
                // busy machine can take seconds to connect or answer, and a false outage refuses every request.
                if reason.contains("timed out") || reason.hasPrefix("no answer") {
                    slowAnswers += 1
                    if slowAnswers < slowAnswersForAnOutage {
                        logger.warning("the database is slow to answer", metadata: ["reason": "\(reason)", "in_a_row": "\(slowAnswers)"])
                        continue
                    }
                }
                if availability.set(.unavailable(reason: reason)) {
                    lostAt = .now
                    logger.error("the database is unavailable; answering 503 until it is back", metadata: ["reason": "\(reason)"])
                }
                try? await Task.sleep(for: backoff.next())
            }
        }
    }

    /// One connection, probed until it fails. `onHealthy` runs after every answered probe.
    private func session(onHealthy: () -> Void) async throws {
        var configuration = try target.connectionConfiguration(as: credentials)
        configuration.options.connectTimeout = TimeAmount(deadline)
        let connection = try await PostgresConnection.connect(configuration: configuration, id: 0, logger: logger)
        do {
            while !Task.isCancelled {
                try await probe(connection)
                onHealthy()
                try await Task.sleep(for: interval)
            }
            await connection.closeAtOnce()
        } catch {
            await connection.closeAtOnce()
            throw error
        }
    }

    /// `select 1`, or an error when no answer comes within `deadline`. The query is left to its future,
    /// not awaited by a child task: a server that stopped answering (a backend orphaned by a killed
    /// postmaster keeps its socket open) would hold a structured child — and shutdown — forever.
    private func probe(_ connection: PostgresConnection) async throws {
        let outcome = connection.eventLoop.makePromise(of: Void.self)
        let settled = NIOLockedValueBox(false)
        let settle: @Sendable (Result<Void, any Error>) -> Void = { result in
            guard
                settled.withLockedValue({ done in
                    defer { done = true }
                    return !done
                })
            else { return }
            outcome.completeWith(result)
        }
        connection.checkedQuery("select 1", logger: logger).whenComplete { result in settle(result.map { _ in }) }
        let timer = connection.eventLoop.scheduleTask(in: TimeAmount(deadline)) {
            settle(.failure(DatabaseUnavailable(reason: "no answer within \(deadline)")))
        }
        defer { timer.cancel() }
        // Shutdown does not wait for a probe's answer either.
        try await withTaskCancellationHandler {
            try await outcome.futureResult.get()
        } onCancel: {
            settle(.failure(CancellationError()))
        }
    }
}

extension PostgresConnection {
    /// Closes the socket without the goodbye: pending queries fail at once. `close() async` waits for the
    /// server to acknowledge, which a server that stopped answering never does; this waits only for the
    /// local socket to close.
    public func closeAtOnce() async {
        closeNow()
        try? await closeFuture.get()
    }

    /// `closeAtOnce` without waiting, for event-loop callbacks.
    public func closeNow() {
        let close: () -> Void = self.close
        close()
    }
}
