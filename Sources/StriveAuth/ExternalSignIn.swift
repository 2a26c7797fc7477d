import Crypto
import Foundation
import Logging
import StriveCore
import StriveIdentity
import StriveMetrics

/// The external providers a project offers and what the browser flow needs to talk to them.
public struct ExternalProviders: Sendable {
    let providers: [String: ExternalProvider]
    let client: ProviderClient
    /// Where providers send the browser back: `<issuer>/callback` unless a provider names its own.
    let callbackURL: String
    /// Signs the `state` a browser carries to the provider and back.
    let stateKey: SymmetricKey
    /// How long a user may take at the provider.
    static let stateLifetime: Duration = .seconds(600)

    init(settings: AuthSettings, issuer: String, secret: Secret, logger: Logger) {
        providers = Dictionary(settings.externalProviders.map { ($0.name, $0) }, uniquingKeysWith: { first, _ in first })
        client = ProviderClient(logger: logger)
        callbackURL = issuer + "/callback"
        stateKey = SymmetricKey(data: SHA256.hash(data: Data("strive oauth-state|\(secret.value)".utf8)))
    }

    /// Whether each provider is on, for `/settings`.
    var enabledByName: [String: Bool] { providers.mapValues(\.enabled) }

    /// The provider `name`, if it is configured and on; GoTrue's errors otherwise.
    func provider(_ name: String) throws(AuthError) -> ExternalProvider {
        guard let provider = providers[name.lowercased()] else {
            throw .validation("Unsupported provider: Provider \(name.prefix(40)) could not be found")
        }
        guard provider.enabled else { throw .validation("Unsupported provider: provider is not enabled") }
        return provider
    }

    // MARK: State

    /// `<id>.<expiry>.<HMAC>`: the flow's row, until when it is good, signed. A forged or altered state is
    /// refused before the database is asked; the row makes it single-use.
    func state(for id: UUID, expires: Date) -> String {
        let payload = id.uuidString.lowercased() + "." + String(Int(expires.timeIntervalSince1970))
        let mac = HMAC<SHA256>.authenticationCode(for: Data(payload.utf8), using: stateKey)
        return payload + "." + Data(mac).base64URLEncodedString
    }

    enum StateProblem: Error { case missing, invalid, expired }

    func flowID(fromState state: String?) throws(StateProblem) -> UUID {
        guard let state, !state.isEmpty else { throw .missing }
        let parts = state.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 3, let mac = Data(base64URLEncoded: String(parts[2])),
            HMAC<SHA256>.isValidAuthenticationCode(mac, authenticating: Data("\(parts[0]).\(parts[1])".utf8), using: stateKey),
            let id = UUID(uuidString: String(parts[0])), let expiry = Int(parts[1])
        else { throw .invalid }
        guard Date(timeIntervalSince1970: TimeInterval(expiry)) > Date() else { throw .expired }
        return id
    }
}

/// A redirect error as GoTrue sends it back to the app: `error`, `error_code`, `error_description`.
struct RedirectError: Error {
    let error: String
    let code: String?
    let description: String

    init(_ error: String, code: String?, _ description: String) {
        self.error = error
        self.code = code
        self.description = description
    }

    /// GoTrue's mapping of an API error onto OAuth's `error` vocabulary.
    init(_ authError: AuthError) {
        switch (authError.code, authError.status.code) {
        case ("signup_disabled", _), ("user_banned", _), ("provider_email_needs_verification", _): error = "access_denied"
        case (_, 400), (_, 422): error = "invalid_request"
        case (_, 401): error = "unauthorized_client"
        case (_, 403): error = "access_denied"
        case (_, 503): error = "temporarily_unavailable"
        default: error = "server_error"
        }
        code = authError.code
        description = authError.message
    }

    var pairs: [(String, String)] {
        [("error", error)] + (code.map { [("error_code", $0)] } ?? []) + [("error_description", description)]
    }
}

