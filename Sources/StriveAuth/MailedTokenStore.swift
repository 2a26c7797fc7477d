import Foundation
import Logging
import PostgresNIO
import StriveCore
import StriveDatabase

/// What a mailed link or code is for (`auth.one_time_tokens.purpose`).
public enum TokenPurpose: String, Sendable, CaseIterable {
    case signup
    case recovery
    case magiclink
    case invite
    /// One side of a secure email change: the link or code mailed to the current address…
    case emailChangeCurrent = "email_change_current"
    /// …and the one mailed to the new address.
    case emailChangeNew = "email_change_new"
    /// The nonce that proves it is the user before a password change (`GET /reauthenticate`).
    case reauthentication

    /// The mail that carries it.
    var template: String {
        switch self {
        case .signup: "confirmation"
        case .recovery: "recovery"
        case .magiclink: "magic_link"
        case .invite: "invite"
        case .emailChangeCurrent, .emailChangeNew: "email_change"
        case .reauthentication: "reauthentication"
        }
    }

    /// The `type` of `/verify` that uses it, as links and redirects name it.
    var verifyType: String {
        switch self {
        case .emailChangeCurrent, .emailChangeNew: "email_change"
        default: rawValue
        }
    }

    static let emailChangeSides: [TokenPurpose] = [.emailChangeCurrent, .emailChangeNew]

    /// The mails one address must not get twice within the interval, as GoTrue spaces them: each kind on
    /// its own clock (a recovery mail goes out right after a confirmation), recovery and magic links
    /// sharing one; invitations are not spaced.
    var spacedWith: [String] {
        switch self {
        case .recovery, .magiclink: [TokenPurpose.recovery.template, TokenPurpose.magiclink.template]
        case .invite: []
        default: [template]
        }
    }
}

/// A PKCE challenge (RFC 7636) a client sent with the request that mails a link.
public struct PKCEChallenge: Sendable, Equatable {
    public enum Method: String, Sendable { case s256, plain }
    public let challenge: String
    public let method: Method

    public init(challenge: String, method: Method) {
        self.challenge = challenge
        self.method = method
    }
}

/// The auth schema's side of mailed links and codes: issuing one together with its mail (within the
/// shared send limits), consuming one exactly once, and PKCE flows.
extension AuthStore {
    public struct MailLimits: Sendable {
        public let perHour: Int
        public let interval: Duration
    }

    /// A token to mail: the hashes go to the database, the link token and code only into the mail.
    struct TokenToIssue: Sendable {
        let user: UUID
        let purpose: TokenPurpose
        let email: String
        let linkTokenHash: String
        let codeHash: String
        let redirectTo: String?
        let lifetime: Duration
        let pkce: PKCEChallenge?
        /// The mail's template variables; `confirmation_url`, `token` and `token_hash` included.
        let variables: [String: String]
    }

    public enum IssueOutcome: Sendable, Equatable {
        case issued
        /// The project sent its hourly allowance.
        case overHourlyLimit(retryAfter: Int)
        /// This address got a mail less than the interval ago.
        case tooSoon(retryAfter: Int)
    }

    /// Replaces the user's earlier token for the same purpose and queues its mail, in one transaction,
    /// unless a send limit says no. The limits count `auth.mail_outbox`, so every instance shares them; an
    /// advisory lock makes the count and the insert one step.
    /// `limits` nil: no mail is queued and no limit applies (admin `generate_link`, whose caller delivers the link).
    func issue(_ token: TokenToIssue, limits: MailLimits?) async throws -> IssueOutcome {
        try await database.withServiceRoleTransaction(method: "AUTH", path: "/mail", logger: logger) { connection in
            if let limits,
                let refusal = try await Self.checkLimits(
                    limits, emails: [token.email], templates: token.purpose.spacedWith, on: connection, logger: logger)
            {
                return refusal
            }
            try await Self.store(token, queueMail: limits != nil, on: connection, logger: logger)
            return .issued
        }
    }

