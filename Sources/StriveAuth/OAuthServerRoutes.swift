import Crypto
import Foundation
import HTTPTypes
import Hummingbird
import NIOCore
import StriveCore
import StriveIdentity

/// Strive as an OAuth 2.1 authorization server and OpenID provider (Supabase Auth's OAuth server), for the
/// clients registered through `/admin/oauth/clients`: authorization code with PKCE, a consent step on the
/// project's own site, tokens, refresh, userinfo and discovery.
extension AuthRoutes {
    /// How long a client's request may wait for the user's consent, and its code for the exchange.
    static var authorizationLifetime: Duration { .seconds(600) }
    static var supportedScopes: [String] { ["openid", "email", "profile", "phone", "offline_access"] }

    func registerOAuthServer(in scopes: Scopes) {
        let store = OAuthServerStore(database: service.store.database, logger: service.store.logger)
        // Discovery is served whether or not the server is on: it also describes the JWKS.
        scopes.open.get(".well-known/openid-configuration") { _, _ in try discovery() }
        scopes.open.get(".well-known/oauth-authorization-server") { _, _ in
            try requireOAuthServer()
            return try discovery()
        }
        scopes.open.get("oauth/authorize") { request, _ in try await authorizeClient(request, store) }
        scopes.open.post("oauth/token") { request, context in try await oauthToken(request, context, store) }
        scopes.users.get("oauth/authorizations/:authorization") { request, context in
            try await authorizationDetails(request, context, store)
        }
        scopes.users.post("oauth/authorizations/:authorization/consent") { request, context in
            try await consent(request, context, store)
        }
        scopes.users.get("oauth/userinfo") { _, context in try await userinfo(context) }
        scopes.users.post("oauth/userinfo") { _, context in try await userinfo(context) }
        scopes.users.get("user/oauth/grants") { _, context in try await grants(context, store) }
        scopes.users.delete("user/oauth/grants") { request, context in try await revokeGrant(request, context, store) }
    }

    func requireOAuthServer() throws(AuthError) {
        guard service.settings.oauthServerEnabled else {
            throw AuthError(status: .notFound, code: "feature_disabled", message: "OAuth server is disabled")
        }
    }

    // MARK: Discovery