extension AuthService {
    /// Where `GET /authorize` sends the browser: the provider's authorization endpoint, with a signed state
    /// whose flow remembers `redirectTo`, the nonce and Strive's own PKCE verifier.
    public func startExternalSignIn(
        provider name: String, redirectTo: String?, scopes: String?, pkce: PKCEChallenge?, linking user: UUID? = nil
    ) async throws -> String {
        let provider = try external.provider(name)
        guard provider.secret != nil else { throw AuthError.validation("Unsupported provider: missing OAuth secret") }
        let redirect = allowedRedirect(redirectTo)
        let verifier = codec.random() + codec.random()
        var nonce: String?
        let endpoint: String
        switch provider.kind {
        case .openIDConnect(let issuer):
            endpoint = try await Self.providerCall { try await external.client.discovery(issuer: issuer) }.authorization_endpoint
            nonce = codec.random()
        case .oauth2(let authorize, _, _, _):
            endpoint = authorize
        }
        let expires = Date().addingTimeInterval(TimeInterval(ExternalProviders.stateLifetime.components.seconds))
        let id = try await store.beginExternalFlow(
            provider: provider.name, redirectTo: redirect, nonce: nonce, codeVerifier: verifier, pkce: pkce, linkingUser: user,
            lifetime: ExternalProviders.stateLifetime)
        var requested = provider.scopes
        for scope in (scopes ?? "").split(whereSeparator: { $0 == " " || $0 == "," }).map(String.init) where !requested.contains(scope) {
            requested.append(scope)
        }
        var query: [(String, String)] = [
            ("client_id", provider.clientIDs[0]), ("redirect_uri", provider.redirectURI ?? external.callbackURL),
            ("response_type", "code"), ("scope", requested.joined(separator: " ")), ("state", external.state(for: id, expires: expires)),
            ("code_challenge", Data(SHA256.hash(data: Data(verifier.utf8))).base64URLEncodedString), ("code_challenge_method", "S256"),
        ]
        if let nonce { query.append(("nonce", nonce)) }
        // Apple answers with a form post when it is asked for the user's name or address.
        if provider.name == "apple", requested.contains(where: { $0 == "name" || $0 == "email" }) {
            query.append(("response_mode", "form_post"))
        }
        StriveMetrics.externalSignIn(provider: provider.name, outcome: "started")
        return Self.appending(query: query, to: endpoint)
    }

    /// What the provider sent back to `GET|POST /callback`.
    public struct ProviderCallback: Sendable {
        public var state: String?
        public var code: String?
        public var error: String?
        public var errorDescription: String?
        /// RFC 9207's `iss`: which authorization server answered.
        public var issuer: String?

        public init(state: String?, code: String?, error: String?, errorDescription: String?, issuer: String?) {
            self.state = state
            self.code = code
            self.error = error
            self.errorDescription = errorDescription
            self.issuer = issuer
        }
    }

    /// Where the callback sends the browser: the app's `redirect_to` with the session in the fragment
    /// (implicit) or `?code=` (PKCE), or with GoTrue's error parameters. Never throws: every failure is a
    /// redirect the app can read.
    public func finishExternalSignIn(_ callback: ProviderCallback, client: Client) async -> String {
        let flowID: UUID
        do {
            flowID = try external.flowID(fromState: callback.state)
        } catch {
            let (code, description) =
                switch error {
                case .missing: ("bad_oauth_callback", "OAuth state parameter missing")
                case .invalid: ("bad_oauth_state", "OAuth state parameter is invalid")
                case .expired: ("bad_oauth_state", "OAuth state has expired")
                }
            StriveMetrics.externalSignIn(provider: "unknown", outcome: code)
            return Self.appending(query: RedirectError("invalid_request", code: code, description).pairs, to: settings.siteURL)
        }
        let pending: AuthStore.PendingState
        do {
            guard let found = try await store.takeExternalFlow(flowID) else {
                StriveMetrics.externalSignIn(provider: "unknown", outcome: "bad_oauth_state")
                return Self.appending(
                    query: RedirectError("invalid_request", code: "bad_oauth_state", "OAuth state not found or expired").pairs,
                    to: settings.siteURL)
            }
            pending = found
        } catch {
            store.logger.error("external sign-in: reading the flow failed", metadata: ["error": "\(error)"])
            return Self.appending(
                query: RedirectError("server_error", code: "unexpected_failure", "Unexpected failure").pairs, to: settings.siteURL)
        }
        do {
            guard pending.fresh else {
                throw RedirectError("invalid_request", code: "bad_oauth_state", "OAuth state has expired")
            }
            let location = try await completeExternalSignIn(callback, pending: pending, client: client)
            StriveMetrics.externalSignIn(provider: pending.provider, outcome: "signed_in")
            return location
        } catch let error as RedirectError {
            StriveMetrics.externalSignIn(provider: pending.provider, outcome: error.code ?? "provider_error")
            return Self.redirect(error, to: pending.redirectTo)
        } catch let error as AuthError {
            StriveMetrics.externalSignIn(provider: pending.provider, outcome: error.code)
            return Self.redirect(RedirectError(error), to: pending.redirectTo)
        } catch {
            store.logger.error("external sign-in failed", metadata: ["provider": "\(pending.provider)", "error": "\(error)"])
            StriveMetrics.externalSignIn(provider: pending.provider, outcome: "unexpected_failure")
            return Self.redirect(RedirectError("server_error", code: "unexpected_failure", "Unexpected failure"), to: pending.redirectTo)
        }
    }

