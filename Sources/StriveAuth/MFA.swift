import Crypto
import Foundation
import PostgresNIO
import StriveCore
import StriveIdentity

/// GoTrue's TOTP factors: enroll (a secret, its `otpauth://` URI and QR code), challenge, verify (the
/// session becomes `aal2`, its tokens say so), unenroll (a verified factor only from an `aal2` session).
extension AuthService {
    public struct FactorJSON: Codable, Sendable, Equatable {
        public var id: String
        public var friendly_name: String?
        public var factor_type: String
        public var status: String
        public var created_at: Date
        public var updated_at: Date
    }

    public struct EnrolledFactor: Codable, Sendable {
        public struct TOTPDetails: Codable, Sendable {
            public var qr_code: String
            public var secret: String
            public var uri: String
        }
        public var id: String
        public var type: String
        public var friendly_name: String?
        public var totp: TOTPDetails
    }

    public struct Challenge: Codable, Sendable {
        public var id: String
        public var type: String
        public var expires_at: Int
    }

    static let challengeLifetime: TimeInterval = 300
    static let maximumFactors = 10

    public func enrollFactor(_ token: VerifiedToken, friendlyName: String?, issuer: String?, client: Client) async throws -> EnrolledFactor
    {
        let user = try await currentUser(token)
        try await limit(.mfa, client: client)
        if let friendlyName, !(1...100).contains(friendlyName.count) {
            throw AuthError.validation("friendly_name must be 1 to 100 characters")
        }
        let totp = TOTP.random()
        let sealed = try sealSecret(totp.secret)
        let factor = try Self.enrolled(
            try await store.enrollFactor(
                user: user.id, friendlyName: friendlyName, type: "totp", sealedSecret: sealed, maximum: Self.maximumFactors),
            friendlyName: friendlyName)
        let account = user.email ?? user.id.uuidString.lowercased()
        let uri = totp.uri(issuer: issuer ?? Self.issuerName(settings.siteURL), account: account)
        return EnrolledFactor(
            id: factor.id, type: "totp", friendly_name: factor.friendly_name,
            totp: .init(qr_code: QRCode.svgDataURI(uri), secret: Base32.encode(totp.secret), uri: uri))
    }

    /// The new factor of an enrollment, or GoTrue's refusal (whatever the factor's type).
    static func enrolled(_ outcome: AuthStore.Enrollment, friendlyName: String?) throws(AuthError) -> FactorJSON {
        switch outcome {
        case .tooMany:
            throw AuthError(
                status: .unprocessableContent, code: "too_many_enrolled_mfa_factors", message: "Maximum number of enrolled factors reached")
        case .nameTaken:
            throw AuthError(
                status: .unprocessableContent, code: "mfa_factor_name_conflict",
                message: "A factor with the friendly name \"\(friendlyName ?? "")\" for this user already exists")
        case .enrolled(let factor):
            return factor
        }
    }

    public func challengeFactor(_ token: VerifiedToken, factor: UUID, client: Client) async throws -> Challenge {
        let user = try await currentUser(token)
        try await limit(.mfa, client: client)
        guard let challenge = try await store.createChallenge(user: user.id, factor: factor, ip: client.ip) else {
            throw Self.factorNotFound
        }
        return Challenge(
            id: challenge.id.uuidString.lowercased(), type: "totp",
            expires_at: Int(challenge.createdAt.timeIntervalSince1970 + Self.challengeLifetime))
    }

    public func verifyFactor(_ token: VerifiedToken, factor: UUID, challenge: UUID, code: String, client: Client) async throws
        -> TokenResponse
    {
        let user = try await currentUser(token)
        try await limit(.mfa, client: client)
        guard let session = token.sessionID else { throw AuthError.noAuthorization }
        let refreshToken = codec.random()
        let outcome = try await store.verifyChallenge(
            user: user.id, factor: factor, challenge: challenge, session: session, lifetime: Self.challengeLifetime,
            refreshTokenHash: RefreshTokenCodec.hash(refreshToken)
        ) { sealed, lastStep in
            guard let secret = try? openSecret(sealed) else { return nil }
            return TOTP(secret: secret).matchingStep(code, after: lastStep)
        }
        switch outcome {
        case .factorNotFound: throw Self.factorNotFound
        case .challengeExpired:
            throw AuthError(
                status: .unprocessableContent, code: "mfa_challenge_expired", message: "MFA challenge has expired or does not exist")
        case .wrongCode:
            throw AuthError(status: .unprocessableContent, code: "mfa_verification_failed", message: "Invalid TOTP code entered")
        case .verified:
            let now = Int(Date().timeIntervalSince1970)
            let earlier = (token.claims.amr ?? []).filter { $0.method != "totp" }
            return try await tokenResponse(
                user: user, session: session, refreshToken: refreshToken, aal: "aal2",
                amr: [.init(method: "totp", timestamp: now)] + earlier)
        }
    }

