import Foundation
import Logging
import PostgresNIO
import StriveCore
import StriveDatabase
import StriveIdentity

/// `auth.identities` for external providers: who a provider's user is here, linking and unlinking, and the
/// browser flow's pending states. Service-role transactions, like the rest of `AuthStore`.
extension AuthStore {
    /// What a provider said about the user, to be matched to an account.
    struct ExternalIdentity: Sendable {
        let provider: String
        let subject: String
        let email: String?
        let emailVerified: Bool
        let identityData: [String: JSONValue]
    }

    /// How an external identity found its account.
    enum IdentityOutcome: Sendable {
        case signedIn(UserRecord)
        /// A new account was made for it (nil email when its address belongs to someone else and is unverified).
        case created(UserRecord)
        case linked(UserRecord)
    }

    /// The account `identity` signs in to, in one transaction:
    /// - its own identity row if it has one (the provider's data refreshed);
    /// - with `linkingTo`, that user gains it, unless it belongs to someone;
    /// - else the account whose address the provider says is *verified*;
    /// - else a new account, when sign-ups are allowed. An unverified address never joins an existing account;
    ///   if it is taken, the new account has no address.
    func resolve(_ identity: ExternalIdentity, linkingTo target: UUID?, signupsAllowed: Bool) async throws -> IdentityOutcome {
        let data = JSONValue.object(identity.identityData).jsonText
        return try await database.withServiceRoleTransaction(method: "AUTH", path: "/callback", logger: logger) { connection in
            let existing = try await connection.rows(
                """
                select user_id from auth.identities where provider = \(identity.provider) and provider_id = \(identity.subject)
                for update
                """, logger: logger
            ).first?.decode(UUID.self)

            if let target {
                if let existing {
                    throw AuthError(
                        status: .unprocessableContent, code: "identity_already_exists",
                        message: existing == target ? "Identity is already linked" : "Identity is already linked to another user")
                }
                try await insertIdentity(identity, data: data, user: target, on: connection)
                if identity.emailVerified, let email = identity.email {
                    // A user without an address (anonymous, or from a provider that gave none) takes this verified one.
                    try await connection.run(
                        """
                        update auth.users set email = \(email), email_confirmed_at = now(), is_anonymous = false
                        where id = \(target) and email is null
                          and not exists (select 1 from auth.users u where u.email = \(email))
                        """, logger: logger)
                }
                try await connection.run("update auth.users set is_anonymous = false where id = \(target)", logger: logger)
                return .linked(try await refreshProviders(of: target, on: connection))
            }

            if let existing {
                try await connection.run(
                    """
                    update auth.identities set identity_data = \(data)::jsonb, last_sign_in_at = now(), updated_at = now()
                    where provider = \(identity.provider) and provider_id = \(identity.subject)
                    """, logger: logger)
                try await connection.run(
                    "update auth.users set raw_user_meta_data = raw_user_meta_data || \(data)::jsonb where id = \(existing)",
                    logger: logger)
                return .signedIn(try await refreshProviders(of: existing, on: connection))
            }

            if identity.emailVerified, let email = identity.email,
                let owner = try await connection.rows(
                    "select id from auth.users where email = \(email) for update", logger: logger
                ).first?.decode(UUID.self)
            {
                try await insertIdentity(identity, data: data, user: owner, on: connection)
                // The provider proved the address. An account that never confirmed it may have been registered by
                // someone else in wait for its owner: its password goes, so only the owner signs in from now on.
                try await connection.run(
                    """
                    update auth.users set encrypted_password = case when email_confirmed_at is null then null else encrypted_password end,
                        email_confirmed_at = coalesce(email_confirmed_at, now()),
                        raw_user_meta_data = raw_user_meta_data || \(data)::jsonb
                    where id = \(owner)
                    """, logger: logger)
                return .linked(try await refreshProviders(of: owner, on: connection))
            }

            guard signupsAllowed else { throw AuthError.signupDisabled }
            let app = JSONValue.object(["provider": .string(identity.provider), "providers": .array([.string(identity.provider)])])
                .jsonText
            let created = try await connection.rows(
                """
                insert into auth.users (email, email_confirmed_at, raw_app_meta_data, raw_user_meta_data)
                select case when taken.id is null then \(identity.email) end,
                       case when taken.id is null and \(identity.email) is not null and \(identity.emailVerified) then now() end,
                       \(app)::jsonb, \(data)::jsonb
                from (select 1) one left join auth.users taken on taken.email = \(identity.email)
                returning id
                """, logger: logger
            ).first?.decode(UUID.self)
            guard let created else { throw StoreError.noRow("auth.users") }
            try await insertIdentity(identity, data: data, user: created, on: connection)
            return .created(try await refreshProviders(of: created, on: connection))
        }
    }

    private func insertIdentity(_ identity: ExternalIdentity, data: String, user: UUID, on connection: PostgresConnection) async throws {
        try await connection.run(
            """
            insert into auth.identities (provider_id, user_id, provider, identity_data, last_sign_in_at)
            values (\(identity.subject), \(user), \(identity.provider), \(data)::jsonb, now())
            """, logger: logger)
    }

    /// `app_metadata.providers` as GoTrue keeps it: the user's identities' providers, oldest first, and
    /// `provider` the first of them.
    private func refreshProviders(of user: UUID, on connection: PostgresConnection) async throws -> UserRecord {
        let updated = try await connection.rows(
            """
            update auth.users u set raw_app_meta_data = u.raw_app_meta_data
                || coalesce((select jsonb_build_object('provider', p.list -> 0, 'providers', p.list)
                             from (select jsonb_agg(provider order by first) as list
                                   from (select provider, min(created_at) as first from auth.identities
                                         where user_id = u.id group by provider) s) p
                             where p.list is not null), '{}'::jsonb),
                updated_at = now()
            where u.id = \(user)
            returning \(unescaped: UserRecord.columns)
            """, logger: logger
        ).first.map(UserRecord.init(row:))
        guard let updated else { throw StoreError.noRow("auth.users") }
        return updated
    }

