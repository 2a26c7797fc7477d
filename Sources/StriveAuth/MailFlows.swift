import Crypto
import Foundation
import StriveCore
import StriveIdentity

/// GoTrue's flows that go through mail: confirmation, recovery, magic links and 6-digit codes, resend,
/// and PKCE. A mail's link carries a random token and a 6-digit code; the database keeps only their
/// hashes. `/recover`, `/otp` and `/resend` answer the same whether or not the address has an account.
extension AuthService {
    /// Where a mailed link may send the browser back to.
    public struct MailRequest: Sendable {
        public var redirectTo: String?
        public var pkce: PKCEChallenge?

        public init(redirectTo: String? = nil, pkce: PKCEChallenge? = nil) {
            self.redirectTo = redirectTo
            self.pkce = pkce
        }
    }

    public enum SignUpResult: Sendable {
        /// Confirmed at once: signed in.
        case session(TokenResponse)
        /// A confirmation mail is on its way (supabase-js: `data.session` is null).
        case confirmationSent(UserJSON)
    }

    /// Sign-up: a session at once with autoconfirm, else a confirmation mail. An address that already
    /// has a confirmed account gets an answer of the same shape and no mail, so the answer does not tell.
    public func register(
        email rawEmail: String, password: String, metadata: [String: JSONValue], request: MailRequest, client: Client
    ) async throws -> SignUpResult {
        if settings.signupDisabled { throw AuthError.signupDisabled }
        if settings.autoconfirm {
            return .session(try await signUp(email: rawEmail, password: password, metadata: metadata, client: client))
        }
        let email = try Self.normalisedEmail(rawEmail)
        try await limit(email: email, client: client)
        try passwordPolicy.check(password)
        let hash = try await hasher.hash(password)
        if let created = try await store.createUser(
            email: email, passwordHash: hash, confirmed: false, appMetadata: Self.emailProviderMetadata, userMetadata: metadata)
        {
            try await sendMail(.signup, to: created, request: request)
            return .confirmationSent(created.json)
        }
        guard let existing = try await store.user(email: email) else { throw AuthError.userAlreadyExists }
        if existing.emailConfirmedAt == nil {
            try await sendMail(.signup, to: existing, request: request)
            return .confirmationSent(existing.json)
        }
        return .confirmationSent(Self.lookalike(of: existing.json, email: email))
    }

    /// `POST /recover`: a recovery mail if the address has an account.
    public func recover(email rawEmail: String, request: MailRequest, client: Client) async throws {
        let email = try Self.normalisedEmail(rawEmail)
        try await limit(email: email, client: client, category: .mail)
        guard let user = try await store.user(email: email), !user.isBanned() else { return }
        try await sendMail(.recovery, to: user, request: request)
    }

    /// `POST /otp`: a magic link and code; with `createUser`, a new address gets an (unconfirmed) account.
    public func sendOTP(
        email rawEmail: String, createUser: Bool, metadata: [String: JSONValue], request: MailRequest, client: Client
    ) async throws {
        let email = try Self.normalisedEmail(rawEmail)
        try await limit(email: email, client: client, category: .mail)
        var user = try await store.user(email: email)
        // GoTrue's answers, though they tell whether the address has an account.
        if user == nil && !createUser { throw AuthError.otpSignupsDisabled }
        if user == nil && settings.signupDisabled { throw AuthError.signupDisabled }
        if user == nil && createUser {
            user = try await store.createUser(
                email: email, passwordHash: nil, confirmed: false, appMetadata: Self.emailProviderMetadata, userMetadata: metadata)
            if user == nil { user = try await store.user(email: email) }
        }
        guard let user, !user.isBanned() else { return }
        try await sendMail(.magiclink, to: user, request: request)
    }

    /// `POST /resend` (type signup): the confirmation mail again, if the account still needs it.
    public func resendConfirmation(email rawEmail: String, request: MailRequest, client: Client) async throws {
        let email = try Self.normalisedEmail(rawEmail)
        try await limit(email: email, client: client, category: .mail)
        guard let user = try await store.user(email: email), user.emailConfirmedAt == nil else { return }
        try await sendMail(.signup, to: user, request: request)
    }

    // MARK: Verification

