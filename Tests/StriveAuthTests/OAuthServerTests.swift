import Foundation
import HTTPTypes
import JWTKit
import NIOCore
import StriveAuth
import StriveCore
import StriveIdentity
import StriveTestSupport
import Testing

/// Strive as an OAuth 2.1 server and OpenID provider, as another application signs its users in with it:
/// authorize, the site's consent step, the code exchanged with PKCE, refresh, userinfo, ID tokens checked
/// against the JWKS, grants the user revokes.
@Suite("OAuth server")
struct OAuthServerTests {
    static let callback = "http://127.0.0.1:9/reports/callback"

    struct Fixture {
        let auth: AuthClient
        let clientID: String
        let secret: String
        let user: TokenResponse
    }

    func withServer(enabled: Bool = true, _ body: @Sendable (Fixture) async throws -> Void) async throws {
        let database = try await TestCluster.shared.makeDatabase()
        try await database.withLiveApp(environment: ["STRIVE_AUTH_OAUTH_SERVER_ENABLED": enabled ? "true" : "false"]) { client, services in
            // Before anything is signed: this instance then signs with the key from its first token on.
            _ = try await SigningKeyStore(database: services.database, secret: TestCluster.jwtSecret, logger: services.logger).rotate(
                to: .es256)
            let auth = try await AuthClient(client, services)
            let registered = try await auth.send(
                .post, "/admin/oauth/clients", json: #"{"client_name":"Reports","redirect_uris":["\#(Self.callback)"]}"#,
                apikey: auth.serviceKey, bearer: auth.serviceKey)
            let clientID = try #require(registered.object["client_id"] as? String, "\(registered.text)")
            let secret = try #require(registered.object["client_secret"] as? String)
            try await body(Fixture(auth: auth, clientID: clientID, secret: secret, user: try await auth.session(uniqueEmail("owner"))))
        }
    }

    static let verifier = String(repeating: "k", count: 64)
    static var challenge: String { Data(SHA256Digest.of(verifier)).base64URLEncodedString }

    /// The client's redirect to `/oauth/authorize`: where it sends the browser (the consent page, or back with an error).
    func authorize(_ f: Fixture, scope: String = "openid email profile", extra: String = "") async throws -> AuthClient.Reply {
        let query =
            "client_id=\(f.clientID)&redirect_uri=\(ExternalSignInTests.encoded(Self.callback))&response_type=code"
            + "&scope=\(ExternalSignInTests.encoded(scope))&state=st4te&code_challenge=\(Self.challenge)&code_challenge_method=S256" + extra
        return try await f.auth.send(.get, "/oauth/authorize?" + query)
    }

    func authorizationID(_ reply: AuthClient.Reply) throws -> String {
        let location = try #require(reply["Location"], "\(reply.status) \(reply.text)")
        #expect(location.hasPrefix("http://localhost:3000/oauth/consent?authorization_id="), "\(location)")
        return try #require(ExternalSignInTests.parameters(location, in: "?")["authorization_id"])
    }

    func token(_ f: Fixture, _ form: String, basic: Bool = true) async throws -> AuthClient.Reply {
        var headers: HTTPFields = [.contentType: "application/x-www-form-urlencoded"]
        if basic { headers[.authorization] = "Basic " + Data("\(f.clientID):\(f.secret)".utf8).base64EncodedString() }
        return try await f.auth.send(.post, "/oauth/token", headers: headers, rawBody: ByteBuffer(string: form))
    }

