import Foundation
import Logging
import PostgresNIO
import StriveDatabase

/// Reads committed changes from `realtime.changes` in position order, from this instance's cursor on,
/// and hands them to `deliver` one batch at a time, polling (5 ms while changes flow, backing off to
/// 40 ms when idle). A missing position is waited for while the transaction that took it still runs (it
/// holds an advisory lock on it) and passed only once that lock is free and the position has no rows.
/// After a restart with changes waiting, it waits `replayWindow` first, so clients that reconnect in that
/// time receive what they missed.
struct ChangeFeed: Sendable {
    let database: Database
    let instance: String
    let replayWindow: Duration
    /// How often to look for changes: the lower bound while they flow, up to the upper bound when idle.
    let pollInterval: ClosedRange<Duration>
    let logger: Logger
    /// When this instance was created, before it accepted a socket: a first-time instance delivers
    /// everything committed after this, even if its feed starts reading a moment later.
    let startedAt = Date()
    static let batchSize = 500
    /// How long a missing position must stay missing before the reader asks whether it ever will appear.
    static let gapGrace: Duration = .milliseconds(500)

    /// Runs until cancelled; database outages are logged and retried. Polls at the lower bound of
    /// `pollInterval` while changes flow and backs off to the upper bound when idle (writers send no
    /// NOTIFY: PostgreSQL would serialise their commits).
    /// `isWanted` says whether this instance has anyone to deliver to. Without channels the feed only
    /// moves its cursor past the changes committed before it looked (a channel joining later must not get
    /// old changes, but must get everything committed after it joined), at the slow rate: an idle instance
    /// beside busy ones would otherwise read every change it cannot deliver.
    func run(isWanted: @escaping @Sendable () async -> Bool = { true }, deliver: @escaping @Sendable ([Change]) async -> Void) async {
        var cursor: Int64?
        var gaps: [Int64: ContinuousClock.Instant] = [:]
        var interval = pollInterval.lowerBound
        var lastCleanup = ContinuousClock.now
        var backoff = Backoff.reconnect
        while !Task.isCancelled {
            do {
                if cursor == nil { cursor = try await start() }
                let before = cursor ?? 0
                var after = before
                // What was delivered counts even when a later step fails: the cursor must never go back
                // over changes subscribers already have.
                defer { cursor = after }
                // Taken before asking: a channel may join while the answer is being acted on.
                let checkedAt = Date()
                if await isWanted() {
                    try await drain(cursor: &after, gaps: &gaps, deliver: deliver)
                    let flowing = after > before || !gaps.isEmpty
                    interval = flowing ? pollInterval.lowerBound : min(interval * 2, pollInterval.upperBound)
                } else {
                    // Nobody here to deliver to: move past what was committed before the check, without reading
                    // it. Not past anything newer: a channel that joined since must get what was committed after
                    // it joined (skipping to the newest position here lost a subscriber's first changes).
                    after = max(before, try await newestPosition(after: before, committedBefore: checkedAt))
                    gaps = [:]
                    if after > before { try await save(after) }
                    interval = pollInterval.upperBound
                }
                backoff.reset()
                if ContinuousClock.now - lastCleanup > .seconds(60) {
                    try await cleanUp()
                    lastCleanup = .now
                }
            } catch {
                if Task.isCancelled { break }
                logger.warning("realtime change feed cannot read changes; retrying", metadata: ["error": "\(String(reflecting: error))"])
                interval = backoff.next()
            }
            try? await Task.sleep(for: interval)
        }
        if let cursor { await saveWhileStopping(cursor) }
    }

    /// Saves the last delivered position although the feed is being cancelled (a stop between delivering
    /// and saving would otherwise resend those changes after a restart), giving up after two seconds.
    private func saveWhileStopping(_ position: Int64) async {
        let saving = Task { try await save(position) }
        let deadline = Task {
            try await Task.sleep(for: .seconds(2))
            saving.cancel()
        }
        do {
            try await saving.value
        } catch {
            logger.warning(
                "realtime: could not save the change feed's position while stopping; the last changes may be sent again after a restart",
                metadata: ["position": "\(position)", "error": "\(String(reflecting: error))"])
        }
        deadline.cancel()
    }

