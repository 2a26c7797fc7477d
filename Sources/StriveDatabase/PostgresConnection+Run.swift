import Logging
import PostgresNIO

extension PostgresConnection {
    /// Runs a statement to completion. PostgresNIO reports an execution error while the rows are read,
    /// so a statement whose rows are never read can fail unnoticed and poison the transaction that follows.
    public func run(_ query: PostgresQuery, logger: Logger) async throws {
        _ = try await self.query(query, logger: logger).collect()
    }
}
