import Foundation
import StriveTestSupport
import Testing

#if canImport(Glibc)
    import Glibc
#endif

/// The commands people run beside the server — `seed`, `migration`/`migrate`, `gen types` and the two `bench` tools — as the real binary on a
/// real cluster. The benchmarks' timings are not asserted (they belong to release builds on a quiet
/// machine); what they count is.
@Suite("strive seed, migration and bench", .capacityBound, .serialized)
struct ToolCommandTests {
    @Test func seedLoadsTheDemoDataAndPrintsItsLogins() async throws {
        let dataDirectory = temporaryPath("strive-seed")
        defer { try? FileManager.default.removeItem(atPath: dataDirectory) }
        let seeded = try await StriveProcess.run(["seed", "--scale", "1", "--data-dir", dataDirectory], timeout: .seconds(120))
        #expect(seeded.status == 0, "\(seeded.stderr)")
        #expect(seeded.stdout.contains(": 2 organizations,"), "\(seeded.stdout)")
        #expect(seeded.stdout.contains("member@acme.example"))

        let started = try await StriveProcess.run(["db", "start", "--data-dir", dataDirectory])
        #expect(started.status == 0, "\(started.stderr)")
        let url = try await StriveProcess.run(["db", "url", "--data-dir", dataDirectory]).stdout.trimmingCharacters(
            in: .whitespacesAndNewlines)
        #expect(try await psql(url, "select count(*) from public.organizations").trimmingCharacters(in: .whitespacesAndNewlines) == "2")
        #expect(try await StriveProcess.run(["db", "stop", "--data-dir", dataDirectory]).status == 0)
    }

    /// Refused before anything is touched: a production deployment, a schema without the CRM, a bad scale.
    @Test(arguments: [
        (["STRIVE_ENV": "production"], [String](), "refuses STRIVE_ENV=production"),
        (["STRIVE_PRODUCT_SCHEMA": "none"], [], "there is no such schema with STRIVE_PRODUCT_SCHEMA=none"),
        ([:], ["--scale", "0"], "--scale must be between 1 and 10000"),
    ])
    func seedRefusesWhatItCannotSeed(environment: [String: String], arguments: [String], reason: String) async throws {
        let dataDirectory = temporaryPath("strive-seed-refused")
        defer { try? FileManager.default.removeItem(atPath: dataDirectory) }
        let refused = try await StriveProcess.run(["seed", "--data-dir", dataDirectory] + arguments, environment: environment)
        #expect(refused.status != 0)
        #expect(refused.stderr.contains(reason), "\(refused.stderr)")
        #expect(!FileManager.default.fileExists(atPath: dataDirectory + "/pg"), "no cluster was created")
    }

    @Test func projectMigrationsAreCreatedCheckedAppliedAndNeverEdited() async throws {
        let dataDirectory = temporaryPath("strive-project")
        let folder = dataDirectory + "-migrations"
        defer {
            try? FileManager.default.removeItem(atPath: dataDirectory)
            try? FileManager.default.removeItem(atPath: folder)
        }
        let environment = ["STRIVE_MIGRATIONS_DIR": folder]
        let created = try await StriveProcess.run(["migration", "new", "Add widgets"], environment: environment)
        #expect(created.status == 0, "\(created.stderr)")
        let path = created.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        let fileName = URL(fileURLWithPath: path).lastPathComponent
        #expect(path.hasPrefix(folder + "/") && fileName.hasSuffix("_add_widgets.sql"), "\(path)")
        let header = try String(contentsOfFile: path, encoding: .utf8)
        #expect(header.hasPrefix("-- \(fileName)"))
        try (header + "create table public.widgets (id bigint primary key, name text not null);\n").write(
            toFile: path, atomically: true, encoding: .utf8)

        let migrate = ["migrate", "--data-dir", dataDirectory]
        let pending = try await StriveProcess.run(migrate + ["--status"], environment: environment, timeout: .seconds(120))
        #expect(pending.stdout.contains("pending  project   \(fileName)"), "\(pending.stdout)\(pending.stderr)")
        #expect(pending.stdout.contains("database is not current"))
        let dryRun = try await StriveProcess.run(migrate + ["--dry-run"], environment: environment, timeout: .seconds(120))
        #expect(dryRun.status == 0, "\(dryRun.stderr)")
        #expect(dryRun.stdout.contains("would apply  \(fileName)"))
        #expect(
            try await StriveProcess.run(migrate + ["--status"], environment: environment).stdout.contains("pending  project   \(fileName)"))
        let applied = try await StriveProcess.run(migrate, environment: environment, timeout: .seconds(120))
        #expect(applied.status == 0, "\(applied.stderr)")
        #expect(applied.stdout.contains("applied  \(fileName)"))
        let current = try await StriveProcess.run(migrate + ["--status"], environment: environment)
        #expect(current.stdout.contains("applied  project   \(fileName)"))
        #expect(current.stdout.contains("database is current"))

