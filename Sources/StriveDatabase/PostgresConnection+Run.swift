import Logging
import PostgresNIO

extension PostgresConnection {
    /// Runs a statement to completion. PostgresNIO reports an execution error while the rows are read,
    /// so a statement whose rows are never read can fail unnoticed and poison the transaction that follows.
    public func run(_ query: PostgresQuery, logger: Logger) async throws {
        _ = try await self.query(query, logger: logger).collect()
    }
}

extension PostgresConnection {
    /// Runs a write and returns its command tag's row count. Counting this way needs no RETURNING, which
    /// row-level security would check against the SELECT policies (a writer may change rows it cannot read).
    public func affectedRows(_ query: PostgresQuery, logger: Logger) async throws -> Int {
        let future: EventLoopFuture<PostgresQueryResult> = self.query(query, logger: logger)
        return try await future.get().metadata.rows ?? 0
    }
}
