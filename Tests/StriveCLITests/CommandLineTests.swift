import Foundation
import StriveDatabase
import StriveTestSupport
import Testing

/// Bad input at the command line: one clear line, a non-zero exit, nothing changed.
@Suite("strive command line", .capacityBound)
struct CommandLineTests {
    @Test func helpNamesEverySubcommand() async throws {
        let output = try await StriveProcess.run(["--help"])
        #expect(output.status == 0)
        for command in ["serve", "migrate", "verify", "seed", "db", "version"] {
            #expect(output.stdout.contains(command))
        }
        let serveHelp = try await StriveProcess.run(["serve", "--help"])
        #expect(serveHelp.stdout.contains("STRIVE_JWT_SECRET"))
        #expect(serveHelp.stdout.contains("DATABASE_URL"))
    }

    @Test func versionPrintsTheVersion() async throws {
        let output = try await StriveProcess.run(["version"])
        #expect(output.status == 0)
        #expect(output.stdout.hasPrefix("strive "))
    }

    @Test(arguments: [["bogus"], ["serve", "--no-such-flag"], ["db", "explode"]])
    func anUnknownCommandOrFlagIsRefused(arguments: [String]) async throws {
        let output = try await StriveProcess.run(arguments)
        #expect(output.status == 64)
        #expect(output.stderr.contains(arguments.last ?? ""))
    }

    @Test func invalidConfigurationListsEveryProblemAndExits78() async throws {
        let dataDirectory = temporaryPath("strive-badconf")
        let output = try await StriveProcess.run(
            ["serve", "--data-dir", dataDirectory],
            environment: [
                "STRIVE_ENV": "production", "STRIVE_PORT": "http", "STRIVE_JWT_SECRET": "tooshort-secret-value",
                "STRIVE_LOG_LEVEL": "chatty",
            ])
        #expect(output.status == 78)
        #expect(output.stderr.contains("invalid configuration (6 problems)"))
        for variable in [
            "STRIVE_PORT", "STRIVE_JWT_SECRET", "STRIVE_LOG_LEVEL", "STRIVE_ANON_KEY", "STRIVE_SERVICE_ROLE_KEY", "STRIVE_SMTP_URL",
        ] {
            #expect(output.stderr.contains(variable))
        }
        #expect(!output.stderr.contains("tooshort-secret-value"))
        #expect(!FileManager.default.fileExists(atPath: dataDirectory), "nothing may be created on bad configuration")
    }

    @Test func malformedDatabaseURLIsAConfigurationErrorThatHidesThePassword() async throws {
        let output = try await StriveProcess.run(
            ["serve"],
            environment: [
                "DATABASE_URL": "mysql://admin:hunter2-secret@db:3306/app", "STRIVE_JWT_SECRET": TestCluster.jwtSecret.value,
                "STRIVE_DATA_DIR": temporaryPath("strive-badurl"),
            ])
        #expect(output.status == 78)
        #expect(output.stderr.contains("DATABASE_URL: must start with postgres:// or postgresql:// (got scheme 'mysql')"))
        #expect(!output.stderr.contains("hunter2"))
    }

    @Test func unreachableDatabaseIsOneClearLine() async throws {
        let port = try #require(LoopbackPort.free())
        let output = try await StriveProcess.run(
            ["serve", "--port", "0"],
            environment: [
                "DATABASE_URL": "postgres://owner:hunter2-secret@127.0.0.1:\(port)/app?sslmode=disable",
                "STRIVE_JWT_SECRET": TestCluster.jwtSecret.value, "STRIVE_DATA_DIR": temporaryPath("strive-unreach"),
            ])
        #expect(output.status == 69)
        #expect(output.stderr == "strive: cannot reach the database at 127.0.0.1:\(port)/app: connection refused\n")
    }

    @Test func dataDirectoryThatIsAFileIsRefusedAndLeftAlone() async throws {
        let path = temporaryPath("strive-datafile")
        defer { try? FileManager.default.removeItem(atPath: path) }
        #expect(FileManager.default.createFile(atPath: path, contents: Data("precious".utf8)))
        let withoutSecret = try await StriveProcess.run(["serve", "--data-dir", path])
        #expect(withoutSecret.status == 78)
        #expect(withoutSecret.stderr.contains("is a file, not a directory"))
        let withSecret = try await StriveProcess.run(
            ["serve", "--data-dir", path], environment: ["STRIVE_JWT_SECRET": TestCluster.jwtSecret.value])
        #expect(withSecret.status == 73)
        #expect(withSecret.stderr.contains("exists but is not a directory"))
        #expect(try String(contentsOfFile: path, encoding: .utf8) == "precious")
    }

    @Test func unwritableDataDirectoryIsRefused() async throws {
        let output = try await StriveProcess.run(
            ["serve", "--data-dir", "/proc/strive-cannot-exist"],
            environment: [
                "STRIVE_JWT_SECRET": TestCluster.jwtSecret.value
            ])
        #expect(output.status == 73)
        #expect(output.stderr.contains("data directory /proc/strive-cannot-exist is not writable"))
    }