    /// GoTrue puts an error in both the query (PKCE apps read it there) and the fragment (implicit ones).
    static func redirect(_ error: RedirectError, to target: String) -> String {
        appending(fragment: error.pairs, to: appending(query: error.pairs, to: target))
    }

    private func completeExternalSignIn(_ callback: ProviderCallback, pending: AuthStore.PendingState, client: Client) async throws
        -> String
    {
        if let error = callback.error {
            throw RedirectError(
                String(error.prefix(100)), code: nil, String((callback.errorDescription ?? "The provider refused the sign-in").prefix(500)))
        }
        let provider: ExternalProvider
        do {
            provider = try external.provider(pending.provider)
        } catch {
            throw RedirectError("invalid_request", code: "provider_disabled", "Provider \(pending.provider) is not enabled")
        }
        if let issuer = callback.issuer, case .openIDConnect(let expected) = provider.kind,
            issuer.trimmingCharacters(in: CharacterSet(charactersIn: "/"))
                != expected.trimmingCharacters(in: CharacterSet(charactersIn: "/"))
        {
            throw RedirectError(
                "invalid_request", code: "bad_oauth_callback", "The callback came from another provider than the sign-in started with")
        }
        guard let code = callback.code, !code.isEmpty else {
            throw RedirectError("invalid_request", code: "bad_oauth_callback", "OAuth callback with missing authorization code")
        }
        let profile = try await Self.providerCall {
            try await self.profile(provider, code: code, verifier: pending.codeVerifier, nonce: pending.nonce)
        }
        let user = try await signIn(with: profile, provider: provider.name, linking: pending.linkingUser)
        if let flowState = pending.flowState {
            let authCode = codec.random()
            try await store.completeExternalFlow(
                flowState, user: user.id, codeHash: RefreshTokenCodec.hash(authCode), providerToken: profile.accessToken,
                providerRefreshToken: profile.refreshToken)
            return Self.appending(query: [("code", authCode)], to: pending.redirectTo)
        }
        let session = try await startSession(for: user, method: "oauth", client: client)
        var pairs: [(String, String)] = [
            ("access_token", session.access_token), ("expires_at", String(session.expires_at)),
            ("expires_in", String(session.expires_in)),
        ]
        if let refresh = profile.refreshToken { pairs.append(("provider_refresh_token", refresh)) }
        if let token = profile.accessToken { pairs.append(("provider_token", token)) }
        pairs += [("refresh_token", session.refresh_token), ("token_type", "bearer")]
        return Self.appending(fragment: pairs, to: pending.redirectTo)
    }

    /// The account `profile` signs in to (see `AuthStore.resolve`), refused when banned.
    func signIn(with profile: ProviderProfile, provider: String, linking: UUID?) async throws -> UserRecord {
        let identity = AuthStore.ExternalIdentity(
            provider: provider, subject: profile.subject, email: profile.email, emailVerified: profile.emailVerified,
            identityData: profile.identityData)
        let user: UserRecord
        switch try await store.resolve(identity, linkingTo: linking, signupsAllowed: !settings.signupDisabled) {
        case .signedIn(let found), .created(let found), .linked(let found): user = found
        }
        if user.isBanned() { throw AuthError.userBanned }
        return user
    }

