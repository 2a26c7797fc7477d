import Foundation
import PostgresNIO
import StriveCore
import StriveDatabase
import StriveRealtime
import StriveTestSupport
import Testing

@Suite("Realtime change feeds over WebSockets")
struct ChangeFeedTests {
    /// The original system's subscriptions: tasks by project, customers by organization, notifications by
    /// user; a task created, updated and deleted, each event seen in commit order with Supabase's payload.
    @Test func theOriginalScenarios() async throws {
        try await RealtimeHarness.run { harness in
            try await harness.withSocket { socket in
                let member = harness.tokens[.member]!
                let tasks = try await socket.join(
                    "tasks", config: changesConfig([("*", "tasks", "project_id=eq.\(harness.id("projectA"))")]), token: member)
                #expect(tasks.status == "ok", "\(tasks.text)")
                let binding = try #require(
                    tasks.payload.objectValue?["response"]?.objectValue?["postgres_changes"].flatMap { value -> JSONValue? in
                        if case .array(let items) = value { return items.first }
                        return nil
                    }?.objectValue?["id"])
                #expect(
                    await socket.first { $0.event == "system" && $0.payload.objectValue?["message"] == "Subscribed to PostgreSQL" } != nil)
                #expect(
                    try await socket.join(
                        "customers", config: changesConfig([("*", "customers", "organization_id=eq.\(harness.id("orgA"))")]), token: member
                    ).status == "ok")
                #expect(
                    try await socket.join(
                        "inbox", config: changesConfig([("INSERT", "notifications", "user_id=eq.\(harness.id("member"))")]), token: member
                    ).status == "ok")

                let task = UUID().uuidString.lowercased()
                try await harness.owner(
                    "insert into public.tasks (id, project_id, title, created_by) values ('\(task)', :projectA, 'Write tests', :member)")
                try await harness.owner("update public.tasks set title = 'Write more tests' where id = '\(task)'")
                try await harness.owner("delete from public.tasks where id = '\(task)'")
                try await harness.owner("update public.customers set name = 'Renamed' where id = :customerA")
                try await harness.owner(
                    "insert into public.notifications (user_id, organization_id, title, message) values (:member, :orgA, 'Ping', 'Hello')")

                let events = await socket.waitForChanges("tasks", count: 3)
                #expect(events.map(\.changeType) == ["INSERT", "UPDATE", "DELETE"])
                #expect(events.first?.record["title"] == "Write tests")
                #expect(events.dropFirst().first?.oldRecord["title"] == "Write tests")
                #expect(events.dropFirst().first?.record["title"] == "Write more tests")
                #expect(events.last?.oldRecord["id"] == .string(task))
                let first = try #require(events.first)
                #expect(first.ref == nil)
                #expect(first.payload.objectValue?["ids"] == .array([binding]))
                #expect(first.data["schema"] == "public" && first.data["table"] == "tasks")
                #expect(first.data["commit_timestamp"]?.stringValue?.contains("T") == true)
                if case .array(let columns) = first.data["columns"] ?? .null {
                    #expect(columns.contains { $0.objectValue?["name"] == "title" && $0.objectValue?["type"] == "text" })
                } else {
                    Issue.record("columns missing")
                }
                #expect(await socket.waitForChanges("customers", count: 1).first?.record["name"] == "Renamed")
                #expect(await socket.waitForChanges("inbox", count: 1).first?.record["title"] == "Ping")
            }
        }
    }

    /// Nobody receives rows they may not read, whatever filter they ask for; DELETEs go only to those who
    /// could read the row before.
    /// Clients compare the join reply with the bindings they sent and leave on a difference (realtime-py,
    /// supabase-js): the reply echoes each binding as sent, a left-out `schema` included, plus its `id`.
    @Test func theJoinReplyEchoesEachBindingAsSentPlusItsID() async throws {
        try await RealtimeHarness.run { harness in
            try await harness.withSocket { socket in
                let sent: JSONValue = ["event": "INSERT", "table": "tasks"]
                let reply = try await socket.join("echo", config: ["postgres_changes": [sent]], token: harness.tokens[.member]!)
                #expect(reply.status == "ok", "\(reply.text)")
                guard case .array(let bindings) = reply.payload.objectValue?["response"]?.objectValue?["postgres_changes"] ?? .null,
                    var echoed = bindings.first?.objectValue
                else {
                    Issue.record("no bindings in \(reply.text)")
                    return
                }
                if case .number = echoed.removeValue(forKey: "id") ?? .null {} else { Issue.record("no id in \(reply.text)") }
                #expect(JSONValue.object(echoed) == sent)
            }
        }
    }

    @Test func outsidersReceiveNothingAndDeletesAreAuthorised() async throws {
        try await RealtimeHarness.run { harness in
            try await harness.withSocket { outsider in
                try await harness.withSocket { member in
                    let filter = "project_id=eq.\(harness.id("projectA"))"
                    #expect(
                        try await outsider.join(
                            "spy", config: changesConfig([("*", "tasks", filter), ("*", "customers", nil)]),
                            token: harness.tokens[.outsider]!
                        ).status == "ok")
                    #expect(try await outsider.join("anon", config: changesConfig([("*", "tasks", nil)])).status == "ok")
                    #expect(
                        try await member.join("mine", config: changesConfig([("*", "tasks", filter)]), token: harness.tokens[.member]!)
                            .status
                            == "ok")
                    #expect(
                        try await member.join(
                            "notes", config: changesConfig([("*", "notifications", nil)]), token: harness.tokens[.member]!
                        )
                        .status == "ok")
                    try await harness.owner("update public.tasks set title = 'Secret' where id = :taskA")
                    try await harness.owner("update public.customers set name = 'Secret Co' where id = :customerA")
                    try await harness.owner(
                        "insert into public.notifications (user_id, organization_id, title, message) values (:admin, :orgA, 'For admin', 'x')"
                    )
                    try await harness.owner("delete from public.tasks where id = :taskA")
                    #expect(await member.waitForChanges("mine", count: 2).map(\.changeType) == ["UPDATE", "DELETE"])
                    // Everything after these was committed later: once they arrive, earlier events would have too.
                    try await harness.owner(
                        "insert into public.notifications (user_id, organization_id, title, message) values (:member, :orgA, 'Marker', 'x')"
                    )
                    #expect(await member.waitForChanges("notes", count: 1).map { $0.record["title"] } == ["Marker"])
                    try await Task.sleep(for: .milliseconds(300))
                    #expect(await outsider.changes("spy").isEmpty)
                    #expect(await outsider.changes("anon").isEmpty)
                }
            }
        }
    }

    @Test func filtersSelectRows() async throws {
        try await RealtimeHarness.run { harness in
            try await harness.withSocket { socket in
                let token = harness.tokens[.member]!
                for (name, filter) in [
                    ("eq", "title=eq.b"), ("eqUpper", "title=eq.B"), ("neq", "title=neq.b"), ("in", "title=in.(a,c)"),
                    ("gte", "position=gte.2"), ("lt", "position=lt.2"),
                ] {
                    #expect(try await socket.join(name, config: changesConfig([("INSERT", "tasks", filter)]), token: token).status == "ok")
                }
                for (index, title) in ["a", "b", "c"].enumerated() {
                    try await harness.owner(
                        "insert into public.tasks (project_id, title, created_by, position) values (:projectA, '\(title)', :member, \(index + 1))"
                    )
                }
                try await harness.owner(
                    "insert into public.notifications (user_id, organization_id, title, message) values (:member, :orgA, 'Marker', 'x')")
                _ = await socket.waitForChanges("neq", count: 2)
                try await Task.sleep(for: .milliseconds(300))
                func titles(_ topic: String) async -> [String] {
                    await socket.changes(topic).compactMap { $0.record["title"]?.stringValue }
                }
                #expect(await titles("eq") == ["b"])
                #expect(await titles("eqUpper") == ["b"])
                #expect(await titles("neq") == ["a", "c"])
                #expect(await titles("in") == ["a", "c"])
                #expect(await titles("gte") == ["b", "c"])
                #expect(await titles("lt") == ["a"])
                let bad = try await socket.join("bad", config: changesConfig([("*", "tasks", "title=like.x")]), token: token)
                #expect(bad.status == "error")
                let unpublished = try await socket.join("users", config: changesConfig([("*", "users", nil)]), token: token)
                #expect(unpublished.status == "error")
                // The hub's counters summarise the lag of what it delivered (the console shows them).
                let stats = await harness.services.realtime.hub.stats
                let p50 = try #require(stats.deliveryLagP50Ms, "deliveries were made, so there is a lag")
                let p99 = try #require(stats.deliveryLagP99Ms)
                #expect(p50 >= 0 && p99 >= p50 && p99 < 10_000, "p50 \(p50) ms, p99 \(p99) ms")
            }
        }
    }

    /// One subscriber's failing authorisation does not stop the others': a policy that raises for the
    /// member only costs the member its delivery (with an error on its channel).
    @Test func aFailingPolicyForOneSubscriberSparesTheOthers() async throws {
        try await RealtimeHarness.run { harness in
            try await harness.owner(
                """
                create function public.rt_breaks_for(uid uuid) returns boolean language plpgsql stable as $$
                begin
                    if auth.uid() = uid then raise exception 'policy broke for this user'; end if;
                    return true;
                end $$
                """)
            try await harness.owner("grant execute on function public.rt_breaks_for(uuid) to authenticated")
            try await harness.owner(
                """
                create policy customers_breaks on public.customers as restrictive for select to authenticated
                    using (public.rt_breaks_for(:member))
                """)
            try await harness.withSocket { member in
                try await harness.withSocket { owner in
                    #expect(
                        try await member.join("c", config: changesConfig([("*", "customers", nil)]), token: harness.tokens[.member]!).status
                            == "ok")
                    #expect(
                        try await owner.join("c", config: changesConfig([("*", "customers", nil)]), token: harness.tokens[.owner]!).status
                            == "ok"
                    )
                    try await harness.owner("update public.customers set name = 'Still delivered' where id = :customerA")
                    #expect(await owner.waitForChanges("c", count: 1).first?.record["name"] == "Still delivered")
                    #expect(await member.first { $0.event == "system" && $0.status == "error" } != nil)
                    #expect(await member.changes("c").isEmpty)
                }
            }
        }
    }

    /// A table created and published from SQL in the test: its INSERT, UPDATE and DELETE reach the
    /// organization's members only, decided by its own policies; removing a member from the organization
    /// takes effect on the next change; unpublishing ends new joins.
    @Test func aTablePublishedFromSQLIsAuthorisedByItsOwnPolicies() async throws {
        try await RealtimeHarness.run { harness in
            for statement in RealtimeAuthorisationTests.notesTable { try await harness.owner(statement) }
            try await harness.withSocket { member in
                try await harness.withSocket { outsider in
                    let config = changesConfig([("*", "rt_notes", nil)])
                    let joined = try await member.join("notes", config: config, token: harness.tokens[.member]!)
                    #expect(joined.status == "ok", "\(joined.text)")
                    #expect(try await outsider.join("notes", config: config, token: harness.tokens[.outsider]!).status == "ok")
                    let note = UUID().uuidString.lowercased()
                    try await harness.owner(
                        "insert into public.rt_notes (id, author, organization_id, body) values ('\(note)', :admin, :orgA, 'hello')")
                    try await harness.owner("update public.rt_notes set body = 'hello again' where id = '\(note)'")
                    try await harness.owner("delete from public.rt_notes where id = '\(note)'")
                    let events = await member.waitForChanges("notes", count: 3)
                    #expect(events.map(\.changeType) == ["INSERT", "UPDATE", "DELETE"])
                    #expect(events.last?.oldRecord["body"] == "hello again")
                    // The restrictive policy: another author's secret is not delivered.
                    try await harness.owner("insert into public.rt_notes (author, organization_id, body) values (:admin, :orgA, 'secret')")
                    // The member leaves the organization: the next change is no longer theirs.
                    try await harness.owner("delete from public.organization_members where user_id = :member and organization_id = :orgA")
                    try await harness.owner(
                        "insert into public.rt_notes (author, organization_id, body) values (:admin, :orgA, 'after leaving')")
                    // Still their own note (the author policy), committed last.
                    try await harness.owner("insert into public.rt_notes (author, organization_id, body) values (:member, :orgA, 'marker')")
                    let all = await member.waitForChanges("notes", count: 4)
                    #expect(all.dropFirst(3).map { $0.record["body"] } == ["marker"])
                    try await Task.sleep(for: .milliseconds(300))
                    #expect(await outsider.changes("notes").isEmpty)
                    #expect(await member.changes("notes").count == 4)

                    try await harness.owner("select realtime.unpublish('public.rt_notes')")
                    let refused = try await member.join("again", config: config, token: harness.tokens[.member]!)
                    #expect(refused.status == "error")
                    #expect(refused.reason?.contains("realtime.publish") == true, "\(refused.text)")
                }
            }
        }
    }

    /// A transaction that took its position first but commits last is still delivered first (its position
    /// is waited for while its lock is held), and a position whose transaction rolls back is passed.
    @Test func positionsAreDeliveredInOrderAndAbandonedOnesArePassed() async throws {
        try await RealtimeHarness.run { harness in
            try await harness.withSocket { socket in
                #expect(
                    try await socket.join("t", config: changesConfig([("UPDATE", "tasks", nil)]), token: harness.tokens[.member]!).status
                        == "ok")
                // `set constraints all immediate` stamps the position now, as COMMIT would; the transaction then waits.
                // Stamps its position and signals `stamped`, then holds the transaction open before ending it.
                func slowTransaction(_ title: String, then end: String, stamped: AsyncStream<Void>.Continuation) async throws {
                    try await harness.database.withOwnerConnection { connection in
                        for statement in [
                            "begin", "update public.tasks set title = '\(title)' where id = '\(harness.id("taskA"))'",
                            "set constraints all immediate",
                        ] {
                            try await connection.run(PostgresQuery(unsafeSQL: statement), logger: harness.database.logger)
                        }
                        stamped.yield()
                        for statement in ["select pg_sleep(1.5)", end] {
                            try await connection.run(PostgresQuery(unsafeSQL: statement), logger: harness.database.logger)
                        }
                    }
                }
                let other = UUID().uuidString.lowercased()
                try await harness.owner(
                    "insert into public.tasks (id, project_id, title, created_by) values ('\(other)', :projectA, 'other', :member)")
                let (firstStamped, firstSignal) = AsyncStream<Void>.makeStream()
                async let first: Void = slowTransaction("first", then: "commit", stamped: firstSignal)
                for await _ in firstStamped { break }
                // Takes the next position and commits while "first" still holds its own.
                try await harness.owner("update public.tasks set title = 'second' where id = '\(other)'")
                try await first
                try await harness.owner("update public.tasks set title = 'third' where id = :taskA")
                let titles = await socket.waitForChanges("t", count: 3).map { $0.record["title"] }
                #expect(titles == ["first", "second", "third"])

                let (abortedStamped, abortedSignal) = AsyncStream<Void>.makeStream()
                async let aborted: Void = slowTransaction("never", then: "rollback", stamped: abortedSignal)
                for await _ in abortedStamped { break }
                try await harness.owner("update public.tasks set title = 'after the rollback' where id = :taskA")
                try await aborted
                let more = await socket.waitForChanges("t", count: 4).map { $0.record["title"] }
                #expect(more == ["first", "second", "third", "after the rollback"])
            }
        }
    }

    /// Changes committed while Strive was down reach clients that rejoin after it comes back.
    @Test func changesCommittedWhileDownAreDeliveredAfterRestart() async throws {
        let database = try await TestCluster.shared.makeDatabase()
        let fixture = try await database.withOwnerConnection { try await TenantFixture.create(on: $0, logger: database.logger) }
        let environment = ["STRIVE_INSTANCE_ID": "restart-test", "STRIVE_REALTIME_REPLAY_SECONDS": "8"]
        try await RealtimeHarness.run(environment: environment, database: database, fixture: fixture) { harness in
            try await harness.withSocket { socket in
                #expect(
                    try await socket.join("t", config: changesConfig([("*", "tasks", nil)]), token: harness.tokens[.member]!).status == "ok"
                )
                try await harness.owner("update public.tasks set title = 'Before restart' where id = :taskA")
                #expect(await socket.waitForChanges("t", count: 1).count == 1)
            }
        }
        // Down: nobody is listening.
        try await database.withOwnerConnection { connection in
            try await connection.run(
                PostgresQuery(unsafeSQL: fixture.substitute("update public.tasks set title = 'While down' where id = :taskA")),
                logger: database.logger)
        }
        try await RealtimeHarness.run(environment: environment, database: database, fixture: fixture) { harness in
            try await harness.withSocket { socket async throws in
                #expect(
                    try await socket.join("t", config: changesConfig([("*", "tasks", nil)]), token: harness.tokens[.member]!).status == "ok"
                )
                let events = await socket.waitForChanges("t", count: 1, timeout: .seconds(30))
                #expect(events.map { $0.record["title"] } == ["While down"])
            }
        }
    }

    /// Two instances on one database: each delivers every eligible change to its own sockets once.
    @Test func twoInstancesEachDeliverOnce() async throws {
        let database = try await TestCluster.shared.makeDatabase()
        let fixture = try await database.withOwnerConnection { try await TenantFixture.create(on: $0, logger: database.logger) }
        try await RealtimeHarness.run(environment: ["STRIVE_INSTANCE_ID": "one"], database: database, fixture: fixture) { a in
            try await RealtimeHarness.run(environment: ["STRIVE_INSTANCE_ID": "two"], database: database, fixture: fixture) { b in
                try await a.withSocket { first in
                    try await b.withSocket { second in
                        let config = changesConfig([("*", "tasks", nil)])
                        #expect(try await first.join("t", config: config, token: a.tokens[.member]!).status == "ok")
                        #expect(try await second.join("t", config: config, token: b.tokens[.member]!).status == "ok")
                        for index in 1...5 {
                            try await a.owner("update public.tasks set title = 'v\(index)' where id = :taskA")
                        }
                        let expected = (1...5).map { JSONValue.string("v\($0)") }
                        #expect(await first.waitForChanges("t", count: 5).map { $0.record["title"] } == expected)
                        #expect(await second.waitForChanges("t", count: 5).map { $0.record["title"] } == expected)
                        try await Task.sleep(for: .milliseconds(500))
                        #expect(await first.changes("t").count == 5)
                        #expect(await second.changes("t").count == 5)

                        // Broadcast and presence cross instances.
                        let room: JSONValue = ["broadcast": ["self": false, "ack": true], "presence": ["key": "alice"]]
                        #expect(try await first.join("room", config: room, token: a.tokens[.member]!).status == "ok")
                        #expect(try await second.join("room", config: room, token: b.tokens[.owner]!).status == "ok")
                        let ref = await first.push(
                            topic: "realtime:room", event: "broadcast",
                            payload: ["type": "broadcast", "event": "wave", "payload": ["n": 1]])
                        #expect(try await first.reply(to: ref).status == "ok")
                        #expect(await second.first { $0.event == "broadcast" && $0.topic == "realtime:room" } != nil)
                        await first.push(
                            topic: "realtime:room", event: "presence",
                            payload: ["type": "presence", "event": "track", "payload": ["online_at": "now"]])
                        #expect(
                            await second.first {
                                $0.event == "presence_diff" && $0.payload.objectValue?["joins"]?.objectValue?["alice"] != nil
                            } != nil)

                        // A broadcast from SQL reaches both instances' sockets, once each.
                        try await a.owner(#"select realtime.send('{"x": 1}', 'from-sql', 'room', false)"#)
                        for socket in [first, second] {
                            #expect(await socket.first { $0.payload.objectValue?["event"] == "from-sql" } != nil)
                        }
                        try await Task.sleep(for: .milliseconds(300))
                        for socket in [first, second] {
                            #expect(await socket.all { $0.payload.objectValue?["event"] == "from-sql" }.count == 1)
                        }
                    }
                }
            }
        }
    }
}
