import Foundation
import HTTPTypes
import JWTKit
import StriveAuth
import StriveCore
import StriveIdentity
import StriveTestSupport
import Testing

/// Asymmetric signing keys as Supabase's JWT signing keys: stored sealed in the database, published as
/// JWKS, verified by `kid` on every surface, rotated without a failed request.
@Suite("Asymmetric signing keys")
struct SigningKeyTests {
    static let unlimited = [
        "STRIVE_AUTH_RATE_LIMIT_IP": "100000", "STRIVE_AUTH_RATE_LIMIT_EMAIL": "100000", "STRIVE_AUTH_RATE_LIMIT_TOKEN_REFRESH": "100000",
    ]

    func withKeys(_ body: @Sendable (AuthClient, SigningKeyStore, TestDatabase) async throws -> Void) async throws {
        let database = try await TestCluster.shared.makeDatabase()
        try await database.withLiveApp(environment: Self.unlimited) { client, services in
            let store = SigningKeyStore(database: services.database, secret: TestCluster.jwtSecret, logger: services.logger)
            try await body(try await AuthClient(client, services), store, database)
        }
    }

    static func header(of token: String) throws -> [String: Any] {
        let part = try #require(token.split(separator: ".").first)
        let data = try #require(Data(base64URLEncoded: String(part)))
        return try #require(try JSONSerialization.jsonObject(with: data) as? [String: Any])
    }

    @Test(arguments: SigningKey.Algorithm.allCases)
    func aRotatedKeySignsAndJWKSVerifiesItsTokens(algorithm: SigningKey.Algorithm) async throws {
        try await withKeys { auth, store, _ in
            let key = try await store.rotate(to: algorithm)
            // A fresh server instance (this app loaded no key yet) signs with it at once.
            let session = try await auth.session(uniqueEmail("asym"))
            let header = try Self.header(of: session.access_token)
            #expect(header["alg"] as? String == algorithm.rawValue && header["kid"] as? String == key.kid)

            let jwks = try await auth.send(.get, "/.well-known/jwks.json")
            #expect(jwks["Cache-Control"] == "public, max-age=600")
            // A client library verifies the token with nothing but the published JWKS.
            let verifier = try await JWTKeyCollection().add(jwksJSON: jwks.text)
            let claims = try await verifier.verify(session.access_token, as: AccessClaims.self)
            #expect(claims.sub == session.user.id)
            let published = try #require((jwks.object["keys"] as? [[String: Any]])?.first)
            #expect(published["kid"] as? String == key.kid && published["d"] == nil, "public halves only")

            // The data API and storage verify it by kid too.
            let rest = try await TestHTTP(auth.client).send(
                .get, "/rest/v1/organizations?select=id", apikey: auth.anonKey, bearer: session.access_token)
            #expect(rest.status == .ok, "\(rest.text)")
            let buckets = try await TestHTTP(auth.client).send(
                .get, "/storage/v1/bucket", apikey: auth.anonKey, bearer: session.access_token)
            #expect(buckets.status == .ok, "\(buckets.text)")
        }
    }