    /// Exchanges the provider's code and reads who the user is: the verified ID token's claims for OpenID
    /// Connect (userinfo filling in what the token leaves out), the profile endpoint otherwise.
    func profile(_ provider: ExternalProvider, code: String, verifier: String, nonce: String?) async throws(ProviderError)
        -> ProviderProfile
    {
        let client = external.client
        let redirectURI = provider.redirectURI ?? external.callbackURL
        switch provider.kind {
        case .openIDConnect(let issuer):
            let discovery = try await client.discovery(issuer: issuer)
            let basic = discovery.token_endpoint_auth_methods_supported.map { $0.contains("client_secret_basic") } ?? true
            let tokens = try await client.exchange(
                code: code, tokenURL: discovery.token_endpoint, redirectURI: redirectURI, clientID: provider.clientIDs[0],
                secret: provider.secret, verifier: verifier, basic: basic)
            guard let idToken = tokens.id_token else { throw .exchangeRefused("the provider sent no ID token (is `openid` a scope?)") }
            var claims = try await client.verifyIDToken(
                idToken, issuer: issuer, audiences: provider.clientIDs, nonce: nonce.map { .exact($0) } ?? .none)
            if claims["email"] == nil, let userinfo = discovery.userinfo_endpoint, let access = tokens.access_token,
                let extra = try? await client.resource(userinfo, accessToken: access).objectValue, extra["sub"] == claims["sub"]
            {
                claims.merge(extra) { current, _ in current }
            }
            return try Self.openIDProfile(claims, accessToken: tokens.access_token, refreshToken: tokens.refresh_token)
        case .oauth2(_, let tokenURL, let userinfo, let emails):
            let tokens = try await client.exchange(
                code: code, tokenURL: tokenURL, redirectURI: redirectURI, clientID: provider.clientIDs[0], secret: provider.secret,
                verifier: verifier, basic: false)
            guard let access = tokens.access_token else { throw .exchangeRefused("the provider sent no access token") }
            guard let user = try await client.resource(userinfo, accessToken: access).objectValue else {
                throw .unreachable("the profile endpoint did not answer a JSON object")
            }
            var addresses: [JSONValue]?
            if let emails {
                guard case .array(let list) = try await client.resource(emails, accessToken: access) else {
                    throw .unreachable("the emails endpoint did not answer a JSON array")
                }
                addresses = list
            }
            return try Self.oauth2Profile(
                user, emails: addresses, issuer: Self.origin(of: userinfo), accessToken: access,
                refreshToken: tokens.refresh_token)
        }
    }

    /// An OpenID Connect user as GoTrue keeps it: the claims, with `provider_id`, `full_name`, `avatar_url`.
    static func openIDProfile(_ claims: [String: JSONValue], accessToken: String?, refreshToken: String?) throws(ProviderError)
        -> ProviderProfile
    {
        guard let subject = claims["sub"]?.stringValue, !subject.isEmpty else { throw .noSubject }
        let email = claims["email"]?.stringValue?.lowercased()
        let verified = isTrue(claims["email_verified"])
        var data = claims.filter {
            !["aud", "exp", "iat", "nbf", "nonce", "at_hash", "c_hash", "auth_time", "azp", "sid", "jti"].contains($0.key)
        }
        data["sub"] = .string(subject)
        data["provider_id"] = .string(subject)
        data["email_verified"] = .bool(verified)
        data["phone_verified"] = .bool(isTrue(claims["phone_number_verified"]))
        if let email { data["email"] = .string(email) }
        if let name = claims["name"], data["full_name"] == nil { data["full_name"] = name }
        if let picture = claims["picture"], data["avatar_url"] == nil { data["avatar_url"] = picture }
        return ProviderProfile(
            subject: subject, email: email, emailVerified: verified, identityData: data, accessToken: accessToken,
            refreshToken: refreshToken)
    }

