import Foundation
import Logging
import PostgresNIO
import StriveCore
import StriveDatabase
import StriveIdentity

/// The auth schema's reads and writes. Accounts, sessions and refresh tokens are invisible to requests
/// (no grants, forced RLS), so every call here is a service-role transaction: auth is one of the named
/// service paths.
public struct AuthStore: Sendable {
    let database: Database
    let logger: Logger

    public init(database: Database, logger: Logger) {
        self.database = database
        self.logger = logger
    }

    private func service<T: Sendable>(_ path: String, _ body: (PostgresConnection) async throws -> T) async throws -> T {
        try await database.withServiceRoleTransaction(method: "AUTH", path: path, logger: logger, body)
    }

    private static func users(_ rows: [PostgresRow]) throws -> [UserRecord] {
        try rows.map(UserRecord.init(row:))
    }

    // MARK: Accounts

    /// nil when the email is taken.
    public func createUser(
        email: String, passwordHash: String?, confirmed: Bool, role: String = "authenticated",
        appMetadata: [String: JSONValue], userMetadata: [String: JSONValue]
    ) async throws -> UserRecord? {
        let app = JSONValue.object(appMetadata).jsonText
        let user = JSONValue.object(userMetadata).jsonText
        return try await service("/admin/users") { connection in
            try await Self.users(
                connection.rows(
                    """
                    insert into auth.users (email, encrypted_password, email_confirmed_at, role, raw_app_meta_data, raw_user_meta_data)
                    values (\(email), \(passwordHash), case when \(confirmed) then now() end, \(role), \(app)::jsonb, \(user)::jsonb)
                    on conflict (email) where email is not null do nothing
                    returning \(unescaped: UserRecord.columns)
                    """, logger: logger)
            ).first
        }
    }

    /// A user without an address or password, signed in anonymously.
    public func createAnonymousUser(userMetadata: [String: JSONValue]) async throws -> UserRecord {
        let metadata = JSONValue.object(userMetadata).jsonText
        let app = JSONValue.object(["provider": .string("anonymous"), "providers": .array([.string("anonymous")])]).jsonText
        let created = try await service("/signup") { connection in
            try await Self.users(
                connection.rows(
                    """
                    insert into auth.users (is_anonymous, raw_app_meta_data, raw_user_meta_data)
                    values (true, \(app)::jsonb, \(metadata)::jsonb)
                    returning \(unescaped: UserRecord.columns)
                    """, logger: logger)
            ).first
        }
        guard let created else { throw StoreError.noRow("auth.users") }
        return created
    }

    public func user(email: String) async throws -> UserRecord? {
        try await service("/token") { connection in
            try await Self.users(
                connection.rows(
                    "select \(unescaped: UserRecord.columns) from auth.users where email = \(email)", logger: logger)
            ).first
        }
    }

    public func user(id: UUID) async throws -> UserRecord? {
        try await service("/user") { connection in
            try await Self.users(
                connection.rows(
                    "select \(unescaped: UserRecord.columns) from auth.users where id = \(id)", logger: logger)
            ).first
        }
    }

    public struct Changes: Sendable {
        public var email: String?
        public var passwordHash: String?
        public var confirmEmail: Bool = false
        /// Merged into the stored object key by key (a null value removes the key), as Supabase Auth does.
        public var userMetadata: [String: JSONValue]?
        public var appMetadata: [String: JSONValue]?
        public var bannedUntil: Date??
        public var role: String?
        /// An anonymous user's account becomes a permanent one.
        public var permanent: Bool = false
        /// An invitation was mailed (or its link generated) now: `invited_at`.
        public var invited: Bool = false

        public init() {}
    }

    public enum UpdateOutcome: Sendable {
        case updated(UserRecord)
        case notFound
        case emailTaken
    }