    @Test func aPreviousKeyVerifiesUntilRevokedAndTheCurrentOneCannotBe() async throws {
        try await withKeys { auth, store, _ in
            let first = try await store.rotate(to: .es256)
            let old = try await auth.session(uniqueEmail("old"))
            #expect(try Self.header(of: old.access_token)["kid"] as? String == first.kid)
            let second = try await store.rotate(to: .es256)
            // Another instance signs with the new key; this one has never seen it and learns it at once.
            let elsewhere = try await TokenService(
                secret: TestCluster.jwtSecret, issuer: "test", accessTokenLifetime: .seconds(60),
                signingKeys: store)
            let now = Int(Date().timeIntervalSince1970)
            let newToken = try await elsewhere.sign(
                AccessClaims(
                    sub: old.user.id, aud: "authenticated", role: "authenticated", exp: now + 60,
                    session_id: try claims(of: old.access_token)["session_id"] as? String))
            #expect(try Self.header(of: newToken)["kid"] as? String == second.kid)
            let accepted = try await TestHTTP(auth.client).send(
                .get, "/rest/v1/organizations?select=id", apikey: auth.anonKey, bearer: newToken)
            #expect(accepted.status == .ok, "\(accepted.text)")
            #expect(
                try await auth.send(.get, "/user", apikey: auth.anonKey, bearer: old.access_token).status == .ok,
                "the previous key verifies")

            #expect(try await store.revoke(kid: second.kid) == .isCurrent)
            #expect(try await store.revoke(kid: "no-such-key") == .notFound)
            #expect(try await store.revoke(kid: first.kid) == .revoked)
            let statuses = try await store.list().map { "\($0.kid == first.kid ? "first" : "second"):\($0.status.rawValue)" }
            #expect(Set(statuses) == ["first:revoked", "second:current"])
            let fresh = try await TokenService(
                secret: TestCluster.jwtSecret, issuer: "test", accessTokenLifetime: .seconds(60), signingKeys: store)
            do throws(AuthError) {
                _ = try await fresh.verify(old.access_token)
                Issue.record("a revoked key's token was accepted")
            } catch {
                #expect(error.message.contains("unknown key id \(first.kid)"), "\(error.message)")
            }
        }
    }

    /// Tokens signed elsewhere with whatever key is current that moment (another instance that reloads
    /// before every token) reach this server while keys rotate: every one is accepted.
    @Test func noRequestFailsWhileKeysRotate() async throws {
        try await withKeys { auth, store, _ in
            let session = try await auth.session(uniqueEmail("load"))
            let sessionID = try claims(of: session.access_token)["session_id"] as? String
            let elsewhere = try await TokenService(
                secret: TestCluster.jwtSecret, issuer: "test", accessTokenLifetime: .seconds(60), signingKeys: store, keyRefresh: .zero)
            _ = try await store.rotate(to: .es256)
            let statuses = try await withThrowingTaskGroup(of: [HTTPResponse.Status].self) { group in
                for _ in 0..<4 {
                    group.addTask {
                        var statuses: [HTTPResponse.Status] = []
                        for _ in 0..<25 {
                            let now = Int(Date().timeIntervalSince1970)
                            let token = try await elsewhere.sign(
                                AccessClaims(
                                    sub: session.user.id, aud: "authenticated", role: "authenticated", exp: now + 60, session_id: sessionID)
                            )
                            statuses.append(
                                try await TestHTTP(auth.client).send(
                                    .get, "/rest/v1/organizations?select=id", apikey: auth.anonKey, bearer: token
                                ).status)
                        }
                        return statuses
                    }
                }
                group.addTask {
                    for algorithm in [SigningKey.Algorithm.rs256, .es256, .es256] {
                        try await Task.sleep(for: .milliseconds(150))
                        _ = try await store.rotate(to: algorithm)
                    }
                    return []
                }
                var all: [HTTPResponse.Status] = []
                for try await statuses in group { all += statuses }
                return all
            }
            #expect(statuses.count == 100 && statuses.allSatisfy { $0 == .ok }, "\(statuses.filter { $0 != .ok })")
            #expect(try await store.list().count == 4)
        }
    }

    static let refusals: [(String, String)] = [
        ("eyJhbGciOiJub25lIn0.eyJyb2xlIjoic2VydmljZV9yb2xlIn0.", "algorithm none is not allowed"),
        ("eyJhbGciOiJFUzI1NiIsImtpZCI6Im5vcGUifQ.eyJyb2xlIjoic2VydmljZV9yb2xlIn0.c2ln", "unknown key id nope for algorithm ES256"),
        ("eyJhbGciOiJIUzI1NiJ9.eyJyb2xlIjoic2VydmljZV9yb2xlIn0.c2lnbmF0dXJl", "signature is invalid"),
        ("not-a-token", "not a JWT"),
    ]

    @Test func aRefusedTokenSaysWhatWasWrong() async throws {
        try await withKeys { auth, _, _ in
            let empty = try await auth.send(.get, "/.well-known/jwks.json")
            #expect(empty.status == .ok && empty.text == #"{"keys":[]}"#, "HS256's secret is never published")
            for (token, reason) in Self.refusals {
                let refused = try await auth.send(.get, "/user", apikey: auth.anonKey, bearer: token)
                #expect(refused.status == .unauthorized && refused.errorCode == "bad_jwt", "\(refused.text)")
                #expect((refused.object["msg"] as? String)?.contains(reason) == true, "\(reason): \(refused.text)")
            }
        }
    }

    @Test func aTokenWithoutRoleOrPastItsExpiryIsNamedSo() async throws {
        let tokens = try await TokenService(secret: TestCluster.jwtSecret, issuer: "test", accessTokenLifetime: .seconds(60))
        let expired = try await tokens.sign(AccessClaims(role: "authenticated", exp: Int(Date().timeIntervalSince1970) - 10))
        await #expect(throws: AuthError.badJWT("token has expired")) { try await tokens.verify(expired) }
        let roleless = try await tokens.sign(payload: ["sub": "x", "exp": .number(Double(Int(Date().timeIntervalSince1970) + 60))])
        await #expect(throws: AuthError.badJWT("the token has no role claim")) { try await tokens.verify(roleless) }
    }
}
