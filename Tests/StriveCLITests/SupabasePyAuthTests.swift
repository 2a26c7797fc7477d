import Foundation
import StriveDatabase
import StriveTestSupport
import Testing

#if canImport(Glibc)
    import Glibc
#endif

/// The auth flows through the real supabase-py client (`Scripts/supabase-py-auth-flows.py`) against
/// `strive serve` delivering to a real SMTP server: confirmation by code, recovery, magic link, PKCE, MFA.
@Suite("supabase-py auth flows", .capacityBound, .serialized)
struct SupabasePyAuthTests {
    @Test func theRealClientPassesTheMailAndMFAFlows() async throws {
        let python = try #require(await WalkthroughTests.supabasePython(), "no Python with supabase-py (Scripts/test prepares .build-venv)")
        let mail = try await TestMailServer.shared()
        let dataDirectory = temporaryPath("strive-supabase-py")
        defer { try? FileManager.default.removeItem(atPath: dataDirectory) }
        let port = try #require(LoopbackPort.free())
        var environment = mail.environment
        environment["STRIVE_AUTH_AUTOCONFIRM"] = "false"
        environment["STRIVE_SITE_URL"] = "http://app.test"
        environment["STRIVE_AUTH_EMAIL_INTERVAL"] = "0"
        let server = try StriveProcess.start(["serve", "--data-dir", dataDirectory, "--port", String(port)], environment: environment)
        let base = try await server.waitUntilReady()
        let script = Repository.root.appendingPathComponent("Scripts/supabase-py-auth-flows.py").path
        let ran = try await ToolProcess.run(python, [script, base, try server.anonKey(), mail.folder])
        server.signal(SIGTERM)
        #expect(try await server.wait().status == 0)

        #expect(ran.status == 0, "\(ran.output)")
        for step in [
            "sign-up confirmed with the mailed code", "recovery set a new password", "reauthentication nonce changed the password",
            "email change confirmed by both addresses", "magic link signed in", "pkce code exchanged",
            "mfa raised the session to aal2", "recovery says nothing about unknown addresses",
        ] {
            #expect(ran.stdout.contains("ok \(step)\n"), "\(step): \(ran.output)")
        }
    }
}