    /// A plain OAuth 2.0 profile (GitHub's shape: numeric `id`, `login`, `name`, `avatar_url`), its address
    /// from the emails list when there is one (the primary, else the first verified), never from the profile
    /// alone then: only the list says whether an address is verified.
    static func oauth2Profile(
        _ user: [String: JSONValue], emails: [JSONValue]?, issuer: String, accessToken: String?, refreshToken: String?
    ) throws(ProviderError) -> ProviderProfile {
        let subject: String
        switch user["id"] ?? user["sub"] {
        case .string(let text)?: subject = text
        case .number(let number)? where number.rounded() == number: subject = String(Int64(number))
        default: throw .noSubject
        }
        var email: String?
        var verified = false
        if let emails {
            let entries = emails.compactMap(\.objectValue).filter { ($0["email"]?.stringValue ?? "").isEmpty == false }
            let chosen = entries.first { isTrue($0["primary"]) } ?? entries.first { isTrue($0["verified"]) }
            email = chosen?["email"]?.stringValue?.lowercased()
            verified = isTrue(chosen?["verified"])
        } else {
            email = user["email"]?.stringValue?.lowercased()
            verified = isTrue(user["email_verified"])
        }
        var data: [String: JSONValue] = [
            "iss": .string(issuer), "sub": .string(subject), "provider_id": .string(subject), "email_verified": .bool(verified),
            "phone_verified": false,
        ]
        if let email { data["email"] = .string(email) }
        if let name = user["name"], name != .null {
            data["name"] = name
            data["full_name"] = name
        }
        if let login = user["login"] ?? user["username"], login != .null {
            data["user_name"] = login
            data["preferred_username"] = login
        }
        if let avatar = user["avatar_url"] ?? user["picture"], avatar != .null { data["avatar_url"] = avatar }
        return ProviderProfile(
            subject: subject, email: email, emailVerified: verified, identityData: data, accessToken: accessToken,
            refreshToken: refreshToken)
    }

    /// Apple sends `email_verified` as the string "true".
    static func isTrue(_ value: JSONValue?) -> Bool {
        switch value {
        case .bool(true)?: true
        case .string(let text)?: text.lowercased() == "true"
        default: false
        }
    }

    static func origin(of url: String) -> String {
        guard let components = URLComponents(string: url), let scheme = components.scheme, let host = components.host else { return url }
        return "\(scheme)://\(host)" + (components.port.map { ":\($0)" } ?? "")
    }

    /// A provider failure as the API error GoTrue answers for it.
    static func providerCall<T>(_ body: () async throws -> T) async throws -> T {
        do {
            return try await body()
        } catch let error as ProviderError {
            switch error {
            case .unreachable(let reason):
                throw AuthError(status: .badGateway, code: "provider_unreachable", message: "The provider could not be used: \(reason)")
            case .exchangeRefused(let reason):
                throw AuthError(
                    status: .internalServerError, code: "unexpected_failure", message: "Unable to exchange external code: \(reason)")
            case .badIDToken(let reason):
                throw AuthError(status: .badRequest, code: "bad_id_token", message: "Bad ID token: \(reason)")
            case .noSubject:
                throw AuthError(status: .badRequest, code: "bad_id_token", message: "Missing sub claim in the provider's answer")
            }
        }
    }

    // MARK: Native sign-in and linking

    /// `POST /token?grant_type=id_token`: an ID token an app got from Apple, Google or another OpenID
    /// provider, checked against the provider's published keys, its issuer, this project's client ids and
    /// the nonce.
    public func signInWithIDToken(provider name: String, idToken: String, nonce: String?, client: Client) async throws
        -> TokenResponse
    {
        try await limit(.signIn, client: client)
        let provider: ExternalProvider
        do {
            provider = try external.provider(name)
        } catch {
            if external.providers[name.lowercased()] != nil {
                throw AuthError(status: .badRequest, code: "provider_disabled", message: "Provider \(name.prefix(40)) is not enabled")
            }
            throw AuthError.validation("Custom OIDC provider \"\(name.prefix(40))\" not allowed")
        }
        guard case .openIDConnect(let issuer) = provider.kind else {
            throw AuthError.validation("Provider \(provider.name) does not issue ID tokens (it is not OpenID Connect)")
        }
        let claims = try await Self.providerCall {
            try await external.client.verifyIDToken(
                idToken, issuer: issuer, audiences: provider.clientIDs, nonce: nonce.map { .hashedOrExact($0) } ?? .none)
        }
        let profile = try await Self.providerCall { try Self.openIDProfile(claims, accessToken: nil, refreshToken: nil) }
        do {
            let user = try await signIn(with: profile, provider: provider.name, linking: nil)
            StriveMetrics.externalSignIn(provider: provider.name, outcome: "signed_in")
            return try await startSession(for: user, method: "oauth", client: client)
        } catch let error as AuthError {
            StriveMetrics.externalSignIn(provider: provider.name, outcome: error.code)
            throw error
        }
    }

    /// `DELETE /user/identities/{id}`.
    public func unlinkIdentity(_ token: VerifiedToken, identity: UUID) async throws -> UserRecord {
        let user = try await currentUser(token)
        return try await store.unlink(identity: identity, of: user.id)
    }
}
