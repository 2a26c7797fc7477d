import Logging
import PostgresNIO
import StriveDatabase
import StriveTestSupport
import Testing

@Suite("Migrator")
struct MigratorTests {
    let logger = Logger(label: "test.migrator")

    func migration(_ file: String, _ sql: String) throws -> Migration {
        try Migration(fileName: file, sql: sql)
    }

    func appliedVersions(_ database: TestDatabase) async throws -> [Int] {
        try await database.withOwnerConnection { connection in
            var versions: [Int] = []
            for try await version in try await connection.query(
                "select version from strive_meta.schema_migrations order by version", logger: logger
            ).decode(Int.self) { versions.append(version) }
            return versions
        }
    }

    @Test func appliesBundledMigrationsOnceAndCreatesRolesAndAuthFunctions() async throws {
        let database = try await TestCluster.shared.makeDatabase(migrated: false)
        let migrator = try Migrator(migrations: try Migration.bundled())
        let first = try await database.withOwnerConnection { try await migrator.migrate(on: $0, logger: logger) }
        #expect(first.map(\.fileName) == migrator.migrations.map(\.fileName))
        let second = try await database.withOwnerConnection { try await migrator.migrate(on: $0, logger: logger) }
        #expect(second.isEmpty)
        let status = try await database.withOwnerConnection { try await migrator.status(on: $0, logger: logger) }
        #expect(status.isCurrent)

        let (roles, functions, checksum) = try await database.withOwnerConnection { connection in
            let roles = try await connection.query(
                """
                select string_agg(rolname || ':' || rolcanlogin || ':' || rolbypassrls || ':' || rolsuper, ',' order by rolname)
                from pg_roles where rolname in ('anon','authenticated','service_role','authenticator')
                """, logger: logger
            ).collect().first?.decode(String.self)
            let functions = try await connection.query(
                "select count(*)::int from pg_proc p join pg_namespace n on n.oid = p.pronamespace where n.nspname = 'auth' and proname in ('uid','role','jwt')",
                logger: logger
            ).collect().first?.decode(Int.self)
            let checksum = try await connection.query(
                "select checksum from strive_meta.schema_migrations where version = 1", logger: logger
            ).collect().first?.decode(String.self)
            return (roles, functions, checksum)
        }
        #expect(
            roles == "anon:false:false:false,authenticated:false:false:false,authenticator:true:false:false,service_role:false:true:false")
        #expect(functions == 3)
        #expect(checksum == migrator.migrations.first?.checksum)
    }

    @Test func concurrentMigratorsApplyEachFileExactlyOnce() async throws {
        let database = try await TestCluster.shared.makeDatabase(migrated: false)
        // The second file sleeps so the runs overlap; a duplicate application would fail on the table.
        let migrations = [
            try migration("0001_one.sql", "create table counter(id int primary key); insert into counter values (1);"),
            try migration("0002_two.sql", "select pg_sleep(0.3); create table second_table(id int);"),
        ]
        let migrator = try Migrator(migrations: migrations)
        let results = try await withThrowingTaskGroup(of: [Migration].self) { group in
            for _ in 0..<4 {
                group.addTask { try await database.withOwnerConnection { try await migrator.migrate(on: $0, logger: logger) } }
            }
            return try await group.reduce(into: [[Migration]]()) { $0.append($1) }
        }
        #expect(results.map(\.count).reduce(0, +) == 2)
        #expect(results.filter { !$0.isEmpty }.count == 1)
        #expect(try await appliedVersions(database) == [1, 2])
    }

    @Test func editedMigrationIsAHardErrorNamingTheFile() async throws {
        let database = try await TestCluster.shared.makeDatabase(migrated: false)
        let original = try Migrator(migrations: [try migration("0001_base.sql", "create table base(id int);")])
        try await database.withOwnerConnection { _ = try await original.migrate(on: $0, logger: logger) }
        let edited = try Migrator(migrations: [
            try migration("0001_base.sql", "create table base(id bigint);"),
            try migration("0002_next.sql", "create table next_one(id int);"),
        ])
        await #expect(throws: MigrationError.checksumMismatch(fileName: "0001_base.sql")) {
            try await database.withOwnerConnection { try await edited.migrate(on: $0, logger: logger) }
        }
        #expect(try await appliedVersions(database) == [1])
        let description = MigrationError.checksumMismatch(fileName: "0001_base.sql").description
        #expect(description.contains("0001_base.sql"))
    }

    @Test func brokenMigrationRollsBackEntirelyAndNamesTheFile() async throws {
        let database = try await TestCluster.shared.makeDatabase(migrated: false)
        let migrator = try Migrator(migrations: [
            try migration("0001_good.sql", "create table good(id int);"),
            try migration("0002_broken.sql", "create table half(id int); insert into half values (1); create tabel oops();"),
        ])
        let error = await #expect(throws: MigrationError.self) {
            try await database.withOwnerConnection { try await migrator.migrate(on: $0, logger: logger) }
        }
        guard case .failed(let file, let state, _) = try #require(error) else {
            Issue.record("expected .failed, got \(String(describing: error))")
            return
        }
        #expect(file == "0002_broken.sql")
        #expect(state == "42601")
        #expect(try await appliedVersions(database) == [1])
        let halfExists = try await database.withOwnerConnection { connection in
            try await connection.query("select to_regclass('public.half') is not null", logger: logger).collect().first?.decode(Bool.self)
        }
        #expect(halfExists == false)
    }

    @Test func databaseAheadOfThisBuildIsReported() async throws {
        let database = try await TestCluster.shared.makeDatabase(migrated: false)
        let newer = try Migrator(migrations: [
            try migration("0001_a.sql", "select 1;"), try migration("0002_b.sql", "select 2;"),
        ])
        try await database.withOwnerConnection { _ = try await newer.migrate(on: $0, logger: logger) }
        let older = try Migrator(migrations: [try migration("0001_a.sql", "select 1;")])
        let status = try await database.withOwnerConnection { try await older.status(on: $0, logger: logger) }
        #expect(status.problems == [.unknownAppliedVersion(version: 2, name: "b")])
        #expect(!status.isCurrent)
    }

    @Test(arguments: ["1_short.sql", "0001-dash.sql", "0001_Upper.sql", "0000_zero.sql", "0001_.sql", "notes.txt"])
    func invalidFileNamesAreRefused(name: String) {
        #expect(throws: MigrationError.invalidFileName(name)) { try Migration(fileName: name, sql: "select 1") }
    }

    @Test func duplicateVersionsAreRefused() throws {
        #expect(throws: MigrationError.duplicateVersion("0001_a.sql", "0001_b.sql")) {
            try Migrator(migrations: [try migration("0001_a.sql", ""), try migration("0001_b.sql", "")])
        }
    }
}
