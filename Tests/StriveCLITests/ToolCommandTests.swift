import Foundation
import Testing

#if canImport(Glibc)
    import Glibc
#endif

/// The commands people run beside the server — `seed` and the two `bench` tools — as the real binary on a
/// real cluster. The benchmarks' timings are not asserted (they belong to release builds on a quiet
/// machine); what they count is.
@Suite("strive seed and bench", .serialized)
struct ToolCommandTests {
    @Test func seedLoadsTheDemoDataPrintsItsLoginsAndRefusesProduction() async throws {
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
        #expect(try psql(url, "select count(*) from public.organizations").trimmingCharacters(in: .whitespacesAndNewlines) == "2")
        #expect(try await StriveProcess.run(["db", "stop", "--data-dir", dataDirectory]).status == 0)

        let refused = try await StriveProcess.run(["seed", "--data-dir", dataDirectory], environment: ["STRIVE_ENV": "production"])
        #expect(refused.status != 0)
        #expect(refused.stderr.contains("refuses STRIVE_ENV=production"), "\(refused.stderr)")
        let badScale = try await StriveProcess.run(["seed", "--scale", "0", "--data-dir", dataDirectory])
        #expect(badScale.status != 0)
        #expect(badScale.stderr.contains("--scale must be between 1 and 10000"), "\(badScale.stderr)")
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