    /// Removes one of `user`'s identities, never the last. When it carried the account's address and another
    /// identity has one, that address becomes the account's (verified ones first); a removed email identity
    /// takes the password with it.
    func unlink(identity id: UUID, of user: UUID) async throws -> UserRecord {
        try await database.withServiceRoleTransaction(method: "AUTH", path: "/user/identities", logger: logger) { connection in
            let identities = try await connection.rows(
                "select id, provider from auth.identities where user_id = \(user) for update", logger: logger
            ).map { try $0.decode((UUID, String).self) }
            guard let removed = identities.first(where: { $0.0 == id }) else {
                throw AuthError(status: .unprocessableContent, code: "identity_not_found", message: "Identity doesn't exist")
            }
            guard identities.count > 1 else {
                throw AuthError(
                    status: .unprocessableContent, code: "single_identity_not_deletable",
                    message: "User must have at least 1 identity after unlinking")
            }
            try await connection.run("delete from auth.identities where id = \(id)", logger: logger)
            if removed.1 == "email" {
                try await connection.run("update auth.users set encrypted_password = null where id = \(user)", logger: logger)
            }
            // The address follows the identities: if none of the remaining ones has it, the best remaining one's does.
            try await connection.run(
                """
                update auth.users u set email = promoted.email,
                    email_confirmed_at = case when promoted.verified then coalesce(u.email_confirmed_at, now()) end
                from (select i.email, coalesce((i.identity_data ->> 'email_verified')::boolean, false) as verified
                      from auth.identities i
                      where i.user_id = \(user) and i.email is not null
                        and not exists (select 1 from auth.users o where o.email = i.email and o.id <> \(user))
                      order by 2 desc, i.created_at limit 1) promoted
                where u.id = \(user)
                  and u.email is distinct from promoted.email
                  and not exists (select 1 from auth.identities k where k.user_id = \(user) and k.email = u.email)
                """, logger: logger)
            return try await refreshProviders(of: user, on: connection)
        }
    }

    // MARK: The browser flow's pending states

    struct PendingState: Sendable {
        let provider: String
        let redirectTo: String
        let nonce: String?
        let codeVerifier: String
        let flowState: UUID?
        let linkingUser: UUID?
        let fresh: Bool
    }

    /// Records a browser flow about to leave for the provider; with `pkce`, also the flow state the app's auth
    /// code will stand for.
    func beginExternalFlow(
        provider: String, redirectTo: String, nonce: String?, codeVerifier: String, pkce: PKCEChallenge?, linkingUser: UUID?,
        lifetime: Duration
    ) async throws -> UUID {
        let seconds = Int(lifetime.components.seconds)
        return try await database.withServiceRoleTransaction(method: "AUTH", path: "/authorize", logger: logger) { connection in
            var flowState: UUID?
            if let pkce {
                flowState = try await connection.rows(
                    """
                    insert into auth.flow_state (code_challenge, code_challenge_method, authentication_method, provider_type)
                    values (\(pkce.challenge), \(pkce.method.rawValue), 'oauth', \(provider)) returning id
                    """, logger: logger
                ).first?.decode(UUID.self)
            }
            // Abandoned flows go as new ones start: no sweeper needed.
            try await connection.run("delete from auth.oauth_states where expires_at < now() - interval '1 hour'", logger: logger)
            let id = try await connection.rows(
                """
                insert into auth.oauth_states (provider, redirect_to, nonce, code_verifier, flow_state_id, linking_user_id, expires_at)
                values (\(provider), \(redirectTo), \(nonce), \(codeVerifier), \(flowState), \(linkingUser),
                        now() + make_interval(secs => \(seconds)))
                returning id
                """, logger: logger
            ).first?.decode(UUID.self)
            guard let id else { throw StoreError.noRow("auth.oauth_states") }
            return id
        }
    }

    /// The pending flow `id` names, used up: a state is good for one callback.
    func takeExternalFlow(_ id: UUID) async throws -> PendingState? {
        try await database.withServiceRoleTransaction(method: "AUTH", path: "/callback", logger: logger) { connection in
            guard
                let row = try await connection.rows(
                    """
                    delete from auth.oauth_states where id = \(id)
                    returning provider, redirect_to, nonce, code_verifier, flow_state_id, linking_user_id, expires_at > now()
                    """, logger: logger
                ).first
            else { return nil }
            let (provider, redirect, nonce, verifier, flow, linking, fresh) = try row.decode(
                (String, String, String?, String, UUID?, UUID?, Bool).self)
            return PendingState(
                provider: provider, redirectTo: redirect, nonce: nonce, codeVerifier: verifier, flowState: flow, linkingUser: linking,
                fresh: fresh)
        }
    }

    /// Hands a PKCE flow's user and the provider's tokens to its flow state, behind the auth code's hash.
    func completeExternalFlow(_ flowState: UUID, user: UUID, codeHash: String, providerToken: String?, providerRefreshToken: String?)
        async throws
    {
        try await database.withServiceRoleTransaction(method: "AUTH", path: "/callback", logger: logger) { connection in
            try await connection.run(
                """
                update auth.flow_state set user_id = \(user), auth_code_hash = \(codeHash), auth_code_issued_at = now(),
                    provider_access_token = \(providerToken), provider_refresh_token = \(providerRefreshToken)
                where id = \(flowState)
                """, logger: logger)
        }
    }
}
