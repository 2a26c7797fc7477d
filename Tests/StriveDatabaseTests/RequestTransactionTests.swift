import Foundation
import Logging
import PostgresNIO
import StriveTestSupport
import Testing

@testable import StriveDatabase

@Suite("Request-scoped transactions")
struct RequestTransactionTests {
    let logger = Logger(label: "test.request")
    let userID = UUID()

    var userIdentity: RequestIdentity {
        RequestIdentity(
            role: .authenticated,
            claimsJSON: #"{"sub":"\#(userID.uuidString.lowercased())","role":"authenticated","email":"a@example.com"}"#,
            method: "GET", path: "/rest/v1/tasks"
        )
    }

    struct Observed: Sendable, Equatable {
        var currentUser: String
        var uid: String?
        var role: String?
        var email: String?
        var method: String?
    }

    static func observe(_ connection: PostgresConnection, _ logger: Logger) async throws -> Observed {
        let row = try await connection.query(
            """
            select current_user::text, auth.uid()::text, auth.role(), auth.jwt() ->> 'email',
                   nullif(current_setting('request.method', true), '')
            """, logger: logger
        ).collect().first
        let (user, uid, role, email, method) = try #require(row).decode((String, String?, String?, String?, String?).self)
        return Observed(currentUser: user, uid: uid, role: role, email: email, method: method)
    }

    /// What a session outside any request transaction holds: the login role and no request settings.
    /// (authenticator cannot call auth.*: it has no rights of its own, so the raw settings are read.)
    static func observeSession(_ connection: PostgresConnection, _ logger: Logger) async throws -> [String?] {
        let row = try await connection.query(
            """
            select current_user::text, nullif(current_setting('request.jwt.claims', true), ''),
                   nullif(current_setting('request.method', true), ''), nullif(current_setting('request.path', true), '')
            """, logger: logger
        ).collect().first
        let (user, claims, method, path) = try #require(row).decode((String, String?, String?, String?).self)
        return [user, claims, method, path]
    }

    static let clean: [String?] = ["authenticator", nil, nil, nil]

