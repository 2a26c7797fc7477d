import Foundation
import HTTPTypes
import NIOCore
import PostgresNIO
import StriveAuth
import StriveCore
import StriveIdentity
import StriveTestSupport
import Testing

/// Sign-in with external providers over real HTTP: a real OpenID Connect provider (oidc-provider-mock) and
/// a GitHub-shaped OAuth 2.0 provider on loopback, each hop of the browser's trip made and checked.
@Suite("External sign-in providers")
struct ExternalSignInTests {
    static let app = "http://localhost:3000/welcome"

    func withProviders(
        _ extra: [String: String] = [:], _ body: @Sendable (AuthClient, TestIdentityProviders, TestDatabase) async throws -> Void
    ) async throws {
        let providers = try await TestIdentityProviders.shared()
        let database = try await TestCluster.shared.makeDatabase()
        try await database.withLiveApp(environment: providers.environment().merging(extra) { $1 }) { client, services in
            try await body(try await AuthClient(client, services), providers, database)
        }
    }

    /// The browser's trip: Strive's `/authorize` sends it to the provider, the user answers the provider's
    /// consent form with `consent`, the provider sends it to Strive's callback, which sends it to the app.
    /// `tamper` changes the provider's URL as a hostile browser could; returns the callback's path and
    /// where the callback sent the browser.
    func signIn(
        _ auth: AuthClient, _ query: String, consent: [(String, String)], tamper: (String) -> String = { $0 }, bearer: String? = nil
    ) async throws -> (callback: String, landing: String) {
        let start = try await auth.send(.get, "/authorize?" + query)
        #expect(start.status == .found, "\(start.text)")
        let providerURL = try #require(start["Location"])
        return try await finish(auth, providerURL: tamper(providerURL), consent: consent)
    }

    func finish(_ auth: AuthClient, providerURL: String, consent: [(String, String)]) async throws -> (callback: String, landing: String) {
        let answered = try await TestBrowser().post(providerURL, form: consent)
        #expect(answered.status == 302 || answered.status == 303, "the provider answered \(answered.status): \(answered.body)")
        let toCallback = try #require(answered.location)
        let callback = try #require(toCallback.range(of: "/auth/v1/callback").map { String(toCallback[$0.lowerBound...]) })
        let landing = try await callBack(auth, callback)
        return (callback, landing)
    }

    func callBack(_ auth: AuthClient, _ callback: String) async throws -> String {
        let reply = try await auth.send(.get, String(callback.dropFirst("/auth/v1".count)))
        #expect(reply.status == .found, "\(reply.text)")
        return try #require(reply["Location"])
    }

    /// `a=b&c=d` of a URL's fragment (or query), decoded.
    static func parameters(_ url: String, in part: Character) -> [String: String] {
        guard let start = url.firstIndex(of: part) else { return [:] }
        var text = String(url[url.index(after: start)...])
        if part == "?", let hash = text.firstIndex(of: "#") { text = String(text[..<hash]) }
        var result: [String: String] = [:]
        for pair in text.split(separator: "&") {
            let parts = pair.split(separator: "=", maxSplits: 1).map {
                String($0).replacingOccurrences(of: "+", with: " ").removingPercentEncoding ?? ""
            }
            result[parts[0]] = parts.count > 1 ? parts[1] : ""
        }
        return result
    }

    func user(_ auth: AuthClient, token: String) async throws -> [String: Any] {
        let reply = try await auth.send(.get, "/user", apikey: auth.anonKey, bearer: token)
        #expect(reply.status == .ok, "\(reply.text)")
        return reply.object
    }

    static func identities(_ user: [String: Any]) -> [[String: Any]] { user["identities"] as? [[String: Any]] ?? [] }

    static func encoded(_ text: String) -> String {
        text.addingPercentEncoding(withAllowedCharacters: .alphanumerics) ?? text
    }