    public func unenrollFactor(_ token: VerifiedToken, factor: UUID) async throws -> String {
        let user = try await currentUser(token)
        let aal2 = token.claims.aal == "aal2"
        switch try await store.deleteFactor(user: user.id, factor: factor, allowVerified: aal2) {
        case .deleted: return factor.uuidString.lowercased()
        case .notFound: throw Self.factorNotFound
        case .needsAAL2:
            throw AuthError(status: .forbidden, code: "insufficient_aal", message: "AAL2 required to unenroll verified factor")
        }
    }

    public func factors(of user: UUID) async throws -> [FactorJSON] {
        try await store.factors(user: user)
    }

    static let factorNotFound = AuthError(status: .notFound, code: "mfa_factor_not_found", message: "Factor not found")

    /// The issuer an authenticator app shows: the site's host.
    static func issuerName(_ siteURL: String) -> String {
        URLComponents(string: siteURL)?.host ?? "Strive"
    }

    func sealSecret(_ secret: [UInt8]) throws -> String {
        try ChaChaPoly.seal(Data(secret), using: factorKey).combined.base64EncodedString()
    }

    func openSecret(_ sealed: String) throws -> [UInt8] {
        guard let data = Data(base64Encoded: sealed) else { throw AuthError.validation("a factor's secret is unreadable") }
        return Array(try ChaChaPoly.open(ChaChaPoly.SealedBox(combined: data), using: factorKey))
    }
}

extension AuthStore {
    enum Enrollment: Sendable {
        case enrolled(AuthService.FactorJSON)
        case nameTaken
        case tooMany
    }

    /// A new, unverified factor of `type` (a TOTP factor with its sealed secret; a WebAuthn one has none yet).
    func enrollFactor(user: UUID, friendlyName: String?, type: String, sealedSecret: String?, maximum: Int) async throws -> Enrollment {
        try await database.withServiceRoleTransaction(method: "AUTH", path: "/factors", logger: logger) { connection in
            // Enrollments never verified are abandoned after a day.
            try await connection.run(
                "delete from auth.mfa_factors where user_id = \(user) and status = 'unverified' and created_at < now() - interval '1 day'",
                logger: logger)
            let count =
                try await connection.rows("select count(*)::int from auth.mfa_factors where user_id = \(user)", logger: logger)
                .first?.decode(Int.self) ?? 0
            if count >= maximum { return .tooMany }
            let rows = try await connection.rows(
                """
                insert into auth.mfa_factors (user_id, friendly_name, factor_type, secret)
                values (\(user), \(friendlyName), \(type), \(sealedSecret))
                on conflict (user_id, friendly_name) do nothing
                returning id, friendly_name, factor_type, status, created_at, updated_at
                """, logger: logger)
            guard let row = rows.first else { return .nameTaken }
            return .enrolled(try Self.factor(row))
        }
    }

    func factors(user: UUID) async throws -> [AuthService.FactorJSON] {
        try await database.withServiceRoleTransaction(method: "AUTH", path: "/user", logger: logger) { connection in
            try await connection.rows(
                """
                select id, friendly_name, factor_type, status, created_at, updated_at from auth.mfa_factors
                where user_id = \(user) order by created_at
                """, logger: logger
            ).map(Self.factor)
        }
    }

    private static func factor(_ row: PostgresRow) throws -> AuthService.FactorJSON {
        let (id, name, type, status, created, updated) = try row.decode((UUID, String?, String, String, Date, Date).self)
        return AuthService.FactorJSON(
            id: id.uuidString.lowercased(), friendly_name: name, factor_type: type, status: status, created_at: created, updated_at: updated
        )
    }