    @Test func migrateAppliesAndReportsStatusOnAnExternalDatabase() async throws {
        let database = try await TestCluster.shared.makeDatabase(migrated: false)
        let started = database.started
        let url = try started.cluster.url(port: started.running.port, database: database.target.database)
        let status = try await StriveProcess.run(["migrate", "--status", "--database-url", url])
        #expect(status.status == 0)
        #expect(status.stdout.contains("pending  built-in  0001_roles_and_auth.sql"))
        #expect(status.stdout.contains("database is not current"))

        let applied = try await StriveProcess.run(["migrate"], environment: ["DATABASE_URL": url])
        #expect(applied.status == 0)
        #expect(applied.stdout.contains("applied  0001_roles_and_auth.sql"))

        let again = try await StriveProcess.run(["migrate", "--database-url", url])
        #expect(again.stdout.contains("nothing to apply"))

        // An applied file whose contents changed is a hard error naming it.
        try await database.withOwnerConnection { connection in
            try await connection.run(
                "update strive_meta.schema_migrations set checksum = 'edited' where version = 1", logger: database.logger)
        }
        let edited = try await StriveProcess.run(["migrate", "--database-url", url])
        #expect(edited.status == 65)
        #expect(edited.stderr.contains("migration 0001_roles_and_auth.sql was changed after it was applied"))
    }

    @Test func verifyScoresAFreshDatabaseAndFailsWhenSecurityIsBroken() async throws {
        let database = try await TestCluster.shared.makeDatabase()
        let started = database.started
        let url = try started.cluster.url(port: started.running.port, database: database.target.database)
        let healthy = try await StriveProcess.run(["verify", "--database-url", url])
        #expect(healthy.status == 0)
        #expect(healthy.stdout.contains("Health score: 100/100"))

        try await database.withOwnerConnection { connection in
            try await connection.run("alter table public.notifications disable row level security", logger: database.logger)
        }
        let broken = try await StriveProcess.run(["verify", "--database-url", url])
        #expect(broken.status == 1)
        #expect(broken.stdout.contains("rls_disabled"))
        #expect(broken.stdout.contains("public.notifications"))
        // Critical (RLS off) plus medium (a published table without RLS sends every change to every reader).
        #expect(broken.stdout.contains("Health score: 70/100"))

        let lenient = try await StriveProcess.run(["verify", "--json", "--min-score", "70", "--database-url", url])
        #expect(lenient.status == 0)
        let report = try JSONDecoder().decode(SchemaAudit.Report.self, from: Data(lenient.stdout.utf8))
        #expect(report.score == 70)
        #expect(report.findings.map(\.lint) == ["rls_disabled", "realtime_published_without_rls"])

        let invalid = try await StriveProcess.run(["verify", "--min-score", "101", "--database-url", url])
        #expect(invalid.status == 64)
    }

    @Test func dbCommandsExplainWhenThereIsNoCluster() async throws {
        let path = temporaryPath("strive-nocluster")
        let output = try await StriveProcess.run(["db", "url", "--data-dir", path])
        #expect(output.status != 0)
        #expect(output.stderr.contains("no local PostgreSQL cluster in \(path) yet"))
        let status = try await StriveProcess.run(["db", "status", "--data-dir", path])
        #expect(status.status == 0)
        #expect(status.stdout.contains("not initialised"))
    }
}

@Suite("strive keys", .capacityBound)
struct KeysCommandTests {
    @Test func keysRotateListAndRevoke() async throws {
        let database = try await TestCluster.shared.makeDatabase()
        let started = database.started
        let url = try started.cluster.url(port: started.running.port, database: database.target.database)
        let environment = ["STRIVE_JWT_SECRET": TestCluster.jwtSecret.value]
        func keys(_ arguments: [String]) async throws -> StriveProcess.Output {
            try await StriveProcess.run(["keys"] + arguments + ["--database-url", url], environment: environment)
        }
        #expect(try await keys(["list"]).stdout.contains("No signing keys: tokens are HS256"))
        let first = try await keys(["rotate"])
        #expect(first.status == 0 && first.stdout.contains("ES256  current"), "\(first.stderr)")
        let firstID = String(first.stdout.prefix { $0 != " " })
        let second = try await keys(["rotate", "--algorithm", "rs256"])
        let secondID = String(second.stdout.prefix { $0 != " " })
        #expect(second.stdout.contains("RS256  current"), "\(second.stderr)")
        let listed = try await keys(["list"])
        #expect(listed.stdout.contains("\(firstID)  ES256  previous") && listed.stdout.contains("\(secondID)  RS256  current"))

        let current = try await keys(["revoke", secondID])
        #expect(current.status != 0 && current.stderr.contains("rotate to a new key before revoking it"), "\(current.stderr)")
        #expect(try await keys(["revoke", firstID]).stdout.contains("\(firstID)  revoked"))
        #expect(try await keys(["revoke", "nope"]).stderr.contains("no signing key nope"))
        let invalid = try await keys(["rotate", "--algorithm", "HS512"])
        #expect(invalid.status == 64 && invalid.stderr.contains("--algorithm must be ES256 or RS256"))
    }
}
