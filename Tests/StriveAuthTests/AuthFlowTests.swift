import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import Logging
import PostgresNIO
import StriveAuth
import StriveCore
import StriveDatabase
import StriveIdentity
import StriveServer
import StriveTestSupport
import Testing

@Suite("Auth over HTTP")
struct AuthFlowTests {
    func withAuth<T: Sendable>(
        _ environment: [String: String] = [:],
        _ body: @Sendable (AuthClient, TestDatabase) async throws -> T
    ) async throws -> T {
        let database = try await TestCluster.shared.makeDatabase()
        return try await database.withLiveApp(environment: environment) { client, services in
            try await body(try await AuthClient(client, services), database)
        }
    }

    @Test func signUpSignInUserRefreshAndLogout() async throws {
        try await withAuth { auth, database in
            let email = uniqueEmail()
            let signUp = try await auth.signUp("  \(email.uppercased()) ", data: #"{"name":"Ada","plan":"pro"}"#)
            #expect(signUp.status == .ok)
            let session = try signUp.decode(TokenResponse.self)
            #expect(session.token_type == "bearer")
            #expect(session.expires_in == 3600)
            #expect(abs(session.expires_at - Int(Date().timeIntervalSince1970) - 3600) < 5)
            #expect(!session.refresh_token.isEmpty)
            #expect(session.user.email == email, "email is trimmed and lower-cased")
            #expect(session.user.aud == "authenticated")
            #expect(session.user.role == "authenticated")
            #expect(session.user.user_metadata == .object(["name": .string("Ada"), "plan": .string("pro")]))
            #expect(session.user.app_metadata.objectValue?["provider"] == .string("email"))
            let userFields = Set(signUp.json["user"].flatMap { $0 as? [String: Any] }?.keys.map { $0 } ?? [])
            #expect(
                userFields.isSuperset(of: [
                    "id", "aud", "role", "email", "app_metadata", "user_metadata", "created_at", "updated_at", "identities", "is_anonymous",
                ]))

            let tokenClaims = try claims(of: session.access_token)
            for claim in [
                "sub", "aud", "role", "email", "exp", "iat", "session_id", "aal", "amr", "app_metadata", "user_metadata", "is_anonymous",
            ] {
                #expect(tokenClaims[claim] != nil, "access token lacks \(claim)")
            }
            #expect(tokenClaims["sub"] as? String == session.user.id)
            #expect(tokenClaims["role"] as? String == "authenticated")

            // The sign-up trigger made the profile row.
            let profiles = try await database.withOwnerConnection { connection in
                try await connection.query(
                    "select count(*)::int from public.users where email = \(email) and name = 'Ada'", logger: database.logger
                ).collect().first?.decode(Int.self)
            }
            #expect(profiles == 1)

            let user = try await auth.send(.get, "/user", apikey: auth.anonKey, bearer: session.access_token)
            #expect(user.status == .ok)
            #expect(try user.decode(UserJSON.self).id == session.user.id)

            let updated = try await auth.send(
                .put, "/user", json: #"{"data":{"plan":null,"theme":"dark"}}"#, apikey: auth.anonKey, bearer: session.access_token)
            #expect(updated.status == .ok)
            #expect(try updated.decode(UserJSON.self).user_metadata == .object(["name": .string("Ada"), "theme": .string("dark")]))

            let signIn = try await auth.signIn(email)
            #expect(signIn.status == .ok)
            let second = try signIn.decode(TokenResponse.self)
            #expect(try claims(of: second.access_token)["session_id"] as? String != tokenClaims["session_id"] as? String)

            let refreshed = try await auth.refresh(session.refresh_token)
            #expect(refreshed.status == .ok)
            let rotated = try refreshed.decode(TokenResponse.self)
            #expect(rotated.refresh_token != session.refresh_token)
            #expect(try claims(of: rotated.access_token)["session_id"] as? String == tokenClaims["session_id"] as? String)

            let logout = try await auth.send(.post, "/logout?scope=local", apikey: auth.anonKey, bearer: rotated.access_token)
            #expect(logout.status == .noContent)
            let afterLogout = try await auth.send(.get, "/user", apikey: auth.anonKey, bearer: rotated.access_token)
            #expect(afterLogout.status == .forbidden)
            #expect(afterLogout.errorCode == "session_not_found")
            // The other session still works.
            #expect(try await auth.send(.get, "/user", apikey: auth.anonKey, bearer: second.access_token).status == .ok)
            #expect(try await auth.refresh(rotated.refresh_token).errorCode == "refresh_token_not_found")
        }
    }

    /// PostgREST and GoTrue accept a token without `exp` (what Supabase's own test setups mint); it does not
    /// expire, its signature and role still decide.
    @Test func aSignedTokenWithoutExpiryIsAccepted() async throws {
        try await withAuth { auth, _ in
            let tokens = try await TokenService(secret: TestCluster.jwtSecret, issuer: "test", accessTokenLifetime: .seconds(60))
            let service = try await tokens.sign(AccessClaims(role: "service_role", exp: nil))
            let verified = try await tokens.verify(service)
            #expect(verified.claims.exp == nil && verified.expiresAt == nil)
            let listed = try await auth.send(.get, "/admin/users", apikey: service, bearer: service)
            #expect(listed.status == .ok, "\(listed.body)")
            let forged = try await TokenService(
                secret: Secret("another-secret-for-a-forged-token-1234567890"), issuer: "test", accessTokenLifetime: .seconds(60)
            ).sign(AccessClaims(role: "service_role", exp: nil))
            #expect(try await auth.send(.get, "/admin/users", apikey: forged, bearer: forged).errorCode == "bad_jwt")
        }
    }

    @Test func errorsCarrySupabaseCodesInBothShapes() async throws {
        try await withAuth { auth, _ in
            let email = uniqueEmail()
            _ = try await auth.session(email)

            let noKey = try await auth.send(.post, "/token?grant_type=password", json: #"{"email":"a@b.co","password":"x"}"#)
            #expect(noKey.status == .unauthorized)
            #expect(noKey.errorCode == "no_api_key")

            let forged = try await auth.send(
                .post, "/signup", json: "{}", apikey: "eyJhbGciOiJIUzI1NiJ9.eyJyb2xlIjoic2VydmljZV9yb2xlIn0.c2lnbmF0dXJl")
            #expect(forged.status == .unauthorized)
            #expect(forged.errorCode == "bad_jwt")

            let weak = try await auth.signUp(uniqueEmail(), password: "short")
            #expect(weak.status == .unprocessableContent)
            #expect(weak.errorCode == "weak_password")
            #expect(weak.json["code"] as? Int == 422)
            #expect(weak.json["msg"] as? String == "Password should be at least 8 characters.")

            let taken = try await auth.signUp(email)
            #expect(taken.status == .unprocessableContent)
            #expect(taken.errorCode == "user_already_exists")

            let wrong = try await auth.signIn(email, password: "not the password")
            let unknown = try await auth.signIn(uniqueEmail(), password: "not the password")
            #expect(wrong.status == .badRequest)
            #expect(wrong.errorCode == "invalid_credentials")
            #expect(unknown.body == wrong.body, "a missing account answers exactly like a wrong password")

            let badEmail = try await auth.signUp("not-an-email")
            #expect(badEmail.status == .badRequest)
            #expect(badEmail.errorCode == "validation_failed")

            let modern = try await auth.send(
                .post, "/token?grant_type=password", json: #"{"email":"\#(email)","password":"nope-nope"}"#, apikey: auth.anonKey,
                headers: [HTTPField.Name("X-Supabase-Api-Version")!: "2024-01-01"]
            )
            #expect(modern.json["code"] as? String == "invalid_credentials")
            #expect(modern.json["message"] as? String == "Invalid login credentials")
            #expect(modern.json["error_code"] == nil)

            let malformed = try await auth.send(.post, "/signup", json: #"{"email": "a@b.co", "password": "#, apikey: auth.anonKey)
            #expect(malformed.status == .badRequest)
            #expect(malformed.errorCode == "bad_json")

            let wrongType = try await auth.send(.post, "/signup", json: #"{"email": "a@b.co", "password": 12345678}"#, apikey: auth.anonKey)
            #expect(wrongType.status == .badRequest)
            #expect(wrongType.errorCode == "bad_json")
            #expect((wrongType.json["msg"] as? String)?.contains("password must be a string") == true)

            let huge = try await auth.send(
                .post, "/signup", apikey: auth.anonKey, headers: [.contentType: "application/json"],
                rawBody: ByteBuffer(string: #"{"email":"a@b.co","password":"\#(String(repeating: "x", count: 200_000))"}"#)
            )
            #expect(huge.status == .contentTooLarge)
            #expect(huge.errorCode == "request_too_large")

            let grant = try await auth.send(.post, "/token?grant_type=magic", json: "{}", apikey: auth.anonKey)
            #expect(grant.status == .badRequest)
            #expect(grant.errorCode == "unsupported_grant_type")
            let web3 = try await auth.send(.post, "/token?grant_type=web3", json: #"{"chain":"ethereum"}"#, apikey: auth.anonKey)
            #expect(web3.status == .unprocessableContent && web3.errorCode == "web3_provider_disabled", "not 404: GoTrue's own answer")

            let noBearer = try await auth.send(.get, "/user", apikey: auth.anonKey)
            #expect(noBearer.status == .unauthorized)
            #expect(noBearer.errorCode == "no_authorization")

            let unknownRefresh = try await auth.refresh("no-such-token")
            #expect(unknownRefresh.errorCode == "refresh_token_not_found")
        }
    }

    @Test func accessTokensExpire() async throws {
        try await withAuth(["STRIVE_JWT_EXPIRY": "5"]) { auth, _ in
            let session = try await auth.session(uniqueEmail())
            #expect(session.expires_in == 5)
            #expect(try await auth.send(.get, "/user", apikey: auth.anonKey, bearer: session.access_token).status == .ok)
            try await Task.sleep(for: .seconds(6))
            let expired = try await auth.send(.get, "/user", apikey: auth.anonKey, bearer: session.access_token)
            #expect(expired.status == .unauthorized)
            #expect(expired.errorCode == "bad_jwt")
            #expect((expired.json["msg"] as? String)?.contains("expired") == true)
            // The refresh token still renews the session.
            let renewed = try await auth.refresh(session.refresh_token)
            #expect(renewed.status == .ok)
        }
    }

    @Test func reusingARotatedTokenRevokesTheSession() async throws {
        try await withAuth(["STRIVE_REFRESH_REUSE_INTERVAL": "0"]) { auth, _ in
            let session = try await auth.session(uniqueEmail())
            let first = try await auth.refresh(session.refresh_token)
            #expect(first.status == .ok)
            let successor = try first.decode(TokenResponse.self)

            let reuse = try await auth.refresh(session.refresh_token)
            #expect(reuse.status == .badRequest)
            #expect(reuse.errorCode == "refresh_token_already_used")
            // The whole family is gone: the successor and the access tokens of that session.
            #expect(try await auth.refresh(successor.refresh_token).errorCode == "refresh_token_not_found")
            let user = try await auth.send(.get, "/user", apikey: auth.anonKey, bearer: successor.access_token)
            #expect(user.errorCode == "session_not_found")
        }
    }

    @Test func concurrentRefreshesOfOneTokenContinueOneFamily() async throws {
        let started = ContinuousClock.now
        // The refreshes must all land inside the reuse window: the longest one, since on two cores shared with
        // the whole suite they took 28 s (window 10 s, two refused as reuse); the window itself is tested apart.
        try await withAuth(["STRIVE_REFRESH_REUSE_INTERVAL": "300"]) { auth, database in
            let session = try await auth.session(uniqueEmail())
            let port = try #require(auth.client.port)
            let anonKey = auth.anonKey
            let signedIn = ContinuousClock.now
            // Where the time goes when this test is slow inside the full suite (it takes ~1 s alone).
            defer {
                print("concurrent refreshes: set-up and sign-in \(signedIn - started), refreshes \(ContinuousClock.now - signedIn)")
            }
            let replies = try await withThrowingTaskGroup(of: (Int, String?).self) { group in
                for _ in 0..<8 {
                    group.addTask {
                        // A connection of its own per refresh, so they really are concurrent. The eight queue on one
                        // row lock and a pool of four; the suite's bounded concurrency (`TestCapacity`) keeps them
                        // inside the client's 20 s timeout.
                        try await TestClient.withClient(host: "127.0.0.1", port: port, configuration: .init(timeout: .seconds(20))) {
                            client in
                            let response = try await client.execute(
                                .init(
                                    "/auth/v1/token?grant_type=refresh_token", method: .post, authority: "127.0.0.1",
                                    headers: [HTTPField.Name("apikey")!: anonKey, .contentType: "application/json"],
                                    body: ByteBuffer(string: #"{"refresh_token":"\#(session.refresh_token)"}"#)))
                            let json = try response.body.flatMap {
                                try JSONSerialization.jsonObject(with: Data($0.readableBytesView)) as? [String: Any]
                            }
                            return (Int(response.status.code), json?["refresh_token"] as? String)
                        }
                    }
                }
                return try await group.reduce(into: []) { $0.append($1) }
            }
            #expect(replies.allSatisfy { $0.0 == 200 }, "\(replies.map(\.0))")
            #expect(Set(replies.compactMap(\.1)).count == 1, "every concurrent refresh gets the same successor")

            let sessionID = try #require(try claims(of: session.access_token)["session_id"] as? String)
            let live = try await database.withOwnerConnection { connection in
                try await connection.query(
                    "select count(*)::int from auth.refresh_tokens where session_id = \(UUID(uuidString: sessionID)) and not revoked",
                    logger: database.logger
                ).collect().first?.decode(Int.self)
            }
            #expect(live == 1, "one token continues the family")
            let successor = try #require(replies.first?.1)
            #expect(try await auth.refresh(successor).status == .ok)
        }
    }

    @Test func aRevokedSessionIsRefusedByTheRequestPath() async throws {
        try await withAuth { auth, database in
            let session = try await auth.session(uniqueEmail())
            let verified = try await auth.services.auth.tokens.verify(session.access_token)
            let caller = try await Caller.resolve(
                headers: [HTTPField.Name("apikey")!: auth.anonKey, .authorization: "Bearer \(session.access_token)"],
                tokens: auth.services.auth.tokens
            )
            #expect(caller.role == .authenticated)
            let identity = caller.identity(method: "GET", path: "/rest/v1/tasks")
            #expect(identity.sessionID == verified.sessionID)
            let before = try await auth.services.database.withRequestTransaction(identity) { connection in
                try await connection.query("select auth.uid()::text", logger: database.logger).collect().first?.decode(String.self)
            }
            #expect(before == session.user.id)

            #expect(try await auth.send(.post, "/logout", apikey: auth.anonKey, bearer: session.access_token).status == .noContent)
            await #expect {
                try await auth.services.database.withRequestTransaction(identity) { connection in
                    try await connection.query("select 1", logger: database.logger).collect().count
                }
            } throws: { error in
                DatabaseError.serverError(in: error)?.sqlState == RequestIdentity.sessionNotFoundState
            }
        }
    }

    @Test func logoutScopes() async throws {
        try await withAuth { auth, _ in
            let email = uniqueEmail()
            let a = try await auth.session(email)
            let b = try await auth.signIn(email).decode(TokenResponse.self)
            let c = try await auth.signIn(email).decode(TokenResponse.self)
            func status(_ s: TokenResponse) async throws -> HTTPResponse.Status {
                try await auth.send(.get, "/user", apikey: auth.anonKey, bearer: s.access_token).status
            }
            #expect(try await auth.send(.post, "/logout?scope=others", apikey: auth.anonKey, bearer: a.access_token).status == .noContent)
            #expect(try await status(a) == .ok)
            #expect(try await status(b) == .forbidden)
            #expect(try await status(c) == .forbidden)
            let d = try await auth.signIn(email).decode(TokenResponse.self)
            #expect(try await auth.send(.post, "/logout?scope=global", apikey: auth.anonKey, bearer: d.access_token).status == .noContent)
            #expect(try await status(a) == .forbidden)
            #expect(try await status(d) == .forbidden)
            let bad = try await auth.send(.post, "/logout?scope=everyone", apikey: auth.anonKey, bearer: a.access_token)
            #expect(bad.status == .badRequest || bad.status == .forbidden)
        }
    }

    @Test func passwordChangeNeedsTheCurrentPassword() async throws {
        try await withAuth { auth, _ in
            let email = uniqueEmail()
            let session = try await auth.session(email)
            let without = try await auth.send(
                .put, "/user", json: #"{"password":"a brand new password"}"#, apikey: auth.anonKey, bearer: session.access_token)
            #expect(without.errorCode == "reauthentication_needed")
            let wrong = try await auth.send(
                .put, "/user", json: #"{"password":"a brand new password","current_password":"guess"}"#, apikey: auth.anonKey,
                bearer: session.access_token)
            #expect(wrong.errorCode == "invalid_credentials")
            #expect(wrong.status == .forbidden)
            let null = try await auth.send(
                .put, "/user", json: #"{"password":null,"current_password":"correct horse battery"}"#, apikey: auth.anonKey,
                bearer: session.access_token)
            #expect(null.status == .badRequest)
            let weak = try await auth.send(
                .put, "/user", json: #"{"password":"short","current_password":"correct horse battery"}"#, apikey: auth.anonKey,
                bearer: session.access_token)
            #expect(weak.errorCode == "weak_password")
            let changed = try await auth.send(
                .put, "/user", json: #"{"password":"a brand new password","current_password":"correct horse battery"}"#,
                apikey: auth.anonKey, bearer: session.access_token)
            #expect(changed.status == .ok)
            #expect(try await auth.signIn(email).errorCode == "invalid_credentials")
            #expect(try await auth.signIn(email, password: "a brand new password").status == .ok)
        }
    }

    @Test func signInAndSignUpAreRateLimited() async throws {
        try await withAuth(["STRIVE_AUTH_RATE_LIMIT_EMAIL": "3", "STRIVE_AUTH_RATE_LIMIT_IP": "6"]) { auth, _ in
            let email = uniqueEmail()
            for _ in 0..<3 { #expect(try await auth.signIn(email, password: "wrong-password").errorCode == "invalid_credentials") }
            let limited = try await auth.signIn(email, password: "wrong-password")
            #expect(limited.status == .tooManyRequests)
            #expect(limited.errorCode == "over_request_rate_limit")
            let retryAfter = try #require(limited.headers[.retryAfter].flatMap { Int($0) })
            #expect((1...60).contains(retryAfter))
            // Other addresses from the same IP: the per-IP limit (6) is next.
            for _ in 0..<2 { #expect(try await auth.signIn(uniqueEmail(), password: "wrong-password").status == .badRequest) }
            #expect(try await auth.signUp(uniqueEmail()).status == .tooManyRequests)
        }
    }
}