    @Test func anOpenIDProviderSignsUpThenSignsInTheSameUserImplicitly() async throws {
        try await withProviders { auth, providers, _ in
            let subject = "alice-\(UUID().uuidString)"
            let email = uniqueEmail("alice")
            try await providers.setOIDCUser(subject, claims: ["email": email, "email_verified": true, "name": "Alice"])
            let first = try await signIn(auth, "provider=acme&redirect_to=\(Self.encoded(Self.app))", consent: [("sub", subject)])
            #expect(first.landing.hasPrefix(Self.app + "#access_token="), "\(first.landing)")
            let session = Self.parameters(first.landing, in: "#")
            #expect(session["token_type"] == "bearer" && session["refresh_token"] != nil && session["provider_token"] != nil)
            let token = try #require(session["access_token"])
            let created = try await user(auth, token: token)
            #expect(created["email"] as? String == email && created["email_confirmed_at"] is String, "a verified address is confirmed")
            let identities = Self.identities(created)
            #expect(identities.map { $0["provider"] as? String } == ["acme"], "no email identity for a provider's user: \(identities)")
            let data = identities.first?["identity_data"] as? [String: Any]
            #expect(data?["sub"] as? String == subject && data?["email"] as? String == email && data?["full_name"] as? String == "Alice")
            #expect((created["app_metadata"] as? [String: Any])?["provider"] as? String == "acme")
            #expect((created["user_metadata"] as? [String: Any])?["name"] as? String == "Alice")
            #expect(try claims(of: token)["amr"].map { "\($0)" }?.contains("oauth") == true)

            // The second time the callback arrives as a form post, as Apple's `response_mode=form_post` sends it.
            let start = try await auth.send(.get, "/authorize?provider=acme&redirect_to=\(Self.encoded(Self.app))")
            let answered = try await TestBrowser().post(try #require(start["Location"]), form: [("sub", subject)])
            let callbackQuery = try #require(answered.location?.split(separator: "?", maxSplits: 1).last.map(String.init))
            let posted = try await auth.send(
                .post, "/callback", headers: [.contentType: "application/x-www-form-urlencoded"], rawBody: ByteBuffer(string: callbackQuery)
            )
            let second = try #require(posted["Location"], "\(posted.status) \(posted.text)")
            let again = try await user(auth, token: try #require(Self.parameters(second, in: "#")["access_token"]))
            #expect(again["id"] as? String == created["id"] as? String, "the identity finds its user again")

            let metrics = try await TestHTTP(auth.client).send(.get, "/metrics", apikey: nil, bearer: auth.serviceKey)
            // The process's registry is shared with the other tests: at least this test's two sign-ins are counted.
            let line = metrics.text.split(separator: "\n").first {
                $0.hasPrefix(#"strive_auth_external_sign_ins_total{provider="acme",outcome="signed_in"}"#)
            }
            #expect((line?.split(separator: " ").last.flatMap { Double($0) } ?? 0) >= 2, "\(line ?? "no sign-in counted")")
        }
    }

    @Test func aPKCESignInHandsTheAppACodeExchangedOnceForTheSession() async throws {
        try await withProviders { auth, providers, _ in
            let subject = "pkce-\(UUID().uuidString)"
            try await providers.setOIDCUser(subject, claims: ["email": uniqueEmail("pkce"), "email_verified": true])
            let verifier = String(repeating: "v", count: 50)
            let challenge = Data(SHA256Digest.of(verifier)).base64URLEncodedString
            let trip = try await signIn(
                auth, "provider=acme&redirect_to=\(Self.encoded(Self.app))&code_challenge=\(challenge)&code_challenge_method=s256",
                consent: [("sub", subject)])
            #expect(trip.landing.hasPrefix(Self.app + "?code="), "\(trip.landing)")
            let code = try #require(Self.parameters(trip.landing, in: "?")["code"])
            let body = #"{"auth_code":"\#(code)","code_verifier":"\#(verifier)"}"#
            let exchanged = try await auth.send(.post, "/token?grant_type=pkce", json: body, apikey: auth.anonKey)
            #expect(exchanged.status == .ok, "\(exchanged.text)")
            #expect(exchanged.object["provider_token"] is String && exchanged.object["access_token"] is String)
            let again = try await auth.send(.post, "/token?grant_type=pkce", json: body, apikey: auth.anonKey)
            #expect(again.status == .notFound && again.errorCode == "flow_state_not_found", "a code works once")
        }
    }

    @Test func aVerifiedAddressJoinsTheExistingAccountAndAnUnverifiedOneNever() async throws {
        try await withProviders { auth, providers, _ in
            let email = uniqueEmail("octo")
            let existing = try await auth.session(email)
            let login = "octo\(Int.random(in: 1000...999_999))"
            try await providers.setGitHubUser(
                login, id: Int.random(in: 1...1_000_000_000), name: "Octo",
                emails: [(email: "other-\(email)", primary: false, verified: false), (email: email, primary: true, verified: true)])
            let trip = try await signIn(
                auth, "provider=github&redirect_to=\(Self.encoded(Self.app))", consent: [("login", login), ("action", "allow")])
            let token = try #require(Self.parameters(trip.landing, in: "#")["access_token"], "\(trip.landing)")
            let linked = try await user(auth, token: token)
            #expect(linked["id"] as? String == existing.user.id, "GitHub's verified primary address is the account's")
            #expect(Set(Self.identities(linked).compactMap { $0["provider"] as? String }) == ["email", "github"])
            #expect((linked["app_metadata"] as? [String: Any])?["providers"] as? [String] == ["email", "github"])
            let github = Self.identities(linked).first { $0["provider"] as? String == "github" }?["identity_data"] as? [String: Any]
            #expect(github?["user_name"] as? String == login && github?["email_verified"] as? Bool == true)
            #expect(github?["iss"] as? String == providers.githubBase)

            // The same address, unverified at an OpenID provider, makes an account of its own without it.
            let subject = "squatter-\(UUID().uuidString)"
            try await providers.setOIDCUser(subject, claims: ["email": email, "email_verified": false])
            let squatter = try await signIn(auth, "provider=acme&redirect_to=\(Self.encoded(Self.app))", consent: [("sub", subject)])
            let other = try await user(auth, token: try #require(Self.parameters(squatter.landing, in: "#")["access_token"]))
            #expect(other["id"] as? String != existing.user.id, "an unverified address never signs in to someone's account")
            #expect(other["email"] == nil || other["email"] is NSNull || (other["email"] as? String)?.isEmpty == true)
        }
    }

    @Test func deniedConsentWrongNonceAndAnotherProvidersCallbackComeBackAsErrors() async throws {
        try await withProviders { auth, providers, _ in
            let subject = "bob-\(UUID().uuidString)"
            try await providers.setOIDCUser(subject, claims: ["email": uniqueEmail("bob"), "email_verified": true])
            let query = "provider=acme&redirect_to=\(Self.encoded(Self.app))"

            // Denied at the GitHub-shaped provider (oidc-provider-mock's denial leaves out `state`, so no
            // relying party could tell which sign-in it ends).
            let login = "bob\(Int.random(in: 1000...999_999))"
            try await providers.setGitHubUser(login, id: Int.random(in: 1...1_000_000_000), name: "Bob", emails: [])
            let denied = try await signIn(
                auth, "provider=github&redirect_to=\(Self.encoded(Self.app))", consent: [("login", login), ("action", "deny")])
            #expect(denied.landing.hasPrefix(Self.app + "?"), "\(denied.landing)")
            #expect(Self.parameters(denied.landing, in: "?")["error"] == "access_denied")
            #expect(Self.parameters(denied.landing, in: "#")["error"] == "access_denied", "implicit apps read the fragment")

            let wrongNonce = try await signIn(auth, query, consent: [("sub", subject)]) { url in
                url.replacingOccurrences(of: "nonce=", with: "nonce=forged")
            }
            let nonceError = Self.parameters(wrongNonce.landing, in: "?")
            #expect(nonceError["error_code"] == "bad_id_token" && nonceError["error_description"]?.contains("nonce") == true)
            #expect(Self.parameters(wrongNonce.landing, in: "#")["access_token"] == nil)

            let start = try await auth.send(.get, "/authorize?" + query)
            let providerURL = try #require(start["Location"])
            let answered = try await TestBrowser().post(providerURL, form: [("sub", subject)])
            let callback = try #require(
                answered.location.flatMap { $0.range(of: "/auth/v1/callback").map { answered.location![$0.lowerBound...] } })
            let foreign = try await callBack(auth, String(callback) + "&iss=" + Self.encoded("https://accounts.google.com"))
            #expect(Self.parameters(foreign, in: "?")["error_code"] == "bad_oauth_callback", "\(foreign)")
        }
    }

    @Test func aStateIsSignedExpiresAndWorksOnce() async throws {
        try await withProviders { auth, providers, database in
            let subject = "carol-\(UUID().uuidString)"
            try await providers.setOIDCUser(subject, claims: ["email": uniqueEmail("carol"), "email_verified": true])
            let query = "provider=acme&redirect_to=\(Self.encoded(Self.app))"
            let trip = try await signIn(auth, query, consent: [("sub", subject)])
            #expect(Self.parameters(trip.landing, in: "#")["access_token"] != nil)

            let replayed = try await callBack(auth, trip.callback)
            #expect(replayed.hasPrefix("http://localhost:3000?"), "errors without a flow go to the site URL: \(replayed)")
            #expect(Self.parameters(replayed, in: "?")["error_code"] == "bad_oauth_state")

            let state = try #require(Self.parameters(trip.callback, in: "?")["state"])
            let forged = state.dropLast(3) + "AAA"
            let forgedLanding = try await callBack(auth, "/auth/v1/callback?code=x&state=\(forged)")
            #expect(Self.parameters(forgedLanding, in: "?")["error_description"] == "OAuth state parameter is invalid")
            let missing = try await callBack(auth, "/auth/v1/callback?code=x")
            #expect(Self.parameters(missing, in: "?")["error_code"] == "bad_oauth_callback")

            let start = try await auth.send(.get, "/authorize?" + query)
            let providerURL = try #require(start["Location"])
            _ = try await database.withOwnerConnection { connection in
                try await connection.query("update auth.oauth_states set expires_at = now() - interval '1 second'", logger: database.logger)
            }
            let late = try await finish(auth, providerURL: providerURL, consent: [("sub", subject)])
            #expect(Self.parameters(late.landing, in: "?")["error_description"] == "OAuth state has expired", "\(late.landing)")
        }
    }

    @Test func redirectsStayWithinTheAllowListAndUnknownOrDisabledProvidersAreRefused() async throws {
        let extra = [
            "STRIVE_AUTH_EXTERNAL_GITLAB_CLIENT_ID": "gl", "STRIVE_AUTH_EXTERNAL_GITLAB_SECRET": "s",
            "STRIVE_AUTH_EXTERNAL_GITLAB_ENABLED": "false",
        ]
        try await withProviders(extra) { auth, providers, _ in
            let subject = "dave-\(UUID().uuidString)"
            try await providers.setOIDCUser(subject, claims: ["email": uniqueEmail("dave"), "email_verified": true])
            let trip = try await signIn(
                auth, "provider=acme&redirect_to=\(Self.encoded("https://evil.example/steal"))", consent: [("sub", subject)])
            #expect(
                trip.landing.hasPrefix("http://localhost:3000#access_token="), "an unlisted target falls back to the site: \(trip.landing)")

            let unknown = try await auth.send(.get, "/authorize?provider=myspace")
            #expect(unknown.status == .badRequest && unknown.errorCode == "validation_failed")
            #expect(unknown.object["msg"] as? String == "Unsupported provider: Provider myspace could not be found")
            let disabled = try await auth.send(.get, "/authorize?provider=gitlab")
            #expect(disabled.status == .badRequest && disabled.object["msg"] as? String == "Unsupported provider: provider is not enabled")

            let settings = try await auth.send(.get, "/settings", apikey: auth.anonKey)
            let external = settings.object["external"] as? [String: Bool]
            #expect(
                external?["acme"] == true && external?["github"] == true && external?["gitlab"] == false && external?["google"] == false)
        }
    }

    /// An ID token for `audience` with `nonce`, got from the OpenID provider as an app gets one.
    func idToken(_ providers: TestIdentityProviders, subject: String, audience: String, nonce: String) async throws -> String {
        let browser = TestBrowser()
        let redirect = "http://127.0.0.1:9/app"
        let authorize =
            providers.oidcIssuer + "/oauth2/authorize?client_id=\(audience)&redirect_uri=\(Self.encoded(redirect))"
            + "&response_type=code&scope=openid+email&state=s&nonce=\(nonce)"
        let answered = try await browser.post(authorize, form: [("sub", subject)])
        let code = try #require(answered.location.map { Self.parameters($0, in: "?") }?["code"], "\(answered.body)")
        let tokens = try await browser.post(
            providers.oidcIssuer + "/oauth2/token",
            form: [
                ("grant_type", "authorization_code"), ("code", code), ("redirect_uri", redirect), ("client_id", audience),
                ("client_secret", "app-secret"),
            ])
        let object = try JSONSerialization.jsonObject(with: Data(tokens.body.utf8)) as? [String: Any]
        return try #require(object?["id_token"] as? String, "\(tokens.body)")
    }

    @Test func nativeIDTokensAreCheckedForAudienceKeyAndNonce() async throws {
        try await withProviders { auth, providers, database in
            let subject = "erin-\(UUID().uuidString)"
            let email = uniqueEmail("erin")
            try await providers.setOIDCUser(subject, claims: ["email": email, "email_verified": true])
            let raw = "raw-nonce-\(UUID().uuidString)"
            let token = try await idToken(providers, subject: subject, audience: "strive-app", nonce: RefreshTokenCodec.hash(raw))
            func exchange(_ idToken: String, nonce: String?) async throws -> AuthClient.Reply {
                let nonceField = nonce.map { #","nonce":"\#($0)""# } ?? ""
                return try await auth.send(
                    .post, "/token?grant_type=id_token", json: #"{"provider":"acme","id_token":"\#(idToken)"\#(nonceField)}"#,
                    apikey: auth.anonKey)
            }
            let signedIn = try await exchange(token, nonce: raw)
            #expect(signedIn.status == .ok, "\(signedIn.text)")
            #expect((signedIn.object["user"] as? [String: Any])?["email"] as? String == email)

            let wrongNonce = try await exchange(token, nonce: "another")
            #expect(wrongNonce.status == .badRequest && wrongNonce.errorCode == "bad_id_token")
            let noNonce = try await exchange(token, nonce: nil)
            #expect(noNonce.status == .badRequest, "a token with a nonce needs the nonce")

            let foreign = try await idToken(providers, subject: subject, audience: "someone-elses-app", nonce: RefreshTokenCodec.hash(raw))
            let wrongAudience = try await exchange(foreign, nonce: raw)
            #expect(wrongAudience.status == .badRequest && (wrongAudience.object["msg"] as? String)?.contains("aud") == true)

            var parts = token.split(separator: ".").map(String.init)
            parts[2] = String(parts[2].reversed())
            let forged = try await exchange(parts.joined(separator: "."), nonce: raw)
            #expect(forged.status == .badRequest && forged.errorCode == "bad_id_token")
            let unknownKid = try await exchange(Self.withHeader(token, kid: "not-a-published-key"), nonce: raw)
            #expect(unknownKid.status == .badRequest && (unknownKid.object["msg"] as? String)?.contains("key") == true)

            // The same token once the provider is turned off.
            let off = providers.environment().merging(["STRIVE_AUTH_EXTERNAL_ACME_ENABLED": "false"]) { $1 }
            try await database.withLiveApp(environment: off) { client, services in
                let disabledAuth = try await AuthClient(client, services)
                let refused = try await disabledAuth.send(
                    .post, "/token?grant_type=id_token", json: #"{"provider":"acme","id_token":"\#(token)","nonce":"\#(raw)"}"#,
                    apikey: disabledAuth.anonKey)
                #expect(refused.status == .badRequest && refused.errorCode == "provider_disabled", "\(refused.text)")
            }
        }
    }

    @Test func aDomainsSingleSignOnProviderStartsItsFlow() async throws {
        try await withProviders { auth, providers, _ in
            func admin(_ method: HTTPRequest.Method, _ path: String, _ json: String? = nil) async throws -> AuthClient.Reply {
                try await auth.send(method, path, json: json, apikey: auth.serviceKey, bearer: auth.serviceKey)
            }
            let before = try await auth.send(.post, "/sso", json: #"{"domain":"corp.example"}"#, apikey: auth.anonKey)
            #expect(
                before.status == .notFound && before.errorCode == "saml_provider_disabled", "no SSO provider yet: as GoTrue without SSO")

            let created = try await admin(.post, "/admin/sso/providers", #"{"type":"oidc","provider":"acme","domains":["Corp.Example"]}"#)
            #expect(created.status == .created, "\(created.text)")
            let id = try #require(created.object["id"] as? String)
            #expect((created.object["domains"] as? [[String: Any]])?.first?["domain"] as? String == "corp.example")
            let saml = try await admin(
                .post, "/admin/sso/providers", #"{"type":"saml","metadata_url":"https://idp.example/m","domains":["a.example"]}"#)
            #expect(saml.status == .notFound && saml.errorCode == "saml_provider_disabled")
            let unknown = try await admin(.post, "/admin/sso/providers", #"{"type":"oidc","provider":"nobody","domains":["b.example"]}"#)
            #expect(unknown.status == .badRequest)
            let taken = try await admin(.post, "/admin/sso/providers", #"{"type":"oidc","provider":"github","domains":["corp.example"]}"#)
            #expect(taken.status == .badRequest && (taken.object["msg"] as? String)?.contains("already assigned") == true)

            let subject = "heidi-\(UUID().uuidString)"
            try await providers.setOIDCUser(subject, claims: ["email": uniqueEmail("heidi"), "email_verified": true])
            for selector in [#""domain":"corp.example""#, #""provider_id":"\#(id)""#] {
                let started = try await auth.send(
                    .post, "/sso", json: #"{\#(selector),"redirect_to":"\#(Self.app)","skip_http_redirect":true}"#, apikey: auth.anonKey)
                let url = try #require(started.object["url"] as? String, "\(started.text)")
                #expect(url.hasPrefix(providers.oidcIssuer))
                let trip = try await finish(auth, providerURL: url, consent: [("sub", subject)])
                #expect(trip.landing.hasPrefix(Self.app + "#access_token="), "\(trip.landing)")
            }
            let elsewhere = try await auth.send(.post, "/sso", json: #"{"domain":"other.example"}"#, apikey: auth.anonKey)
            #expect(elsewhere.status == .notFound && elsewhere.errorCode == "sso_provider_not_found")
            let both = try await auth.send(.post, "/sso", json: #"{"domain":"corp.example","provider_id":"\#(id)"}"#, apikey: auth.anonKey)
            #expect(both.status == .badRequest)

            let listed = try await admin(.get, "/admin/sso/providers")
            #expect((listed.object["items"] as? [Any])?.count == 1, "\(listed.text)")
            #expect(try await admin(.delete, "/admin/sso/providers/\(id)").status == .ok)
            #expect(try await admin(.get, "/admin/sso/providers/\(id)").errorCode == "sso_provider_not_found")
        }
    }

    static func withHeader(_ token: String, kid: String) -> String {
        var parts = token.split(separator: ".").map(String.init)
        let header = #"{"alg":"RS256","kid":"\#(kid)","typ":"JWT"}"#
        parts[0] = Data(header.utf8).base64URLEncodedString
        return parts.joined(separator: ".")
    }

    @Test func aSignedInUserLinksAndUnlinksAnIdentityButNeverTheLastOne() async throws {
        try await withProviders { auth, providers, _ in
            let session = try await auth.session(uniqueEmail("frank"))
            let login = "frank\(Int.random(in: 1000...999_999))"
            // An address GitHub does not vouch for: linking is the user's own choice, so it is linked all the same.
            try await providers.setGitHubUser(
                login, id: Int.random(in: 1...1_000_000_000), name: "Frank",
                emails: [(email: uniqueEmail("gh"), primary: true, verified: false)])
            let start = try await auth.send(
                .get, "/user/identities/authorize?provider=github&redirect_to=\(Self.encoded(Self.app))&skip_http_redirect=true",
                apikey: auth.anonKey, bearer: session.access_token)
            #expect(start.status == .ok, "\(start.text)")
            let url = try #require(start.object["url"] as? String)
            let trip = try await finish(auth, providerURL: url, consent: [("login", login), ("action", "allow")])
            let token = try #require(Self.parameters(trip.landing, in: "#")["access_token"], "\(trip.landing)")
            let linked = try await user(auth, token: token)
            #expect(linked["id"] as? String == session.user.id)
            let identities = Self.identities(linked)
            #expect(Set(identities.compactMap { $0["provider"] as? String }) == ["email", "github"])

            // The GitHub identity is this user's now: another user cannot link it.
            let other = try await auth.session(uniqueEmail("grace"))
            let otherStart = try await auth.send(
                .get, "/user/identities/authorize?provider=github&redirect_to=\(Self.encoded(Self.app))&skip_http_redirect=true",
                apikey: auth.anonKey, bearer: other.access_token)
            let taken = try await finish(
                auth, providerURL: try #require(otherStart.object["url"] as? String), consent: [("login", login), ("action", "allow")])
            #expect(Self.parameters(taken.landing, in: "?")["error_code"] == "identity_already_exists", "\(taken.landing)")

            let githubID = try #require(identities.first { $0["provider"] as? String == "github" }?["identity_id"] as? String)
            let emailID = try #require(identities.first { $0["provider"] as? String == "email" }?["identity_id"] as? String)
            let unlinked = try await auth.send(.delete, "/user/identities/\(githubID)", apikey: auth.anonKey, bearer: token)
            #expect(unlinked.status == .ok, "\(unlinked.text)")
            let last = try await auth.send(.delete, "/user/identities/\(emailID)", apikey: auth.anonKey, bearer: token)
            #expect(last.status == .unprocessableContent && last.errorCode == "single_identity_not_deletable")
            let foreign = try await auth.send(.delete, "/user/identities/\(emailID)", apikey: auth.anonKey, bearer: other.access_token)
            #expect(foreign.status == .unprocessableContent && foreign.errorCode == "identity_not_found")
            let after = try await user(auth, token: token)
            #expect(Self.identities(after).compactMap { $0["provider"] as? String } == ["email"])
            #expect((after["app_metadata"] as? [String: Any])?["providers"] as? [String] == ["email"])
        }
    }
}

/// SHA-256 of a string, for PKCE challenges.
enum SHA256Digest {
    static func of(_ text: String) -> [UInt8] {
        let hex = RefreshTokenCodec.hash(text)
        var bytes: [UInt8] = []
        var index = hex.startIndex
        while index < hex.endIndex {
            let next = hex.index(index, offsetBy: 2)
            bytes.append(UInt8(hex[index..<next], radix: 16) ?? 0)
            index = next
        }
        return bytes
    }
}
