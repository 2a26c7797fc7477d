import Foundation
import Logging
import PostgresNIO
import StriveDatabase
import StriveTestSupport
import Testing

/// The security model as data: for every table (and every storage bucket's objects), every operation and every kind
/// of caller, what the database must do. Each case runs through the server's own request paths (the
/// authenticator pool, the caller's role, real claims): reads through the data API's single-round-trip
/// path, writes in a transaction that is rolled back afterwards.
///
/// Outcome letters, one per caller in the order anon, outsider, viewer, member, admin, owner,
/// platform admin, service:
///   A  allowed: the target row is seen / inserted / changed / deleted
///   F  filtered: the statement succeeds but the target row is not seen or not touched
///   D  denied: the statement fails with a permission, policy or invariant error
@Suite("RLS contract")
struct RLSContractTests {
    typealias Actor = TenantFixture.Actor

    enum Outcome: Character, Sendable, CustomStringConvertible {
        case allowed = "A"
        case filtered = "F"
        case denied = "D"
        var description: String { String(rawValue) }
    }

    enum Operation: String, Sendable, CaseIterable {
        case select, insert, update, delete
    }

    struct Entry: Sendable {
        var name: String
        var table: String
        /// Which row of organization A the select/update/delete cases aim at.
        var target: String
        /// `values …` or `select …` after `insert into <table> (columns)`; `:actor` is the caller's user id
        /// (the owner's for anon and service).
        var insert: String
        /// The `set` clause of the update case.
        var update: String
        var expected: [Operation: String]

        init(
            _ name: String, table: String? = nil, target: String, insert: String, update: String,
            select s: String, insert i: String, update u: String, delete d: String
        ) {
            self.name = name
            self.table = table ?? "public.\(name)"
            self.target = target
            self.insert = insert
            self.update = update
            self.expected = [.select: s, .insert: i, .update: u, .delete: d]
        }
    }

