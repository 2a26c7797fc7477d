import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import PostgresNIO

/// No connection from the pool within the acquire timeout: the database is down or every connection is
/// busy for longer than a client should wait. A 503, like an outage.
public struct PoolAcquireTimeout: Error, Sendable, CustomStringConvertible {
    public let timeout: Duration
    public var description: String { "no database connection became free within \(timeout)" }
}

extension PostgresClient {
    /// `withConnection`, but giving up after `timeout` if no connection has been leased by then.
    ///
    /// PostgresClient queues a lease for as long as its connections cannot be made, so without a bound a
    /// request would wait through a whole outage. The lease is taken by a task of its own that hands the
    /// connection over and holds the lease until `body` is done; `body` runs in the caller's task and needs
    /// not be Sendable.
    ///
    /// That task is unstructured on purpose. PostgresNIO 1.33.2 does not always withdraw a cancelled lease
    /// request: one cancelled while it is being queued stays queued, and a queued request can wait for a
    /// connection the pool never replaces (both fixed upstream, unreleased). A structured child would
    /// then hold this call, the request and the server's shutdown for ever; this way the caller returns at
    /// once, and the abandoned request ends when the pool next has a connection (it is released unused)
    /// or when the pool shuts down (it fails).
    func withConnection<Result>(
        acquireTimeout timeout: Duration, giveUpWhen unavailable: @escaping @Sendable () -> Bool,
        _ body: (PostgresConnection) async throws -> Result
    ) async throws -> Result {
        let (leases, leaseSink) = AsyncThrowingStream<PostgresConnection, any Error>.makeStream()
        let (releases, releaseSink) = AsyncStream<Void>.makeStream()
        let handedOver = NIOLockedValueBox(false)
        let holder = Task {
            do {
                try await self.withConnection { connection in
                    handedOver.withLockedValue { $0 = true }
                    leaseSink.yield(connection)
                    for await _ in releases {}
                }
            } catch {
                leaseSink.finish(throwing: error)
            }
        }
        // Gives up at the timeout, or as soon as the database is known to be down (an outage is answered at
        // once, not after the timeout). A task scheduled on an event loop rather than a sleeping Swift task:
        // `Task.sleep` goes through Dispatch's timer thread even with NIO as the global executor, and at
        // thousands of requests a second those wake-ups cost about a tenth of the server's CPU.
        let deadline = NIODeadline.now() + TimeAmount(timeout)
        let watcher = NIOSingletons.posixEventLoopGroup.any().scheduleRepeatedTask(
            initialDelay: .milliseconds(50), delay: .milliseconds(50)
        ) { check in
            if handedOver.withLockedValue({ $0 }) {
                check.cancel()
            } else if unavailable() {
                leaseSink.finish(throwing: DatabaseUnavailable(reason: "the database became unavailable"))
                check.cancel()
            } else if NIODeadline.now() >= deadline {
                leaseSink.finish(throwing: PoolAcquireTimeout(timeout: timeout))
                check.cancel()
            }
        }
        defer {
            releaseSink.finish()
            watcher.cancel()
            holder.cancel()
        }
        var handed = leases.makeAsyncIterator()
        guard let connection = try await handed.next() else { throw CancellationError() }
        // Stops watching once the connection is handed over, rather than waking every 50 ms for as long as
        // the request holds it.
        watcher.cancel()
        return try await body(connection)
    }
}