    /// `templates`: the kinds of mail whose last sending to `emails` starts the interval.
    private static func checkLimits(
        _ limits: MailLimits, emails: [String], templates: [String], on connection: PostgresConnection, logger: Logger
    ) async throws -> IssueOutcome? {
        try await connection.run("select pg_advisory_xact_lock(hashtext('strive_mail_limits'))", logger: logger)
        let intervalSeconds = Int(limits.interval.components.seconds)
        let row = try await connection.rows(
            """
            select count(*) filter (where created_at > now() - interval '1 hour'),
                   coalesce(extract(epoch from (min(created_at) filter (where created_at > now() - interval '1 hour'))
                                    + interval '1 hour' - now())::int, 0),
                   coalesce(extract(epoch from (max(created_at) filter (where recipient = any(\(emails)::text[]) and template = any(\(templates)::text[])))
                                    + make_interval(secs => \(intervalSeconds)) - now())::int, 0)
            from auth.mail_outbox where created_at > now() - interval '1 hour'
            """, logger: logger
        ).first
        let (sentThisHour, hourFreesIn, addressFreesIn) = try row?.decode((Int, Int, Int).self) ?? (0, 0, 0)
        if sentThisHour + emails.count > limits.perHour { return .overHourlyLimit(retryAfter: max(1, hourFreesIn)) }
        if addressFreesIn > 0 { return .tooSoon(retryAfter: addressFreesIn) }
        return nil
    }

    private static func store(_ token: TokenToIssue, queueMail: Bool, on connection: PostgresConnection, logger: Logger) async throws {
        var flowID: UUID?
        if let pkce = token.pkce {
            flowID = try await connection.rows(
                """
                insert into auth.flow_state (user_id, code_challenge, code_challenge_method, authentication_method)
                values (\(token.user), \(pkce.challenge), \(pkce.method.rawValue), \(token.purpose.rawValue)) returning id
                """, logger: logger
            ).first?.decode(UUID.self)
        }
        let lifetime = Int(token.lifetime.components.seconds)
        try await connection.run(
            "delete from auth.one_time_tokens where user_id = \(token.user) and purpose = \(token.purpose.rawValue)", logger: logger)
        try await connection.run(
            """
            insert into auth.one_time_tokens (user_id, purpose, token_hash, code_hash, relates_to, redirect_to, flow_state_id, expires_at)
            values (\(token.user), \(token.purpose.rawValue), \(token.linkTokenHash), \(token.codeHash), \(token.email),
                    \(token.redirectTo), \(flowID), now() + make_interval(secs => \(lifetime)))
            """, logger: logger)
        if queueMail {
            let variables = JSONValue.object(token.variables.mapValues(JSONValue.string)).jsonText
            try await connection.run(
                """
                insert into auth.mail_outbox (recipient, template, variables)
                values (\(token.email), \(token.purpose.template), \(variables)::jsonb)
                """, logger: logger)
        }
        // Flows never completed and expired tokens are of no use to anyone.
        try await connection.run("delete from auth.one_time_tokens where expires_at < now() - interval '1 day'", logger: logger)
        try await connection.run(
            "delete from auth.flow_state where created_at < now() - interval '1 day'", logger: logger)
    }

    // MARK: Email change

    public enum EmailChangeStart: Sendable {
        case started(UserRecord)
        case notFound
        case emailTaken
        case overSendLimit(retryAfter: Int)
    }

    /// Records `newEmail` as the user's pending address and issues `tokens` (one per side that must
    /// confirm) with their mails, all in one transaction: earlier email-change tokens go, so a link from
    /// an earlier request cannot confirm this one.
    func beginEmailChange(user: UUID, to newEmail: String, tokens: [TokenToIssue], limits: MailLimits?) async throws
        -> EmailChangeStart
    {
        let sides = TokenPurpose.emailChangeSides.map(\.rawValue)
        return try await database.withServiceRoleTransaction(method: "AUTH", path: "/user", logger: logger) { connection in
            let taken = try await connection.rows("select 1 from auth.users where email = \(newEmail) and id <> \(user)", logger: logger)
            if !taken.isEmpty { return .emailTaken }
            if let limits {
                switch try await Self.checkLimits(
                    limits, emails: tokens.map(\.email), templates: TokenPurpose.emailChangeCurrent.spacedWith, on: connection,
                    logger: logger)
                {
                case .overHourlyLimit(let retryAfter)?, .tooSoon(let retryAfter)?: return .overSendLimit(retryAfter: retryAfter)
                case .issued?, nil: break
                }
            }
            try await connection.run(
                "delete from auth.one_time_tokens where user_id = \(user) and purpose = any(\(sides)::text[])", logger: logger)
            guard
                let updated = try await connection.rows(
                    """
                    update auth.users set email_change = \(newEmail), email_change_sent_at = now(), updated_at = now()
                    where id = \(user) returning \(unescaped: UserRecord.columns)
                    """, logger: logger
                ).first.map(UserRecord.init(row:))
            else { return .notFound }
            for token in tokens { try await Self.store(token, queueMail: limits != nil, on: connection, logger: logger) }
            return .started(updated)
        }
    }