    //                                                                  anon,outsider,viewer,member,admin,owner,platformAdmin,service
    static let contract: [Entry] = [
        Entry(
            "organizations", target: "id = :orgA",
            insert: "(name, slug) values ('New', 'new-' || substr(md5(random()::text), 1, 10))",
            update: "description = 'changed'",
            select: "DFAAAAFA", insert: "DDDDDDDA", update: "DFFFAAFA", delete: "DFFFFAFA"),
        Entry(
            "organization_members", target: "user_id = :viewer and organization_id = :orgA",
            insert: "(user_id, organization_id, role) values (:candidate, :orgA, 'MEMBER')",
            update: "role = 'MEMBER'",
            select: "DFAAAAFA", insert: "DDDDAADA", update: "DFFFAAFA", delete: "DFAFAAFA"),
        Entry(
            "users", target: "id = :member",
            insert: "(id, email) values (:orphan, 'orphan@a.test')",
            update: "name = 'Changed'",
            select: "DFAAAAAA", insert: "DDDDDDDA", update: "DFFAFFFA", delete: "DFFFFFAA"),
        Entry(
            "customers", target: "id = :customerA",
            insert: "(organization_id, name) values (:orgA, 'New')",
            update: "name = 'Changed'",
            select: "DFAAAAFA", insert: "DDDAAADA", update: "DFFAAAFA", delete: "DFFFAAFA"),
        Entry(
            "projects", target: "id = :projectA",
            insert: "(organization_id, name, project_manager_id) values (:orgA, 'New', :actor)",
            update: "description = 'changed'",
            select: "DFAAAAFA", insert: "DDDAAADA", update: "DFFFAAFA", delete: "DFFFAAFA"),
        Entry(
            "tasks", target: "id = :taskA",
            insert: "(project_id, title, created_by) values (:projectA, 'New', :actor)",
            update: "title = 'Changed'",
            select: "DFAAAAFA", insert: "DDDAAADA", update: "DFFAAAFA", delete: "DFFAAAFA"),
        Entry(
            "notifications", target: "id = :notificationA",
            insert: "(user_id, organization_id, title, message) values (:member, :orgA, 'Hi', 'A message')",
            update: "read = true",
            select: "DFFAFFFA", insert: "DDDAAADA", update: "DFFAFFFA", delete: "DFFAFFFA"),
        Entry(
            "attachments", target: "id = :attachmentA",
            insert: """
                (organization_id, entity_type, entity_id, file_name, file_size, mime_type, file_path, uploaded_by_id)
                values (:orgA, 'task', :taskA, 'b.pdf', 1, 'application/pdf', :orgA::text || '/task/' || :taskA::text || '/a.pdf', :actor)
                """,
            update: "file_name = 'c.pdf'",
            select: "DFAAAAFA", insert: "DDDAAADA", update: "DFFAFFFA", delete: "DFFAAAFA"),
        Entry(
            "appointments", target: "id = :appointmentA",
            insert:
                "(organization_id, title, start_time, end_time, assigned_to) values (:orgA, 'New', now(), now() + interval '1 hour', :actor)",
            update: "title = 'Changed'",
            select: "DFAAAAFA", insert: "DDDAAADA", update: "DFFAAAFA", delete: "DFFFAAFA"),
        Entry(
            "ai_conversations", target: "id = :aiConversationA",
            insert: "(user_id, organization_id, title) values (:actor, :orgA, 'New')",
            update: "title = 'Changed'",
            select: "DFFAAAFA", insert: "DDAAAADA", update: "DFFAFFFA", delete: "DFFAFFFA"),
        Entry(
            "content (draft)", table: "public.content", target: "id = :draftA",
            insert: "(organization_id, title, slug, author_id) values (:orgA, 'New', 'new-page', :actor)",
            update: "title = 'Changed'",
            select: "FFAAAAFA", insert: "DDDAAADA", update: "DFFAAAFA", delete: "DFFFAAFA"),
        Entry(
            "content (published)", table: "public.content", target: "id = :publishedA",
            insert: "(organization_id, title, slug, author_id, status) values (:orgA, 'New', 'new-post', :actor, 'PUBLISHED')",
            update: "title = 'Changed'",
            select: "AAAAAAAA", insert: "DDDAAADA", update: "DFFAAAFA", delete: "DFFFAAFA"),
        Entry(
            "activity_logs", target: "id = :activityA",
            insert: "(organization_id, user_id, action, resource_type) values (:orgA, :actor, 'create', 'task')",
            update: "action = 'edit'",
            select: "DFFFAAFA", insert: "DDAAAADA", update: "DDDDDDDD", delete: "DDDDDDDD"),
        Entry(
            "conversations", target: "id = :conversationA",
            insert: "(organization_id, session_id, user_message, assistant_response) values (:orgA, 's2', 'q', 'a')",
            update: "outcome = 'won'",
            select: "DFAAAAFA", insert: "DDAAAADA", update: "DFFFAAFA", delete: "DFFFAAFA"),
        Entry(
            "subscriptions", target: "id = :subscriptionA",
            insert: "(organization_id) values (:orgC)",
            update: "tier = 'PRO'",
            select: "DFFFAAFA", insert: "DDDDDDDA", update: "DDDDDDDA", delete: "DDDDDDDA"),
        Entry(
            "usage_tracking", target: "id = :usageA",
            insert:
                "(organization_id, user_id, resource_type, resource_name, billing_period) values (:orgA, :member, 'SEATS', 'seats', '2026-11')",
            update: "usage_amount = 5",
            select: "DFFAAAFA", insert: "DDDDDDDA", update: "DDDDDDDA", delete: "DDDDDDDA"),
        Entry(
            "ai_tools", target: "id = :aiTool",
            insert: "(name, tool_type) values ('New ' || gen_random_uuid(), 'ANALYSIS')",
            update: "description = 'changed'",
            select: "DAAAAAAA", insert: "DDDDDDAA", update: "DFFFFFAA", delete: "DFFFFFAA"),
        Entry(
            "example_conversations", target: "id = :exampleConversation",
            insert: "(user_input, assistant_response) values ('q', 'a')",
            update: "outcome = 'won'",
            select: "DAAAAAAA", insert: "DDDDDDAA", update: "DFFFFFAA", delete: "DFFFFFAA"),
        analytics(
            "page_views", target: "pageView", insert: "(session_id, url, path) values ('s2', 'https://x.test/b', '/b')",
            update: "title = 'B'"),
        analytics("user_sessions", target: "userSession", insert: "(session_id) values ('s-' || gen_random_uuid())", update: "events = 2"),
        analytics(
            "analytics_events", target: "analyticsEvent", insert: "(session_id, event_name) values ('s2', 'view')",
            update: "event_category = 'nav'"),
        analytics(
            "web_vitals_metrics", target: "webVital",
            insert: "(url, path, metric_name, metric_value) values ('https://x.test/b', '/b', 'CLS', 0.1)", update: "rating = 'good'"),
        analytics(
            "analytics_goals", target: "goal", insert: "(name, goal_type) values ('Goal ' || gen_random_uuid(), 'EVENT')",
            update: "description = 'd'"),
        analytics("goal_conversions", target: "goalConversion", insert: "(goal_id, session_id) values (:goal, 's2')", update: "value = 1"),
        Entry(
            "objects (attachments)", table: "storage.objects", target: "id = :attachmentObject",
            insert: "(bucket_id, name, owner) values ('attachments', :orgA::text || '/task/x/new-' || gen_random_uuid() || '.pdf', :actor)",
            update: "metadata = '{\"size\": 1}'",
            select: "FFAAAAFA", insert: "DDDAAADA", update: "FFFAFFFA", delete: "FFFAAAFA"),
        Entry(
            "objects (avatars)", table: "storage.objects", target: "id = :avatarObject",
            insert: "(bucket_id, name, owner) values ('avatars', :actor::text || '/new-' || gen_random_uuid() || '.png', :actor)",
            update: "metadata = '{\"size\": 1}'",
            // Read by everyone through public URLs, which need no policy; listed only by its user and platform admins.
            select: "FFFAFFAA", insert: "DAAAAAAA", update: "FFFAFFFA", delete: "FFFAFFFA"),
        Entry(
            "objects (public-assets)", table: "storage.objects", target: "id = :publicAssetObject",
            insert: "(bucket_id, name, owner) values ('public-assets', 'brand/new-' || gen_random_uuid() || '.png', :actor)",
            update: "metadata = '{\"size\": 1}'",
            select: "FFFFFFAA", insert: "DDDDDDAA", update: "FFFFFFAA", delete: "FFFFFFAA"),
        Entry(
            "buckets", table: "storage.buckets", target: "id = 'avatars'",
            insert: "(id, name) select n, n from (select 'b-' || substr(md5(random()::text), 1, 10) as n) s",
            update: "public = true",
            // Configuration: platform admins read it, only the service changes it (more takes a project policy);
            // a bucket that holds objects cannot be deleted by anyone.
            select: "FFFFFFAA", insert: "DDDDDDDA", update: "FFFFFFFA", delete: "FFFFFFFD"),
    ]

