import Foundation
import StriveDatabase
import StriveTestSupport
import Testing

#if canImport(Glibc)
    import Glibc
#endif

/// Sign-in with external providers through the real supabase-py client (`Scripts/supabase-py-external-sign-in.py`)
/// against `strive serve` and two real identity providers on loopback: sign_in_with_oauth with PKCE,
/// exchange_code_for_session, sign_in_with_id_token, link_identity, unlink_identity, get_user_identities.
@Suite("supabase-py external sign-in", .capacityBound, .serialized)
struct SupabasePyExternalSignInTests {
    @Test func theRealClientSignsInLinksAndUnlinksThroughProviders() async throws {
        let python = try #require(await WalkthroughTests.supabasePython(), "no Python with supabase-py (Scripts/test prepares .build-venv)")
        let providers = try await TestIdentityProviders.shared()
        let dataDirectory = temporaryPath("strive-supabase-py-external")
        defer { try? FileManager.default.removeItem(atPath: dataDirectory) }
        let port = try #require(LoopbackPort.free())
        // supabase-py accepts only the provider names GoTrue knows: a generic OpenID provider is `keycloak`.
        var environment = providers.environment(oidcName: "keycloak")
        environment["STRIVE_SITE_URL"] = "http://app.test"
        // Thirty sign-ins from one address in a row are the timing loop, not an attack.
        environment["STRIVE_AUTH_RATE_LIMIT_IP"] = "1000"
        let server = try StriveProcess.start(["serve", "--data-dir", dataDirectory, "--port", String(port)], environment: environment)
        let base = try await server.waitUntilReady()
        let script = Repository.root.appendingPathComponent("Scripts/supabase-py-external-sign-in.py").path
        let ran = try await ToolProcess.run(python, [script, base, try server.anonKey(), providers.oidcIssuer, providers.githubBase])
        server.signal(SIGTERM)
        #expect(try await server.wait().status == 0)

        #expect(ran.status == 0, "\(ran.output)")
        for step in [
            "sign_in_with_oauth pkce exchanged", "sign_in_with_id_token", "link_identity added github", "unlink_identity removed github",
            "callback timed",
        ] {
            #expect(ran.stdout.contains("ok \(step)\n"), "\(step): \(ran.output)")
        }
        let timings = ran.stdout.split(separator: "\n").compactMap { $0.hasPrefix("timing ") ? Double($0.dropFirst(7)) : nil }.sorted()
        #expect(timings.count == 30)
        if let median = timings.dropFirst(timings.count / 2).first, let slowest = timings.last {
            print("callback → redirect over \(timings.count) sign-ins (debug build): p50 \(median) ms, max \(slowest) ms")
        }
    }
}