    /// `GET /verify?token=…&type=…&redirect_to=…`: where to send the browser — the session in the URL
    /// fragment, `?code=` for a PKCE flow, or `#error=…` when the link is used up or expired.
    public func verifyLink(token: String, type: String, redirectTo: String?, client: Client) async throws -> String {
        try await limit(.verify, client: client)
        let fallback = allowedRedirect(redirectTo)
        guard !token.isEmpty, token.utf8.count <= 256, let purposes = Self.purposes(ofVerifyType: type),
            let consumed = try await store.consume(linkTokenHash: RefreshTokenCodec.hash(token)), purposes.contains(consumed.purpose)
        else {
            return Self.appending(
                fragment: [
                    ("error", "access_denied"), ("error_code", "otp_expired"),
                    ("error_description", "Email link is invalid or has expired"),
                ], to: fallback)
        }
        let target = consumed.redirectTo.map { allowedRedirect($0) } ?? fallback
        let user: UserRecord
        do {
            switch try await settle(consumed) {
            case .confirmed(let confirmed): user = confirmed
            case .awaitingOtherSide:
                return Self.appending(fragment: [("message", Self.singleConfirmationAccepted)], to: target)
            }
        } catch let error as AuthError {
            return Self.appending(
                fragment: [("error", "access_denied"), ("error_code", error.code), ("error_description", error.message)], to: target)
        }
        guard !user.isBanned() else {
            return Self.appending(
                fragment: [("error", "access_denied"), ("error_code", "user_banned"), ("error_description", "User is banned")],
                to: target)
        }
        if let flow = consumed.flowState {
            let authCode = UUID().uuidString.lowercased()
            try await store.issueAuthCode(flowState: flow, codeHash: RefreshTokenCodec.hash(authCode))
            return Self.appending(query: [("code", authCode)], to: target)
        }
        let session = try await startSession(for: user, method: Self.amrMethod(consumed.purpose), client: client)
        return Self.appending(
            fragment: [
                ("access_token", session.access_token), ("expires_at", String(session.expires_at)),
                ("expires_in", String(session.expires_in)), ("refresh_token", session.refresh_token), ("token_type", "bearer"),
                ("type", consumed.purpose.verifyType),
            ], to: target)
    }

    /// GoTrue's answer when the first of a secure email change's two links or codes is used.
    public static let singleConfirmationAccepted =
        "Confirmation link accepted. Please proceed to confirm link sent to the other email"

    enum Settled: Sendable {
        case confirmed(UserRecord)
        case awaitingOtherSide
    }

    /// What a used token proves: the address it was mailed to, or one side of an email change.
    func settle(_ consumed: AuthStore.ConsumedToken) async throws -> Settled {
        guard TokenPurpose.emailChangeSides.contains(consumed.purpose) else {
            guard let user = try await store.confirmEmail(of: consumed.user) else { throw AuthError.otpExpired }
            return .confirmed(user)
        }
        switch try await store.completeEmailChange(user: consumed.user) {
        case .changed(let user): return .confirmed(user)
        case .awaitingOtherSide: return .awaitingOtherSide
        case .nothingPending: throw AuthError.otpExpired
        case .emailTaken: throw AuthError.emailExists
        }
    }

    public enum Verified: Sendable {
        case session(TokenResponse)
        /// One side of a secure email change is confirmed; the other is still to come.
        case awaitingOtherSide
    }

    /// `POST /verify` with the link's `token_hash`, or the address and its 6-digit `token`: a session.
    public func verifyOTP(type: String, tokenHash: String?, email: String?, code: String?, client: Client) async throws -> Verified {
        guard let purposes = Self.purposes(ofVerifyType: type) else {
            throw AuthError.validation("type must be signup, recovery, magiclink, invite, email or email_change")
        }
        let consumed: AuthStore.ConsumedToken?
        if let tokenHash {
            try await limit(.verify, client: client)
            guard !tokenHash.isEmpty, tokenHash.utf8.count <= 256 else { throw AuthError.otpExpired }
            consumed = try await store.consume(linkTokenHash: RefreshTokenCodec.hash(tokenHash))
        } else if let rawEmail = email, let code {
            let email = try Self.normalisedEmail(rawEmail)
            try await limit(email: email, client: client, category: .verify)
            guard code.count == 6, code.allSatisfy(\.isASCII), code.allSatisfy(\.isNumber) else { throw AuthError.otpExpired }
            consumed = try await store.consume(email: email, codeHash: codeHash(email: email, code: code), purposes: purposes)
        } else {
            throw AuthError.validation("Verify requires either a token_hash, or an email and a token")
        }
        guard let consumed, purposes.contains(consumed.purpose) else { throw AuthError.otpExpired }
        guard case .confirmed(let user) = try await settle(consumed) else { return .awaitingOtherSide }
        if user.isBanned() { throw AuthError.userBanned }
        return .session(try await startSession(for: user, method: Self.amrMethod(consumed.purpose), client: client))
    }

