import Foundation
import StriveDatabase
import StriveTestSupport
import Testing

#if canImport(Glibc)
    import Glibc
#endif

/// Passkeys against `strive serve` with a software authenticator (`Scripts/passkeys-flow.py`, python-fido2's
/// COSE keys and CBOR): registration and sign-in with ES256, RS256 and EdDSA credentials, and every
/// check that must refuse — replayed challenge, counter that does not move, foreign origin or RP, unknown
/// credential, forged signature; and a WebAuthn factor raising a session to aal2.
@Suite("Passkeys", .capacityBound, .serialized)
struct PasskeyTests {
    @Test func aSoftwareAuthenticatorRegistersAndSignsInAndEveryForgeryIsRefused() async throws {
        let python = try #require(
            await WalkthroughTests.supabasePython(), "no Python with httpx and fido2 (Scripts/test prepares .build-venv)")
        let dataDirectory = temporaryPath("strive-passkeys")
        defer { try? FileManager.default.removeItem(atPath: dataDirectory) }
        let port = try #require(LoopbackPort.free())
        let environment = [
            "STRIVE_AUTH_PASSKEYS_ENABLED": "true", "STRIVE_AUTH_MFA_WEBAUTHN_ENABLED": "true",
            "STRIVE_SITE_URL": "https://app.example.test",
            "STRIVE_AUTH_RATE_LIMIT_IP": "1000",
        ]
        let server = try StriveProcess.start(["serve", "--data-dir", dataDirectory, "--port", String(port)], environment: environment)
        let base = try await server.waitUntilReady()
        let script = Repository.root.appendingPathComponent("Scripts/passkeys-flow.py").path
        let ran = try await ToolProcess.run(python, [script, base, try server.anonKey(), "https://app.example.test", "app.example.test"])
        server.signal(SIGTERM)
        #expect(try await server.wait().status == 0)

        #expect(ran.status == 0, "\(ran.output)")
        for step in [
            "registered ES256", "registered RS256", "registered EdDSA", "foreign origin and relying party refused", "signed in with ES256",
            "signed in with RS256", "signed in with EdDSA", "a challenge is answered once",
            "a counter that does not move forward is refused", "foreign origin, unknown credential and forged signature refused",
            "passkeys listed, renamed and deleted", "webauthn factor registered at aal2",
            "webauthn factor signs at aal2 and refuses another key",
        ] {
            #expect(ran.stdout.contains("ok \(step)\n"), "\(step): \(ran.output)")
        }
    }
}
