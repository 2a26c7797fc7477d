import Foundation
import StriveTestSupport
import Testing

#if canImport(Glibc)
    import Glibc
#endif

/// The README's walkthrough, step by step as a newcomer follows it: its SQL becomes a project migration,
/// `migrate` applies it, `verify` still scores 100, and its supabase-py script runs against `strive serve`.
/// The SQL and the script are read from README.md, so the page cannot drift from what works.
@Suite("README walkthrough: a table of your own", .capacityBound, .serialized)
struct WalkthroughTests {
    @Test func theReadmeWalkthroughWorksAsWritten() async throws {
        let readme = try String(contentsOf: Repository.root.appendingPathComponent("README.md"), encoding: .utf8)
        let migrationSQL = try #require(Self.block(after: "<!-- walkthrough:migration -->", in: readme), "no walkthrough SQL")
        let script = try #require(Self.block(after: "<!-- walkthrough:python -->", in: readme), "no walkthrough script")
        let python = try #require(
            await Self.supabasePython(),
            """
            no Python with supabase-py: run `python3 -m venv .build-venv && .build-venv/bin/pip install supabase==2.34.1 aiosmtpd==1.4.6` \
            in the repository (Scripts/test does), or set STRIVE_TEST_PYTHON
            """)

        let dataDirectory = temporaryPath("strive-walkthrough")
        let folder = dataDirectory + "-migrations"
        defer {
            try? FileManager.default.removeItem(atPath: dataDirectory)
            try? FileManager.default.removeItem(atPath: folder)
        }
        let environment = ["STRIVE_MIGRATIONS_DIR": folder]

        // 1. strive migration new add_bookmarks, and the SQL into the file it printed.
        let created = try await StriveProcess.run(["migration", "new", "add_bookmarks"], environment: environment)
        try #require(created.status == 0, "\(created.stderr)")
        let path = created.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        let header = try String(contentsOfFile: path, encoding: .utf8)
        try (header + migrationSQL).write(toFile: path, atomically: true, encoding: .utf8)

        // 2. strive migrate; verify still scores 100; the types know the table.
        let migrated = try await StriveProcess.run(
            ["migrate", "--data-dir", dataDirectory], environment: environment, timeout: .seconds(120))
        #expect(migrated.status == 0, "\(migrated.stderr)")
        #expect(migrated.stdout.contains("_add_bookmarks.sql"), "\(migrated.stdout)")
        let verified = try await StriveProcess.run(
            ["verify", "--data-dir", dataDirectory], environment: environment, timeout: .seconds(120))
        #expect(verified.status == 0, "\(verified.stdout)\(verified.stderr)")
        #expect(verified.stdout.contains("Health score: 100/100"), "\(verified.stdout)")
        let types = try await StriveProcess.run(["gen", "types", "--lang", "typescript", "--data-dir", dataDirectory])
        #expect(
            types.stdout.contains("      bookmarks: {\n        Row: {\n          id: number\n          user_id: string\n"),
            "\(types.stdout)")

        // 3. The supabase-py script against the running server.
        let server = try StriveProcess.start(["serve", "--data-dir", dataDirectory, "--port", "0"], environment: environment)
        let base = try await server.waitUntilReady()
        let anonKey = try server.anonKey()
        let scriptPath = folder + "/walkthrough.py"
        try script.write(toFile: scriptPath, atomically: true, encoding: .utf8)
        let ran = try await ToolProcess.run(python, [scriptPath], environment: ["STRIVE_URL": base, "STRIVE_ANON_KEY": anonKey])
        server.signal(SIGTERM)
        #expect(try await server.wait().status == 0)

        #expect(ran.status == 0, "\(ran.output)")
        let lines = ran.output.split(separator: "\n").map(String.init)
        #expect(lines.contains("alice added 1 bookmark(s)"), "\(ran.output)")
        #expect(lines.contains("alice sees 1 bookmark(s)"), "\(ran.output)")
        #expect(lines.contains("bob sees 0 bookmark(s)"), "\(ran.output)")
        #expect(lines.contains("bob changed 0 bookmark(s)"), "\(ran.output)")
        #expect(lines.contains("alice was told of https://example.com"), "\(ran.output)")
    }

    // MARK: -

    /// The first fenced code block after `marker`, without its fences.
    static func block(after marker: String, in text: String) -> String? {
        guard let start = text.range(of: marker)?.upperBound,
            let open = text.range(of: "```", range: start..<text.endIndex),
            let bodyStart = text[open.upperBound...].firstIndex(of: "\n"),
            let close = text.range(of: "\n```", range: bodyStart..<text.endIndex)
        else { return nil }
        return String(text[text.index(after: bodyStart)..<close.lowerBound]) + "\n"
    }

    /// `STRIVE_TEST_PYTHON`, else the repository's `.build-venv` that Scripts/test prepares; it must import supabase.
    static func supabasePython() async -> String? {
        let candidates = [
            ProcessInfo.processInfo.environment["STRIVE_TEST_PYTHON"],
            Repository.python,
        ].compactMap { $0 }
        for candidate in candidates where FileManager.default.isExecutableFile(atPath: candidate) {
            if (try? await ToolProcess.run(candidate, ["-c", "import supabase"]).status) == 0 { return candidate }
        }
        return nil
    }
}
