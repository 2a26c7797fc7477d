import Foundation
import Logging
import PostgresNIO
import StriveDatabase
import Synchronization

/// Decides which subscribers may read which changes by the tables' own row-level security: each
/// subscriber identity (role and JWT claims) is checked against the SELECT policies of the changed row's
/// table, as the data API would check it, in one query for the whole batch (`realtime.authorize`, which
/// compiles each table's policies into a function and evaluates them per identity inside the database).
/// If that query fails (a policy raising for one identity, say), the batch runs again with every identity
/// isolated, so one failure costs only its own deliveries.
final class Authorizer: Sendable {
    let database: Database
    let logger: Logger
    /// Authorisation queries run so far (for the benchmark's "queries per change").
    let queries = Atomic<Int>(0)

    init(database: Database, logger: Logger) {
        self.database = database
        self.logger = logger
    }

    /// Who a subscriber is to row-level security: the role it reads as and its verified claims.
    struct Identity: Hashable, Sendable {
        let role: DatabaseRole
        let claimsJSON: String
    }

    struct Pair: Hashable, Sendable {
        let change: Int
        let identity: Identity
    }

    /// The pairs whose identity may read the change's row (for a DELETE, the row as it was), and those
    /// whose check failed.
    func readable(_ pairs: Set<Pair>, changes: [Change]) async -> (allowed: Set<Pair>, failed: Set<Pair>) {
        guard !pairs.isEmpty else { return ([], []) }
        let groups = Groups(pairs, changes: changes)
        do {
            return try await evaluate(groups, changes: changes, isolate: false)
        } catch {
            logger.debug("realtime: authorising a batch failed; isolating subscribers", metadata: ["error": "\(String(reflecting: error))"])
        }
        do {
            let result = try await evaluate(groups, changes: changes, isolate: true)
            for pair in result.failed {
                logger.warning(
                    "realtime: a table's policies raised for one subscriber; its change was not delivered",
                    metadata: [
                        "table": "\(changes[pair.change].schema).\(changes[pair.change].table)", "role": "\(pair.identity.role.rawValue)",
                    ])
            }
            return result
        } catch {
            logger.warning("realtime: authorising a batch of changes failed", metadata: ["error": "\(String(reflecting: error))"])
            return ([], pairs)
        }
    }

    /// The pairs grouped by identity and table, in the flat arrays `realtime.authorize` takes.
    struct Groups {
        var identities: [Identity] = []
        /// 1-based offsets into `members`; one more than there are groups.
        var starts: [Int] = []
        /// 1-based change indexes, group after group; a group's changes are all of one table.
        var members: [Int] = []

        init(_ pairs: Set<Pair>, changes: [Change]) {
            struct Key: Hashable {
                let identity: Identity
                let schema: String
                let table: String
            }
            var byKey: [Key: [Int]] = [:]
            for pair in pairs {
                let change = changes[pair.change]
                byKey[Key(identity: pair.identity, schema: change.schema, table: change.table), default: []].append(pair.change)
            }
            for (key, indexes) in byKey {
                identities.append(key.identity)
                starts.append(members.count + 1)
                members.append(contentsOf: indexes.sorted().map { $0 + 1 })
            }
            starts.append(members.count + 1)
        }
    }

    private func evaluate(_ groups: Groups, changes: [Change], isolate: Bool) async throws -> (allowed: Set<Pair>, failed: Set<Pair>) {
        queries.add(1, ordering: .relaxed)
        let roles = groups.identities.map(\.role.rawValue)
        let claims = groups.identities.map(\.claimsJSON)
        let records = changes.map(\.authorizedRecordJSON)
        let schemas = changes.map(\.schema)
        let tables = changes.map(\.table)
        // A transaction of its own rather than app.run_request's one round trip: run_request passes its
        // values inside one text[] and re-quotes them for EXECUTE, which for a batch's records (whole rows
        // as JSON) cost more than the round trips it saves (100 changes/s: p50 18-23 ms this way, 67-126 ms
        // through run_request).
        let rows = try await database.withServiceRoleTransaction(method: "REALTIME", path: "authorise", logger: logger) { connection in
            try await connection.rows(
                """
                select change, grp, failed from realtime.authorize(
                    \(schemas)::text[], \(tables)::text[], \(roles)::text[], \(claims)::text[],
                    \(groups.starts)::int[], \(groups.members)::int[], \(records)::jsonb[], \(isolate))
                """, logger: logger
            ).map { try $0.decode((Int, Int, Bool).self) }
        }
        var allowed: Set<Pair> = []
        var failed: Set<Pair> = []
        for (change, group, didFail) in rows {
            guard groups.identities.indices.contains(group - 1), changes.indices.contains(change - 1) else { continue }
            let pair = Pair(change: change - 1, identity: groups.identities[group - 1])
            if didFail { failed.insert(pair) } else { allowed.insert(pair) }
        }
        return (allowed, failed)
    }
}
