import Foundation
import Logging
import PostgresNIO
import StriveDatabase
import StriveTestSupport
import Testing

@Suite("Demo seed")
struct DemoSeedTests {
    let logger = Logger(label: "test.seed")

    @Test func seedsTheDemoOnceAndItsAccountsSeeOnlyTheirOrganization() async throws {
        let database = try await TestCluster.shared.makeDatabase()
        let logger = self.logger
        let first = try await database.withOwnerConnection { try await DemoSeed.run(scale: 1, on: $0, logger: logger) }
        #expect(first.organizations == 2)
        #expect(first.users == 10)
        #expect(first.customers == 50)
        #expect(first.projects == 10)
        #expect(first.tasks == 200)
        #expect(first.notifications == 10)
        #expect(first.logins.count == 11)
        #expect(first.logins.first?.email == "owner@acme.example")

        let again = try await database.withOwnerConnection { try await DemoSeed.run(scale: 1, on: $0, logger: logger) }
        #expect(again == first, "a second run adds nothing")

        let (passwordMatches, memberID) = try await database.withOwnerConnection { connection in
            let row = try await connection.query(
                """
                select encrypted_password = extensions.crypt(\(DemoSeed.password), encrypted_password), id
                from auth.users where email = 'member@acme.example'
                """, logger: logger
            ).collect().first
            return try #require(row).decode((Bool, UUID).self)
        }
        #expect(passwordMatches)

        // Through the request path, the member sees Acme's rows only.
        let seen = try await database.withDatabase { db in
            try await db.withRequestTransaction(TenantFixture.userIdentity(memberID)) { connection in
                try await connection.query(
                    "select (select count(*)::int from public.tasks), (select count(*)::int from public.organizations), (select count(*)::int from public.notifications)",
                    logger: logger
                ).collect().first?.decode((Int, Int, Int).self)
            }
        }
        #expect(seen?.0 == 100)
        #expect(seen?.1 == 1)
        #expect(seen?.2 == 2)

        let audit = try await database.withOwnerConnection { try await SchemaAudit.run(on: $0, logger: logger) }
        #expect(audit.score == 100)
    }

    @Test func scaleMultipliesTheDataset() async throws {
        let database = try await TestCluster.shared.makeDatabase()
        let logger = self.logger
        let summary = try await database.withOwnerConnection { try await DemoSeed.run(scale: 3, on: $0, logger: logger) }
        #expect(summary.organizations == 6)
        #expect(summary.tasks == 600)
        #expect(summary.customers == 150)
    }
}
