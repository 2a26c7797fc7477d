import Foundation
import HTTPTypes
import Hummingbird
import Logging
import NIOCore
import NIOFoundationCompat
import PostgresNIO
import StriveCore
import StriveDatabase
import StriveIdentity
import StriveMetrics

/// What auth routes need from the request context: the peer address, for per-IP limits and sessions,
/// and the caller `CallerMiddleware` resolved.
public protocol AuthRequestContext: CallerRequestContext {
    var remoteAddress: SocketAddress? { get }
}

/// Supabase Auth's endpoints under `/auth/v1`.
public struct AuthRoutes<Context: AuthRequestContext>: Sendable {
    public let service: AuthService
    /// Auth bodies are small; anything bigger is refused before it is read whole.
    public static var maximumBodyBytes: Int { 64 * 1024 }

    public init(service: AuthService) {
        self.service = service
    }

    /// Auth's routes by who may call them; the scope, not the handler, decides.
    struct Scopes {
        /// No key needed: links opened from a mail.
        let open: RouterGroup<Context>
        /// Any valid API key or token (sign-up, sign-in, the mail flows).
        let keyed: RouterGroup<Context>
        /// A signed-in user's access token.
        let users: RouterGroup<Context>
        /// The service role, or a platform admin with their own token (`app.is_admin()`, asked under the
        /// user's identity): the console administers users that way.
        let administrators: RouterGroup<Context>
    }

    public func register(on router: some RouterMethods<Context>) {
        let database = service.store.database
        let scopes = Scopes(
            open: router.group("auth/v1"),
            keyed: router.group("auth/v1").add(middleware: CallerScope<Context>()),
            users: router.group("auth/v1").add(middleware: UserScope<Context>()),
            administrators: router.group("auth/v1").add(
                middleware: CallerScope<Context> { caller, request, _ in
                    guard try await caller.isAdministrator(on: database, method: request.method.rawValue, path: request.uri.path) else {
                        throw AuthError.notAdmin
                    }
                }))
        scopes.keyed.post("signup") { request, context in try await signUp(request, context) }
        scopes.keyed.post("token") { request, context in try await token(request, context) }
        scopes.keyed.get("settings") { request, context in try await settings(request, context) }
        // Public keys are public: no API key needed, as GoTrue serves them.
        scopes.open.get(".well-known/jwks.json") { _, _ in
            var response = try json(["keys": JSONValue.array(try await service.tokens.publicKeys())])
            response.headers[.cacheControl] = "public, max-age=600"
            return response
        }
        scopes.users.get("user") { request, context in try await user(request, context) }
        scopes.users.put("user") { request, context in try await updateUser(request, context) }
        scopes.users.post("logout") { request, context in try await logout(request, context) }
        scopes.administrators.get("admin/users") { request, context in try await listUsers(request, context) }
        scopes.administrators.post("admin/users") { request, context in try await createUser(request, context) }
        scopes.administrators.get("admin/users/:id") { request, context in try await adminUser(request, context) }
        scopes.administrators.put("admin/users/:id") { request, context in try await adminUpdate(request, context) }
        scopes.administrators.delete("admin/users/:id") { request, context in try await adminDelete(request, context) }
        scopes.administrators.get("admin/users/:id/factors") { request, context in try await adminFactors(request, context) }
        scopes.administrators.delete("admin/users/:id/factors/:factor") { request, context in
            try await adminDeleteFactor(request, context)
        }
        registerMailFlows(in: scopes)
        registerFactors(in: scopes)
        registerOAuthClients(in: scopes)
        registerExternalSignIn(in: scopes)
        registerOAuthServer(in: scopes)
        registerSingleSignOn(in: scopes)
        registerPasskeys(in: scopes)
    }

    // MARK: Handlers

    struct SignUpBody: Decodable {
        var email: String?
        var password: String?
        var data: [String: JSONValue]?
        var code_challenge: String?
        var code_challenge_method: String?
    }

