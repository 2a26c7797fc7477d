import Foundation
import Logging
import PostgresNIO
import StriveDatabase
import StriveTestSupport
import Testing

/// The rules a policy alone cannot express (membership, roles and tenancy that must hold across tables), cross-tenant attempts by id, and
/// the helpers' semantics. Every statement runs through the request path as a real caller.
@Suite("Schema invariants")
struct SchemaInvariantTests {
    typealias Actor = TenantFixture.Actor
    let logger = Logger(label: "test.invariants")

    /// What one statement did: rows affected (or the count a select returned), or the SQLSTATE it failed with.
    enum Effect: Equatable, CustomStringConvertible {
        case rows(Int)
        case failed(String)
        var description: String {
            switch self {
            case .rows(let n): "\(n) rows"
            case .failed(let state): "SQLSTATE \(state)"
            }
        }
    }

    struct Harness: Sendable {
        let database: TestDatabase
        let fixture: TenantFixture
        let logger: Logger

        static func make(logger: Logger) async throws -> Harness {
            let database = try await TestCluster.shared.makeDatabase()
            let fixture = try await database.withOwnerConnection { try await TenantFixture.create(on: $0, logger: logger) }
            return Harness(database: database, fixture: fixture, logger: logger)
        }

        /// Runs `sql` as the database owner (setup only).
        func setUp(_ sql: String) async throws {
            let statement = fixture.substitute(sql)
            try await database.withOwnerConnection { try await $0.run(PostgresQuery(unsafeSQL: statement), logger: logger) }
        }

        func effect(_ sql: String, as actor: Actor, commit: Bool = false) async throws -> Effect {
            try await effect(sql, as: fixture.identity(of: actor), commit: commit)
        }

        /// Runs one statement as `identity` and rolls it back unless `commit`.
        func effect(_ sql: String, as identity: RequestIdentity, commit: Bool = false) async throws -> Effect {
            let statement = fixture.substitute(sql)
            return try await database.withDatabase(requestPoolSize: 1) { db in
                try await Self.effect(statement, as: identity, commit: commit, on: db, logger: logger)
            }
        }

        static func effect(_ statement: String, as identity: RequestIdentity, commit: Bool, on db: Database, logger: Logger)
            async throws -> Effect
        {
            struct RollBack: Error { var effect: Effect }
            do {
                return try await db.withRequestTransaction(identity, logger: logger) { connection in
                    let effect: Effect
                    do {
                        let result = try await connection.query(statement, []).get()
                        if result.metadata.command == "SELECT" {
                            effect = .rows(try result.first?.decode(Int.self) ?? 0)
                        } else {
                            effect = .rows(result.metadata.rows ?? 0)
                        }
                    } catch {
                        effect = .failed(DatabaseError.serverError(in: error)?.sqlState ?? String(reflecting: error))
                    }
                    if commit, case .rows = effect { return effect }
                    throw RollBack(effect: effect)
                }
            } catch let rollBack as RollBack {
                return rollBack.effect
            }
        }

        func ownerCount(_ org: String) async throws -> Int {
            let statement = fixture.substitute(
                "select count(*)::int from public.organization_members where organization_id = :\(org) and role = 'OWNER'")
            return try await database.withOwnerConnection { connection in
                try await connection.query(PostgresQuery(unsafeSQL: statement), logger: logger).collect().first?.decode(Int.self) ?? -1
            }
        }
    }