    /// Product analytics: platform admins read, only the service writes.
    static func analytics(_ table: String, target: String, insert: String, update: String) -> Entry {
        Entry(
            table, target: "id = :\(target)", insert: insert, update: update,
            select: "DFFFFFAA", insert: "DDDDDDDA", update: "DDDDDDDA", delete: "DDDDDDDA")
    }

    struct Case: Sendable {
        var entry: Entry
        var operation: Operation
        var actor: Actor
        var expected: Outcome
    }

    struct Observation: Sendable {
        /// nil: an error that is neither a permission, policy nor invariant error.
        var outcome: Outcome?
        var detail: String
    }

    /// Ends a case's transaction with a rollback, carrying what was observed out of it.
    struct RollBack: Error {
        var observation: Observation
    }

    let logger = Logger(label: "test.rls")

    @Test func everyTableHasAContract() async throws {
        let database = try await TestCluster.shared.makeDatabase()
        let tables = try await database.withOwnerConnection { connection in
            try await connection.query(
                "select schemaname || '.' || tablename from pg_tables where schemaname = 'public' order by 1",
                logger: logger
            ).collect().map { try $0.decode(String.self) }
        }
        let covered = Set(Self.contract.map(\.table))
        let uncovered = (tables + ["storage.objects", "storage.buckets"]).filter { !covered.contains($0) }
        #expect(uncovered.isEmpty, "tables without rows in the RLS contract: \(uncovered)")
        #expect(tables.count == 23, "the built-in schema has 23 public tables; the database has \(tables.count)")
        for entry in Self.contract {
            for operation in Operation.allCases {
                #expect(entry.expected[operation]?.count == Actor.allCases.count, "\(entry.name) \(operation): one letter per caller")
            }
        }
    }

