import Foundation
import Logging
import PostgresNIO
import StriveDatabase
import Synchronization

/// Decides which subscribers may read which changes: one query for a whole batch of changes and all
/// their candidate subscribers (pairs of change × user), through `realtime.can_read`, the tables' read
/// rules as functions of a user id. If that query fails (a policy raising for one user, say), the batch
/// is retried change by change and then pair by pair, so one failure costs only its own delivery.
final class Authorizer: Sendable {
    let database: StriveDatabase
    let logger: Logger
    /// Authorisation queries run so far (for the benchmark's "queries per change").
    let queries = Atomic<Int>(0)

    init(database: StriveDatabase, logger: Logger) {
        self.database = database
        self.logger = logger
    }

    struct Pair: Hashable, Sendable {
        let change: Int
        let user: UUID
    }

    /// The pairs whose user may read the change's row (for a DELETE, the row as it was).
    func readable(_ pairs: [Pair], changes: [Change]) async -> (allowed: Set<Pair>, failed: Set<Pair>) {
        guard !pairs.isEmpty else { return ([], []) }
        if let allowed = try? await readers(pairs, changes: changes) { return (allowed, []) }
        var allowed: Set<Pair> = []
        var failed: Set<Pair> = []
        for (_, group) in Dictionary(grouping: pairs, by: \.change) {
            if let some = try? await readers(group, changes: changes) {
                allowed.formUnion(some)
                continue
            }
            for pair in group {
                do {
                    if try await canRead(pair, changes: changes) { allowed.insert(pair) }
                } catch {
                    failed.insert(pair)
                    logger.warning(
                        "realtime: authorising a change failed for one subscriber",
                        metadata: ["user_id": "\(pair.user)", "table": "\(changes[pair.change].table)", "error": "\(String(reflecting: error))"])
                }
            }
        }
        return (allowed, failed)
    }

    /// The pairs among `pairs` whose user is a reader of the change's row.
    private func readers(_ pairs: [Pair], changes: [Change]) async throws -> Set<Pair> {
        queries.add(1, ordering: .relaxed)
        let indexes = Array(Set(pairs.map(\.change))).sorted()
        let tables = indexes.map { changes[$0].table }
        let schemas = indexes.map { changes[$0].schema }
        let records = indexes.map { changes[$0].authorizedRecordJSON }
        let pairChanges = pairs.map(\.change)
        let pairUsers = pairs.map(\.user)
        let rows = try await database.withServiceRoleTransaction(method: "REALTIME", path: "authorise", logger: logger) { connection in
            try await connection.rows(
                """
                with c as (select * from unnest(\(indexes)::int[], \(schemas)::text[], \(tables)::text[], \(records)::jsonb[]) as c(idx, sch, tbl, rec)),
                     p as (select * from unnest(\(pairChanges)::int[], \(pairUsers)::uuid[]) as p(idx, uid)),
                     r as (select c.idx, reader.uid from c cross join lateral realtime.readers(c.sch, c.tbl, c.rec) as reader(uid))
                select p.idx, p.uid from p join r on r.idx = p.idx and r.uid = p.uid
                """, logger: logger
            ).map { try $0.decode((Int, UUID).self) }
        }
        return Set(rows.map { Pair(change: $0.0, user: $0.1) })
    }

    /// One user and one change, through the per-user predicate: the fallback that isolates a failure.
    private func canRead(_ pair: Pair, changes: [Change]) async throws -> Bool {
        queries.add(1, ordering: .relaxed)
        let change = changes[pair.change]
        let record = change.authorizedRecordJSON
        return try await database.withServiceRoleTransaction(method: "REALTIME", path: "authorise", logger: logger) { connection in
            try await connection.rows(
                "select realtime.can_read(\(change.schema), \(change.table), \(pair.user), \(record)::jsonb)", logger: logger
            ).first?.decode(Bool.self) ?? false
        }
    }
}
