import Foundation
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

    @Test func theBundledMigrationsApplyOnce() async throws {
        let database = try await TestCluster.shared.makeDatabase(migrated: false)
        let migrator = try Migrator(migrations: try Migration.bundled())
        let first = try await database.withOwnerConnection { try await migrator.migrate(on: $0, logger: logger) }
        #expect(first == migrator.migrations.map(\.fileName))
        let second = try await database.withOwnerConnection { try await migrator.migrate(on: $0, logger: logger) }
        #expect(second.isEmpty)
        let status = try await database.withOwnerConnection { try await migrator.status(on: $0, logger: logger) }
        #expect(status.isCurrent)
    }

    @Test func theMigratedDatabaseHasTheRequestRolesAndAuthFunctions() async throws {
        let database = try await TestCluster.shared.makeDatabase()
        let migrator = try Migrator(migrations: try Migration.bundled())
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
        let results = try await withThrowingTaskGroup(of: [String].self) { group in
            for _ in 0..<4 {
                group.addTask { try await database.withOwnerConnection { try await migrator.migrate(on: $0, logger: logger) } }
            }
            return try await group.reduce(into: [[String]]()) { $0.append($1) }
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

    @Test func aBrokenMigrationLeavesNothingOfItself() async throws {
        let database = try await TestCluster.shared.makeDatabase(migrated: false)
        let migrator = try Migrator(migrations: [
            try migration("0001_good.sql", "create table good(id int);"),
            try migration("0002_broken.sql", "create table half(id int); insert into half values (1); create tabel oops();"),
        ])
        let error = await #expect(throws: MigrationError.self) {
            try await database.withOwnerConnection { try await migrator.migrate(on: $0, logger: logger) }
        }
        guard case .failed(let file, let line, let state, _) = try #require(error) else {
            Issue.record("expected .failed, got \(String(describing: error))")
            return
        }
        #expect(file == "0002_broken.sql")
        #expect(line == 1)
        #expect(state == "42601")
        #expect(try await appliedVersions(database) == [1])
        let halfExists = try await database.withOwnerConnection { connection in
            try await connection.query("select to_regclass('public.half') is not null", logger: logger).collect().first?.decode(Bool.self)
        }
        #expect(halfExists == false)
    }

    // MARK: Project migrations

    func project(_ file: String, _ sql: String) throws -> ProjectMigration {
        try ProjectMigration(fileName: file, sql: sql)
    }

    func appliedProjectFiles(_ database: TestDatabase) async throws -> [String] {
        try await database.withOwnerConnection { connection in
            try await connection.rows("select file_name from strive_meta.project_migrations order by file_name", logger: logger)
                .map { try $0.decode(String.self) }
        }
    }

    @Test func projectMigrationsApplyAfterTheBuiltInOnesInNameOrderOnce() async throws {
        let database = try await TestCluster.shared.makeDatabase(migrated: false)
        let builtIn = [try migration("0001_base.sql", "create table base(id int primary key);")]
        // Out of order on purpose: the second file needs the first one's table, and both need the built-in one.
        let files = [
            try project("20261130120500_widget_rows.sql", "insert into widgets (base_id) select id from base;"),
            try project("20261130120000_widgets.sql", "insert into base values (7);\ncreate table widgets (base_id int references base);"),
        ]
        let migrator = try Migrator(migrations: builtIn, project: files)
        #expect(migrator.fileCount == 3)
        let applied = try await database.withOwnerConnection { try await migrator.migrate(on: $0, logger: logger) }
        #expect(applied == ["0001_base.sql", "20261130120000_widgets.sql", "20261130120500_widget_rows.sql"])
        #expect(try await appliedProjectFiles(database) == ["20261130120000_widgets.sql", "20261130120500_widget_rows.sql"])
        let again = try await database.withOwnerConnection { try await migrator.migrate(on: $0, logger: logger) }
        #expect(again.isEmpty)
        let status = try await database.withOwnerConnection { try await migrator.status(on: $0, logger: logger) }
        #expect(status.isCurrent)
        #expect(status.projectApplied == ["20261130120000_widgets.sql", "20261130120500_widget_rows.sql"])
        let widgets = try await database.withOwnerConnection { connection in
            try await connection.rows("select count(*)::int from widgets", logger: logger).first?.decode(Int.self)
        }
        #expect(widgets == 1)
    }

    @Test func anEditedProjectMigrationIsRefusedByName() async throws {
        let database = try await TestCluster.shared.makeDatabase(migrated: false)
        let first = try Migrator(migrations: [], project: [try project("1_things.sql", "create table things(id int);")])
        try await database.withOwnerConnection { _ = try await first.migrate(on: $0, logger: logger) }
        let edited = try Migrator(
            migrations: [],
            project: [
                try project("1_things.sql", "create table things(id bigint);"), try project("2_more.sql", "create table more(id int);"),
            ])
        await #expect(throws: MigrationError.checksumMismatch(fileName: "1_things.sql")) {
            try await database.withOwnerConnection { try await edited.migrate(on: $0, logger: logger) }
        }
        #expect(try await appliedProjectFiles(database) == ["1_things.sql"])
        // A file that was applied and is gone from the folder is reported too.
        let gone = try Migrator(migrations: [], project: [])
        let status = try await database.withOwnerConnection { try await gone.status(on: $0, logger: logger) }
        #expect(status.problems == [.unknownAppliedProjectMigration(fileName: "1_things.sql")])
    }

    @Test func aFailingProjectMigrationLeavesNothingOfItself() async throws {
        let database = try await TestCluster.shared.makeDatabase(migrated: false)
        let migrator = try Migrator(
            migrations: [],
            project: [
                try project("1_good.sql", "create table good(id int);"),
                try project("2_broken.sql", "create table half(id int);\ninsert into half values (1);\n\ncreate tabel oops();\n"),
                try project("3_later.sql", "create table later(id int);"),
            ])
        let error = await #expect(throws: MigrationError.self) {
            try await database.withOwnerConnection { try await migrator.migrate(on: $0, logger: logger) }
        }
        #expect(error == .failed(fileName: "2_broken.sql", line: 4, sqlState: "42601", message: #"syntax error at or near "tabel""#))
        #expect(error?.description.contains("2_broken.sql line 4") == true)
        #expect(try await appliedProjectFiles(database) == ["1_good.sql"])
        let (half, later) = try await database.withOwnerConnection { connection in
            let row = try await connection.rows(
                "select to_regclass('public.half') is not null, to_regclass('public.later') is not null", logger: logger
            ).first
            return try row?.decode((Bool, Bool).self) ?? (true, true)
        }
        #expect(!half && !later)
    }

    @Test func aDryRunOnlyReportsWhatWouldApply() async throws {
        let database = try await TestCluster.shared.makeDatabase(migrated: false)
        let builtIn = [try migration("0001_base.sql", "create table base(id int);")]
        let clean = try Migrator(migrations: builtIn, project: [try project("1_widgets.sql", "create table widgets(id int);")])
        let wouldApply = try await database.withOwnerConnection { try await clean.dryRun(on: $0, logger: logger) }
        #expect(wouldApply == ["0001_base.sql", "1_widgets.sql"])
        let status = try await database.withOwnerConnection { try await clean.status(on: $0, logger: logger) }
        #expect(status.pendingFileNames == ["0001_base.sql", "1_widgets.sql"])
        #expect(try await appliedVersions(database).isEmpty)
        let tables = try await database.withOwnerConnection { connection in
            try await connection.rows("select count(*)::int from pg_tables where tablename in ('base', 'widgets')", logger: logger).first?
                .decode(Int.self)
        }
        #expect(tables == 0)

        let broken = try Migrator(migrations: builtIn, project: [try project("1_widgets.sql", "create table widgets(id no_such_type);")])
        let error = await #expect(throws: MigrationError.self) {
            try await database.withOwnerConnection { try await broken.dryRun(on: $0, logger: logger) }
        }
        guard case .failed(let file, _, let state, _) = try #require(error) else {
            Issue.record("expected .failed, got \(String(describing: error))")
            return
        }
        #expect(file == "1_widgets.sql")
        #expect(state == "42704")
        #expect(try await appliedVersions(database).isEmpty)
    }

    @Test(arguments: ["widgets.sql", "1-widgets.sql", "1_Widgets.sql", "20261130_.sql", "1_widgets.txt"])
    func invalidProjectFileNamesAreRefused(name: String) {
        #expect(throws: MigrationError.invalidProjectFileName(name)) { try ProjectMigration(fileName: name, sql: "select 1") }
    }

    @Test func newFileNamesAreTimestampsAfterEveryExistingFile() throws {
        let date = Date(timeIntervalSince1970: 1_796_040_000) // 2026-11-30 12:00:00 UTC
        #expect(try ProjectMigration.newFileName("Add widgets!", at: date, after: []) == "20261130120000_add_widgets.sql")
        let ahead = [try project("20990101000000_future.sql", "select 1;")]
        #expect(try ProjectMigration.newFileName("next", at: date, after: ahead) == "20990101000001_next.sql")
        #expect(throws: MigrationError.invalidProjectFileName("42")) { try ProjectMigration.newFileName("42", at: date, after: []) }
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
