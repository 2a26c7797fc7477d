import Crypto
import Foundation
import Logging
import PostgresNIO
import StriveCore
import StriveDatabase
import StriveIdentity
import StriveMetrics

/// Sign-up, sign-in, refresh, sign-out and account changes, independent of HTTP.
public struct AuthService: Sendable {
    public let store: AuthStore
    public let tokens: TokenService
    public let hasher: PasswordHasher
    public let settings: AuthSettings
    public let passwordPolicy: PasswordPolicy
    let codec: RefreshTokenCodec
    let limits: SharedRateLimits
    /// Keys the hashes of mailed 6-digit codes.
    let codeKey: SymmetricKey
    /// Seals TOTP factors' secrets: a key of its own, not the code key under another use.
    let factorKey: SymmetricKey
    /// The external sign-in providers (`STRIVE_AUTH_EXTERNAL_<NAME>_*`).
    public let external: ExternalProviders

    public init(database: Database, secret: Secret, issuer: String, settings: AuthSettings, logger: Logger) async throws {
        store = AuthStore(database: database, logger: logger)
        tokens = try await TokenService(
            secret: secret, issuer: issuer, accessTokenLifetime: settings.accessTokenLifetime,
            signingKeys: SigningKeyStore(database: database, secret: secret, logger: logger))
        hasher = try await PasswordHasher(cost: settings.bcryptCost)
        codec = RefreshTokenCodec(secret: secret)
        limits = SharedRateLimits(database: database, logger: logger)
        codeKey = SymmetricKey(data: SHA256.hash(data: Data("strive mailed-code|\(secret.value)".utf8)))
        factorKey = SymmetricKey(data: SHA256.hash(data: Data("strive mfa-factor-secret|\(secret.value)".utf8)))
        self.settings = settings
        passwordPolicy = PasswordPolicy(settings)
        external = ExternalProviders(settings: settings, issuer: issuer, secret: secret, logger: logger)
    }

    /// Who is signing in or up, for rate limits and the session record.
    public struct Client: Sendable {
        public var ip: String?
        public var userAgent: String?

        public init(ip: String?, userAgent: String?) {
            self.ip = ip
            self.userAgent = userAgent
        }
    }

    // MARK: Sign-up and sign-in

    public func signUp(email rawEmail: String, password: String, metadata: [String: JSONValue], client: Client) async throws
        -> TokenResponse
    {
        if settings.signupDisabled { throw AuthError.signupDisabled }
        let email = try Self.normalisedEmail(rawEmail)
        try await limit(email: email, client: client)
        try passwordPolicy.check(password)
        // Hashed before knowing whether the address is taken, so both answers take as long.
        let hash = try await hasher.hash(password)
        let created = try await store.createUser(
            email: email, passwordHash: hash, confirmed: true,
            appMetadata: Self.emailProviderMetadata, userMetadata: metadata
        )
        guard let user = created else { throw AuthError.userAlreadyExists }
        return try await startSession(for: user, method: "password", client: client)
    }

    public func signIn(email rawEmail: String, password: String, client: Client) async throws -> TokenResponse {
        let email = try Self.normalisedEmail(rawEmail)
        try await limit(email: email, client: client)
        let user = try await store.user(email: email)
        guard try await hasher.verify(password, against: user?.encryptedPassword), let user else {
            throw AuthError.invalidCredentials
        }
        if user.isBanned() { throw AuthError.userBanned }
        if user.emailConfirmedAt == nil && !settings.autoconfirm { throw AuthError.emailNotConfirmed }
        return try await startSession(for: user, method: "password", client: client)
    }

    /// Rotates a refresh token. `oauthClient`: the OAuth client refreshing at `/oauth/token` (nil at
    /// `/token`); a session is refreshed only by the client that holds it.
    public func refresh(token: String, client: Client, oauthClient: UUID? = nil) async throws -> TokenResponse {
        try await limit(.tokenRefresh, client: client)
        guard !token.isEmpty, token.utf8.count <= 256 else { throw AuthError.refreshTokenNotFound }
        let successor = codec.successor(of: token)
        let rotation = try await store.rotate(
            tokenHash: RefreshTokenCodec.hash(token), successorHash: RefreshTokenCodec.hash(successor),
            reuseInterval: settings.refreshReuseInterval, client: oauthClient
        )
        switch rotation {
        case .rotated(let user, let session, let aal, let oauth):
            let now = Int(Date().timeIntervalSince1970)
            var amr: [AccessClaims.AuthenticationMethod] = [.init(method: "token_refresh", timestamp: now)]
            if aal == "aal2" { amr.insert(.init(method: "totp", timestamp: now), at: 0) }
            return try await tokenResponse(user: user, session: session, refreshToken: successor, aal: aal, amr: amr, oauth: oauth)
        case .wrongClient:
            throw oauthClient == nil
                ? AuthError.refreshTokenNotFound
                : OAuthProtocolError.invalidClient("Client does not match the session's OAuth client")
        case .notFound: throw AuthError.refreshTokenNotFound
        case .alreadyUsed: throw AuthError.refreshTokenAlreadyUsed
        case .userBanned: throw AuthError.userBanned
        }
    }