    public func update(id: UUID, _ changes: Changes) async throws -> UpdateOutcome {
        let user = changes.userMetadata.map { JSONValue.object($0).jsonText }
        let app = changes.appMetadata.map { JSONValue.object($0).jsonText }
        let banChanges = changes.bannedUntil != nil
        let bannedUntil = changes.bannedUntil ?? nil
        return try await service("/user") { connection in
            if let email = changes.email {
                let taken = try await connection.rows(
                    "select 1 from auth.users where email = \(email) and id <> \(id)", logger: logger)
                if !taken.isEmpty { return .emailTaken }
            }
            let rows = try await Self.users(
                connection.rows(
                    """
                    update auth.users set
                        email = coalesce(\(changes.email), email),
                        email_confirmed_at = case when \(changes.confirmEmail) then coalesce(email_confirmed_at, now()) else email_confirmed_at end,
                        encrypted_password = coalesce(\(changes.passwordHash), encrypted_password),
                        raw_user_meta_data = case when \(user)::jsonb is null then raw_user_meta_data
                            else jsonb_strip_nulls(raw_user_meta_data || \(user)::jsonb) end,
                        raw_app_meta_data = case when \(app)::jsonb is null then raw_app_meta_data
                            else jsonb_strip_nulls(raw_app_meta_data || \(app)::jsonb) end,
                        banned_until = case when \(banChanges) then \(bannedUntil) else banned_until end,
                        role = coalesce(\(changes.role), role),
                        is_anonymous = is_anonymous and not \(changes.permanent),
                        invited_at = case when \(changes.invited) then now() else invited_at end
                    where id = \(id)
                    returning \(unescaped: UserRecord.columns)
                    """, logger: logger))
            return rows.first.map(UpdateOutcome.updated) ?? .notFound
        }
    }