    public enum EmailChangeCompletion: Sendable {
        /// The address changed.
        case changed(UserRecord)
        /// The other side's link or code is still to be used.
        case awaitingOtherSide
        /// No change is pending (already applied, or replaced by a later request).
        case nothingPending
        /// Someone took the new address meanwhile; the change is dropped.
        case emailTaken
    }

    /// After one side's token is used: applies the pending address once no side's token is left.
    func completeEmailChange(user: UUID) async throws -> EmailChangeCompletion {
        let sides = TokenPurpose.emailChangeSides.map(\.rawValue)
        return try await database.withServiceRoleTransaction(method: "AUTH", path: "/verify", logger: logger) { connection in
            guard
                let pending = try await connection.rows(
                    "select email_change from auth.users where id = \(user) for update", logger: logger
                ).first?.decode(String?.self)
            else { return .nothingPending }
            let outstanding = try await connection.rows(
                "select 1 from auth.one_time_tokens where user_id = \(user) and purpose = any(\(sides)::text[])", logger: logger)
            if !outstanding.isEmpty { return .awaitingOtherSide }
            let taken = try await connection.rows("select 1 from auth.users where email = \(pending) and id <> \(user)", logger: logger)
            if !taken.isEmpty {
                try await connection.run(
                    "update auth.users set email_change = null, email_change_sent_at = null where id = \(user)", logger: logger)
                return .emailTaken
            }
            let changed = try await connection.rows(
                """
                update auth.users set email = email_change, email_change = null, email_change_sent_at = null,
                    email_confirmed_at = now(), updated_at = now()
                where id = \(user) returning \(unescaped: UserRecord.columns)
                """, logger: logger
            ).first.map(UserRecord.init(row:))
            return changed.map(EmailChangeCompletion.changed) ?? .nothingPending
        }
    }

    /// The sides of the user's pending email change whose tokens are still unused.
    func outstandingEmailChangeSides(user: UUID) async throws -> [TokenPurpose] {
        let sides = TokenPurpose.emailChangeSides.map(\.rawValue)
        return try await database.withServiceRoleTransaction(method: "AUTH", path: "/resend", logger: logger) { connection in
            try await connection.rows(
                "select purpose from auth.one_time_tokens where user_id = \(user) and purpose = any(\(sides)::text[])", logger: logger
            ).map { try $0.decode(String.self) }.compactMap(TokenPurpose.init(rawValue:))
        }
    }

    /// A token that was presented and is now gone.
    struct ConsumedToken: Sendable {
        let user: UUID
        let purpose: TokenPurpose
        let redirectTo: String?
        let flowState: UUID?
    }

    /// The token behind a link, used up; nil when it does not exist or has expired.
    func consume(linkTokenHash: String) async throws -> ConsumedToken? {
        try await database.withServiceRoleTransaction(method: "AUTH", path: "/verify", logger: logger) { connection in
            try await Self.consumed(
                connection.rows(
                    """
                    delete from auth.one_time_tokens where token_hash = \(linkTokenHash)
                    returning user_id, purpose, redirect_to, flow_state_id, expires_at > now()
                    """, logger: logger))
        }
    }