    // MARK: The signed-in user

    /// The user behind a verified access token whose session is still active.
    public func currentUser(_ token: VerifiedToken) async throws -> UserRecord {
        guard let userID = token.userID, let session = token.sessionID else { throw AuthError.noAuthorization }
        switch try await store.user(id: userID, session: session) {
        case .active(let user): return user
        case .sessionEnded: throw AuthError.sessionNotFound
        case .userMissing: throw AuthError.userNotFound
        }
    }

    public struct UserUpdate: Sendable {
        public var email: String?
        public var password: String?
        public var currentPassword: String?
        /// The code `GET /reauthenticate` mailed: proves the user instead of the current password.
        public var nonce: String?
        public var data: [String: JSONValue]?
        /// Where the links of an email change send the browser back to, and their PKCE challenge.
        public var mail: MailRequest

        public init(
            email: String? = nil, password: String? = nil, currentPassword: String? = nil, nonce: String? = nil,
            data: [String: JSONValue]? = nil, mail: MailRequest = MailRequest()
        ) {
            self.email = email
            self.password = password
            self.currentPassword = currentPassword
            self.nonce = nonce
            self.data = data
            self.mail = mail
        }
    }

    public func updateCurrentUser(_ token: VerifiedToken, _ update: UserUpdate) async throws -> UserRecord {
        let user = try await currentUser(token)
        var changes = AuthStore.Changes()
        let newEmail = try update.email.map { try Self.normalisedEmail($0) }
        // An anonymous user who gives an address becomes permanent once it is confirmed: at once with
        // auto-confirm, else by the confirmation mail sent below. Without auto-confirm, anyone else's new
        // address waits for its confirmation (`requestEmailChange`); with it, it applies at once.
        let converting = user.isAnonymous && newEmail != nil
        if converting || settings.autoconfirm { changes.email = newEmail }
        if converting && settings.autoconfirm {
            changes.confirmEmail = true
            changes.permanent = true
        }
        if let password = update.password {
            try passwordPolicy.check(password)
            // A session that a recovery link started, or an account without a password (magic links), sets
            // one without knowing the old one; everyone else proves it.
            let recovering = token.claims.amr?.contains { $0.method == "recovery" } ?? false
            if let current = update.currentPassword {
                guard try await hasher.verify(current, against: user.encryptedPassword) else { throw AuthError.wrongCurrentPassword }
            } else if let nonce = update.nonce {
                try await checkNonce(nonce, of: user)
            } else if !recovering && user.encryptedPassword != nil && settings.securePasswordChange {
                throw AuthError.reauthenticationNeeded
            }
            changes.passwordHash = try await hasher.hash(password)
        }
        changes.userMetadata = update.data
        // The pending change first: a taken address or a send limit refuses the request before anything
        // else in it is written.
        if let newEmail, changes.email == nil { _ = try await requestEmailChange(of: user, to: newEmail, request: update.mail) }
        let updated = try await apply(changes, to: user.id)
        if converting && !settings.autoconfirm {
            try await sendMail(.signup, to: updated, request: update.mail)
        }
        return updated
    }

    /// `POST /signup` without credentials, when `STRIVE_AUTH_ANONYMOUS` allows it: a user without an
    /// address (`is_anonymous` in the token), who can become permanent with `PUT /user`.
    public func signUpAnonymously(metadata: [String: JSONValue], client: Client) async throws -> TokenResponse {
        if settings.signupDisabled { throw AuthError.signupDisabled }
        guard settings.anonymousSignIns else {
            throw AuthError(status: .unprocessableContent, code: "anonymous_provider_disabled", message: "Anonymous sign-ins are disabled")
        }
        try await limit(.anonymous, client: client)
        let user = try await store.createAnonymousUser(userMetadata: metadata)
        return try await startSession(for: user, method: "anonymous", client: client)
    }

    public func signOut(_ token: VerifiedToken, scope: AuthStore.LogoutScope) async throws {
        let user = try await currentUser(token)
        guard let session = token.sessionID else { throw AuthError.noAuthorization }
        try await store.endSessions(user: user.id, current: session, scope: scope)
    }

    // MARK: Administration (service role)