    func discovery() throws -> Response {
        let issuer = service.tokens.issuer
        let base = issuer.hasSuffix("/") ? String(issuer.dropLast()) : issuer
        let document: [String: JSONValue] = [
            "issuer": .string(issuer), "authorization_endpoint": .string(base + "/oauth/authorize"),
            "token_endpoint": .string(base + "/oauth/token"), "jwks_uri": .string(base + "/.well-known/jwks.json"),
            "userinfo_endpoint": .string(base + "/oauth/userinfo"),
            "scopes_supported": .array(Self.supportedScopes.map(JSONValue.string)), "response_types_supported": ["code"],
            "response_modes_supported": ["query"], "grant_types_supported": ["authorization_code", "refresh_token"],
            "subject_types_supported": ["public"], "id_token_signing_alg_values_supported": ["ES256", "RS256"],
            "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post", "none"],
            "code_challenge_methods_supported": ["S256", "plain"],
            "claims_supported": .array(
                [
                    "sub", "aud", "iss", "exp", "iat", "auth_time", "nonce", "email", "email_verified", "phone_number",
                    "phone_number_verified", "name", "picture", "preferred_username", "updated_at",
                ].map(JSONValue.string)),
        ]
        var response = try json(JSONValue.object(document))
        response.headers[.cacheControl] = "public, max-age=600"
        return response
    }

    // MARK: Authorization and consent

    /// `GET /oauth/authorize`: a client sends the user here. A request that cannot name a registered client
    /// and one of its redirect URIs is answered here (never redirected to an unchecked URI); anything else
    /// wrong goes back to the client as RFC 6749's error redirect; a good request goes to the consent page.
    func authorizeClient(_ request: Request, _ store: OAuthServerStore) async throws -> Response {
        try requireOAuthServer()
        let parameters = try query(request)
        guard let clientText = parameters["client_id"], !clientText.isEmpty else { throw AuthError.validation("client_id is required") }
        guard let redirectURI = parameters["redirect_uri"], !redirectURI.isEmpty else {
            throw AuthError.validation("redirect_uri is required")
        }
        guard let clientID = UUID(uuidString: clientText) else {
            throw AuthError(status: .badRequest, code: "oauth_client_not_found", message: "invalid client_id format")
        }
        guard let client = try await store.client(clientID) else {
            throw AuthError(status: .badRequest, code: "oauth_client_not_found", message: "invalid client_id")
        }
        guard client.redirectURIs.contains(redirectURI) else { throw AuthError.validation("invalid redirect_uri") }
        let state = parameters["state"].flatMap { $0.isEmpty ? nil : $0 }
        func refuse(_ error: String, _ description: String) -> Response {
            var pairs = [("error", error), ("error_description", description)]
            if let state { pairs.append(("state", state)) }
            return Self.found(AuthService.appending(query: pairs, to: redirectURI))
        }
        guard (parameters["response_type"] ?? "code") == "code" else {
            return refuse("unsupported_response_type", "only response_type=code is supported")
        }
        let requested = (parameters["scope"].flatMap { $0.isEmpty ? nil : $0 } ?? "email").split(separator: " ").map(String.init)
        if let unknown = requested.first(where: { !Self.supportedScopes.contains($0) }) {
            return refuse("invalid_scope", "unsupported scope: \(unknown.prefix(64))")
        }
        let challenge: PKCEChallenge
        do {
            guard let pkce = try Self.pkce(challenge: parameters["code_challenge"], method: parameters["code_challenge_method"]) else {
                return refuse("invalid_request", "PKCE flow requires both code_challenge and code_challenge_method")
            }
            challenge = pkce
        } catch let error as AuthError {
            return refuse("invalid_request", error.message)
        }
        let resource = parameters["resource"]
        if let resource, URLComponents(string: resource).map({ $0.scheme == nil || $0.fragment != nil || $0.query != nil }) ?? true {
            return refuse("invalid_target", "resource must be an absolute URI without query or fragment")
        }
        if requested.contains("openid"), try await !service.tokens.canSignWithPublishedKey() {
            return refuse("server_error", "ID tokens need an asymmetric signing key; the project has none (strive keys rotate)")
        }
        let id = Self.authorizationID()
        try await store.create(
            id: id, client: client.id, redirectURI: redirectURI, scope: requested.joined(separator: " "), state: state,
            nonce: parameters["nonce"], resource: resource, challenge: challenge, lifetime: Self.authorizationLifetime)
        let site = service.settings.siteURL.hasSuffix("/") ? String(service.settings.siteURL.dropLast()) : service.settings.siteURL
        return Self.found(AuthService.appending(query: [("authorization_id", id)], to: site + service.settings.oauthAuthorizationPath))
    }

    /// 32 letters and digits, as GoTrue's authorization ids.
    static func authorizationID() -> String {
        let alphabet = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789")
        var generator = SystemRandomNumberGenerator()
        return String((0..<32).map { _ in alphabet[Int.random(in: 0..<alphabet.count, using: &generator)] })
    }

    static var authorizationNotFound: AuthError {
        AuthError(status: .notFound, code: "oauth_authorization_not_found", message: "authorization not found")
    }

    /// The signed-in user's pending request `id`, bound to them; the consent page's `Origin`, when sent,
    /// must be the site or an allowed redirect (another site must not approve on the user's behalf).
    func pendingAuthorization(_ request: Request, _ context: Context, _ store: OAuthServerStore) async throws
        -> (PendingAuthorization, UserRecord)
    {
        try requireOAuthServer()
        if let origin = request.headers[.origin], service.allowedRedirect(origin) != origin {
            throw AuthError.validation("unauthorized request origin")
        }
        let user = try await service.currentUser(try userToken(context))
        guard let id = context.parameters.get("authorization"), id.count == 32,
            let authorization = try await store.bind(id, to: user.id), !authorization.expired, authorization.user == user.id
        else { throw Self.authorizationNotFound }
        return (authorization, user)
    }

    /// `GET /oauth/authorizations/{id}`: what the consent page shows, or, when the user already granted
    /// every scope asked for, the approval at once.
    func authorizationDetails(_ request: Request, _ context: Context, _ store: OAuthServerStore) async throws -> Response {
        let (authorization, user) = try await pendingAuthorization(request, context, store)
        guard authorization.status == "pending" else { throw AuthError.validation("authorization request cannot be processed") }
        guard let client = try await store.client(authorization.client) else { throw Self.authorizationNotFound }
        if let granted = try await store.consent(user: user.id, client: client.id), Set(authorization.scopes).isSubset(of: granted) {
            return try await approve(authorization, user: user, store)
        }
        var userJSON: [String: JSONValue] = ["id": .string(user.id.uuidString.lowercased())]
        if let email = user.email { userJSON["email"] = .string(email) }
        return try json(
            JSONValue.object([
                "authorization_id": .string(authorization.id), "redirect_uri": .string(authorization.redirectURI),
                "client": .object(client.json), "user": .object(userJSON), "scope": .string(authorization.scope),
            ]))
    }

    struct ConsentBody: Decodable {
        var action: String
    }

    /// `POST /oauth/authorizations/{id}/consent` `{action: approve|deny}`: where the consent page sends the
    /// browser next, `{redirect_url}`.
    func consent(_ request: Request, _ context: Context, _ store: OAuthServerStore) async throws -> Response {
        let body = try await decode(ConsentBody.self, from: request, context)
        guard body.action == "approve" || body.action == "deny" else {
            throw AuthError.validation("action must be 'approve' or 'deny'")
        }
        let (authorization, user) = try await pendingAuthorization(request, context, store)
        guard authorization.status == "pending" else { throw AuthError.validation("authorization request is no longer pending") }
        if body.action == "approve" { return try await approve(authorization, user: user, store) }
        guard try await store.deny(authorization.id, user: user.id) else { throw Self.authorizationNotFound }
        var pairs = [("error", "access_denied"), ("error_description", "User denied the request")]
        if let state = authorization.state { pairs.append(("state", state)) }
        return try json(["redirect_url": AuthService.appending(query: pairs, to: authorization.redirectURI)])
    }

    func approve(_ authorization: PendingAuthorization, user: UserRecord, _ store: OAuthServerStore) async throws -> Response {
        let code = service.codec.random()
        guard try await store.approve(authorization, user: user.id, codeHash: RefreshTokenCodec.hash(code)) else {
            throw Self.authorizationNotFound
        }
        var pairs = [("code", code)]
        if let state = authorization.state { pairs.append(("state", state)) }
        return try json(["redirect_url": AuthService.appending(query: pairs, to: authorization.redirectURI)])
    }

    // MARK: Tokens

    /// `/oauth/token`'s fields, from a form (what OAuth libraries send) or JSON.
    struct TokenRequest: Decodable {
        var grant_type: String?
        var code: String?
        var refresh_token: String?
        var redirect_uri: String?
        var client_id: String?
        var client_secret: String?
        var code_verifier: String?
    }

    func tokenRequest(_ request: Request, _ context: Context) async throws -> TokenRequest {
        if request.headers[.contentType]?.lowercased().contains("application/json") == true {
            return try await decode(TokenRequest.self, from: request, context)
        }
        let body = try await request.bodyData(upTo: Self.maximumBodyBytes, tooLarge: AuthError.payloadTooLarge)
        let form: QueryString
        do {
            form = try QueryString(String(decoding: body, as: UTF8.self))
        } catch {
            throw OAuthProtocolError.invalidRequest("the form is not valid percent-encoding: \(error.part)")
        }
        return TokenRequest(
            grant_type: form["grant_type"], code: form["code"], refresh_token: form["refresh_token"], redirect_uri: form["redirect_uri"],
            client_id: form["client_id"], client_secret: form["client_secret"], code_verifier: form["code_verifier"])
    }

    /// The client making a token request, authenticated the way it registered: HTTP Basic, the secret in
    /// the body, or (a public client) its id alone.
    func authenticatedClient(_ request: Request, _ body: TokenRequest, _ store: OAuthServerStore) async throws -> RegisteredClient {
        var id = body.client_id
        var secret = body.client_secret
        var method = secret == nil ? "none" : "client_secret_post"
        if let header = request.headers[.authorization], header.lowercased().hasPrefix("basic ") {
            guard let decoded = Data(base64Encoded: String(header.dropFirst(6)).trimmingCharacters(in: .whitespaces)),
                let text = String(data: decoded, encoding: .utf8), let colon = text.firstIndex(of: ":")
            else { throw OAuthProtocolError.invalidClient("the Basic credentials are malformed") }
            id = String(text[..<colon]).removingPercentEncoding
            secret = String(text[text.index(after: colon)...]).removingPercentEncoding
            method = "client_secret_basic"
        }
        guard let id, !id.isEmpty else { throw OAuthProtocolError.invalidClient("client_id is required") }
        guard let clientID = UUID(uuidString: id), let client = try await store.client(clientID) else {
            throw OAuthProtocolError.invalidClient("Invalid client credentials")
        }
        guard client.authMethod == method else {
            throw OAuthProtocolError.invalidClient(
                "invalid authentication method: client is registered for '\(client.authMethod)' but '\(method)' was used")
        }
        if let hash = client.secretHash {
            guard let secret, Self.sameDigest(OAuthClientStore.hash(secret), hash) else {
                throw OAuthProtocolError.invalidClient("Invalid client credentials")
            }
        }
        return client
    }

    static func sameDigest(_ a: String, _ b: String) -> Bool {
        guard a.utf8.count == b.utf8.count else { return false }
        return zip(a.utf8, b.utf8).reduce(0) { $0 | ($1.0 ^ $1.1) } == 0
    }

    /// `POST /oauth/token`: a code (with its PKCE verifier) or a refresh token for the client's session.
    func oauthToken(_ request: Request, _ context: Context, _ store: OAuthServerStore) async throws -> Response {
        try requireOAuthServer()
        let body = try await tokenRequest(request, context)
        let client = try await authenticatedClient(request, body, store)
        guard let grant = body.grant_type, !grant.isEmpty else { throw OAuthProtocolError.invalidRequest("grant_type is required") }
        guard ["authorization_code", "refresh_token"].contains(grant), client.grantTypes.contains(grant) else {
            throw OAuthProtocolError.unsupportedGrantType("grant_type \(grant.prefix(40)) is not allowed for this client")
        }
        var answer: [String: JSONValue]
        if grant == "refresh_token" {
            guard let token = body.refresh_token, !token.isEmpty else {
                throw OAuthProtocolError.invalidRequest("refresh_token is required for refresh_token grant")
            }
            let session = try await service.refresh(token: token, client: self.client(request, context), oauthClient: client.id)
            answer = Self.tokenAnswer(session)
            if let scope = try? claims(ofIssued: session.access_token)?["scope"] { answer["scope"] = scope }
        } else {
            answer = try await exchangeCode(body, client: client, store, request, context)
        }
        var response = try json(JSONValue.object(answer))
        response.headers[.cacheControl] = "no-store"
        return response
    }

    func exchangeCode(
        _ body: TokenRequest, client: RegisteredClient, _ store: OAuthServerStore, _ request: Request, _ context: Context
    ) async throws -> [String: JSONValue] {
        guard let code = body.code, !code.isEmpty, code.utf8.count <= 256 else {
            throw OAuthProtocolError.invalidRequest("code is required for authorization_code grant")
        }
        guard let authorization = try await store.redeem(codeHash: RefreshTokenCodec.hash(code)) else {
            throw OAuthProtocolError.invalidGrant("Invalid authorization code")
        }
        guard !authorization.expired else { throw OAuthProtocolError.invalidGrant("Authorization code has expired") }
        guard authorization.client == client.id else {
            throw OAuthProtocolError.invalidGrant("Authorization code was not issued for this client")
        }
        if let redirect = body.redirect_uri, redirect != authorization.redirectURI {
            throw OAuthProtocolError.invalidGrant("Invalid redirect_uri")
        }
        guard let verifier = body.code_verifier, !verifier.isEmpty else {
            throw OAuthProtocolError.invalidGrant("PKCE verification failed: code_verifier is required when PKCE challenge is present")
        }
        guard AuthService.verifier(verifier, matches: authorization.challenge) else {
            throw OAuthProtocolError.invalidGrant("PKCE verification failed: code challenge does not match previously saved code verifier")
        }
        guard let userID = authorization.user, let user = try await service.store.user(id: userID) else {
            throw OAuthProtocolError.invalidGrant("Invalid authorization code")
        }
        if user.isBanned() { throw OAuthProtocolError(status: .badRequest, error: "access_denied", description: "User is banned") }
        let session = try await service.startSession(
            for: user, method: "oauth", client: self.client(request, context),
            oauth: AuthStore.OAuthGrant(client: client.id, scope: authorization.scope))
        var answer = Self.tokenAnswer(session)
        answer["scope"] = .string(authorization.scope)
        if authorization.scopes.contains("openid") {
            guard let idToken = try await service.tokens.signWithPublishedKey(payload: idTokenClaims(user, authorization)) else {
                throw OAuthProtocolError(
                    status: .internalServerError, error: "server_error", description: "the project has no asymmetric signing key")
            }
            answer["id_token"] = .string(idToken)
        }
        return answer
    }

    static func tokenAnswer(_ session: TokenResponse) -> [String: JSONValue] {
        [
            "access_token": .string(session.access_token), "token_type": "bearer", "expires_in": .number(Double(session.expires_in)),
            "refresh_token": .string(session.refresh_token),
        ]
    }

    /// The payload of a token this server just signed (no need to verify it again).
    func claims(ofIssued token: String) throws -> [String: JSONValue]? {
        let parts = token.split(separator: ".")
        guard parts.count == 3, let data = Data(base64URLEncoded: String(parts[1])) else { return nil }
        return try JSONDecoder().decode(JSONValue.self, from: data).objectValue
    }

    /// OpenID Connect's ID token for `user`, with the claims the granted scopes allow.
    func idTokenClaims(_ user: UserRecord, _ authorization: PendingAuthorization) -> [String: JSONValue] {
        let now = Int(Date().timeIntervalSince1970)
        let client = authorization.client.uuidString.lowercased()
        var claims: [String: JSONValue] = [
            "iss": .string(service.tokens.issuer), "sub": .string(user.id.uuidString.lowercased()), "aud": .string(client),
            "client_id": .string(client), "iat": .number(Double(now)), "exp": .number(Double(now + 3600)),
            "auth_time": .number(Double(Int((user.lastSignInAt ?? Date()).timeIntervalSince1970))),
        ]
        if let nonce = authorization.nonce { claims["nonce"] = .string(nonce) }
        claims.merge(Self.profileClaims(user, scopes: authorization.scopes, phoneNames: ("phone_number", "phone_number_verified"))) {
            $1
        }
        return claims
    }

    /// What each scope reveals about the user, in ID tokens and userinfo alike (their phone claims differ in name).
    static func profileClaims(_ user: UserRecord, scopes: [String], phoneNames: (String, String)) -> [String: JSONValue] {
        var claims: [String: JSONValue] = [:]
        if scopes.contains("email") {
            if let email = user.email { claims["email"] = .string(email) }
            claims["email_verified"] = .bool(user.emailConfirmedAt != nil)
        }
        if scopes.contains("phone") {
            claims[phoneNames.1] = false
        }
        if scopes.contains("profile") {
            let metadata = user.userMetadata
            claims["name"] = metadata["name"] ?? metadata["full_name"] ?? user.email.map(JSONValue.string) ?? .null
            if let picture = metadata["picture"] ?? metadata["avatar_url"] { claims["picture"] = picture }
            if let username = metadata["preferred_username"] ?? metadata["user_name"] ?? metadata["username"] {
                claims["preferred_username"] = username
            }
            claims["updated_at"] = .number(Double(Int(user.updatedAt.timeIntervalSince1970)))
        }
        return claims
    }

    /// `GET /oauth/userinfo`: the user behind an access token a client holds, as its scopes allow.
    func userinfo(_ context: Context) async throws -> Response {
        try requireOAuthServer()
        let token = try userToken(context)
        let user = try await service.currentUser(token)
        let scopes = (token.claims.scope ?? "").split(separator: " ").map(String.init)
        var claims = Self.profileClaims(user, scopes: scopes, phoneNames: ("phone", "phone_verified"))
        claims["sub"] = .string(user.id.uuidString.lowercased())
        if scopes.contains("profile") { claims["user_metadata"] = .object(user.userMetadata) }
        return try json(JSONValue.object(claims))
    }

    // MARK: The user's grants

    func grants(_ context: Context, _ store: OAuthServerStore) async throws -> Response {
        try requireOAuthServer()
        let user = try await service.currentUser(try userToken(context))
        let list = try await store.grants(of: user.id).map { grant in
            JSONValue.object([
                "client": .object(grant.client.json), "scopes": .array(grant.scopes.map(JSONValue.string)),
                "granted_at": .string(SupabaseJSON.timestamp(grant.grantedAt)),
            ])
        }
        return try json(JSONValue.array(list))
    }

    func revokeGrant(_ request: Request, _ context: Context, _ store: OAuthServerStore) async throws -> Response {
        try requireOAuthServer()
        let user = try await service.currentUser(try userToken(context))
        guard let text = try query(request)["client_id"], !text.isEmpty else {
            throw AuthError.validation("client_id query parameter is required")
        }
        guard let client = UUID(uuidString: text) else { throw AuthError.validation("invalid client_id format") }
        guard try await store.revoke(user: user.id, client: client) else {
            throw AuthError(status: .notFound, code: "oauth_consent_not_found", message: "No active grant found for this client")
        }
        return Response(status: .noContent)
    }
}
