import Foundation
import PostgresNIO
import StriveCore
import StriveDatabase
import StriveRealtime
import StriveTestSupport
import Testing

@Suite("Realtime protocol: heartbeat, broadcast, presence, tokens, limits, bad frames")
struct ProtocolTests {
    @Test func broadcastAndPresence() async throws {
        try await RealtimeHarness.run { harness in
            try await harness.withSocket { alice in
                try await harness.withSocket { bob in
                    let heartbeat = await alice.push(topic: "phoenix", event: "heartbeat", payload: [:])
                    #expect(try await alice.reply(to: heartbeat).status == "ok")

                    let config: JSONValue = ["broadcast": ["self": true, "ack": true], "presence": ["key": "alice"]]
                    #expect(try await alice.join("room", config: config, token: harness.tokens[.member]!).status == "ok")
                    #expect(try await bob.join("room", config: ["presence": ["key": "bob"]], token: harness.tokens[.owner]!).status == "ok")
                    #expect(await bob.first { $0.event == "presence_state" } != nil)

                    let sent = await alice.push(
                        topic: "realtime:room", event: "broadcast", payload: ["type": "broadcast", "event": "cursor", "payload": ["x": 1]])
                    #expect(try await alice.reply(to: sent).status == "ok") // ack
                    #expect(await alice.first { $0.event == "broadcast" } != nil) // self
                    let received = try #require(await bob.first { $0.event == "broadcast" })
                    #expect(received.payload.objectValue?["event"] == "cursor")
                    #expect(received.ref == nil)
                    // Without self, the sender does not get its own broadcast.
                    await bob.push(
                        topic: "realtime:room", event: "broadcast", payload: ["type": "broadcast", "event": "echo", "payload": [:]])
                    #expect(await alice.first { $0.event == "broadcast" && $0.payload.objectValue?["event"] == "echo" } != nil)
                    try await Task.sleep(for: .milliseconds(200))
                    #expect(await bob.all { $0.event == "broadcast" && $0.payload.objectValue?["event"] == "echo" }.isEmpty)

                    let track = await alice.push(
                        topic: "realtime:room", event: "presence",
                        payload: ["type": "presence", "event": "track", "payload": ["status": "online"]])
                    #expect(try await alice.reply(to: track).status == "ok")
                    let joined = try #require(
                        await bob.first { $0.event == "presence_diff" && $0.payload.objectValue?["joins"]?.objectValue?["alice"] != nil })
                    let metas = joined.payload.objectValue?["joins"]?.objectValue?["alice"]?.objectValue?["metas"]
                    if case .array(let items) = metas ?? .null {
                        #expect(items.first?.objectValue?["status"] == "online")
                        #expect(items.first?.objectValue?["phx_ref"]?.stringValue != nil)
                    } else {
                        Issue.record("presence_diff without metas")
                    }
                    // A late joiner sees alice in presence_state.
                    try await harness.withSocket { carol in
                        #expect(try await carol.join("room", config: [:], token: harness.tokens[.admin]!).status == "ok")
                        let state = try #require(await carol.first { $0.event == "presence_state" })
                        #expect(state.payload.objectValue?["alice"] != nil)
                    }
                    let leave = await alice.push(topic: "realtime:room", event: "phx_leave", payload: [:])
                    #expect(try await alice.reply(to: leave).status == "ok")
                    #expect(
                        await bob.first { $0.event == "presence_diff" && $0.payload.objectValue?["leaves"]?.objectValue?["alice"] != nil }
                            != nil)
                }
            }
            // A socket that drops leaves presence.
            try await harness.withSocket { watcher in
                #expect(try await watcher.join("lobby", config: [:], token: harness.tokens[.owner]!).status == "ok")
                try await harness.withSocket { dropper async throws in
                    #expect(
                        try await dropper.join("lobby", config: ["presence": ["key": "dropper"]], token: harness.tokens[.member]!).status
                            == "ok")
                    await dropper.push(
                        topic: "realtime:lobby", event: "presence", payload: ["type": "presence", "event": "track", "payload": [:]])
                    #expect(
                        await watcher.first {
                            $0.event == "presence_diff" && $0.payload.objectValue?["joins"]?.objectValue?["dropper"] != nil
                        } != nil)
                }
                #expect(
                    await watcher.first { $0.event == "presence_diff" && $0.payload.objectValue?["leaves"]?.objectValue?["dropper"] != nil }
                        != nil)
            }
        }
    }

    /// Private channels are decided by realtime.messages' policies: `org:<id>:…` topics by the default
    /// ones (members only), others by policies a team adds; receiving and sending separately.
    @Test func privateChannelsFollowTheMessagesPolicies() async throws {
        try await RealtimeHarness.run { harness in
            try await harness.owner(
                """
                create policy announcements_read on realtime.messages for select to authenticated
                    using ((select realtime.topic()) = 'announcements')
                """)
            try await harness.owner(
                """
                create policy admins_room on realtime.messages for select to authenticated
                    using ((select realtime.topic()) = 'admins' and (select auth.uid()) = :admin)
                """)
            try await harness.withSocket { socket in
                let topic = "org:\(harness.id("orgA")):chat"
                let broadcast: JSONValue = ["broadcast": ["ack": true, "self": true]]
                #expect(try await socket.join(topic, config: broadcast, token: harness.tokens[.member]!).status == "ok")
                // Members may send on their organization's topics (the default INSERT policy).
                let sent = await socket.push(
                    topic: "realtime:" + topic, event: "broadcast", payload: ["type": "broadcast", "event": "hi", "payload": [:]])
                #expect(try await socket.reply(to: sent).status == "ok")
                #expect(await socket.first { $0.event == "broadcast" && $0.topic == "realtime:" + topic } != nil)

                let outsider = try await socket.join(topic + "2", token: harness.tokens[.outsider]!)
                #expect(outsider.status == "error")
                #expect(outsider.reason?.contains("permissions to read") == true, "\(outsider.text)")
                #expect(try await socket.join(topic + "3").status == "error") // anon
                // No policy names it: refused, whoever asks.
                #expect(try await socket.join("private-room", config: ["private": true], token: harness.tokens[.viewer]!).status == "error")
                // A team's policies: one user only; and read-only for everyone signed in.
                #expect(try await socket.join("admins", config: ["private": true], token: harness.tokens[.admin]!).status == "ok")
                #expect(try await socket.join("admins-2", config: ["private": true], token: harness.tokens[.member]!).status == "error")
                let readOnly: JSONValue = ["private": true, "broadcast": ["ack": true]]
                #expect(try await socket.join("announcements", config: readOnly, token: harness.tokens[.member]!).status == "ok")
                let refused = await socket.push(
                    topic: "realtime:announcements", event: "broadcast", payload: ["type": "broadcast", "event": "x", "payload": [:]])
                let reply = try await socket.reply(to: refused)
                #expect(reply.status == "error")
                #expect(reply.reason?.contains("permissions to write") == true)
            }
        }
    }

    /// realtime.send and realtime.broadcast_changes from SQL and triggers reach the topic's channels of
    /// their kind when (and only if) their transaction commits.
    @Test func broadcastsFromTheDatabase() async throws {
        try await RealtimeHarness.run { harness in
            try await harness.owner(
                """
                create function public.tasks_broadcast() returns trigger language plpgsql as $$
                begin
                    perform realtime.broadcast_changes(
                        'org:' || coalesce(new.organization_id, old.organization_id) || ':tasks', tg_op, tg_op, tg_table_name, tg_table_schema, new, old);
                    return null;
                end $$
                """)
            try await harness.owner(
                "create trigger tasks_broadcast after insert or update or delete on public.tasks for each row execute function public.tasks_broadcast()"
            )
            try await harness.withSocket { member in
                try await harness.withSocket { outsider in
                    let tasksTopic = "org:\(harness.id("orgA")):tasks"
                    #expect(try await member.join(tasksTopic, config: ["private": true], token: harness.tokens[.member]!).status == "ok")
                    #expect(try await member.join("room").status == "ok")
                    #expect(try await outsider.join("room").status == "ok")
                    #expect(
                        try await outsider.join(tasksTopic, config: ["private": true], token: harness.tokens[.outsider]!).status == "error")

                    // Misuse of the trigger helper is refused with a reason, and sends nothing.
                    for (call, reason) in [
                        (
                            "'room', 'x', 'TRUNCATE', 'tasks', 'public', null::public.tasks, null::public.tasks",
                            "unexpected operation TRUNCATE"
                        ),
                        (
                            "'room', 'x', 'INSERT', 'tasks', 'public', null::public.tasks, null::public.tasks, 'STATEMENT'",
                            "not statement triggers"
                        ),
                    ] {
                        do {
                            try await harness.owner("select realtime.broadcast_changes(\(call))")
                            Issue.record("realtime.broadcast_changes(\(call)) was accepted")
                        } catch let error as PSQLError {
                            #expect(error.serverInfo?[.message]?.contains(reason) == true, "\(String(reflecting: error))")
                        }
                    }
                    // Rolled back: never delivered.
                    await #expect(throws: (any Error).self) {
                        try await harness.owner(
                            "do $$ begin perform realtime.send('{}', 'never', 'room', false); raise exception 'roll back'; end $$")
                    }
                    try await harness.owner("update public.tasks set title = 'Broadcast me' where id = :taskA")
                    try await harness.owner(#"select realtime.send('{"n": 1}', 'ping', 'room', false)"#)
                    // Private: not for the public channel of the same name.
                    try await harness.owner(#"select realtime.send('{"n": 2}', 'secret', 'room', true)"#)
                    try await harness.owner(#"select realtime.send('{"n": 3}', 'last', 'room', false)"#)

                    let update = try #require(await member.first { $0.event == "broadcast" && $0.topic == "realtime:" + tasksTopic })
                    let body = update.payload.objectValue ?? [:]
                    #expect(body["event"] == "UPDATE")
                    #expect(body["payload"]?.objectValue?["record"]?.objectValue?["title"] == "Broadcast me")
                    #expect(body["payload"]?.objectValue?["old_record"]?.objectValue?["id"] == .string(harness.id("taskA")))
                    for socket in [member, outsider] {
                        let events = await socket.waitForAll(count: 2) { $0.event == "broadcast" && $0.topic == "realtime:room" }
                            .compactMap { $0.payload.objectValue?["event"]?.stringValue }
                        #expect(events == ["ping", "last"])
                    }
                    #expect(await outsider.all { $0.topic == "realtime:" + tasksTopic && $0.event == "broadcast" }.isEmpty)
                }
            }
        }
    }

    @Test func expiredAndInvalidTokensEndChannels() async throws {
        try await RealtimeHarness.run { harness in
            let shortLived = try await harness.fixture.accessToken(for: harness.fixture.id("member"), on: harness.database, lifetime: 8)
            try await harness.withSocket { socket in
                #expect(try await socket.join("t", config: changesConfig([("*", "tasks", nil)]), token: shortLived).status == "ok")
                let ended = try #require(await socket.first(timeout: .seconds(25)) { $0.event == "system" && $0.status == "error" })
                #expect(ended.payload.objectValue?["message"]?.stringValue?.contains("Token has expired") == true)
                #expect(await socket.first { $0.event == "phx_close" && $0.topic == "realtime:t" } != nil)
                try await harness.owner("update public.tasks set title = 'after expiry' where id = :taskA")
                try await Task.sleep(for: .milliseconds(800))
                #expect(await socket.changes("t").isEmpty)

                let bad = try await socket.join("u", token: "not-a-token")
                #expect(bad.status == "error")
                #expect(try await socket.join("v", token: harness.tokens[.member]!).status == "ok")
                await socket.push(topic: "realtime:v", event: "access_token", payload: ["access_token": "garbage"])
                #expect(await socket.first { $0.event == "phx_close" && $0.topic == "realtime:v" } != nil)
            }
            // A socket whose apikey is not a key is refused with a reason.
            try await harness.withSocket(key: "nonsense") { socket in
                #expect(await socket.first { $0.event == "phx_reply" && $0.status == "error" } != nil)
            }
        }
    }

    @Test func malformedFramesAndLimitsGetErrorRepliesNotCrashes() async throws {
        try await RealtimeHarness.run { harness in
            try await harness.withSocket { socket in
                socket.send("this is not json")
                socket.send(#"{"topic":"realtime:x"}"#)
                socket.send(#"[1,2,3]"#)
                let malformed = await socket.waitForAll(count: 3) { $0.topic == "phoenix" && $0.status == "error" }
                #expect(malformed.count == 3)
                let unmatched = await socket.push(topic: "realtime:never-joined", event: "broadcast", payload: [:])
                #expect(try await socket.reply(to: unmatched).status == "error")
                #expect(try await socket.join("x", token: harness.tokens[.member]!).status == "ok")
                let unknown = await socket.push(topic: "realtime:x", event: "dance", payload: [:])
                #expect(try await socket.reply(to: unknown).reason?.contains("unknown event") == true)
                socket.send(String(repeating: "x", count: 300 * 1024))
                #expect(await socket.first { $0.reason?.contains("exceeds") == true } != nil)

                // Joins per second.
                // Joins per second: a burst of 25 (sent without waiting) exceeds the 20 allowed.
                var refs: [String] = []
                for index in 0..<25 {
                    refs.append(await socket.push(topic: "realtime:burst\(index)", event: "phx_join", payload: ["config": [:]]))
                }
                var refused = 0
                for ref in refs where try await socket.reply(to: ref).reason?.contains("too many joins") == true {
                    refused += 1
                }
                #expect(refused > 0)
                let heartbeat = await socket.push(topic: "phoenix", event: "heartbeat", payload: [:])
                #expect(try await socket.reply(to: heartbeat).status == "ok")
            }
        }
    }
}

@Suite("Realtime authorisation equals row-level security")
struct RealtimeAuthorisationTests {
    /// For every published table of the Strive schema and for a table created and published here (with a
    /// permissive policy reading the claims, one reading a helper function, and a restrictive one), the
    /// realtime decision for every row and every fixture caller is exactly what RLS lets that caller read.
    @Test func decisionsEqualRowLevelSecurity() async throws {
        do { try await compare() } catch { Issue.record("\(String(reflecting: error))") }
    }

    func compare() async throws {
        let database = try await TestCluster.shared.makeDatabase()
        let fixture = try await database.withOwnerConnection { try await TenantFixture.create(on: $0, logger: database.logger) }
        try await database.withOwnerConnection { connection in
            for statement in Self.notesTable { try await connection.run(PostgresQuery(unsafeSQL: statement), logger: database.logger) }
            try await connection.run(
                PostgresQuery(
                    unsafeSQL: fixture.substitute(
                        """
                        insert into public.rt_notes (author, organization_id, body) values
                            (:member, :orgA, 'mine'), (:admin, :orgA, 'team'), (:outsider, null, 'lonely'), (:member, :orgA, 'secret'),
                            (:owner, :orgB, 'other team')
                        """)),
                logger: database.logger)
        }
        let mismatches = try await database.withDatabase { strive in
            let tables = try await strive.withServiceRoleTransaction { connection in
                try await connection.rows(
                    "select table_name from realtime.published where schema_name = 'public' order by 1", logger: database.logger
                )
                .map { try $0.decode(String.self) }
            }
            #expect(Set(["tasks", "customers", "projects", "notifications", "rt_notes"]).isSubset(of: tables))
            // One batch, as the feed sends it: every row of every published table, one group per caller
            // and table.
            var schemas: [String] = []
            var tableOfChange: [String] = []
            var ids: [String] = []
            var records: [String] = []
            for table in tables {
                let rows = try await strive.withServiceRoleTransaction { connection in
                    try await connection.rows(
                        PostgresQuery(unsafeSQL: "select id::text, to_jsonb(t)::text from public.\(table) t order by id"),
                        logger: database.logger
                    ).map { try $0.decode((String, String).self) }
                }
                #expect(!rows.isEmpty, "the fixture has rows in \(table)")
                schemas += rows.map { _ in "public" }
                tableOfChange += rows.map { _ in table }
                ids += rows.map(\.0)
                records += rows.map(\.1)
            }
            let actors = TenantFixture.Actor.allCases.filter { $0 != .service }
            var groups: [(actor: Int, table: String)] = []
            var starts: [Int] = []
            var members: [Int] = []
            for (actor, _) in actors.enumerated() {
                for table in tables {
                    groups.append((actor, table))
                    starts.append(members.count + 1)
                    members += tableOfChange.indices.filter { tableOfChange[$0] == table }.map { $0 + 1 }
                }
            }
            starts.append(members.count + 1)
            let identities = actors.map { fixture.identity(of: $0) }
            let decided = try await strive.withServiceRoleTransaction { connection in
                try await connection.rows(
                    """
                    select change, grp from realtime.authorize(
                        \(schemas)::text[], \(tableOfChange)::text[],
                        \(groups.map { identities[$0.actor].role.rawValue })::text[], \(groups.map { identities[$0.actor].claimsJSON })::text[],
                        \(starts)::int[], \(members)::int[], \(records)::jsonb[], false)
                    """, logger: database.logger
                ).map { try $0.decode((Int, Int).self) }
            }
            var mismatches: [String] = []
            var readable = 0
            for (index, actor) in actors.enumerated() {
                for table in tables {
                    let viaRealtime = Set(
                        decided.filter { groups[$0.1 - 1].actor == index && groups[$0.1 - 1].table == table }.map { ids[$0.0 - 1] })
                    readable += viaRealtime.count
                    // A role without SELECT on the table reads nothing (the data API answers 401/403).
                    let viaPolicy: Set<String>
                    do {
                        viaPolicy = try await strive.withRequestTransaction(identities[index]) { connection in
                            Set(
                                try await connection.rows(
                                    PostgresQuery(unsafeSQL: "select id::text from public.\(table)"), logger: database.logger
                                )
                                .map { try $0.decode(String.self) })
                        }
                    } catch let error as PSQLError where error.serverInfo?[.sqlState] == "42501" {
                        viaPolicy = []
                    }
                    if viaRealtime != viaPolicy {
                        mismatches.append(
                            "\(table) × \(actor): RLS reads \(viaPolicy.count) rows, realtime \(viaRealtime.count) (differ: \(viaPolicy.symmetricDifference(viaRealtime).prefix(3)))"
                        )
                    }
                }
            }
            // Neither everything nor nothing: the comparison has both answers in it.
            #expect(readable > 0 && readable < ids.count * actors.count)
            return mismatches
        }
        #expect(mismatches.isEmpty, "\(mismatches.joined(separator: "\n"))")
    }

    /// A table a team adds: its own policies, published from SQL (one statement each).
    static let notesTable = [
        """
        create table public.rt_notes (
            id uuid primary key default gen_random_uuid(),
            author uuid not null,
            organization_id uuid,
            body text not null
        )
        """,
        "alter table public.rt_notes enable row level security",
        "alter table public.rt_notes force row level security",
        "grant select, insert, update, delete on public.rt_notes to authenticated, service_role",
        "create policy rt_notes_author on public.rt_notes for select to authenticated using (author = (select auth.uid()))",
        """
        create policy rt_notes_team on public.rt_notes for select to authenticated
            using (organization_id = any ((select app.my_org_ids())::uuid[]))
        """,
        """
        create policy rt_notes_no_secrets on public.rt_notes as restrictive for select to authenticated
            using (body <> 'secret' or author = (select auth.uid()))
        """,
        "select realtime.publish('public.rt_notes')",
    ]
}