    public struct NewUser: Sendable {
        public var email: String
        public var password: String?
        public var emailConfirm: Bool
        public var userMetadata: [String: JSONValue]
        public var appMetadata: [String: JSONValue]

        public init(
            email: String, password: String?, emailConfirm: Bool, userMetadata: [String: JSONValue], appMetadata: [String: JSONValue]
        ) {
            self.email = email
            self.password = password
            self.emailConfirm = emailConfirm
            self.userMetadata = userMetadata
            self.appMetadata = appMetadata
        }
    }

    public func createUser(_ new: NewUser) async throws -> UserRecord {
        let email = try Self.normalisedEmail(new.email)
        var hash: String?
        if let password = new.password {
            try passwordPolicy.check(password)
            hash = try await hasher.hash(password)
        }
        let created = try await store.createUser(
            email: email, passwordHash: hash, confirmed: new.emailConfirm,
            appMetadata: Self.emailProviderMetadata.merging(new.appMetadata) { $1 }, userMetadata: new.userMetadata
        )
        guard let created else { throw AuthError.emailExists }
        return created
    }

    public struct AdminUpdate: Sendable {
        public var email: String?
        public var password: String?
        public var emailConfirm: Bool?
        public var userMetadata: [String: JSONValue]?
        public var appMetadata: [String: JSONValue]?
        /// Supabase's `ban_duration`: "none" lifts a ban, else a Go-style duration such as "24h" or "30m".
        public var banDuration: String?

        public init() {}
    }

    public func updateUser(id: UUID, _ update: AdminUpdate) async throws -> UserRecord {
        var changes = AuthStore.Changes()
        if let email = update.email { changes.email = try Self.normalisedEmail(email) }
        if let password = update.password {
            try passwordPolicy.check(password)
            changes.passwordHash = try await hasher.hash(password)
        }
        changes.confirmEmail = update.emailConfirm ?? false
        changes.userMetadata = update.userMetadata
        changes.appMetadata = update.appMetadata
        if let ban = update.banDuration {
            if ban == "none" {
                changes.bannedUntil = .some(nil)
            } else {
                guard let seconds = Self.seconds(ofGoDuration: ban) else {
                    throw AuthError.validation("ban_duration must be \"none\" or a duration such as \"24h\", \"90m\" or \"3600s\"")
                }
                changes.bannedUntil = .some(Date().addingTimeInterval(seconds))
            }
        }
        return try await apply(changes, to: id)
    }

    // MARK: Internals

    func apply(_ changes: AuthStore.Changes, to id: UUID) async throws -> UserRecord {
        switch try await store.update(id: id, changes) {
        case .updated(let user): return user
        case .notFound: throw AuthError.userNotFound
        case .emailTaken: throw AuthError.emailExists
        }
    }

    /// Counts an attempt for `email` against its client IP's allowance (`category`: sign-in, mail or
    /// verify) and the address's own; throws `over_request_rate_limit` past either.
    func limit(email: String, client: Client, category: SharedRateLimits.Category = .signIn) async throws {
        try await limits.take(ipCheck(category, client: client) + [addressCheck(email)])
    }

    /// Counts an attempt against the client IP's allowance for `category`, all instances together.
    func limit(_ category: SharedRateLimits.Category, client: Client) async throws {
        try await limits.take(ipCheck(category, client: client))
    }

    func addressCheck(_ email: String) -> SharedRateLimits.Check {
        SharedRateLimits.Check(.address, key: email, maximum: settings.attemptsPerMinutePerEmail, window: .seconds(60))
    }

    private func ipCheck(_ category: SharedRateLimits.Category, client: Client) -> [SharedRateLimits.Check] {
        guard let ip = client.ip else { return [] }
        let maximum =
            switch category {
            case .signIn, .address: settings.signInsPerIP
            case .tokenRefresh: settings.refreshesPerIP
            case .verify: settings.verificationsPerIP
            case .mail: settings.mailRequestsPerIP
            case .mfa: settings.mfaAttemptsPerIP
            case .anonymous: settings.anonymousSignInsPerIP
            }
        let window: Duration =
            switch category {
            case .mfa: .seconds(60)
            case .anonymous: .seconds(3600)
            default: .seconds(300)
            }
        return [SharedRateLimits.Check(category, key: ip, maximum: maximum, window: window)]
    }

    func startSession(for user: UserRecord, method: String, client: Client, oauth: AuthStore.OAuthGrant? = nil) async throws
        -> TokenResponse
    {
        let refreshToken = codec.random()
        let now = Int(Date().timeIntervalSince1970)
        return try await store.startSession(
            user: user.id, refreshTokenHash: RefreshTokenCodec.hash(refreshToken), userAgent: client.userAgent, ip: client.ip,
            oauth: oauth
        ) { signedIn, session, connection in
            try await tokenResponse(
                user: signedIn, session: session, refreshToken: refreshToken, aal: "aal1", amr: [.init(method: method, timestamp: now)],
                oauth: oauth, on: connection)
        }
    }

