import Foundation
import StriveTestSupport
import Testing

/// `strive check` against a live `strive serve`: every probe passes on a sound deployment and leaves
/// nothing behind; a policy that leaks a tenant's rows fails the audit and the isolation probe.
@Suite("strive check", .capacityBound)
struct CheckTests {
    @Test func aSoundDeploymentPassesAndALeakingPolicyFailsWithoutLeftovers() async throws {
        let directory = temporaryPath("strive-check")
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let server = try StriveProcess.start(["serve", "--data-dir", directory, "--port", "0"])
        let base = try await server.waitUntilReady()
        defer { server.signal(SIGTERM) }
        let keys = ["STRIVE_ANON_KEY": try server.anonKey(), "STRIVE_SERVICE_ROLE_KEY": try server.serviceKey()]
        let url = try await StriveProcess.run(["db", "url", "--data-dir", directory]).stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        let leftovers = """
            select (select count(*) from auth.users where email like 'check-%')
                 + (select count(*) from public.organizations where slug like 'check-%')
                 + (select count(*) from storage.objects where name like '%check-%')
            """

        let sound = try await StriveProcess.run(["check", "--url", base], environment: keys)
        #expect(sound.status == 0, "\(sound.stdout)\(sound.stderr)")
        for probe in ["verify", "auth", "isolation", "notifications", "storage", "realtime", "cleanup"] {
            #expect(sound.stdout.contains("✔ \(probe)"), "\(probe): \(sound.stdout)")
        }
        #expect(sound.stdout.contains("All 7 checks passed"))
        #expect(!sound.stdout.contains("\u{1B}["), "no colour codes when stdout is not a terminal")
        #expect(try await psql(url, leftovers).trimmingCharacters(in: .whitespacesAndNewlines) == "0")

        _ = try await psql(url, "create policy customers_leak on public.customers for select to authenticated using (true)")
        let leaking = try await StriveProcess.run(["check", "--url", base], environment: keys)
        #expect(leaking.status == 1, "\(leaking.stdout)")
        #expect(leaking.stdout.contains("✘ verify") && leaking.stdout.contains("on public.customers"), "\(leaking.stdout)")
        #expect(leaking.stdout.contains("✘ isolation") && leaking.stdout.contains("an outsider read 1"), "\(leaking.stdout)")
        #expect(leaking.stdout.contains("✘ realtime") && leaking.stdout.contains("outsider's socket received"), "\(leaking.stdout)")
        #expect(leaking.stdout.contains("✔ cleanup"), "\(leaking.stdout)")
        #expect(try await psql(url, leftovers).trimmingCharacters(in: .whitespacesAndNewlines) == "0")

        let keyless = try await StriveProcess.run(["check", "--url", base])
        #expect(keyless.status == 64 && keyless.stderr.contains("STRIVE_SERVICE_ROLE_KEY"), "\(keyless.stderr)")
    }
}