    @Test func databaseEnforcesTheContract() async throws {
        let database = try await TestCluster.shared.makeDatabase()
        let logger = self.logger
        let fixture = try await database.withOwnerConnection { try await TenantFixture.create(on: $0, logger: logger) }
        let cases = Self.contract.flatMap { entry in
            Operation.allCases.flatMap { operation in
                zip(Actor.allCases, entry.expected[operation] ?? "").compactMap { actor, letter in
                    Outcome(rawValue: letter).map { Case(entry: entry, operation: operation, actor: actor, expected: $0) }
                }
            }
        }
        #expect(cases.count == Self.contract.count * 4 * Actor.allCases.count)

        let mismatches = try await database.withDatabase(requestPoolSize: 4) { db in
            try await withThrowingTaskGroup(of: String?.self) { group in
                var pending = cases.makeIterator()
                var mismatches: [String] = []
                func startNext() {
                    guard let next = pending.next() else { return }
                    group.addTask { try await Self.check(next, fixture: fixture, on: db, logger: logger) }
                }
                for _ in 0..<4 { startNext() }
                while let result = try await group.next() {
                    if let result { mismatches.append(result) }
                    startNext()
                }
                return mismatches.sorted()
            }
        }
        print("RLS contract: ran \(cases.count) cases over \(Self.contract.count) contract rows, \(mismatches.count) mismatches")
        #expect(mismatches.isEmpty, "\(mismatches.count) cases differ from the contract:\n\(mismatches.joined(separator: "\n"))")
    }

    /// Runs one case; returns a description of the mismatch, or nil when the database did as expected.
    static func check(_ testCase: Case, fixture: TenantFixture, on db: Database, logger: Logger) async throws -> String? {
        let observation = try await observe(testCase, fixture: fixture, on: db, logger: logger)
        guard observation.outcome != testCase.expected else { return nil }
        let got = observation.outcome.map(\.description) ?? "an unexpected error"
        return
            "\(testCase.entry.name) \(testCase.operation) as \(testCase.actor): expected \(testCase.expected), got \(got) (\(observation.detail))"
    }

    static func observe(_ testCase: Case, fixture: TenantFixture, on db: Database, logger: Logger) async throws -> Observation {
        let entry = testCase.entry
        let actorID = fixture.userID(of: testCase.actor) ?? fixture.id("owner")
        let sql: String
        switch testCase.operation {
        case .select: sql = "select count(*) from \(entry.table) where \(entry.target)"
        case .insert: sql = "insert into \(entry.table) \(entry.insert)"
        case .update: sql = "update \(entry.table) set \(entry.update) where \(entry.target)"
        case .delete: sql = "delete from \(entry.table) where \(entry.target)"
        }
        let statement = fixture.substitute(sql.replacingOccurrences(of: ":actor", with: "'\(actorID.uuidString.lowercased())'"))
        if testCase.operation == .select {
            // Reads go through the data API's own single-round-trip path (`app.run_request`); they change
            // nothing, so nothing needs rolling back.
            do {
                let rows = try await db.requestStatement(
                    fixture.identity(of: testCase.actor), statement: statement.replacingOccurrences(of: "count(*)", with: "count(*)::int"),
                    values: [], columns: "seen int", writes: false, logger: logger)
                let seen = try rows.first?.decode(Int.self) ?? 0
                return Observation(outcome: seen > 0 ? .allowed : .filtered, detail: "\(seen) rows")
            } catch {
                return deniedOrUnexpected(error)
            }
        }
        do {
            _ = try await db.withRequestTransaction(fixture.identity(of: testCase.actor), logger: logger) { connection -> Int in
                let observation: Observation
                do {
                    let result = try await connection.query(statement, []).get()
                    let affected = testCase.operation == .select ? try result.first?.decode(Int.self) ?? 0 : result.metadata.rows ?? 0
                    observation = Observation(outcome: affected > 0 ? .allowed : .filtered, detail: "\(affected) rows")
                } catch {
                    observation = deniedOrUnexpected(error)
                }
                throw RollBack(observation: observation)
            }
            Issue.record("the case's transaction was not rolled back: \(statement)")
            return Observation(outcome: .allowed, detail: "committed")
        } catch let rollBack as RollBack {
            return rollBack.observation
        }
    }

    /// A permission, policy or invariant error is a denial; any other error (a typo in the contract, a
    /// missing default) must not pass as one.
    static func deniedOrUnexpected(_ error: any Error) -> Observation {
        guard let (state, message) = DatabaseError.serverError(in: error) else {
            return Observation(outcome: nil, detail: String(reflecting: error))
        }
        let denials: Set<String> = ["42501", "23503", "23514"]
        return Observation(outcome: denials.contains(state) ? .denied : nil, detail: "SQLSTATE \(state): \(message)")
    }
}