    /// The token a code was mailed with, used up. A wrong code counts against every live code of that
    /// address and purpose; the fifth wrong one voids them.
    func consume(email: String, codeHash: String, purposes: [TokenPurpose], maximumFailures: Int = 5) async throws -> ConsumedToken? {
        let names = purposes.map(\.rawValue)
        return try await database.withServiceRoleTransaction(method: "AUTH", path: "/verify", logger: logger) { connection in
            let found = try await Self.consumed(
                connection.rows(
                    """
                    delete from auth.one_time_tokens
                    where relates_to = \(email) and code_hash = \(codeHash) and purpose = any(\(names)::text[])
                    returning user_id, purpose, redirect_to, flow_state_id, expires_at > now()
                    """, logger: logger))
            if found == nil {
                // Two statements: a DELETE in the same statement as the UPDATE would not see the updated rows.
                try await connection.run(
                    """
                    update auth.one_time_tokens set failed_attempts = failed_attempts + 1
                    where relates_to = \(email) and purpose = any(\(names)::text[])
                    """, logger: logger)
                try await connection.run(
                    """
                    delete from auth.one_time_tokens
                    where relates_to = \(email) and purpose = any(\(names)::text[]) and failed_attempts >= \(maximumFailures)
                    """, logger: logger)
            }
            return found
        }
    }

    private static func consumed(_ rows: [PostgresRow]) throws -> ConsumedToken? {
        guard let row = rows.first else { return nil }
        let (user, purpose, redirectTo, flowState, live) = try row.decode((UUID, String, String?, UUID?, Bool).self)
        guard live, let purpose = TokenPurpose(rawValue: purpose) else { return nil }
        return ConsumedToken(user: user, purpose: purpose, redirectTo: redirectTo, flowState: flowState)
    }

    /// Marks the address as confirmed (a followed link or a right code proves it) and returns the user.
    func confirmEmail(of user: UUID) async throws -> UserRecord? {
        try await database.withServiceRoleTransaction(method: "AUTH", path: "/verify", logger: logger) { connection in
            try await connection.rows(
                """
                update auth.users set email_confirmed_at = coalesce(email_confirmed_at, now()), updated_at = now(),
                    is_anonymous = is_anonymous and email is null
                where id = \(user) returning \(unescaped: UserRecord.columns)
                """, logger: logger
            ).first.map(UserRecord.init(row:))
        }
    }

    /// Stores the (hashed) auth code a verified PKCE flow hands to its client.
    func issueAuthCode(flowState: UUID, codeHash: String) async throws {
        try await database.withServiceRoleTransaction(method: "AUTH", path: "/verify", logger: logger) { connection in
            try await connection.run(
                "update auth.flow_state set auth_code_hash = \(codeHash), auth_code_issued_at = now() where id = \(flowState)",
                logger: logger)
        }
    }

    public struct ExchangedFlow: Sendable {
        let user: UUID
        let challenge: PKCEChallenge
        let method: String
        let fresh: Bool
        /// An external provider's tokens, for a flow that went through one.
        let providerToken: String?
        let providerRefreshToken: String?
    }

    /// The flow behind an auth code, used up (a code is exchanged once, right verifier or not).
    func exchange(authCodeHash: String, lifetime: Duration) async throws -> ExchangedFlow? {
        let seconds = Int(lifetime.components.seconds)
        return try await database.withServiceRoleTransaction(method: "AUTH", path: "/token", logger: logger) { connection in
            guard
                let row = try await connection.rows(
                    """
                    delete from auth.flow_state where auth_code_hash = \(authCodeHash) and user_id is not null
                    returning user_id, code_challenge, code_challenge_method, authentication_method,
                              auth_code_issued_at > now() - make_interval(secs => \(seconds)),
                              provider_access_token, provider_refresh_token
                    """, logger: logger
                ).first
            else { return nil }
            let (user, challenge, method, authentication, fresh, providerToken, providerRefreshToken) = try row.decode(
                (UUID, String, String, String, Bool, String?, String?).self)
            return ExchangedFlow(
                user: user, challenge: PKCEChallenge(challenge: challenge, method: PKCEChallenge.Method(rawValue: method) ?? .s256),
                method: authentication, fresh: fresh, providerToken: providerToken, providerRefreshToken: providerRefreshToken)
        }
    }
}