        // The project's table is in the generated client types.
        let typescript = try await StriveProcess.run(["gen", "types", "--lang", "typescript", "--data-dir", dataDirectory])
        #expect(typescript.status == 0, "\(typescript.stderr)")
        #expect(
            typescript.stdout.contains("      widgets: {\n        Row: {\n          id: number\n          name: string\n"),
            "\(typescript.stdout)")
        let swiftFile = folder + "/Database.swift.txt"
        let swift = try await StriveProcess.run(["gen", "types", "--lang", "swift", "-o", swiftFile, "--data-dir", dataDirectory])
        #expect(swift.status == 0 && swift.stdout.isEmpty, "\(swift.stderr)")
        #expect(try String(contentsOfFile: swiftFile, encoding: .utf8).contains("public enum Widgets {"))
        let unknownLanguage = try await StriveProcess.run(["gen", "types", "--lang", "kotlin", "--data-dir", dataDirectory])
        #expect(unknownLanguage.status != 0 && unknownLanguage.stderr.contains("typescript"), "\(unknownLanguage.stderr)")
        try FileManager.default.removeItem(atPath: swiftFile)

        // Edited after it was applied: serve refuses to start, naming the file.
        try (header + "create table public.widgets (id int primary key);\n").write(toFile: path, atomically: true, encoding: .utf8)
        let refused = try await StriveProcess.run(
            ["serve", "--data-dir", dataDirectory, "--port", "0"], environment: environment, timeout: .seconds(120))
        #expect(refused.status != 0)
        #expect(refused.stderr.contains("migration \(fileName) was changed after it was applied"), "\(refused.stderr)")
    }

    @Test func authBenchSignsInVerifiesAndRefreshes() async throws {
        let dataDirectory = temporaryPath("strive-bench-auth")
        defer { try? FileManager.default.removeItem(atPath: dataDirectory) }
        let output = try await StriveProcess.run(
            ["bench", "auth", "--sign-ins", "2", "--refreshes", "3", "--verify-seconds", "1", "--data-dir", dataDirectory],
            timeout: .seconds(120))
        #expect(output.status == 0, "\(output.stderr)")
        #expect(output.stdout.contains("token verification:"), "\(output.stdout)")
        #expect(output.stdout.contains("sign-in (password grant, HTTP): median"))
        #expect(output.stdout.contains("n=2"))
        #expect(output.stdout.contains("refresh (rotation, HTTP): median"))
        #expect(output.stdout.contains("n=3"))
    }

    @Test func realtimeBenchDeliversEveryChangeToEverySubscriber() async throws {
        let dataDirectory = temporaryPath("strive-bench-realtime")
        defer { try? FileManager.default.removeItem(atPath: dataDirectory) }
        let server = try StriveProcess.start(["serve", "--data-dir", dataDirectory, "--port", "0"])
        let base = try await server.waitUntilReady()
        let output = try await StriveProcess.run(
            [
                "bench", "realtime", "--url", base, "--data-dir", dataDirectory, "--pid", String(server.process.processIdentifier),
                "--sockets", "20", "--orgs", "2", "--rate", "5", "--seconds", "2",
            ], timeout: .seconds(120))
        server.signal(SIGTERM)
        #expect(try await server.wait().status == 0)

        #expect(output.status == 0, "\(output.stderr)")
        #expect(output.stdout.contains("20 of 20 sockets joined, 2 organizations"), "\(output.stdout)")
        // 10 changes, each to the 10 members of its organization.
        #expect(output.stdout.contains("10 changes committed"))
        #expect(output.stdout.contains("100 of 100 deliveries received"), "\(output.stdout)")
        #expect(output.stdout.contains("authorisation queries:"))
        #expect(output.stdout.contains("and 20 subscribers"))
        #expect(output.stdout.contains("server CPU"))
    }
}
