import Foundation
import StriveCore
import StriveIdentity

/// The service role's ways to bring people in: `POST /invite` mails an invitation; `POST
/// /admin/generate_link` returns a link without mailing it, for a server that sends its own mail.
extension AuthService {
    /// Invites `email`: an account without a password (until the invitee sets one from the invitation's
    /// session) and an invitation mail. A confirmed account cannot be invited again.
    public func invite(email rawEmail: String, metadata: [String: JSONValue], redirectTo: String?) async throws -> UserRecord {
        let user = try await pendingUser(email: try Self.normalisedEmail(rawEmail), password: nil, metadata: metadata)
        try await sendMail(.invite, to: user, request: MailRequest(redirectTo: redirectTo))
        return try await markInvited(user)
    }

    private func markInvited(_ user: UserRecord) async throws -> UserRecord {
        var changes = AuthStore.Changes()
        changes.invited = true
        return try await apply(changes, to: user.id)
    }

    public enum LinkType: String, Sendable, CaseIterable {
        case signup, invite, magiclink, recovery
        case emailChangeCurrent = "email_change_current"
        case emailChangeNew = "email_change_new"
    }

    /// The link (and code) a mail of `type` would carry, for the caller to deliver. Sign-up and invitation
    /// create the account; a magic link creates it when missing; recovery and email changes need it.
    public func generateLink(
        _ type: LinkType, email rawEmail: String, password: String?, newEmail: String? = nil, metadata: [String: JSONValue],
        redirectTo: String?
    ) async throws -> (user: UserRecord, link: IssuedLink, type: TokenPurpose) {
        let email = try Self.normalisedEmail(rawEmail)
        let user: UserRecord
        let purpose: TokenPurpose
        switch type {
        case .signup:
            guard let password else { throw AuthError.validation("generate_link of type signup needs a password") }
            try passwordPolicy.check(password)
            user = try await pendingUser(email: email, password: try await hasher.hash(password), metadata: metadata)
            purpose = .signup
        case .invite:
            user = try await markInvited(try await pendingUser(email: email, password: nil, metadata: metadata))
            purpose = .invite
        case .magiclink:
            if let existing = try await store.user(email: email) {
                user = existing
            } else {
                user = try await pendingUser(email: email, password: nil, metadata: metadata)
            }
            purpose = .magiclink
        case .recovery:
            guard let existing = try await store.user(email: email) else { throw AuthError.userNotFound }
            user = existing
            purpose = .recovery
        case .emailChangeCurrent, .emailChangeNew:
            let side: TokenPurpose = type == .emailChangeNew ? .emailChangeNew : .emailChangeCurrent
            let generated = try await generateEmailChangeLink(side, email: email, newEmail: newEmail, redirectTo: redirectTo)
            return (generated.user, generated.link, side)
        }
        guard let (_, link) = try await issueToken(purpose, for: user, request: MailRequest(redirectTo: redirectTo), limits: nil) else {
            throw AuthError.userNotFound
        }
        return (user, link, purpose)
    }

    /// The unconfirmed account for `email`: created, or the existing one if it is still unconfirmed.
    private func pendingUser(email: String, password: String?, metadata: [String: JSONValue]) async throws -> UserRecord {
        if let created = try await store.createUser(
            email: email, passwordHash: password, confirmed: false, appMetadata: Self.emailProviderMetadata, userMetadata: metadata)
        {
            return created
        }
        guard let existing = try await store.user(email: email), existing.emailConfirmedAt == nil else { throw AuthError.emailExists }
        return existing
    }
}