    /// `POST /token?grant_type=pkce`: the session a verified PKCE flow's auth code stands for.
    public func exchangeAuthCode(_ authCode: String, verifier: String, client: Client) async throws -> TokenResponse {
        guard !authCode.isEmpty, authCode.utf8.count <= 256 else { throw AuthError.flowStateNotFound }
        guard (43...128).contains(verifier.utf8.count) else {
            throw AuthError.validation("code_verifier must be 43 to 128 characters (RFC 7636)")
        }
        guard let flow = try await store.exchange(authCodeHash: RefreshTokenCodec.hash(authCode), lifetime: settings.otpLifetime) else {
            throw AuthError.flowStateNotFound
        }
        guard flow.fresh else { throw AuthError.flowStateExpired }
        guard Self.verifier(verifier, matches: flow.challenge) else { throw AuthError.badCodeVerifier }
        guard let user = try await store.user(id: flow.user) else { throw AuthError.userNotFound }
        if user.isBanned() { throw AuthError.userBanned }
        let method = flow.method == "oauth" ? "oauth" : TokenPurpose(rawValue: flow.method).map(Self.amrMethod) ?? "otp"
        var session = try await startSession(for: user, method: method, client: client)
        session.provider_token = flow.providerToken
        session.provider_refresh_token = flow.providerRefreshToken
        return session
    }

    // MARK: Internals

    /// Issues a token of `purpose` for `user` and queues its mail. A mail of the same kind to the same address
    /// inside the interval is GoTrue's 429, so the user learns to wait instead of waiting for a mail that
    /// never comes.
    func sendMail(_ purpose: TokenPurpose, to user: UserRecord, request: MailRequest) async throws {
        let limits = AuthStore.MailLimits(perHour: settings.emailsPerHour, interval: settings.emailInterval)
        guard let (outcome, _) = try await issueToken(purpose, for: user, request: request, limits: limits) else { return }
        switch outcome {
        case .issued: return
        case .overHourlyLimit(let retryAfter): throw AuthError.overEmailSendRateLimit(retryAfter: retryAfter)
        case .tooSoon(let retryAfter): throw AuthError.mailSentTooRecently(retryAfter: retryAfter)
        }
    }

    /// What a mail would carry: the link, the 6-digit code and the link's token.
    public struct IssuedLink: Sendable {
        public let link: String
        public let code: String
        public let linkToken: String
        public let redirectTo: String
    }

    /// Issues a token of `purpose` and, with `limits`, queues its mail within them; nil for a user without
    /// an address.
    func issueToken(_ purpose: TokenPurpose, for user: UserRecord, request: MailRequest, limits: AuthStore.MailLimits?) async throws
        -> (AuthStore.IssueOutcome, IssuedLink)?
    {
        guard let email = user.email else { return nil }
        let (token, link) = makeToken(purpose, for: user, to: email, request: request)
        return (try await store.issue(token, limits: limits), link)
    }

    /// A token of `purpose` for `user`, mailed to `email`: what the database keeps (hashes and the mail's
    /// variables) and what the mail carries.
    func makeToken(_ purpose: TokenPurpose, for user: UserRecord, to email: String, request: MailRequest, extra: [String: String] = [:])
        -> (AuthStore.TokenToIssue, IssuedLink)
    {
        let linkToken = codec.random()
        let code = Self.sixDigitCode()
        let redirect = allowedRedirect(request.redirectTo)
        let link = Self.appending(
            query: [("token", linkToken), ("type", purpose.verifyType), ("redirect_to", redirect)], to: tokens.issuer + "/verify")
        let variables = [
            "confirmation_url": link, "token": code, "token_hash": linkToken, "site_url": settings.siteURL, "email": email,
            "redirect_to": redirect,
        ].merging(extra) { $1 }
        let token = AuthStore.TokenToIssue(
            user: user.id, purpose: purpose, email: email, linkTokenHash: RefreshTokenCodec.hash(linkToken),
            codeHash: codeHash(email: email, code: code), redirectTo: redirect, lifetime: settings.otpLifetime, pkce: request.pkce,
            variables: variables)
        return (token, IssuedLink(link: link, code: code, linkToken: linkToken, redirectTo: redirect))
    }

    /// The 6-digit code's hash: an HMAC keyed with the JWT secret, because a million codes are quickly tried.
    func codeHash(email: String, code: String) -> String {
        HMAC<SHA256>.authenticationCode(for: Data("otp|\(email)|\(code)".utf8), using: codeKey)
            .map { String(format: "%02x", $0) }.joined()
    }