    @Test func theLastOwnerCannotBeRemovedOrDemoted() async throws {
        let harness = try await Harness.make(logger: logger)
        let own = "user_id = :owner and organization_id = :orgA"
        #expect(
            try await harness.effect("update public.organization_members set role = 'ADMIN' where \(own)", as: .owner) == .failed("23514"))
        #expect(try await harness.effect("delete from public.organization_members where \(own)", as: .owner) == .failed("23514"))
        // Not even the service may leave an organization without an owner.
        #expect(try await harness.effect("delete from public.organization_members where \(own)", as: .service) == .failed("23514"))
        #expect(try await harness.effect("delete from public.users where id = :owner", as: .service) == .failed("23514"))
        // With a second owner, stepping down works.
        try await harness.setUp("update public.organization_members set role = 'OWNER' where user_id = :admin and organization_id = :orgA")
        #expect(try await harness.effect("update public.organization_members set role = 'ADMIN' where \(own)", as: .owner) == .rows(1))
        #expect(try await harness.effect("delete from public.organization_members where \(own)", as: .owner) == .rows(1))
        // Deleting the organization removes its owners with it.
        #expect(try await harness.effect("delete from public.organizations where id = :orgA", as: .owner) == .rows(1))
    }

    @Test func concurrentDemotionsKeepAnOwner() async throws {
        let harness = try await Harness.make(logger: logger)
        try await harness.setUp("update public.organization_members set role = 'OWNER' where user_id = :admin and organization_id = :orgA")
        let fixture = harness.fixture
        let logger = self.logger
        let effects = try await harness.database.withDatabase(requestPoolSize: 2) { db in
            try await withThrowingTaskGroup(of: Effect.self) { group in
                for (actor, other) in [("owner", "admin"), ("admin", "owner")] {
                    let statement = fixture.substitute(
                        "update public.organization_members set role = 'MEMBER' where user_id = :\(other) and organization_id = :orgA")
                    group.addTask {
                        try await Harness.effect(
                            statement, as: TenantFixture.userIdentity(fixture.id(actor)), commit: true, on: db, logger: logger)
                    }
                }
                return try await group.reduce(into: []) { $0.append($1) }
            }
        }
        #expect(effects.filter { $0 == .rows(1) }.count == 1, "exactly one demotion wins: \(effects)")
        #expect(try await harness.ownerCount("orgA") == 1)
    }

    @Test func onlyOwnersGrantOrTakeTheOwnerRole() async throws {
        let harness = try await Harness.make(logger: logger)
        let promoteMember = "update public.organization_members set role = 'OWNER' where user_id = :member and organization_id = :orgA"
        #expect(try await harness.effect(promoteMember, as: .admin) == .failed("42501"))
        #expect(
            try await harness.effect(
                "insert into public.organization_members (user_id, organization_id, role) values (:candidate, :orgA, 'OWNER')", as: .admin
            ) == .failed("42501"))
        #expect(
            try await harness.effect(
                "update public.organization_members set role = 'MEMBER' where user_id = :owner and organization_id = :orgA", as: .admin
            ) == .failed("42501"))
        #expect(
            try await harness.effect(
                "delete from public.organization_members where user_id = :owner and organization_id = :orgA", as: .admin
            ) == .failed("42501"))
        #expect(try await harness.effect(promoteMember, as: .owner) == .rows(1))
        // A membership never changes hands.
        #expect(
            try await harness.effect(
                "update public.organization_members set user_id = :candidate where user_id = :member and organization_id = :orgA",
                as: .owner
            ) == .failed("42501"))
    }

    @Test func rowsNeverMoveToAnotherOrganization() async throws {
        let harness = try await Harness.make(logger: logger)
        // The owner of A also owns B: both policies would allow the row in either place.
        try await harness.setUp("insert into public.organization_members (user_id, organization_id, role) values (:owner, :orgB, 'OWNER')")
        for (table, key) in [
            ("customers", "customerA"), ("projects", "projectA"), ("tasks", "taskA"), ("content", "draftA"),
            ("appointments", "appointmentA"),
        ] {
            #expect(
                try await harness.effect("update public.\(table) set organization_id = :orgB where id = :\(key)", as: .owner)
                    == .failed("42501"),
                "\(table)")
            #expect(
                try await harness.effect("update public.\(table) set organization_id = :orgB where id = :\(key)", as: .service)
                    == .failed("42501"), "\(table) as service")
        }
    }

    @Test func everyoneARowNamesMustBelongToItsOrganization() async throws {
        let harness = try await Harness.make(logger: logger)
        #expect(
            try await harness.effect(
                "insert into public.tasks (project_id, title, created_by, assigned_to) values (:projectA, 'T', :member, :outsider)",
                as: .member
            ) == .failed("23503"))
        #expect(
            try await harness.effect("update public.tasks set assigned_to = :outsider where id = :taskA", as: .member) == .failed("23503"))
        #expect(
            try await harness.effect(
                "insert into public.notifications (user_id, organization_id, title, message) values (:outsider, :orgA, 'Hi', 'there')",
                as: .member
            ) == .failed("23503"))
        #expect(
            try await harness.effect(
                "insert into public.notifications (user_id, organization_id, title, message) values (:outsider, :orgA, 'Hi', 'there')",
                as: .service
            ) == .failed("23503"))
        #expect(
            try await harness.effect("update public.customers set assigned_to = :outsider where id = :customerA", as: .admin)
                == .failed("23503"))
        #expect(
            try await harness.effect("update public.appointments set assigned_to = :outsider where id = :appointmentA", as: .admin)
                == .failed("23503"))
        #expect(
            try await harness.effect("update public.projects set project_manager_id = :outsider where id = :projectA", as: .admin)
                == .failed("23503"))
        #expect(try await harness.effect("update public.tasks set assigned_to = :viewer where id = :taskA", as: .member) == .rows(1))
    }

    @Test func usersChangeOnlyTheirOwnProfilesEditableFields() async throws {
        let harness = try await Harness.make(logger: logger)
        #expect(
            try await harness.effect(
                "update public.users set name = 'Me', avatar_url = 'https://x.test/me.png' where id = :member", as: .member)
                == .rows(1))
        #expect(try await harness.effect("update public.users set role = 'ADMIN' where id = :member", as: .member) == .failed("42501"))
        #expect(
            try await harness.effect("update public.users set email = 'me@evil.test' where id = :member", as: .member) == .failed("42501"))
        #expect(
            try await harness.effect("update public.users set subscription_tier = 'PRO' where id = :member", as: .member)
                == .failed("42501"))
        #expect(try await harness.effect("update public.users set name = 'Not you' where id = :viewer", as: .member) == .rows(0))
        #expect(try await harness.effect("update public.users set name = 'Not you' where id = :viewer", as: .platformAdmin) == .rows(0))
    }

    @Test func aTaskBelongsToItsProjectsOrganization() async throws {
        let harness = try await Harness.make(logger: logger)
        try await harness.setUp(
            "insert into public.projects (id, organization_id, name, project_manager_id) values (:orgC, :orgB, 'B project', :outsider)")
        // Omitted: filled from the project.
        #expect(
            try await harness.effect(
                "insert into public.tasks (project_id, title, created_by) values (:projectA, 'T', :member)", as: .member, commit: true
            ) == .rows(1))
        #expect(
            try await harness.effect(
                "select count(*)::int from public.tasks where title = 'T' and organization_id = :orgA", as: .member
            ) == .rows(1))
        // Contradicting the project: refused even for the service.
        #expect(
            try await harness.effect(
                "insert into public.tasks (project_id, organization_id, title) values (:projectA, :orgB, 'T')", as: .service
            ) == .failed("23503"))
        #expect(try await harness.effect("update public.tasks set project_id = :orgC where id = :taskA", as: .service) == .failed("23503"))
    }

    @Test func crossTenantAttemptsByIdAffectNothing() async throws {
        let harness = try await Harness.make(logger: logger)
        // The outsider's own rows in organization B (the project's id reuses the orgC key's uuid).
        try await harness.setUp(
            """
            insert into public.projects (id, organization_id, name, project_manager_id) values (:orgC, :orgB, 'B project', :outsider)
            """)
        let targets = [
            ("customers", "customerA"), ("projects", "projectA"), ("tasks", "taskA"), ("notifications", "notificationA"),
            ("attachments", "attachmentA"), ("appointments", "appointmentA"), ("ai_conversations", "aiConversationA"),
            ("content", "draftA"), ("conversations", "conversationA"), ("subscriptions", "subscriptionA"),
        ]
        for (table, key) in targets {
            #expect(
                try await harness.effect("select count(*)::int from public.\(table) where id = :\(key)", as: .outsider) == .rows(0),
                "\(table)")
            let update = try await harness.effect("update public.\(table) set created_at = now() where id = :\(key)", as: .outsider)
            #expect(update == .rows(0) || update == .failed("42501"), "\(table): \(update)")
            let delete = try await harness.effect("delete from public.\(table) where id = :\(key)", as: .outsider)
            #expect(delete == .rows(0) || delete == .failed("42501"), "\(table): \(delete)")
        }
        // Re-parenting: pointing their own rows at organization A's.
        #expect(
            try await harness.effect(
                "insert into public.tasks (project_id, title, created_by) values (:projectA, 'Sneaky', :outsider)", as: .outsider
            ) == .failed("42501"))
        #expect(
            try await harness.effect(
                "insert into public.tasks (project_id, organization_id, title, created_by) values (:projectA, :orgB, 'Sneaky', :outsider)",
                as: .outsider
            ) == .failed("23503"))
        #expect(
            try await harness.effect(
                "insert into public.projects (organization_id, name, customer_id, project_manager_id) values (:orgB, 'P', :customerA, :outsider)",
                as: .outsider
            ) == .failed("23503"))
        #expect(
            try await harness.effect("update public.projects set customer_id = :customerA where id = :orgC", as: .outsider)
                == .failed("23503"))
        #expect(
            try await harness.effect(
                "insert into public.organization_members (user_id, organization_id, role) values (:outsider, :orgA, 'OWNER')", as: .outsider
            ) == .failed("42501"))
        #expect(
            try await harness.effect(
                "insert into storage.objects (bucket_id, name, owner) values ('attachments', :orgA::text || '/x/y/z.pdf', :outsider)",
                as: .outsider
            ) == .failed("42501"))
    }

    @Test func theCurrentOrganizationIsOneTheCallerBelongsTo() async throws {
        let harness = try await Harness.make(logger: logger)
        try await harness.setUp(
            """
            insert into public.organization_members (user_id, organization_id, role, joined_at)
            values (:member, :orgB, 'VIEWER', now() - interval '1 day')
            """)
        let member = harness.fixture.id("member")
        func orgOf(_ identity: RequestIdentity) async throws -> Effect {
            try await harness.effect("select count(*)::int from (select app.current_user_org() as org) s where org = :orgA", as: identity)
        }
        // The earliest-joined membership (B), unless the token names another of theirs.
        #expect(try await orgOf(TenantFixture.userIdentity(member)) == .rows(0))
        #expect(try await orgOf(TenantFixture.userIdentity(member, organization: harness.fixture.id("orgA"))) == .rows(1))
        // A claim naming an organization they do not belong to is ignored.
        #expect(try await orgOf(TenantFixture.userIdentity(member, organization: harness.fixture.id("orgC"))) == .rows(0))
    }

    @Test func roleHelpersAnswerForTheCallerInTheNamedOrganization() async throws {
        let harness = try await Harness.make(logger: logger)
        // is_org_owner means owner of that organization, not of any.
        #expect(try await harness.effect("select count(*)::int where app.is_org_owner(:orgA)", as: .outsider) == .rows(0))
        #expect(try await harness.effect("select count(*)::int where app.is_org_owner(:orgB)", as: .outsider) == .rows(1))
        #expect(try await harness.effect("select count(*)::int where app.is_org_admin(:orgA)", as: .admin) == .rows(1))
        #expect(try await harness.effect("select count(*)::int where app.is_org_member(:orgA)", as: .outsider) == .rows(0))
        #expect(try await harness.effect("select count(*)::int where app.is_admin()", as: .platformAdmin) == .rows(1))
    }

    @Test func theHelpersOfAnyUserIDAreTheServicesAlone() async throws {
        let harness = try await Harness.make(logger: logger)
        #expect(try await harness.effect("select cardinality(app.org_ids(:owner))", as: .outsider) == .failed("42501"))
        #expect(try await harness.effect("select count(*)::int where app.is_org_member(:owner, :orgA)", as: .member) == .failed("42501"))
        #expect(try await harness.effect("select count(*)::int where app.is_org_member(:owner, :orgA)", as: .service) == .rows(1))
    }

    @Test func aProfileMirrorsItsAccount() async throws {
        let harness = try await Harness.make(logger: logger)
        try await harness.setUp(
            "insert into auth.users (id, email, raw_user_meta_data) values (:orgC, 'new@a.test', '{\"name\": \"New Person\"}')")
        #expect(
            try await harness.effect(
                "select count(*)::int from public.users where id = :orgC and name = 'New Person' and email = 'new@a.test'", as: .service)
                == .rows(1))
        try await harness.setUp("update auth.users set email = 'renamed@a.test' where id = :orgC")
        #expect(
            try await harness.effect("select count(*)::int from public.users where id = :orgC and email = 'renamed@a.test'", as: .service)
                == .rows(1))
    }

    @Test func requestsCannotReachAuthsTables() async throws {
        let harness = try await Harness.make(logger: logger)
        #expect(try await harness.effect("select count(*)::int from auth.users", as: .member) == .failed("42501"))
        #expect(try await harness.effect("select count(*)::int from auth.refresh_tokens", as: .anon) == .failed("42501"))
    }

    @Test func createOrganizationMakesTheCallerItsOwner() async throws {
        let harness = try await Harness.make(logger: logger)
        #expect(
            try await harness.effect(
                "select count(*)::int from public.create_organization('Fresh', 'fresh-org')",
                as: TenantFixture.userIdentity(harness.fixture.id("candidate"))) == .rows(1))
        #expect(
            try await harness.effect("select count(*)::int from public.create_organization('Fresh', 'fresh-org-2')", as: .anon)
                == .failed("42501"))
        #expect(
            try await harness.effect("select count(*)::int from public.create_organization('Bad slug', 'Not A Slug')", as: .member)
                == .failed("23514"))
    }
}