    /// A challenge of the user's `factor`; with `webAuthn`, a WebAuthn factor's random bytes and ceremony.
    func createChallenge(user: UUID, factor: UUID, ip: String?, webAuthn: (bytes: [UInt8], type: String)? = nil) async throws
        -> (id: UUID, createdAt: Date)?
    {
        try await database.withServiceRoleTransaction(method: "AUTH", path: "/factors", logger: logger) { connection in
            guard
                let row = try await connection.rows(
                    """
                    insert into auth.mfa_challenges (factor_id, ip, web_authn_challenge, web_authn_type)
                    select f.id, case when \(ip) ~ '^[0-9a-fA-F:.]+$' then \(ip)::inet end,
                           \(webAuthn.map { ByteBuffer(bytes: $0.bytes) }), \(webAuthn?.type) from auth.mfa_factors f
                    where f.id = \(factor) and f.user_id = \(user)
                    returning id, created_at
                    """, logger: logger
                ).first
            else { return nil }
            let (id, created) = try row.decode((UUID, Date).self)
            return (id, created)
        }
    }

    enum ChallengeOutcome: Sendable {
        case verified
        case factorNotFound
        case challengeExpired
        case wrongCode
    }

    /// Checks the code against the factor's secret with `matches` (which returns the code's time step),
    /// and on success marks the factor verified, the challenge used, the session aal2, and adds the new
    /// refresh token to the session — one transaction.
    func verifyChallenge(
        user: UUID, factor: UUID, challenge: UUID, session: UUID, lifetime: TimeInterval, refreshTokenHash: String,
        matches: @Sendable (_ sealedSecret: String, _ lastStep: Int64?) -> Int64?
    ) async throws -> ChallengeOutcome {
        try await database.withServiceRoleTransaction(method: "AUTH", path: "/factors", logger: logger) { connection in
            guard
                let factorRow = try await connection.rows(
                    "select secret, last_step from auth.mfa_factors where id = \(factor) and user_id = \(user) and factor_type = 'totp' for update",
                    logger: logger
                ).first
            else { return .factorNotFound }
            let (sealed, lastStep) = try factorRow.decode((String, Int64?).self)
            let live = try await connection.rows(
                """
                select 1 from auth.mfa_challenges
                where id = \(challenge) and factor_id = \(factor) and verified_at is null
                  and created_at > now() - make_interval(secs => \(lifetime))
                for update
                """, logger: logger)
            guard !live.isEmpty else { return .challengeExpired }
            // A wrong code does not use the challenge up: the user may type again (within the MFA rate limit).
            guard let step = matches(sealed, lastStep) else { return .wrongCode }
            try await connection.run("update auth.mfa_challenges set verified_at = now() where id = \(challenge)", logger: logger)
            try await connection.run(
                "update auth.mfa_factors set status = 'verified', last_step = \(step), updated_at = now() where id = \(factor)",
                logger: logger)
            try await raiseToAAL2(session: session, user: user, refreshTokenHash: refreshTokenHash, on: connection)
            return .verified
        }
    }

    /// A verified second factor's effect, whichever kind: the session becomes aal2 and gets the refresh
    /// token of the answer's new tokens.
    func raiseToAAL2(session: UUID, user: UUID, refreshTokenHash: String, on connection: PostgresConnection) async throws {
        try await connection.run("update auth.sessions set aal = 'aal2', updated_at = now() where id = \(session)", logger: logger)
        try await connection.run(
            "insert into auth.refresh_tokens (token_hash, user_id, session_id) values (\(refreshTokenHash), \(user), \(session))",
            logger: logger)
    }

    enum Deletion: Sendable {
        case deleted
        case notFound
        case needsAAL2
    }

    func deleteFactor(user: UUID, factor: UUID, allowVerified: Bool) async throws -> Deletion {
        try await database.withServiceRoleTransaction(method: "AUTH", path: "/factors", logger: logger) { connection in
            guard
                let status = try await connection.rows(
                    "select status from auth.mfa_factors where id = \(factor) and user_id = \(user) for update", logger: logger
                ).first?.decode(String.self)
            else { return .notFound }
            if status == "verified" && !allowVerified { return .needsAAL2 }
            try await connection.run("delete from auth.mfa_factors where id = \(factor)", logger: logger)
            if status == "verified" {
                // Without a verified factor left, the user's sessions are aal1 again.
                try await connection.run(
                    """
                    update auth.sessions set aal = 'aal1' where user_id = \(user)
                      and not exists (select 1 from auth.mfa_factors where user_id = \(user) and status = 'verified')
                    """, logger: logger)
            }
            return .deleted
        }
    }
}
