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
        try await RealtimeHarness.run { h in
            try await h.withSocket { alice in
                try await h.withSocket { bob in
                    let heartbeat = await alice.push(topic: "phoenix", event: "heartbeat", payload: [:])
                    #expect(try await alice.reply(to: heartbeat).status == "ok")

                    let config: JSONValue = ["broadcast": ["self": true, "ack": true], "presence": ["key": "alice"]]
                    #expect(try await alice.join("room", config: config, token: h.tokens[.member]!).status == "ok")
                    #expect(try await bob.join("room", config: ["presence": ["key": "bob"]], token: h.tokens[.owner]!).status == "ok")
                    #expect(await bob.first { $0.event == "presence_state" } != nil)

                    let sent = await alice.push(topic: "realtime:room", event: "broadcast", payload: ["type": "broadcast", "event": "cursor", "payload": ["x": 1]])
                    #expect(try await alice.reply(to: sent).status == "ok")  // ack
                    #expect(await alice.first { $0.event == "broadcast" } != nil)  // self
                    let received = try #require(await bob.first { $0.event == "broadcast" })
                    #expect(received.payload.objectValue?["event"] == "cursor")
                    #expect(received.ref == nil)
                    // Without self, the sender does not get its own broadcast.
                    await bob.push(topic: "realtime:room", event: "broadcast", payload: ["type": "broadcast", "event": "echo", "payload": [:]])
                    #expect(await alice.first { $0.event == "broadcast" && $0.payload.objectValue?["event"] == "echo" } != nil)
                    try await Task.sleep(for: .milliseconds(200))
                    #expect(await bob.all { $0.event == "broadcast" && $0.payload.objectValue?["event"] == "echo" }.isEmpty)

                    let track = await alice.push(topic: "realtime:room", event: "presence", payload: ["type": "presence", "event": "track", "payload": ["status": "online"]])
                    #expect(try await alice.reply(to: track).status == "ok")
                    let joined = try #require(await bob.first { $0.event == "presence_diff" && $0.payload.objectValue?["joins"]?.objectValue?["alice"] != nil })
                    let metas = joined.payload.objectValue?["joins"]?.objectValue?["alice"]?.objectValue?["metas"]
                    if case .array(let items) = metas ?? .null {
                        #expect(items.first?.objectValue?["status"] == "online")
                        #expect(items.first?.objectValue?["phx_ref"]?.stringValue != nil)
                    } else {
                        Issue.record("presence_diff without metas")
                    }
                    // A late joiner sees alice in presence_state.
                    try await h.withSocket { carol in
                        #expect(try await carol.join("room", config: [:], token: h.tokens[.admin]!).status == "ok")
                        let state = try #require(await carol.first { $0.event == "presence_state" })
                        #expect(state.payload.objectValue?["alice"] != nil)
                    }
                    let leave = await alice.push(topic: "realtime:room", event: "phx_leave", payload: [:])
                    #expect(try await alice.reply(to: leave).status == "ok")
                    #expect(await bob.first { $0.event == "presence_diff" && $0.payload.objectValue?["leaves"]?.objectValue?["alice"] != nil } != nil)
                }
            }
            // A socket that drops leaves presence.
            try await h.withSocket { watcher in
                #expect(try await watcher.join("lobby", config: [:], token: h.tokens[.owner]!).status == "ok")
                try await h.withSocket { dropper async throws in
                    #expect(try await dropper.join("lobby", config: ["presence": ["key": "dropper"]], token: h.tokens[.member]!).status == "ok")
                    await dropper.push(topic: "realtime:lobby", event: "presence", payload: ["type": "presence", "event": "track", "payload": [:]])
                    #expect(await watcher.first { $0.event == "presence_diff" && $0.payload.objectValue?["joins"]?.objectValue?["dropper"] != nil } != nil)
                }
                #expect(await watcher.first { $0.event == "presence_diff" && $0.payload.objectValue?["leaves"]?.objectValue?["dropper"] != nil } != nil)
            }
        }
    }

    @Test func organizationTopicsArePrivateToMembers() async throws {
        try await RealtimeHarness.run { h in
            try await h.withSocket { socket in
                let topic = "org:\(h.id("orgA")):chat"
                #expect(try await socket.join(topic, token: h.tokens[.member]!).status == "ok")
                let outsider = try await socket.join(topic + "2", token: h.tokens[.outsider]!)
                #expect(outsider.status == "error")
                #expect(outsider.reason?.contains("not a member") == true)
                #expect(try await socket.join(topic + "3").status == "error")  // anon
                #expect(try await socket.join("private-room", config: ["private": true]).status == "error")
                #expect(try await socket.join("private-room", config: ["private": true], token: h.tokens[.viewer]!).status == "ok")
            }
        }
    }

    @Test func expiredAndInvalidTokensEndChannels() async throws {
        try await RealtimeHarness.run { h in
            let shortLived = try await h.fixture.accessToken(for: h.fixture.id("member"), on: h.database, lifetime: 8)
            try await h.withSocket { socket in
                #expect(try await socket.join("t", config: changesConfig([("*", "tasks", nil)]), token: shortLived).status == "ok")
                let ended = try #require(await socket.first(timeout: .seconds(25)) { $0.event == "system" && $0.status == "error" })
                #expect(ended.payload.objectValue?["message"]?.stringValue?.contains("Token has expired") == true)
                #expect(await socket.first { $0.event == "phx_close" && $0.topic == "realtime:t" } != nil)
                try await h.owner("update public.tasks set title = 'after expiry' where id = :taskA")
                try await Task.sleep(for: .milliseconds(800))
                #expect(await socket.changes("t").isEmpty)

                let bad = try await socket.join("u", token: "not-a-token")
                #expect(bad.status == "error")
                #expect(try await socket.join("v", token: h.tokens[.member]!).status == "ok")
                await socket.push(topic: "realtime:v", event: "access_token", payload: ["access_token": "garbage"])
                #expect(await socket.first { $0.event == "phx_close" && $0.topic == "realtime:v" } != nil)
            }
            // A socket whose apikey is not a key is refused with a reason.
            try await h.withSocket(key: "nonsense") { socket in
                #expect(await socket.first { $0.event == "phx_reply" && $0.status == "error" } != nil)
            }
        }
    }

    @Test func malformedFramesAndLimitsGetErrorRepliesNotCrashes() async throws {
        try await RealtimeHarness.run { h in
            try await h.withSocket { socket in
                socket.send("this is not json")
                socket.send(#"{"topic":"realtime:x"}"#)
                socket.send(#"[1,2,3]"#)
                let malformed = await socket.waitForAll(count: 3) { $0.topic == "phoenix" && $0.status == "error" }
                #expect(malformed.count == 3)
                let unmatched = await socket.push(topic: "realtime:never-joined", event: "broadcast", payload: [:])
                #expect(try await socket.reply(to: unmatched).status == "error")
                #expect(try await socket.join("x", token: h.tokens[.member]!).status == "ok")
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

@Suite("Realtime read predicates agree with the tables' policies")
struct ReadPredicateTests {
    /// realtime.readers_* (who may read a row) and realtime.can_read_* (may this user read it) restate the
    /// SELECT policies; for every actor and every published table both must answer exactly what RLS answers.
    @Test func predicatesMatchRowLevelSecurity() async throws {
        let database = try await TestCluster.shared.makeDatabase()
        let fixture = try await database.withOwnerConnection { try await TenantFixture.create(on: $0, logger: database.logger) }
        let rows = ["tasks": "taskA", "customers": "customerA", "projects": "projectA", "notifications": "notificationA"]
        let mismatches = try await database.withStriveDatabase { strive in
            var mismatches: [String] = []
            for (table, key) in rows.sorted(by: { $0.key < $1.key }) {
                for actor in TenantFixture.Actor.allCases {
                    guard let user = fixture.userID(of: actor) else { continue }
                    let id = fixture.id(key)
                    let viaPolicy = try await strive.withRequestTransaction(fixture.identity(of: actor)) { connection in
                        try await connection.query(
                            PostgresQuery(unsafeSQL: "select exists (select 1 from public.\(table) where id = '\(id.uuidString.lowercased())')"),
                            logger: database.logger
                        ).collect().first?.decode(Bool.self)
                    }
                    let (viaPredicate, viaReaders) = try await strive.withServiceRoleTransaction { connection in
                        let row = "(select to_jsonb(t) from public.\(table) t where id = '\(id.uuidString.lowercased())')"
                        let uid = "'\(user.uuidString.lowercased())'::uuid"
                        return try await connection.query(
                            PostgresQuery(unsafeSQL: """
                                select realtime.can_read('public', '\(table)', \(uid), \(row)),
                                       \(uid) in (select realtime.readers('public', '\(table)', \(row)))
                                """),
                            logger: database.logger
                        ).collect().first?.decode((Bool, Bool).self) ?? (false, false)
                    }
                    if viaPolicy != viaPredicate || viaPolicy != viaReaders {
                        mismatches.append("\(table) × \(actor): policy \(String(describing: viaPolicy)), predicate \(viaPredicate), readers \(viaReaders)")
                    }
                }
            }
            return mismatches
        }
        #expect(mismatches.isEmpty, "\(mismatches.joined(separator: "\n"))")
    }
}