    /// A page of users, newest first (as GoTrue lists them); `filter` keeps those whose address contains it (case-insensitive, as
    /// GoTrue's `filter`), and `total` counts the filtered set.
    public func list(page: Int, perPage: Int, filter: String? = nil) async throws -> (users: [UserRecord], total: Int) {
        let offset = (page - 1) * perPage
        // LIKE's own wildcards in the filter are matched literally.
        let pattern = filter.map {
            "%"
                + $0.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "%", with: "\\%")
                .replacingOccurrences(of: "_", with: "\\_") + "%"
        }
        return try await service("/admin/users") { connection in
            let total =
                try await connection.rows(
                    "select count(*)::int from auth.users where \(pattern)::text is null or email ilike \(pattern)", logger: logger
                ).first?.decode(Int.self) ?? 0
            let users = try await Self.users(
                connection.rows(
                    """
                    select \(unescaped: UserRecord.columns) from auth.users where \(pattern)::text is null or email ilike \(pattern)
                    order by created_at desc, id desc limit \(perPage) offset \(offset)
                    """, logger: logger))
            return (users, total)
        }
    }

    /// False when there was no such user.
    public func delete(id: UUID) async throws -> Bool {
        try await service("/admin/users") { connection in
            try await connection.rows("delete from auth.users where id = \(id) returning id", logger: logger).count == 1
        }
    }

    // MARK: Sessions

    /// Starts a session with its first refresh token and records the sign-in; returns the updated user.
    /// Starts a session and hands its user and id to `respond`, whose answer it returns; `respond` runs in
    /// the same transaction, so when it throws (a refusing access token hook) nothing was written.
    public func startSession<T: Sendable>(
        user: UUID, refreshTokenHash: String, userAgent: String?, ip: String?, oauth: OAuthGrant? = nil,
        respond: (UserRecord, UUID, PostgresConnection) async throws -> T
    ) async throws -> T {
        try await service("/token") { connection in
            let session = try await connection.rows(
                """
                insert into auth.sessions (user_id, user_agent, ip, oauth_client_id, scopes)
                values (\(user), \(userAgent), case when \(ip) ~ '^[0-9a-fA-F:.]+$' then \(ip)::inet end,
                        \(oauth?.client), \(oauth?.scope))
                returning id
                """, logger: logger
            ).first?.decode(UUID.self)
            guard let session else { throw StoreError.noRow("auth.sessions") }
            try await connection.run(
                "insert into auth.refresh_tokens (token_hash, user_id, session_id) values (\(refreshTokenHash), \(user), \(session))",
                logger: logger)
            let updated = try await Self.users(
                connection.rows(
                    "update auth.users set last_sign_in_at = now() where id = \(user) returning \(unescaped: UserRecord.columns)",
                    logger: logger)
            ).first
            guard let updated else { throw StoreError.noRow("auth.users") }
            return try await respond(updated, session, connection)
        }
    }

    /// The OAuth client a session belongs to and the scopes it was granted.
    public struct OAuthGrant: Sendable, Equatable {
        public let client: UUID
        public let scope: String
    }

    public enum Rotation: Sendable {
        /// `token` is the successor to hand out (new, or the same one again within the reuse interval).
        case rotated(user: UserRecord, session: UUID, aal: String, oauth: OAuthGrant?)
        /// The session belongs to another OAuth client than the one refreshing (or to none, or to one while
        /// refreshed without it): nothing was rotated.
        case wrongClient
        case notFound
        /// Presented again after its successor was handed out and the reuse interval passed: the session
        /// has been revoked.
        case alreadyUsed
        case userBanned
    }

    /// Rotates `token` to `successor`. The token row is locked, so of concurrent refreshes one rotates
    /// and the others, waiting on the lock, find it rotated a moment ago and get the same successor.
    public func rotate(tokenHash: String, successorHash: String, reuseInterval: Duration, client: UUID? = nil) async throws -> Rotation {
        let reuseSeconds = Double(reuseInterval.components.seconds)
        return try await service("/token") { connection in
            let presented = try await connection.rows(
                """
                select t.revoked, t.session_id, t.user_id, s.aal, s.oauth_client_id, s.scopes from auth.refresh_tokens t
                join auth.sessions s on s.id = t.session_id
                where t.token_hash = \(tokenHash) and (s.not_after is null or s.not_after > now())
                for update of t
                """, logger: logger
            ).first
            guard let presented else { return .notFound }
            let (revoked, session, userID, aal, oauthClient, scopes) = try presented.decode(
                (Bool, UUID, UUID, String, UUID?, String?).self)
            guard oauthClient == client else { return .wrongClient }
            let grant = oauthClient.map { OAuthGrant(client: $0, scope: scopes ?? "") }

            if revoked {
                let successorIsFresh = try await connection.rows(
                    """
                    select 1 from auth.refresh_tokens
                    where token_hash = \(successorHash) and parent_hash = \(tokenHash) and not revoked
                      and created_at > now() - make_interval(secs => \(reuseSeconds))
                    """, logger: logger
                )
                guard !successorIsFresh.isEmpty else {
                    // Reuse of a rotated token: it may have been stolen. End the whole session.
                    try await connection.run("delete from auth.sessions where id = \(session)", logger: logger)
                    return .alreadyUsed
                }
            } else {
                try await connection.run(
                    "update auth.refresh_tokens set revoked = true where token_hash = \(tokenHash)", logger: logger)
                try await connection.run(
                    """
                    insert into auth.refresh_tokens (token_hash, user_id, session_id, parent_hash)
                    values (\(successorHash), \(userID), \(session), \(tokenHash))
                    """, logger: logger)
                try await connection.run(
                    "update auth.sessions set refreshed_at = now() where id = \(session)", logger: logger)
            }
            let user = try await Self.users(
                connection.rows(
                    "select \(unescaped: UserRecord.columns) from auth.users where id = \(userID)", logger: logger)
            ).first
            guard let user else { return .notFound }
            if user.isBanned() { return .userBanned }
            return .rotated(user: user, session: session, aal: aal, oauth: grant)
        }
    }

    public enum SessionUser: Sendable {
        case active(UserRecord)
        case sessionEnded
        case userMissing
    }

    /// The user of an active session, in one transaction: the session check and the read together.
    public func user(id: UUID, session: UUID) async throws -> SessionUser {
        try await service("/user") { connection in
            let active = try await !connection.rows(
                "select 1 from auth.sessions where id = \(session) and (not_after is null or not_after > now())",
                logger: logger
            ).isEmpty
            guard active else { return .sessionEnded }
            let user = try await Self.users(
                connection.rows(
                    "select \(unescaped: UserRecord.columns) from auth.users where id = \(id)", logger: logger)
            ).first
            return user.map(SessionUser.active) ?? .userMissing
        }
    }

    public enum LogoutScope: String, Sendable {
        case global, local, others
    }

    public func endSessions(user: UUID, current: UUID, scope: LogoutScope) async throws {
        try await service("/logout") { connection in
            switch scope {
            case .local:
                try await connection.run("delete from auth.sessions where id = \(current)", logger: logger)
            case .global:
                try await connection.run("delete from auth.sessions where user_id = \(user)", logger: logger)
            case .others:
                try await connection.run(
                    "delete from auth.sessions where user_id = \(user) and id <> \(current)", logger: logger)
            }
        }
    }

    enum StoreError: Error {
        case noRow(String)
    }
}