    func signUp(_ request: Request, _ context: Context) async throws -> Response {
        let body = try await decode(SignUpBody.self, from: request, context)
        if body.email == nil && body.password == nil {
            return try json(try await service.signUpAnonymously(metadata: body.data ?? [:], client: client(request, context)))
        }
        guard let email = body.email else { throw AuthError.validation("Signups need an email address") }
        guard let password = body.password else { throw AuthError.validation("Signup requires a valid password") }
        let result = try await service.register(
            email: email, password: password, metadata: body.data ?? [:],
            request: try mailRequest(request, challenge: body.code_challenge, method: body.code_challenge_method),
            client: client(request, context))
        switch result {
        case .session(let session): return try json(session)
        case .confirmationSent(let user): return try json(user)
        }
    }

    /// Both grants' fields, typed: a value of the wrong type is refused whichever grant ignores it.
    struct TokenBody: Decodable {
        var email: String?
        var phone: String?
        var password: String?
        var refresh_token: String?
        var auth_code: String?
        var code_verifier: String?
        var provider: String?
        var id_token: String?
        var nonce: String?
        var access_token: String?
    }

    func token(_ request: Request, _ context: Context) async throws -> Response {
        switch try query(request)["grant_type"] {
        case "password":
            let body = try await decode(TokenBody.self, from: request, context)
            if body.phone != nil && body.email == nil { throw AuthError.validation("Phone sign-in is not supported; use email") }
            guard let email = body.email, let password = body.password else {
                throw AuthError.validation("grant_type=password needs email and password")
            }
            return try json(try await service.signIn(email: email, password: password, client: client(request, context)))
        case "refresh_token":
            let body = try await decode(TokenBody.self, from: request, context)
            guard let token = body.refresh_token else { throw AuthError.validation("grant_type=refresh_token needs refresh_token") }
            return try json(try await service.refresh(token: token, client: client(request, context)))
        case "pkce":
            let body = try await decode(TokenBody.self, from: request, context)
            guard let code = body.auth_code, let verifier = body.code_verifier else {
                throw AuthError.validation("grant_type=pkce needs auth_code and code_verifier")
            }
            return try json(try await service.exchangeAuthCode(code, verifier: verifier, client: client(request, context)))
        case "id_token":
            let body = try await decode(TokenBody.self, from: request, context)
            guard let idToken = body.id_token, !idToken.isEmpty else { throw AuthError.validation("id_token required") }
            guard let provider = body.provider, !provider.isEmpty else {
                throw AuthError.validation("provider or client_id and issuer required")
            }
            return try json(
                try await service.signInWithIDToken(
                    provider: provider, idToken: idToken, nonce: body.nonce, client: client(request, context)))
        case "web3":
            // Sign-in with Ethereum or Solana wallets is not offered: GoTrue's answer when it is off.
            throw AuthError(status: .unprocessableContent, code: "web3_provider_disabled", message: "Web3 provider is disabled")
        case let other:
            throw AuthError(
                status: .badRequest, code: "unsupported_grant_type",
                message: "grant_type must be password, refresh_token, pkce or id_token\(other.map { ", not \"\($0)\"" } ?? "")"
            )
        }
    }

    func user(_ request: Request, _ context: Context) async throws -> Response {
        let token = try userToken(context)
        let user = try await service.currentUser(token)
        var body = user.json
        body.factors = try await service.factors(of: user.id)
        return try json(body)
    }

    struct UserUpdateBody: Decodable {
        var email: String?
        var password: String?
        var current_password: String?
        var nonce: String?
        var data: [String: JSONValue]?
        var code_challenge: String?
        var code_challenge_method: String?

        enum CodingKeys: String, CodingKey { case email, password, current_password, nonce, data, code_challenge, code_challenge_method }

        /// `password` and `current_password` are strings when present: a null password is not "no
        /// change" but a mistake, refused like any value of the wrong type.
        init(from decoder: any Decoder) throws {
            let container = try decoder.container(keyedBy: CodingKeys.self)
            email = try container.decodeIfPresent(String.self, forKey: .email)
            data = try container.decodeIfPresent([String: JSONValue].self, forKey: .data)
            nonce = try container.decodeIfPresent(String.self, forKey: .nonce)
            code_challenge = try container.decodeIfPresent(String.self, forKey: .code_challenge)
            code_challenge_method = try container.decodeIfPresent(String.self, forKey: .code_challenge_method)
            for key in [CodingKeys.password, .current_password] where container.contains(key) {
                let value = try container.decode(String.self, forKey: key)
                if key == .password { password = value } else { current_password = value }
            }
        }
    }

    func updateUser(_ request: Request, _ context: Context) async throws -> Response {
        let token = try userToken(context)
        let body = try await decode(UserUpdateBody.self, from: request, context)
        let update = AuthService.UserUpdate(
            email: body.email, password: body.password, currentPassword: body.current_password, nonce: body.nonce, data: body.data,
            mail: try mailRequest(request, challenge: body.code_challenge, method: body.code_challenge_method))
        return try json(try await service.updateCurrentUser(token, update).json)
    }

    func logout(_ request: Request, _ context: Context) async throws -> Response {
        let token = try userToken(context)
        let scopeText = try query(request)["scope"] ?? "global"
        guard let scope = AuthStore.LogoutScope(rawValue: scopeText) else {
            throw AuthError.validation("scope must be global, local or others")
        }
        try await service.signOut(token, scope: scope)
        return Response(status: .noContent)
    }

    func listUsers(_ request: Request, _ context: Context) async throws -> Response {
        let page = try positiveInteger(request, "page", default: 1, maximum: 1_000_000)
        let perPage = try positiveInteger(request, "per_page", default: 50, maximum: 1000)
        let filter = try query(request)["filter"].flatMap { $0.isEmpty ? nil : String($0.prefix(254)) }
        let (users, total) = try await service.store.list(page: page, perPage: perPage, filter: filter)
        return try paged(
            json(UserListResponse(users: users.map(\.json), aud: "authenticated")), path: "/admin/users", page: page, perPage: perPage,
            total: total)
    }

    /// GoTrue's paging headers on a list answer: `X-Total-Count`, and `Link` with `next` (when there is
    /// a next page) and `last`.
    func paged(_ response: Response, path: String, page: Int, perPage: Int, total: Int) -> Response {
        var response = response
        response.headers[.xTotalCount] = String(total)
        let lastPage = max(1, (total + perPage - 1) / perPage)
        var links: [String] = []
        if page < lastPage { links.append("<\(path)?page=\(page + 1)&per_page=\(perPage)>; rel=\"next\"") }
        links.append("<\(path)?page=\(lastPage)&per_page=\(perPage)>; rel=\"last\"")
        response.headers[.link] = links.joined(separator: ", ")
        return response
    }

    struct AdminUserBody: Decodable {
        var email: String?
        var password: String?
        var email_confirm: Bool?
        var user_metadata: [String: JSONValue]?
        var app_metadata: [String: JSONValue]?
        var ban_duration: String?
    }

    func createUser(_ request: Request, _ context: Context) async throws -> Response {
        let body = try await decode(AdminUserBody.self, from: request, context)
        guard let email = body.email else { throw AuthError.validation("Unable to validate email address: email is required") }
        let new = AuthService.NewUser(
            email: email, password: body.password, emailConfirm: body.email_confirm ?? false,
            userMetadata: body.user_metadata ?? [:], appMetadata: body.app_metadata ?? [:]
        )
        return try json(try await service.createUser(new).json)
    }

    func adminUser(_ request: Request, _ context: Context) async throws -> Response {
        guard let user = try await service.store.user(id: try userID(context)) else { throw AuthError.userNotFound }
        return try json(user.json)
    }

    func adminUpdate(_ request: Request, _ context: Context) async throws -> Response {
        let id = try userID(context)
        let body = try await decode(AdminUserBody.self, from: request, context)
        var update = AuthService.AdminUpdate()
        update.email = body.email
        update.password = body.password
        update.emailConfirm = body.email_confirm
        update.userMetadata = body.user_metadata
        update.appMetadata = body.app_metadata
        update.banDuration = body.ban_duration
        return try json(try await service.updateUser(id: id, update).json)
    }

    func adminDelete(_ request: Request, _ context: Context) async throws -> Response {
        guard try await service.store.delete(id: try userID(context)) else { throw AuthError.userNotFound }
        return try json([String: String]())
    }

    func adminFactors(_ request: Request, _ context: Context) async throws -> Response {
        let id = try userID(context)
        guard try await service.store.user(id: id) != nil else { throw AuthError.userNotFound }
        return try json(try await service.factors(of: id))
    }

    /// The service role removes any factor, verified or not (a user who lost their authenticator).
    func adminDeleteFactor(_ request: Request, _ context: Context) async throws -> Response {
        let factor = try factorID(context)
        switch try await service.store.deleteFactor(user: try userID(context), factor: factor, allowVerified: true) {
        case .deleted: return try json(["id": factor.uuidString.lowercased()])
        case .notFound, .needsAAL2: throw AuthService.factorNotFound
        }
    }

    /// GoTrue's public `/settings`: which sign-in methods this server offers.
    struct SettingsJSON: Encodable {
        var external: [String: Bool]
        var disable_signup: Bool
        var mailer_autoconfirm: Bool
        var phone_autoconfirm: Bool
        var sms_provider: String
        var saml_enabled: Bool
        var passkeys_enabled: Bool
    }

    func settings(_ request: Request, _ context: Context) async throws -> Response {
        var external = ["email": true, "phone": false, "anonymous_users": service.settings.anonymousSignIns, "saml": false]
        // GoTrue lists every provider it knows, on or off; a client checks the one it wants.
        for name in ["apple", "azure", "github", "gitlab", "google", "keycloak"] { external[name] = false }
        external.merge(service.external.enabledByName) { _, configured in configured }
        return try json(
            SettingsJSON(
                external: external, disable_signup: false, mailer_autoconfirm: service.settings.autoconfirm, phone_autoconfirm: false,
                sms_provider: "", saml_enabled: false, passkeys_enabled: service.settings.passkeysEnabled))
    }

    // MARK: Helpers

    /// The access token `UserScope` verified.
    func userToken(_ context: Context) throws -> VerifiedToken {
        try context.scopedCaller().token
    }

    func userID(_ context: Context) throws -> UUID {
        guard let text = context.parameters.get("id"), let id = UUID(uuidString: text) else { throw AuthError.userNotFound }
        return id
    }

    func positiveInteger(_ request: Request, _ name: String, default value: Int, maximum: Int) throws -> Int {
        // GoTrue takes an empty value (`?page=&per_page=`, as supabase-py sends them) as the default.
        guard let text = try query(request)[name], !text.isEmpty else { return value }
        guard let parsed = Int(text), (1...maximum).contains(parsed) else {
            throw AuthError.validation("\(name) must be an integer between 1 and \(maximum)")
        }
        return parsed
    }

    func query(_ request: Request) throws -> QueryString {
        try request.queryString { AuthError.validation("the query string is not valid percent-encoding: \($0.part)") }
    }

    func client(_ request: Request, _ context: Context) -> AuthService.Client {
        AuthService.Client(
            ip: Self.clientIP(
                peer: context.remoteAddress?.ipAddress, forwardedFor: request.headers[values: .xForwardedFor],
                trusted: service.settings.trustedProxies),
            userAgent: request.headers[.userAgent].map { String($0.prefix(512)) })
    }

    /// The peer, unless it is a trusted proxy: then the nearest `X-Forwarded-For` address (right to left)
    /// that is not a trusted proxy itself. A client can prepend anything to the header, never append.
    public static func clientIP(peer: String?, forwardedFor: [String], trusted: [IPNetwork]) -> String? {
        guard let peer, trusted.contains(where: { $0.contains(peer) }) else { return peer }
        let chain = forwardedFor.flatMap { $0.split(separator: ",") }.map { $0.trimmingCharacters(in: .whitespaces) }
        for address in chain.reversed() {
            guard IPNetwork.bytes(of: address) != nil else { return peer }
            if !trusted.contains(where: { $0.contains(address) }) { return address }
        }
        return chain.first.flatMap { IPNetwork.bytes(of: $0) != nil ? $0 : nil } ?? peer
    }

    /// Reads at most `maximumBodyBytes` and decodes it, with errors that name the field at fault.
    func decode<T: Decodable>(_ type: T.Type, from request: Request, _ context: Context) async throws -> T {
        let data = try await request.bodyData(upTo: Self.maximumBodyBytes, tooLarge: AuthError.payloadTooLarge)
        if data.isEmpty { throw AuthError.badJSON("the request body must be a JSON object") }
        do {
            _ = try JSONDecoder().decode(MetaSecurity.self, from: data)
            return try JSONDecoder().decode(T.self, from: data)
        } catch let error as DecodingError {
            throw AuthError.badJSON(Self.describe(error))
        }
    }

    /// `gotrue_meta_security`, which any body may carry: `{captcha_token}` or nothing. No captcha is
    /// checked here, but a value of another shape is refused as GoTrue's parser refuses it.
    struct MetaSecurity: Decodable {
        struct Fields: Decodable {
            var captcha_token: String?
        }
        var gotrue_meta_security: Fields?
    }

    static func describe(_ error: DecodingError) -> String {
        func path(_ context: DecodingError.Context) -> String {
            let keys = context.codingPath.map { $0.intValue.map(String.init) ?? $0.stringValue }
            return keys.isEmpty ? "the body" : keys.joined(separator: ".")
        }
        switch error {
        case .typeMismatch(let type, let context):
            return "\(path(context)) must be \(type == String.self ? "a string" : type == Bool.self ? "a boolean" : "of type \(type)")"
        case .valueNotFound(_, let context): return "\(path(context)) must not be null"
        case .keyNotFound(let key, _): return "\(key.stringValue) is required"
        case .dataCorrupted(let context):
            return context.codingPath.isEmpty ? "the request body is not valid JSON" : "\(path(context)) is not valid"
        @unknown default: return "the request body could not be read"
        }
    }

    func json(_ value: some Encodable) throws -> Response {
        let data = try SupabaseJSON.encoder.encode(value)
        return Response(status: .ok, headers: [.contentType: "application/json"], body: .init(byteBuffer: ByteBuffer(bytes: data)))
    }
}

/// The scope of a signed-in user's routes: a bearer token is required (`no_authorization` without one,
/// before the key is even looked at, as GoTrue answers) and it must be a user's access token, not a key.
struct UserScope<Context: CallerRequestContext>: RouterMiddleware {
    let users = CallerScope<Context> { caller, _, _ in
        guard caller.role == .authenticated else {
            throw AuthError(
                status: .forbidden, code: "no_authorization", message: "This endpoint needs a user's access token, not an API key")
        }
    }

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        guard request.headers[.authorization].flatMap(Caller.bearerToken) != nil else { throw AuthError.noAuthorization }
        return try await users.handle(request, context: context, next: next)
    }
}

extension HTTPField.Name {
    static let xForwardedFor = Self("X-Forwarded-For")!
    static let xTotalCount = Self("X-Total-Count")!
    static let link = Self("Link")!
}