    @Test func claimsLastOnlyAsLongAsTheirTransaction() async throws {
        let database = try await TestCluster.shared.makeDatabase()
        let logger = self.logger
        let identity = userIdentity
        let expectedUID = userID.uuidString.lowercased()
        try await database.withDatabase(requestPoolSize: 1) { db in
            let inside = try await db.withRequestTransaction(identity) { try await Self.observe($0, logger) }
            #expect(
                inside
                    == Observed(
                        currentUser: "authenticated", uid: expectedUID, role: "authenticated", email: "a@example.com", method: "GET"))
            // Pool of one: the next lease is the same session.
            let after = try await db.withRequestPoolConnection { try await Self.observeSession($0, logger) }
            #expect(after == Self.clean)
        }
    }

    @Test func requestStatementsAreCancelledAtTheStatementTimeout() async throws {
        let database = try await TestCluster.shared.makeDatabase()
        let logger = self.logger
        let identity = userIdentity
        // The connection's own deadline (statement timeout + a margin, then the socket is closed) is given a
        // wide margin here: on two cores loaded with the whole suite, a transaction's first round trips can take
        // seconds, and the deadline closing the socket first is a different mechanism (DatabaseFaultTests).
        try await database.withDatabase(requestPoolSize: 1, statementTimeout: .seconds(1), deadlineMargin: .seconds(30)) { db in
            // Open the pool's connection first, so the clock below measures the cancelled statement only.
            _ = try await db.withRequestTransaction(identity) { try await $0.query("select 1", logger: logger).collect().count }
            let started = ContinuousClock.now
            await #expect {
                try await db.withRequestTransaction(identity) { connection in
                    try await connection.run("select pg_sleep(30)", logger: logger)
                }
            } throws: { error in
                DatabaseError.serverError(in: error)?.sqlState == "57014"
            }
            // Well under the 30 s sleep; the margin is for a loaded machine (the whole suite runs at once on two
            // cores, where the request's own round trips can take a second or two).
            #expect(ContinuousClock.now - started < .seconds(15))
            // The request pool's sessions carry it (a single-statement request has nowhere else to set it).
            let after = try await db.withRequestPoolConnection { connection in
                try await connection.query("select current_setting('statement_timeout')", logger: logger).collect().first?.decode(
                    String.self)
            }
            #expect(after == "1s")
            // It holds for the single-round-trip path too.
            await #expect {
                try await db.requestStatement(
                    identity, statement: "select pg_sleep(30)::text", values: [], columns: "x text", writes: false)
            } throws: { error in
                DatabaseError.serverError(in: error)?.sqlState == "57014"
            }
        }
    }

    /// A request statement is prepared once per connection (migration 0011) and its plan reused — and
    /// still each execution sees what its own caller may see: another user of the same role, another
    /// role, past PostgreSQL's switch from custom to generic plans.
    @Test func preparedRequestStatementsStillAnswerPerCaller() async throws {
        let database = try await TestCluster.shared.makeDatabase()
        let logger = self.logger
        let fixture = try await database.withOwnerConnection { try await TenantFixture.create(on: $0, logger: logger) }
        let organization = fixture.id("orgA").uuidString.lowercased()
        let statement = "select count(*)::int from public.projects where organization_id = ($1[1])::uuid"
        try await database.withDatabase(requestPoolSize: 1) { db in
            func seen(_ actor: TenantFixture.Actor) async throws -> Int? {
                do {
                    let rows = try await db.requestStatement(
                        fixture.identity(of: actor), statement: statement, values: [organization], columns: "seen int", writes: false)
                    return try rows.first?.decode(Int.self)
                } catch {
                    // anon holds no privilege on projects at all.
                    #expect(DatabaseError.serverError(in: error)?.sqlState == "42501", "\(String(reflecting: error))")
                    return nil
                }
            }
            for _ in 0..<8 {
                let member = try await seen(.member)
                let outsider = try await seen(.outsider)
                let anon = try await seen(.anon)
                let service = try await seen(.service)
                #expect(member ?? 0 > 0)
                #expect(outsider == 0)
                #expect(anon == nil)
                #expect(service == member)
            }
            let prepared = try await db.withRequestPoolConnection { connection in
                try await connection.rows("select count(*)::int from pg_prepared_statements where name like 'strive_%'", logger: logger)
                    .first?.decode(Int.self)
            }
            #expect(prepared == 1)
        }
    }

    /// One round trip (`app.run_request`): the statement sees the caller's role and claims, reads its
    /// values from `$1[n]`, and the session keeps none of it afterwards, also after an error.
    @Test func aSingleStatementRequestActsAsTheCallerInItsOwnTransaction() async throws {
        let database = try await TestCluster.shared.makeDatabase()
        let logger = self.logger
        let identity = userIdentity
        let expectedUID = userID.uuidString.lowercased()
        try await database.withDatabase(requestPoolSize: 1) { db in
            let rows = try await db.requestStatement(
                identity,
                statement: """
                    select current_user::text, auth.uid()::text, auth.jwt() ->> 'email', current_setting('request.path'),
                           ($1[1])::int + 1, ($1[2])::text[]
                    """,
                values: ["41", #"{"a,b","c\"d"}"#], columns: "who text, uid text, email text, path text, answer int, list text[]",
                writes: false)
            let (who, uid, email, path, answer, list) = try #require(rows.first).decode(
                (String, String?, String?, String, Int, [String]).self)
            #expect([who, uid, email, path] == ["authenticated", expectedUID, "a@example.com", "/rest/v1/tasks"])
            #expect(answer == 42)
            #expect(list == ["a,b", "c\"d"])
            #expect(try await db.withRequestPoolConnection { try await Self.observeSession($0, logger) } == Self.clean)

            await #expect(throws: (any Error).self) {
                try await db.requestStatement(identity, statement: "select 1/0", values: [], columns: "x int", writes: false)
            }
            #expect(try await db.withRequestPoolConnection { try await Self.observeSession($0, logger) } == Self.clean)

            // Writes count the rows they change and are all or nothing.
            let inserted = try await db.requestWrite(
                .serviceRole(),
                statements: [
                    "insert into public.organizations (name, slug) values ('W1', 'w-one')",
                    "insert into public.organizations (name, slug) values ('W2', ($1[1])), ('W3', ($1[2]))",
                ],
                values: ["w-two", "w-three"])
            #expect(inserted == 3)
            await #expect(throws: (any Error).self) {
                try await db.requestWrite(
                    .serviceRole(), statements: ["update public.organizations set name = 'changed' where slug like 'w-%'", "select 1/0"],
                    values: [])
            }
            let names = try await db.requestStatement(
                .serviceRole(), statement: "select string_agg(name, ',' order by name) from public.organizations where slug like 'w-%'",
                values: [], columns: "names text", writes: false)
            #expect(try names.first?.decode(String.self) == "W1,W2,W3")
        }
    }

    /// A single statement's implicit transaction commits when PostgreSQL processes its Sync, after the
    /// statement's CommandComplete: PostgresNIO reports success at CommandComplete, so a failure at commit
    /// (here a deferred constraint) only closes the connection. A request write must not be acknowledged
    /// then: it waits for the commit and fails.
    @Test func aWriteWhoseCommitFailsIsNotAcknowledged() async throws {
        let database = try await TestCluster.shared.makeDatabase()
        let logger = self.logger
        try await database.withOwnerConnection { connection in
            try await connection.run(
                """
                create table public.deferred_check (id int, constraint once unique (id) deferrable initially deferred);
                """, logger: logger)
            try await connection.run("grant insert on public.deferred_check to service_role", logger: logger)
        }
        try await database.withDatabase(requestPoolSize: 1) { db in
            let identity = RequestIdentity.serviceRole(method: "POST", path: "/rest/v1/deferred_check")
            await #expect(throws: (any Error).self) {
                _ = try await db.requestWrite(identity, statements: ["insert into public.deferred_check values (1), (1)"], values: [])
            }
            await #expect(throws: (any Error).self) {
                _ = try await db.requestStatement(
                    identity,
                    statement: "with w as (insert into public.deferred_check values (2), (2) returning id) select count(*)::int from w",
                    values: [], columns: "n int", writes: true)
            }
            // A write whose commit succeeds is still acknowledged, on a fresh connection.
            let written = try await db.requestWrite(identity, statements: ["insert into public.deferred_check values (3)"], values: [])
            #expect(written == 1)
        }
        let stored = try await database.withOwnerConnection { connection in
            try await connection.rows("select id from public.deferred_check order by id", logger: logger).map { try $0.decode(Int.self) }
        }
        #expect(stored == [3])
    }

    @Test func nothingLeaksAfterAnError() async throws {
        struct Boom: Error {}
        let database = try await TestCluster.shared.makeDatabase()
        let logger = self.logger
        let identity = userIdentity
        try await database.withDatabase(requestPoolSize: 1) { db in
            await #expect(throws: (any Error).self) {
                try await db.withRequestTransaction(identity) { connection in
                    try await connection.run("create temp table should_vanish(id int)", logger: logger)
                    throw Boom()
                }
            }
            await #expect(throws: (any Error).self) {
                try await db.withRequestTransaction(identity) { connection in
                    try await connection.run("select 1/0", logger: logger)
                }
            }
            let after = try await db.withRequestPoolConnection { try await Self.observeSession($0, logger) }
            #expect(after == Self.clean)
        }
    }

    @Test func nothingLeaksAfterACancelledTask() async throws {
        let database = try await TestCluster.shared.makeDatabase()
        let logger = self.logger
        let identity = userIdentity
        try await database.withDatabase(requestPoolSize: 1) { db in
            let task = Task {
                try await db.withRequestTransaction(identity) { connection in
                    try await connection.run("select pg_sleep(0.5)", logger: logger)
                    try await Task.sleep(for: .seconds(5))
                }
            }
            try await Task.sleep(for: .milliseconds(100))
            task.cancel()
            _ = await task.result
            let after = try await db.withRequestPoolConnection { try await Self.observeSession($0, logger) }
            #expect(after == Self.clean)
        }
    }

    @Test func thePoolLogsInAsAnUnprivilegedRole() async throws {
        let database = try await TestCluster.shared.makeDatabase()
        let logger = self.logger
        try await database.withDatabase(requestPoolSize: 1) { db in
            let login = try await db.withRequestPoolConnection { connection in
                try await connection.query(
                    "select rolsuper, rolbypassrls from pg_roles where rolname = session_user", logger: logger
                ).collect().first?.decode((Bool, Bool).self)
            }
            #expect(login?.0 == false)
            #expect(login?.1 == false)
        }
    }

    @Test func anAnonymousRequestActsAsAnon() async throws {
        let database = try await TestCluster.shared.makeDatabase()
        let logger = self.logger
        try await database.withDatabase(requestPoolSize: 1) { db in
            let anon = RequestIdentity(role: .anon, claimsJSON: #"{"role":"anon"}"#)
            let seen = try await db.withRequestTransaction(anon) { try await Self.observe($0, logger) }
            #expect(seen == Observed(currentUser: "anon", uid: nil, role: "anon", email: nil, method: nil))
        }
    }

    @Test func serviceRolePathBypassesRowLevelSecurity() async throws {
        let database = try await TestCluster.shared.makeDatabase()
        let logger = self.logger
        let identity = userIdentity
        try await database.withOwnerConnection { connection in
            for statement in [
                "create table notes(id int primary key, body text)",
                "alter table notes enable row level security",
                "alter table notes force row level security",
                "grant select on notes to anon, authenticated, service_role",
                "insert into notes values (1, 'private')",
            ] {
                try await connection.run(PostgresQuery(unsafeSQL: statement), logger: logger)
            }
        }
        try await database.withDatabase(requestPoolSize: 2) { db in
            let asUser = try await db.withRequestTransaction(identity) { connection in
                try await connection.query("select count(*)::int from notes", logger: logger).collect().first?.decode(Int.self)
            }
            let asService = try await db.withServiceRoleTransaction { connection in
                try await connection.query("select count(*)::int, current_user::text from notes", logger: logger).collect().first?.decode(
                    (Int, String).self)
            }
            #expect(asUser == 0)
            #expect(asService?.0 == 1)
            #expect(asService?.1 == "service_role")
        }
    }
}
