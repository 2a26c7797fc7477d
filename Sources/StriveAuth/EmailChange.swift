import Foundation
import StriveCore
import StriveIdentity

/// GoTrue's secure email change and reauthentication. A new address is pending until a link or code
/// mailed to it is used and, with `STRIVE_AUTH_SECURE_EMAIL_CHANGE` (the default), one mailed to the
/// current address too — so neither a stolen session nor a typo moves an account to someone else's
/// mailbox. A password change proves the user with the current password or a mailed nonce.
extension AuthService {
    /// `PUT /user` with a new `email`: records it as pending and mails the sides that must confirm.
    func requestEmailChange(of user: UserRecord, to newEmail: String, request: MailRequest) async throws -> UserRecord {
        if newEmail == user.email { return user }
        let sides = emailChangeSides(of: user)
        let start = try await store.beginEmailChange(
            user: user.id, to: newEmail, tokens: emailChangeTokens(sides, of: user, to: newEmail, request: request).map(\.0),
            limits: mailLimits)
        return try started(start)
    }

    /// `POST /resend` of type `email_change`: the mails of the sides not yet confirmed, again.
    public func resendEmailChange(email rawEmail: String, request: MailRequest, client: Client) async throws {
        let email = try Self.normalisedEmail(rawEmail)
        try await limit(email: email, client: client, category: .mail)
        // As for the other mails, the answer does not say whether the address has a pending change.
        guard let user = try await store.user(email: email), let pending = user.emailChange, !user.isBanned() else { return }
        let outstanding = try await store.outstandingEmailChangeSides(user: user.id)
        let sides = outstanding.isEmpty ? emailChangeSides(of: user) : outstanding
        let start = try await store.beginEmailChange(
            user: user.id, to: pending, tokens: emailChangeTokens(sides, of: user, to: pending, request: request).map(\.0),
            limits: mailLimits)
        _ = try started(start)
    }

    /// `generate_link` of type `email_change_current` or `email_change_new`: records the pending address
    /// and returns that side's link; the other side's, when secure change needs it, is issued unmailed too.
    func generateEmailChangeLink(_ side: TokenPurpose, email: String, newEmail rawNewEmail: String?, redirectTo: String?)
        async throws -> (user: UserRecord, link: IssuedLink)
    {
        guard let rawNewEmail else { throw AuthError.validation("generate_link of an email change needs new_email") }
        let newEmail = try Self.normalisedEmail(rawNewEmail)
        guard let user = try await store.user(email: email) else { throw AuthError.userNotFound }
        var sides = emailChangeSides(of: user)
        if !sides.contains(side) { sides.append(side) }
        let tokens = emailChangeTokens(sides, of: user, to: newEmail, request: MailRequest(redirectTo: redirectTo))
        let updated = try started(try await store.beginEmailChange(user: user.id, to: newEmail, tokens: tokens.map(\.0), limits: nil))
        guard let link = tokens.first(where: { $0.0.purpose == side })?.1 else { throw AuthError.userNotFound }
        return (updated, link)
    }

    /// `GET /reauthenticate`: mails the signed-in user a 6-digit nonce for `PUT /user`.
    public func reauthenticate(_ token: VerifiedToken) async throws {
        let user = try await currentUser(token)
        guard user.email != nil else {
            throw AuthError.validation("Reauthentication requires the user to have an email or a phone number")
        }
        guard user.emailConfirmedAt != nil else {
            throw AuthError(status: .unprocessableContent, code: "email_not_confirmed", message: "Please verify your email first.")
        }
        try await sendMail(.reauthentication, to: user, request: MailRequest())
    }

    /// Uses up the user's reauthentication nonce; throws unless it is theirs, unused and unexpired.
    func checkNonce(_ nonce: String, of user: UserRecord) async throws {
        guard let email = user.email, nonce.count == 6, nonce.allSatisfy({ $0.isASCII && $0.isNumber }),
            let consumed = try await store.consume(
                email: email, codeHash: codeHash(email: email, code: nonce), purposes: [.reauthentication]),
            consumed.user == user.id
        else { throw AuthError.reauthenticationNotValid }
    }

    // MARK: Internals

    var mailLimits: AuthStore.MailLimits {
        AuthStore.MailLimits(perHour: settings.emailsPerHour, interval: settings.emailInterval)
    }

    /// Which addresses confirm a change: the new one, and the current one when secure change is on and
    /// the current one was ever confirmed (an unconfirmed address proves nothing).
    private func emailChangeSides(of user: UserRecord) -> [TokenPurpose] {
        settings.secureEmailChange && user.email != nil && user.emailConfirmedAt != nil
            ? [.emailChangeCurrent, .emailChangeNew] : [.emailChangeNew]
    }

    private func emailChangeTokens(_ sides: [TokenPurpose], of user: UserRecord, to newEmail: String, request: MailRequest)
        -> [(AuthStore.TokenToIssue, IssuedLink)]
    {
        let names = ["email": user.email ?? "", "new_email": newEmail]
        return sides.compactMap { side in
            let recipient = side == .emailChangeNew ? newEmail : user.email
            return recipient.map { makeToken(side, for: user, to: $0, request: request, extra: names) }
        }
    }

    private func started(_ start: AuthStore.EmailChangeStart) throws -> UserRecord {
        switch start {
        case .started(let user): return user
        case .notFound: throw AuthError.userNotFound
        case .emailTaken: throw AuthError.emailExists
        case .overSendLimit(let retryAfter): throw AuthError.overEmailSendRateLimit(retryAfter: retryAfter)
        }
    }
}
