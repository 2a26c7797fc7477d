import Foundation
import Logging
import PostgresNIO
import StriveCore
import StriveDatabase
import StriveRealtime
import StriveServer
import StriveTestSupport
import Testing

/// `STRIVE_PRODUCT_SCHEMA=none`: the platform — auth, storage, realtime, migrations, verify — on an empty
/// `public` schema, for a team's own product.
@Suite("A platform without a product", .serialized)
struct ProductSchemaTests {
    let logger = Logger(label: "test.product-schema")

    /// A team's first migration: a table of its own with its own policies, published for realtime.
    static let notes = """
        create table public.notes (
            id uuid primary key default gen_random_uuid(),
            owner uuid not null default auth.uid() references auth.users (id) on delete cascade,
            body text not null check (length(body) between 1 and 500)
        );
        create index notes_owner_idx on public.notes (owner);
        alter table public.notes enable row level security;
        alter table public.notes force row level security;
        create policy notes_own on public.notes for all to authenticated
            using (owner = (select auth.uid())) with check (owner = (select auth.uid()));
        grant select, insert, update, delete on public.notes to authenticated;
        grant select, insert, update, delete on public.notes to service_role;
        select realtime.publish('public.notes');
        """

    /// A fresh database migrated without a product (and, when `withNotes`, with the team's migration).
    func productLessDatabase(withNotes: Bool = false) async throws -> TestDatabase {
        let database = try await TestCluster.shared.makeDatabase(migrated: false)
        let project = withNotes ? [try ProjectMigration(fileName: "20261207000000_notes.sql", sql: Self.notes)] : []
        let migrator = try Migrator(migrations: try Migration.bundled(product: .none), project: project)
        try await database.withOwnerConnection { connection in
            _ = try await migrator.migrate(on: connection, logger: logger)
        }
        return database
    }

    /// Two users signed up through `/auth/v1/signup` (autoconfirmed) and their access tokens.
    static func signUpTwoUsers(_ http: TestHTTP, anon: String) async throws -> (String, String) {
        var tokens: [String] = []
        for name in ["ada", "bob"] {
            let email = "\(name)-\(UUID().uuidString.prefix(8))@example.com"
            let signUp = try await http.send(
                .post, "/auth/v1/signup", apikey: anon, json: #"{"email":"\#(email)","password":"correct horse battery"}"#)
            #expect(signUp.status == .ok, "\(signUp.text)")
            tokens.append(try await http.accessToken(email: email, password: "correct horse battery", apikey: anon))
        }
        return (tokens[0], tokens[1])
    }

    @Test func thePublicSchemaStartsEmpty() async throws {
        let database = try await productLessDatabase()
        let (tables, functions, buckets) = try await database.withOwnerConnection { connection in
            try await connection.query(
                """
                select (select count(*) from pg_catalog.pg_tables where schemaname = 'public')::int,
                       (select count(*) from pg_catalog.pg_proc p join pg_catalog.pg_namespace n on n.oid = p.pronamespace
                        where n.nspname = 'public')::int,
                       (select count(*) from storage.buckets)::int
                """, logger: logger
            ).collect().first?.decode((Int, Int, Int).self) ?? (-1, -1, -1)
        }
        #expect(tables == 0 && functions == 0 && buckets == 0)
    }

    @Test func verifyPassesWithoutTheProductsLints() async throws {
        let database = try await productLessDatabase(withNotes: true)
        let report = try await database.withOwnerConnection { try await SchemaAudit.run(on: $0, logger: logger) }
        #expect(report.findings == [], "\(report.findings)")
        #expect(report.score == 100)
        #expect(!report.lintsRun.contains("bucket_without_policies"), "the Strive product's bucket lints do not apply")
        #expect(report.lintsRun.contains("realtime_not_wired"))
    }

    @Test func aDatabaseKeepsTheProductSchemaItWasCreatedWith() async throws {
        let productLess = try await productLessDatabase()
        let strive = try Migrator(migrations: try Migration.bundled(product: .strive))
        try await productLess.withOwnerConnection { connection in
            let status = try await strive.status(on: connection, logger: logger)
            #expect(status.problems == [.productSchemaMismatch(database: .none, configured: .strive)])
            await #expect(throws: MigrationError.productSchemaMismatch(database: .none, configured: .strive)) {
                try await strive.migrate(on: connection, logger: logger)
            }
        }
        let withProduct = try await TestCluster.shared.makeDatabase()
        let none = try Migrator(migrations: try Migration.bundled(product: .none))
        try await withProduct.withOwnerConnection { connection in
            let status = try await none.status(on: connection, logger: logger)
            #expect(status.problems == [.productSchemaMismatch(database: .strive, configured: .none)])
            #expect(try await ProductSchema.installed(on: connection, logger: logger) == .strive)
        }
        #expect(try await productLess.withOwnerConnection { try await ProductSchema.installed(on: $0, logger: logger) } == .none)
    }