    /// The cursor to start from: this instance's saved one (after the replay window if changes wait), or
    /// for an instance that never ran, the last position committed before it started (it owes nobody
    /// anything older).
    private func start() async throws -> Int64 {
        let (saved, newest) = try await service("start") { connection in
            let saved = try await connection.rows("select position from realtime.cursors where instance = \(instance)", logger: logger)
                .first?.decode(Int64.self)
            let newest =
                try await connection.rows("select coalesce(max(position), 0) from realtime.changes", logger: logger).first?.decode(
                    Int64.self) ?? 0
            let beforeStart =
                try await connection.rows(
                    "select coalesce(max(position), 0) from realtime.changes where commit_timestamp < \(startedAt)", logger: logger
                ).first?.decode(Int64.self) ?? 0
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

    /// Delivers what is ready after `cursor`, advancing it past each delivered batch before saving it.
    private func drain(
        cursor: inout Int64, gaps: inout [Int64: ContinuousClock.Instant], deliver: @Sendable ([Change]) async -> Void
    ) async throws {
        while true {
            let batch = try await read(after: cursor)
            guard let last = batch.last else { return }
            // A transaction's changes share a position: never stop inside one.
            var complete = batch
            if batch.count == Self.batchSize {
                complete = batch.filter { $0.position < last.position }
                if complete.isEmpty { complete = try await wholeTransaction(at: last.position) }
            }
            // Deliver up to the first missing position that may still appear.
            var ready: [Change] = []
            var expected = cursor + 1
            var blocked = false
            for change in complete {
                if change.position > expected {
                    guard try await passable(Array(expected..<change.position), gaps: &gaps) else {
                        blocked = true
                        break
                    }
                }
                ready.append(change)
                expected = change.position + 1
            }
            if let delivered = ready.last?.position {
                await deliver(ready)
                cursor = delivered
                gaps = gaps.filter { $0.key > delivered }
                try await save(cursor)
            }
            if blocked || batch.count < Self.batchSize { return }
        }
    }

    /// The newest position after `cursor` committed before `moment` (`cursor` when there is none); the
    /// position bound keeps it to the rows written since the last look.
    private func newestPosition(after cursor: Int64, committedBefore moment: Date) async throws -> Int64 {
        try await service("newest") { connection in
            try await connection.rows(
                """
                select coalesce(max(position), \(cursor)) from realtime.changes
                where position > \(cursor) and commit_timestamp < \(moment)
                """, logger: logger
            ).first?.decode(Int64.self) ?? cursor
        }
    }

    /// The next changes after `cursor` (this runs every few milliseconds while changes flow).
    private func read(after cursor: Int64) async throws -> [Change] {
        try await changes(where: "position > ($1[1])::bigint", value: cursor, limit: Self.batchSize)
    }

    /// Every change of the transaction stamped `position` (a batch that would otherwise stop inside it).
    private func wholeTransaction(at position: Int64) async throws -> [Change] {
        try await changes(where: "position = ($1[1])::bigint", value: position, limit: nil)
    }

    /// Changes matching `condition` (on `$1[1]`, `value`), in position order, in one round trip.
    private func changes(where condition: String, value: Int64, limit: Int?) async throws -> [Change] {
        try await database.requestStatement(
            .serviceRole(method: "REALTIME", path: "change-feed/read"),
            statement: "select \(Self.changeColumns) from realtime.changes where \(condition) order by position, id"
                + (limit.map { " limit \($0)" } ?? ""),
            values: [String(value)], columns: Self.changeColumnTypes, writes: false, logger: logger
        ).map(Self.change)
    }

    /// What `change(_:)` decodes, in its order.
    static let changeColumns = "position, id, schema_name, table_name, type, record::text, old_record::text, commit_timestamp"
    static let changeColumnTypes =
        "position bigint, id bigint, schema_name text, table_name text, type text, record text, old_record text, commit_timestamp timestamptz"

    static func change(_ row: PostgresRow) throws -> Change {
        let (position, id, schema, table, type, record, old, timestamp) =
            try row.decode((Int64, Int64, String, String, String, String?, String?, Date).self)
        return Change(
            position: position, id: id, schema: schema, table: table, kind: Change.Kind(rawValue: type) ?? .update,
            recordJSON: record, oldRecordJSON: old, commitTimestamp: timestamp)
    }

    /// Whether the reader may pass `missing` positions: each has been missing for the grace time, no
    /// transaction holds its lock any more, and (checked after taking the locks, with a fresh snapshot)
    /// it still has no rows.
    private func passable(_ missing: [Int64], gaps: inout [Int64: ContinuousClock.Instant]) async throws -> Bool {
        let now = ContinuousClock.now
        for position in missing where gaps[position] == nil { gaps[position] = now }
        guard missing.allSatisfy({ now - (gaps[$0] ?? now) >= Self.gapGrace }) else { return false }
        let abandoned = try await service("gap") { connection in
            let free =
                try await connection.rows(
                    "select count(*)::int from unnest(\(missing)::bigint[]) p where pg_try_advisory_xact_lock_shared(-p)", logger: logger
                ).first?.decode(Int.self) ?? 0
            guard free == missing.count else { return false }
            let rows =
                try await connection.rows(
                    "select count(*)::int from realtime.changes where position = any(\(missing)::bigint[])", logger: logger
                ).first?.decode(Int.self) ?? 0
            return rows == 0
        }
        if abandoned {
            for position in missing { gaps[position] = nil }
            logger.debug("realtime: passed positions no transaction will commit", metadata: ["positions": "\(missing)"])
        }
        return abandoned
    }

    /// The cursor is written without waiting for its WAL flush: after a database crash an instance may
    /// resend the last fraction of a second of changes, but delivery never waits on an fsync.
    private func save(_ position: Int64) async throws {
        _ = try await database.requestWrite(
            .serviceRole(method: "REALTIME", path: "change-feed/cursor"),
            statements: [
                "select set_config('synchronous_commit', 'off', true)",
                """
                insert into realtime.cursors (instance, position) values ($1[1], ($1[2])::bigint)
                on conflict (instance) do update set position = greatest(realtime.cursors.position, excluded.position), updated_at = now()
                """,
            ],
            values: [instance, String(position)], logger: logger)
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
            // Broadcasts from the database were delivered through their captured changes.
            try await connection.run("delete from realtime.messages where inserted_at < now() - interval '5 minutes'", logger: logger)
        }
    }

    /// The feed's database work: the realtime service path (it reads every change; delivery is authorised per subscriber).
    private func service<T: Sendable>(_ step: String, _ body: (PostgresConnection) async throws -> T) async throws -> T {
        try await database.withServiceRoleTransaction(method: "REALTIME", path: "change-feed/" + step, logger: logger, body)
    }
}