    @Test func aClientSignsAUserInWithConsentPKCEAndGetsVerifiableTokens() async throws {
        try await withServer { f in
            let id = try authorizationID(try await authorize(f, extra: "&nonce=n0nce"))
            let details = try await f.auth.send(
                .get, "/oauth/authorizations/\(id)", apikey: f.auth.anonKey, bearer: f.user.access_token)
            #expect(details.status == .ok, "\(details.text)")
            #expect((details.object["client"] as? [String: Any])?["name"] as? String == "Reports")
            #expect(details.object["scope"] as? String == "openid email profile")
            #expect((details.object["user"] as? [String: Any])?["email"] as? String == f.user.user.email)

            let approved = try await f.auth.send(
                .post, "/oauth/authorizations/\(id)/consent", json: #"{"action":"approve"}"#, apikey: f.auth.anonKey,
                bearer: f.user.access_token)
            let redirect = try #require(approved.object["redirect_url"] as? String, "\(approved.text)")
            #expect(redirect.hasPrefix(Self.callback + "?code="))
            let back = ExternalSignInTests.parameters(redirect, in: "?")
            #expect(back["state"] == "st4te")
            let code = try #require(back["code"])

            let form = "grant_type=authorization_code&code=\(code)&redirect_uri=\(ExternalSignInTests.encoded(Self.callback))"
            let wrongVerifier = try await token(f, form + "&code_verifier=" + String(repeating: "x", count: 64))
            #expect(wrongVerifier.status == .badRequest && wrongVerifier.object["error"] as? String == "invalid_grant")

            // A code is redeemed once, whatever the outcome: the wrong verifier used it up. Start again.
            let second = try authorizationID(try await authorize(f, extra: "&nonce=n0nce"))
            let auto = try await f.auth.send(.get, "/oauth/authorizations/\(second)", apikey: f.auth.anonKey, bearer: f.user.access_token)
            let autoRedirect = try #require(auto.object["redirect_url"] as? String, "granted scopes approve at once: \(auto.text)")
            let secondCode = try #require(ExternalSignInTests.parameters(autoRedirect, in: "?")["code"])
            let exchanged = try await token(
                f,
                "grant_type=authorization_code&code=\(secondCode)&redirect_uri=\(ExternalSignInTests.encoded(Self.callback))"
                    + "&code_verifier=\(Self.verifier)")
            #expect(exchanged.status == .ok, "\(exchanged.text)")
            #expect(exchanged["Cache-Control"] == "no-store")
            let access = try #require(exchanged.object["access_token"] as? String)
            let refresh = try #require(exchanged.object["refresh_token"] as? String)
            #expect(try claims(of: access)["client_id"] as? String == f.clientID)
            #expect(try claims(of: access)["scope"] as? String == "openid email profile")

            // The ID token checks out with nothing but the published keys, for this client and nonce.
            let idToken = try #require(exchanged.object["id_token"] as? String)
            let jwks = try await f.auth.send(.get, "/.well-known/jwks.json")
            let keys = try await JWTKeyCollection().add(jwksJSON: jwks.text)
            struct IDClaims: JWTPayload {
                let iss: String, sub: String, aud: String, nonce: String?, email: String?, email_verified: Bool?
                func verify(using algorithm: some JWTAlgorithm) async throws {}
            }
            let verified = try await keys.verify(idToken, as: IDClaims.self)
            #expect(verified.aud == f.clientID && verified.nonce == "n0nce" && verified.sub == f.user.user.id)
            #expect(verified.email == f.user.user.email && verified.email_verified == true)

            let info = try await f.auth.send(.get, "/oauth/userinfo", apikey: f.auth.anonKey, bearer: access)
            #expect(info.object["sub"] as? String == f.user.user.id && info.object["email"] as? String == f.user.user.email)

            // Only the client refreshes its session; the app's own /token does not.
            let stolen = try await f.auth.send(
                .post, "/token?grant_type=refresh_token", json: #"{"refresh_token":"\#(refresh)"}"#, apikey: f.auth.anonKey)
            #expect(stolen.status == .badRequest && stolen.errorCode == "refresh_token_not_found")
            let refreshed = try await token(f, "grant_type=refresh_token&refresh_token=\(refresh)")
            #expect(refreshed.status == .ok, "\(refreshed.text)")
            let newRefresh = try #require(refreshed.object["refresh_token"] as? String)
            #expect(try claims(of: try #require(refreshed.object["access_token"] as? String))["client_id"] as? String == f.clientID)

            let grants = try await f.auth.send(.get, "/user/oauth/grants", apikey: f.auth.anonKey, bearer: f.user.access_token)
            #expect(grants.array.first.flatMap { ($0["client"] as? [String: Any])?["id"] as? String } == f.clientID, "\(grants.text)")
            let revoked = try await f.auth.send(
                .delete, "/user/oauth/grants?client_id=\(f.clientID)", apikey: f.auth.anonKey, bearer: f.user.access_token)
            #expect(revoked.status == .noContent)
            let afterRevoke = try await token(f, "grant_type=refresh_token&refresh_token=\(newRefresh)")
            #expect(afterRevoke.status == .badRequest, "revoking a grant ends the client's sessions: \(afterRevoke.text)")
        }
    }

    @Test func badRequestsAreRefusedWhereTheyCanBeSafelyAnswered() async throws {
        try await withServer { f in
            let unregistered = try await f.auth.send(
                .get, "/oauth/authorize?client_id=\(f.clientID)&redirect_uri=\(ExternalSignInTests.encoded("https://evil.example/cb"))")
            #expect(unregistered.status == .badRequest && unregistered.object["msg"] as? String == "invalid redirect_uri")
            let unknownClient = try await f.auth.send(
                .get, "/oauth/authorize?client_id=\(UUID())&redirect_uri=\(ExternalSignInTests.encoded(Self.callback))")
            #expect(unknownClient.status == .badRequest && unknownClient.errorCode == "oauth_client_not_found")

            let noPKCE = try await f.auth.send(
                .get, "/oauth/authorize?client_id=\(f.clientID)&redirect_uri=\(ExternalSignInTests.encoded(Self.callback))&state=s1")
            let noPKCELocation = try #require(noPKCE["Location"])
            #expect(noPKCELocation.hasPrefix(Self.callback + "?error=invalid_request"), "\(noPKCELocation)")
            #expect(ExternalSignInTests.parameters(noPKCELocation, in: "?")["state"] == "s1")
            let badScope = try await authorize(f, scope: "openid admin")
            #expect(ExternalSignInTests.parameters(try #require(badScope["Location"]), in: "?")["error"] == "invalid_scope")

            let id = try authorizationID(try await authorize(f))
            let denied = try await f.auth.send(
                .post, "/oauth/authorizations/\(id)/consent", json: #"{"action":"deny"}"#, apikey: f.auth.anonKey,
                bearer: f.user.access_token)
            let deniedURL = try #require(denied.object["redirect_url"] as? String)
            #expect(ExternalSignInTests.parameters(deniedURL, in: "?")["error"] == "access_denied")
            let again = try await f.auth.send(
                .post, "/oauth/authorizations/\(id)/consent", json: #"{"action":"approve"}"#, apikey: f.auth.anonKey,
                bearer: f.user.access_token)
            #expect(again.status == .badRequest, "a denied request cannot be approved after all")

            let other = try await f.auth.session(uniqueEmail("other"))
            let fresh = try authorizationID(try await authorize(f))
            _ = try await f.auth.send(.get, "/oauth/authorizations/\(fresh)", apikey: f.auth.anonKey, bearer: f.user.access_token)
            let hijack = try await f.auth.send(.get, "/oauth/authorizations/\(fresh)", apikey: f.auth.anonKey, bearer: other.access_token)
            #expect(hijack.status == .notFound && hijack.errorCode == "oauth_authorization_not_found", "a request is its first viewer's")
            let foreignOrigin = try await f.auth.send(
                .get, "/oauth/authorizations/\(fresh)", apikey: f.auth.anonKey, bearer: f.user.access_token,
                headers: [.origin: "https://evil.example"])
            #expect(foreignOrigin.status == .badRequest, "another site cannot drive the consent")

            let wrongSecret = try await f.auth.send(
                .post, "/oauth/token",
                headers: [
                    .contentType: "application/x-www-form-urlencoded",
                    .authorization: "Basic " + Data("\(f.clientID):wrong".utf8).base64EncodedString(),
                ], rawBody: ByteBuffer(string: "grant_type=authorization_code&code=x"))
            #expect(wrongSecret.status == .unauthorized && wrongSecret.object["error"] as? String == "invalid_client")
            let postInsteadOfBasic = try await token(
                f, "grant_type=authorization_code&code=x&client_id=\(f.clientID)&client_secret=\(f.secret)", basic: false)
            #expect(postInsteadOfBasic.object["error"] as? String == "invalid_client", "a client authenticates as it registered")
            let password = try await token(f, "grant_type=password&username=a&password=b")
            #expect(password.object["error"] as? String == "unsupported_grant_type")

            let discovery = try await f.auth.send(.get, "/.well-known/openid-configuration")
            #expect(discovery.object["token_endpoint"] as? String == "http://127.0.0.1:0/auth/v1/oauth/token")
            #expect((discovery.object["code_challenge_methods_supported"] as? [String])?.contains("S256") == true)
        }
    }

    @Test func theServerIsOffUntilConfigured() async throws {
        try await withServer(enabled: false) { f in
            let refused = try await authorize(f)
            #expect(refused.status == .notFound && refused.errorCode == "feature_disabled")
            let metadata = try await f.auth.send(.get, "/.well-known/oauth-authorization-server")
            #expect(metadata.status == .notFound)
        }
    }
}