    @Test func aTeamsPublishedTableDeliversItsChangesToItsOwnerOnly() async throws {
        let database = try await productLessDatabase(withNotes: true)
        try await database.withLiveApp(environment: ["STRIVE_AUTH_AUTOCONFIRM": "true"], product: .none) { client, services in
            let http = TestHTTP(client)
            let anon = services.anonKey
            let (ada, bob) = try await Self.signUpTwoUsers(http, anon: anon)
            let url = TestSocket.realtimeURL(base: "http://127.0.0.1:\(try #require(client.port))", apikey: anon)
            let config = changesConfig([(event: "INSERT", table: "notes", filter: nil)])
            try await TestSocket.connect(url: url) { owner in
                try await TestSocket.connect(url: url) { other in
                    #expect(try await owner.join("notes", config: config, token: ada).status == "ok")
                    #expect(try await other.join("notes", config: config, token: bob).status == "ok")
                    let created = try await http.send(.post, "/rest/v1/notes", apikey: anon, bearer: ada, json: #"{"body":"hello"}"#)
                    #expect(created.status == .created, "\(created.text)")
                    let delivered = await owner.waitForChanges("notes", count: 1)
                    #expect(delivered.first?.record["body"] == "hello")
                    #expect(await other.waitForChanges("notes", count: 1, timeout: .seconds(1)).isEmpty, "row-level security decides")
                }
            }
        }
    }

    @Test func aTeamsOwnTableIsReadAndWrittenUnderItsOwnPolicies() async throws {
        let database = try await productLessDatabase(withNotes: true)
        try await database.withLiveApp(environment: ["STRIVE_AUTH_AUTOCONFIRM": "true"], product: .none) { client, services in
            let http = TestHTTP(client)
            let anon = services.anonKey
            let (ada, bob) = try await Self.signUpTwoUsers(http, anon: anon)
            let created = try await http.send(
                .post, "/rest/v1/notes", apikey: anon, bearer: ada, headers: TestHTTP.fields(["Prefer": "return=representation"]),
                json: #"{"body":"mine"}"#)
            #expect(created.status == .created, "\(created.text)")
            #expect(try await http.send(.get, "/rest/v1/notes?select=body", apikey: anon, bearer: ada).array.count == 1)
            #expect(try await http.send(.get, "/rest/v1/notes?select=body", apikey: anon, bearer: bob).array.isEmpty)
            let refused = try await http.send(.get, "/rest/v1/organizations", apikey: anon, bearer: ada)
            #expect(refused.status == .notFound, "no product tables: \(refused.text)")
        }
    }

    @Test func storageObjectsAreTheServiceRolesUntilTheTeamWritesPolicies() async throws {
        let database = try await productLessDatabase()
        try await database.withLiveApp(environment: ["STRIVE_AUTH_AUTOCONFIRM": "true"], product: .none) { client, services in
            let http = TestHTTP(client)
            let anon = services.anonKey
            let (ada, _) = try await Self.signUpTwoUsers(http, anon: anon)
            let service = try await APIKeys.derive(role: .serviceRole, secret: TestCluster.jwtSecret)
            let bucket = try await http.send(
                .post, "/storage/v1/bucket", apikey: service, bearer: service, json: #"{"name":"uploads","public":false}"#)
            #expect(bucket.status == .ok, "\(bucket.text)")
            let upload = try await http.send(
                .post, "/storage/v1/object/uploads/first.txt", apikey: service, bearer: service,
                headers: TestHTTP.fields(["Content-Type": "text/plain"]), body: .init(string: "hello"))
            #expect(upload.status == .ok, "\(upload.text)")
            let read = try await http.send(.get, "/storage/v1/object/uploads/first.txt", apikey: service, bearer: service)
            #expect(read.status == .ok && read.text == "hello")
            let unpoliced = try await http.send(.get, "/storage/v1/object/uploads/first.txt", apikey: anon, bearer: ada)
            #expect(unpoliced.status != .ok, "no storage policies yet: users read nothing")
            let refusedUpload = try await http.send(
                .post, "/storage/v1/object/uploads/mine.txt", apikey: anon, bearer: ada,
                headers: TestHTTP.fields(["Content-Type": "text/plain"]), body: .init(string: "mine"))
            #expect(refusedUpload.status != .ok, "\(refusedUpload.text)")
        }
    }
}
