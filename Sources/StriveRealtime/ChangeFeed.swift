import Foundation
import Logging
import PostgresNIO
import StriveDatabase

/// Reads committed changes from `realtime.changes` in commit order, from this instance's cursor on, and
/// hands them to `deliver` one batch at a time. It wakes on the NOTIFY each committing transaction sends
/// and also polls (so a missed notification only delays delivery). After a restart with changes waiting,
/// it waits `replayWindow` first, so clients that reconnect in that time receive what they missed.
struct ChangeFeed: Sendable {
    let database: StriveDatabase
    let instance: String
    let replayWindow: Duration
    let pollInterval: Duration
    let logger: Logger
    /// When this instance was created, before it accepted a socket: a first-time instance delivers
    /// everything committed after this, even if its feed starts reading a moment later.
    let startedAt = Date()
    static let batchSize = 500
    static let retention = "5 minutes"

    /// Runs until cancelled; database outages are logged and retried.
    func run(deliver: @escaping @Sendable ([Change]) async -> Void) async {
        var cursor: Int64?
        while !Task.isCancelled {
            do {
                try await database.withDedicatedConnection { connection in
                    try await connection.listen(on: "strive_realtime") { notifications in
                        let wakeups = AsyncStream<Void>.makeStream(bufferingPolicy: .bufferingNewest(1))
                        try await withThrowingTaskGroup(of: Void.self) { group in
                            group.addTask {
                                // The listen connection ending ends the loop below, which reconnects.
                                defer { wakeups.continuation.finish() }
                                for try await _ in notifications { wakeups.continuation.yield() }
                            }
                            group.addTask {
                                while !Task.isCancelled {
                                    try? await Task.sleep(for: pollInterval)
                                    wakeups.continuation.yield()
                                }
                            }
                            if cursor == nil { cursor = try await start() }
                            var current = cursor ?? 0
                            current = try await drain(from: current, deliver: deliver)
                            cursor = current
                            var lastCleanup = ContinuousClock.now
                            for await _ in wakeups.stream {
                                current = try await drain(from: current, deliver: deliver)
                                cursor = current
                                if ContinuousClock.now - lastCleanup > .seconds(60) {
                                    try await cleanUp()
                                    lastCleanup = .now
                                }
                            }
                            group.cancelAll()
                        }
                    }
                }
            } catch {
                if Task.isCancelled { return }
                logger.warning("realtime change feed lost its database connection; retrying", metadata: ["error": "\(error)"])
                try? await Task.sleep(for: .seconds(1))
            }
        }
    }

    /// The cursor to start from: this instance's saved one (after the replay window if changes wait), or
    /// for an instance that never ran, the last position committed before it started (it owes nobody
    /// anything older).
    private func start() async throws -> Int64 {
        let (saved, newest) = try await service("start") { connection in
            let saved = try await connection.query("select position from realtime.cursors where instance = \(instance)", logger: logger)
                .collect().first?.decode(Int64.self)
            let newest = try await connection.query("select coalesce(max(position), 0) from realtime.changes", logger: logger)
                .collect().first?.decode(Int64.self) ?? 0
            let beforeStart = try await connection.query(
                "select coalesce(max(position), 0) from realtime.changes where commit_timestamp < \(startedAt)", logger: logger
            ).collect().first?.decode(Int64.self) ?? 0
            return (saved, saved == nil ? beforeStart : newest)
        }
        guard let saved else {
            try await save(newest)
            return newest
        }
        if newest > saved && replayWindow > .zero {
            logger.info(
                "realtime: changes were committed while this instance was down; waiting for clients to rejoin before delivering them",
                metadata: ["changes_after": "\(saved)", "wait": "\(replayWindow)"])
            try await Task.sleep(for: replayWindow)
        }
        return saved
    }

    private func drain(from cursor: Int64, deliver: @Sendable ([Change]) async -> Void) async throws -> Int64 {
        var cursor = cursor
        while true {
            let batch = try await service("read") { connection in
                try await connection.query(
                    """
                    select position, id, schema_name, table_name, type, record::text, old_record::text, commit_timestamp
                    from realtime.changes where position > \(cursor) order by position, id limit \(Self.batchSize)
                    """, logger: logger
                ).collect().map { row in
                    let (position, id, schema, table, type, record, old, timestamp) =
                        try row.decode((Int64, Int64, String, String, String, String?, String?, Date).self)
                    return Change(
                        position: position, id: id, schema: schema, table: table, kind: Change.Kind(rawValue: type) ?? .update,
                        recordJSON: record, oldRecordJSON: old, commitTimestamp: timestamp)
                }
            }
            guard let last = batch.last else { return cursor }
            // A transaction's changes share a position: never stop inside one.
            var complete = batch
            if batch.count == Self.batchSize {
                complete = batch.filter { $0.position < last.position }
                if complete.isEmpty { complete = try await wholeTransaction(at: last.position) }
            }
            await deliver(complete)
            cursor = complete.last?.position ?? cursor
            try await save(cursor)
            if batch.count < Self.batchSize { return cursor }
        }
    }

    private func wholeTransaction(at position: Int64) async throws -> [Change] {
        try await service("read") { connection in
            try await connection.query(
                """
                select position, id, schema_name, table_name, type, record::text, old_record::text, commit_timestamp
                from realtime.changes where position = \(position) order by id
                """, logger: logger
            ).collect().map { row in
                let (position, id, schema, table, type, record, old, timestamp) =
                    try row.decode((Int64, Int64, String, String, String, String?, String?, Date).self)
                return Change(
                    position: position, id: id, schema: schema, table: table, kind: Change.Kind(rawValue: type) ?? .update,
                    recordJSON: record, oldRecordJSON: old, commitTimestamp: timestamp)
            }
        }
    }

    private func save(_ position: Int64) async throws {
        try await service("cursor") { connection in
            try await connection.run(
                """
                insert into realtime.cursors (instance, position) values (\(instance), \(position))
                on conflict (instance) do update set position = greatest(realtime.cursors.position, excluded.position), updated_at = now()
                """, logger: logger)
        }
    }

    /// Deletes changes every instance active in the last hour has passed, once they are a few minutes old.
    private func cleanUp() async throws {
        try await service("cleanup") { connection in
            try await connection.run(
                """
                delete from realtime.changes
                where position <= (select min(position) from realtime.cursors where updated_at > now() - interval '1 hour')
                  and commit_timestamp < now() - interval '5 minutes'
                """, logger: logger)
            try await connection.run("delete from realtime.bus_messages where created_at < now() - interval '5 minutes'", logger: logger)
        }
    }

    /// The feed's database work: the realtime service path (it reads every change; delivery is authorised per subscriber).
    private func service<T: Sendable>(_ step: String, _ body: (PostgresConnection) async throws -> T) async throws -> T {
        try await database.withServiceRoleTransaction(method: "REALTIME", path: "change-feed/" + step, logger: logger, body)
    }
}