    /// The session answer. With `STRIVE_AUTH_HOOK_CUSTOM_ACCESS_TOKEN`, the hook shapes the claims, on
    /// `connection` when the token is issued inside a transaction (a refusal then undoes the sign-in), else
    /// in a transaction of its own.
    func tokenResponse(
        user: UserRecord, session: UUID, refreshToken: String, aal: String, amr: [AccessClaims.AuthenticationMethod],
        oauth: AuthStore.OAuthGrant? = nil, on connection: PostgresConnection? = nil
    ) async throws -> TokenResponse {
        let now = Int(Date().timeIntervalSince1970)
        let lifetime = Int(settings.accessTokenLifetime.components.seconds)
        let claims = AccessClaims(
            sub: user.id.uuidString.lowercased(), aud: user.aud, role: user.role, email: user.email, phone: "",
            exp: now + lifetime, iat: now, iss: tokens.issuer, session_id: session.uuidString.lowercased(),
            aal: aal, amr: amr, app_metadata: .object(user.appMetadata),
            user_metadata: .object(user.userMetadata), is_anonymous: user.isAnonymous,
            client_id: oauth?.client.uuidString.lowercased(), scope: oauth?.scope
        )
        let accessToken: String
        if let function = settings.accessTokenHook {
            let hook = AccessTokenHook(function: function)
            let method = amr.first?.method ?? "password"
            let logger = store.logger
            let customized: [String: JSONValue]
            if let connection {
                customized = try await hook.claims(for: claims, user: user.id, method: method, on: connection, logger: logger)
            } else {
                customized = try await store.database.withServiceRoleTransaction(
                    method: "AUTH", path: "access-token-hook", logger: logger
                ) { connection in
                    try await hook.claims(for: claims, user: user.id, method: method, on: connection, logger: logger)
                }
            }
            accessToken = try await tokens.sign(payload: customized)
        } else {
            accessToken = try await tokens.sign(claims)
        }
        if let method = amr.first?.method { StriveMetrics.signedIn(method: method) }
        return TokenResponse(
            access_token: accessToken, token_type: "bearer", expires_in: lifetime,
            expires_at: now + lifetime, refresh_token: refreshToken, user: user.json
        )
    }

    static let emailProviderMetadata: [String: JSONValue] = ["provider": .string("email"), "providers": .array([.string("email")])]

    /// GoTrue's address rule (badoux/checkmail's pattern): ASCII letters, digits and `.!#$%&'*+/=?^_`{|}~-`
    /// before the @, dot-separated host labels of letters, digits and inner hyphens after it; at most 255
    /// characters. /openapi.json states the same pattern.
    static let emailPattern =
        "^[a-zA-Z0-9.!#$%&'*+/=?^_`{|}~-]+@[a-zA-Z0-9](?:[a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?(?:\\.[a-zA-Z0-9](?:[a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?)*$"

    /// Trimmed and lower-cased, after GoTrue's checks and with its texts.
    static func normalisedEmail(_ raw: String) throws(AuthError) -> String {
        let email = raw.trimmingCharacters(in: .whitespacesAndNewlines)
        if email.isEmpty { throw .validation("An email address is required") }
        if email.unicodeScalars.count > 255 { throw .validation("An email address is too long") }
        guard email.range(of: emailPattern, options: .regularExpression) != nil else {
            throw .validation("Unable to validate email address: invalid format")
        }
        return email.lowercased()
    }

    /// GoTrue's phone rule: E.164 digits after an optional `+`, spaces ignored.
    static func isE164(_ phone: String) -> Bool {
        var digits = phone.replacingOccurrences(of: " ", with: "")
        if digits.hasPrefix("+") { digits.removeFirst() }
        return digits.range(of: "^[1-9][0-9]{1,14}$", options: .regularExpression) != nil
    }

    /// "24h", "1h30m", "90m", "3600s" → seconds.
    static func seconds(ofGoDuration text: String) -> TimeInterval? {
        var total: TimeInterval = 0
        var number = ""
        var sawUnit = false
        for character in text {
            if character.isNumber || character == "." {
                number.append(character)
                continue
            }
            guard let value = Double(number) else { return nil }
            switch character {
            case "h": total += value * 3600
            case "m": total += value * 60
            case "s": total += value
            default: return nil
            }
            number = ""
            sawUnit = true
        }
        // Zero is a duration too: as in GoTrue, the ban ends at once.
        return number.isEmpty && sawUnit ? total : nil
    }
}