    static func sixDigitCode() -> String {
        var generator = SystemRandomNumberGenerator()
        let value = Int.random(in: 0..<1_000_000, using: &generator)
        let digits = String(value)
        return String(repeating: "0", count: 6 - digits.count) + digits
    }

    /// What a `type` of `/verify` may consume: GoTrue's `email` is the code of a sign-up or magic-link mail.
    static func purposes(ofVerifyType type: String) -> [TokenPurpose]? {
        switch type {
        case "signup": [.signup]
        case "recovery": [.recovery]
        case "magiclink": [.magiclink, .signup]
        case "email": [.signup, .magiclink]
        case "invite": [.invite]
        case "email_change": TokenPurpose.emailChangeSides
        default: nil
        }
    }

    static func amrMethod(_ purpose: TokenPurpose) -> String {
        switch purpose {
        case .recovery: "recovery"
        case .signup, .magiclink: "otp"
        case .invite: "invite"
        case .emailChangeCurrent, .emailChangeNew: "email_change"
        case .reauthentication: "reauthentication"
        }
    }

    static func verifier(_ verifier: String, matches challenge: PKCEChallenge) -> Bool {
        switch challenge.method {
        case .plain: return verifier == challenge.challenge
        case .s256: return Data(SHA256.hash(data: Data(verifier.utf8))).base64URLEncodedString == challenge.challenge
        }
    }

    /// A user object for an address that must not be revealed as taken: fresh id and timestamps.
    static func lookalike(of user: UserJSON, email: String) -> UserJSON {
        let now = Date()
        return UserJSON(
            id: UUID().uuidString.lowercased(), aud: user.aud, role: user.role, email: email, email_confirmed_at: nil, phone: "",
            confirmed_at: nil, last_sign_in_at: nil, app_metadata: .object(emailProviderMetadata), user_metadata: .object([:]),
            identities: [], created_at: now, updated_at: now, is_anonymous: false, banned_until: nil)
    }

    /// `candidate` if it is the site or matches an allowed pattern, else the site URL: no open redirects.
    func allowedRedirect(_ candidate: String?) -> String {
        guard let candidate, !candidate.isEmpty, candidate.utf8.count <= 2048,
            let url = URLComponents(string: candidate), ["http", "https"].contains(url.scheme?.lowercased() ?? ""),
            let host = url.host, !host.isEmpty, url.user == nil, url.password == nil
        else { return settings.siteURL }
        if let site = URLComponents(string: settings.siteURL), site.scheme?.lowercased() == url.scheme?.lowercased(),
            site.host?.lowercased() == host.lowercased(), site.port == url.port
        {
            return candidate
        }
        return settings.redirectURLs.contains { RedirectPattern.matches($0, candidate) } ? candidate : settings.siteURL
    }

    static func appending(fragment pairs: [(String, String)], to url: String) -> String {
        let base = url.split(separator: "#", maxSplits: 1).first.map(String.init) ?? url
        return base + "#" + formEncoded(pairs)
    }

    static func appending(query pairs: [(String, String)], to url: String) -> String {
        let parts = url.split(separator: "#", maxSplits: 1).map(String.init)
        let separator = parts[0].contains("?") ? "&" : "?"
        return parts[0] + separator + formEncoded(pairs) + (parts.count > 1 ? "#" + parts[1] : "")
    }

    static func formEncoded(_ pairs: [(String, String)]) -> String {
        pairs.map { "\($0)=\(formComponent($1))" }.joined(separator: "&")
    }

    /// One value of a form or query (RFC 3986 unreserved characters kept, the rest percent-encoded).
    static func formComponent(_ text: String) -> String {
        let allowed = CharacterSet.alphanumerics.union(CharacterSet(charactersIn: "-._~"))
        return text.addingPercentEncoding(withAllowedCharacters: allowed) ?? ""
    }
}

/// `STRIVE_AUTH_REDIRECT_URLS` patterns: `**` matches anything, `*` anything but `.` and `/` (one host
/// label or path segment), everything else itself.
enum RedirectPattern {
    static func matches(_ pattern: String, _ candidate: String) -> Bool {
        var expression = "^"
        var characters = pattern[...]
        while let character = characters.first {
            if characters.hasPrefix("**") {
                expression += ".*"
                characters = characters.dropFirst(2)
            } else if character == "*" {
                expression += "[^./]*"
                characters = characters.dropFirst()
            } else {
                expression += NSRegularExpression.escapedPattern(for: String(character))
                characters = characters.dropFirst()
            }
        }
        expression += "$"
        return candidate.range(of: expression, options: [.regularExpression, .caseInsensitive]) != nil
    }
}
