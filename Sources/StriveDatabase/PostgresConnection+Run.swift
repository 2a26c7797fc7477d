import Logging
import NIOCore
import PostgresNIO

/// The connection closed before a statement could be sent on it (the server dropped it between two
/// statements, or this side closed it). An outage for the caller, like any lost connection.
public struct ConnectionClosed: Error, Sendable, CustomStringConvertible {
    public var description: String { "the database connection was closed" }
}

extension PostgresConnection {
    /// Runs a statement and collects its rows; the way every statement of Strive's is sent.
    ///
    /// PostgresNIO (1.33.2 and its main branch) loses a statement written to a connection that has just
    /// closed: the write never reaches the connection's handler, so the statement neither completes nor
    /// fails and its caller — a request, or the shutdown waiting for one — hangs for ever. Seen whenever
    /// the server drops a connection between two statements of a transaction (a killed postmaster, a
    /// terminated backend). Checking that the connection is open and writing the statement in one turn of
    /// its event loop leaves no such gap: a close that comes later fails the statement as it should.
    public func rows(_ query: PostgresQuery, logger: Logger) async throws -> [PostgresRow] {
        try await result(query, logger: logger).rows
    }

    /// Runs a statement to completion, discarding its rows (an execution error surfaces here, not later).
    public func run(_ query: PostgresQuery, logger: Logger) async throws {
        _ = try await result(query, logger: logger)
    }

    /// Runs a write and returns its command tag's row count. Counting this way needs no RETURNING, which
    /// row-level security would check against the SELECT policies (a writer may change rows it cannot read).
    public func affectedRows(_ query: PostgresQuery, logger: Logger) async throws -> Int {
        try await result(query, logger: logger).metadata.rows ?? 0
    }

    /// `body` in a transaction: COMMIT when it returns, ROLLBACK when it throws (its error is rethrown as
    /// is). A connection whose ROLLBACK fails is closed, so the pool never hands out its broken state.
    public func inTransaction<Result>(logger: Logger, commit: Bool = true, _ body: (PostgresConnection) async throws -> Result)
        async throws -> Result
    {
        try await run("BEGIN", logger: logger)
        let value: Result
        do {
            value = try await body(self)
        } catch {
            do {
                try await run("ROLLBACK", logger: logger)
            } catch {
                closeNow()
            }
            throw error
        }
        try await run(commit ? "COMMIT" : "ROLLBACK", logger: logger)
        return value
    }

    private func result(_ query: PostgresQuery, logger: Logger) async throws -> PostgresQueryResult {
        try await checkedQuery(query, logger: logger).get()
    }

    /// The statement's future; fails at once if the connection is already closed (see `rows`).
    public func checkedQuery(_ query: PostgresQuery, logger: Logger) -> EventLoopFuture<PostgresQueryResult> {
        eventLoop.flatSubmit { () -> EventLoopFuture<PostgresQueryResult> in
            guard !self.isClosed else { return self.eventLoop.makeFailedFuture(ConnectionClosed()) }
            return self.query(query, logger: logger)
        }
    }
}
