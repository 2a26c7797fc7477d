import Foundation
import HTTPTypes
import PostgresNIO
import StriveAuth
import StriveTestSupport
import Testing

/// Secure email change and reauthentication, end to end through a real SMTP server: every link, code
/// and nonce comes out of a received mail.
@Suite("Email change and reauthentication", .serialized)
struct EmailChangeTests {
    @Test func anEmailChangeNeedsTheCurrentAndTheNewAddress() async throws {
        try await MailHarness.run { harness in
            let old = uniqueEmail("old")
            let new = uniqueEmail("new")
            let token = try await harness.confirmedSession(old)

            let asked = try await harness.auth.send(
                .put, "/user?redirect_to=http%3A%2F%2Fapp.test%2Fsettings", json: #"{"email":"\#(new)"}"#, apikey: harness.auth.anonKey,
                bearer: token)
            #expect(asked.status == .ok, "\(asked.text)")
            #expect(asked.json["email"] as? String == old && asked.json["new_email"] as? String == new, "\(asked.text)")
            #expect(asked.json["email_change_sent_at"] is String)

            let toOld = try await harness.mail.mail(to: old, number: 2)
            let toNew = try await harness.mail.mail(to: new)
            for mail in [toOld, toNew] {
                #expect(mail.subject == "Confirm your new address")
                #expect(mail.text.contains("from \(old) to \(new)"), "\(mail.text)")
            }

            // The new address's link alone changes nothing.
            let newLink = try #require(toNew.linkToken)
            let first = try #require(try await harness.verifyLink(newLink, type: "email_change")["Location"])
            #expect(first.hasPrefix("http://app.test/settings#message=Confirmation%20link%20accepted"), "\(first)")
            #expect(try await harness.email(ofAccountSignedInAs: token) == old)
            #expect(try await harness.auth.signIn(old).status == .ok)
            let reused = try #require(try await harness.verifyLink(newLink, type: "email_change")["Location"])
            #expect(reused.contains("error_code=otp_expired"), "\(reused)")

            // The current address's code completes it: a session for the account under its new address.
            let second = try await harness.verifyCode(email: old, code: try #require(toOld.code), type: "email_change")
            #expect(second.status == .ok, "\(second.text)")
            let user = try #require(second.json["user"] as? [String: Any], "\(second.text)")
            #expect(user["email"] as? String == new && user["new_email"] == nil)
            #expect(try await harness.auth.signIn(new).status == .ok)
            #expect(try await harness.auth.signIn(old).status == .badRequest)
        }
    }

    @Test func aTakenAddressIsRefusedAndALaterRequestVoidsEarlierLinks() async throws {
        try await MailHarness.run { harness in
            let mine = uniqueEmail("mine")
            let theirs = uniqueEmail("theirs")
            let token = try await harness.confirmedSession(mine)
            _ = try await harness.confirmedSession(theirs)

            // Taken: refused, and the password sent with it is not changed either.
            let taken = try await harness.auth.send(
                .put, "/user", json: #"{"email":"\#(theirs)","password":"a whole new secret","current_password":"correct horse battery"}"#,
                apikey: harness.auth.anonKey, bearer: token)
            #expect(taken.status == .unprocessableContent && taken.errorCode == "email_exists", "\(taken.text)")
            #expect(try await harness.auth.signIn(mine).status == .ok)

            let first = uniqueEmail("first")
            let second = uniqueEmail("second")
            _ = try await harness.auth.send(.put, "/user", json: #"{"email":"\#(first)"}"#, apikey: harness.auth.anonKey, bearer: token)
            let firstCode = try #require(try await harness.mail.mail(to: first).code)
            _ = try await harness.auth.send(.put, "/user", json: #"{"email":"\#(second)"}"#, apikey: harness.auth.anonKey, bearer: token)
            // Both mails of this request have arrived before the resend below, so the resent ones come after.
            _ = try await harness.mail.mail(to: second)
            _ = try await harness.mail.mail(to: mine, number: 3)
            let stale = try await harness.verifyCode(email: first, code: firstCode, type: "email_change")
            #expect(stale.status == .forbidden && stale.errorCode == "otp_expired", "\(stale.text)")

            // Resend mails both sides again; a resent pair completes the change.
            let resent = try await harness.auth.send(
                .post, "/resend", json: #"{"type":"email_change","email":"\#(mine)"}"#, apikey: harness.auth.anonKey)
            #expect(resent.status == .ok, "\(resent.text)")
            let newSide = try #require(try await harness.mail.mail(to: second, number: 2).code)
            let oldSide = try #require(try await harness.mail.mail(to: mine, number: 4).code)
            let half = try await harness.verifyCode(email: second, code: newSide, type: "email_change")
            #expect(half.status == .ok && half.json["msg"] as? String == AuthService.singleConfirmationAccepted, "\(half.text)")
            let done = try await harness.verifyCode(email: mine, code: oldSide, type: "email_change")
            #expect((done.json["user"] as? [String: Any])?["email"] as? String == second, "\(done.text)")
        }
    }

    @Test func withoutSecureChangeTheNewAddressAloneConfirms() async throws {
        try await MailHarness.run(["STRIVE_AUTH_SECURE_EMAIL_CHANGE": "false"]) { harness in
            let old = uniqueEmail("plain-old")
            let new = uniqueEmail("plain-new")
            let token = try await harness.confirmedSession(old)
            _ = try await harness.auth.send(.put, "/user", json: #"{"email":"\#(new)"}"#, apikey: harness.auth.anonKey, bearer: token)
            let link = try #require(try await harness.mail.mail(to: new).linkToken)
            let location = try #require(try await harness.verifyLink(link, type: "email_change")["Location"])
            #expect(MailHarness.fragment(location)["type"] == "email_change", "\(location)")
            #expect(try await harness.email(ofAccountSignedInAs: token) == new)
            try await Task.sleep(for: .milliseconds(300))
            #expect(harness.mail.messages(to: old).count == 1, "only the sign-up confirmation went to the old address")
        }
    }

    @Test func aPasswordChangeAcceptsAMailedNonceOnce() async throws {
        try await MailHarness.run { harness in
            let email = uniqueEmail("nonce")
            let token = try await harness.confirmedSession(email)
            let sent = try await harness.auth.send(.get, "/reauthenticate", apikey: harness.auth.anonKey, bearer: token)
            #expect(sent.status == .ok, "\(sent.text)")
            let mail = try await harness.mail.mail(to: email, number: 2)
            #expect(mail.subject == "Confirm it is you")
            let nonce = try #require(mail.code)
            let wrongNonce = nonce == "000000" ? "111111" : "000000"

            let wrong = try await harness.auth.send(
                .put, "/user", json: #"{"password":"nonce-proven secret","nonce":"\#(wrongNonce)"}"#, apikey: harness.auth.anonKey,
                bearer: token)
            #expect(wrong.status == .badRequest && wrong.errorCode == "reauthentication_not_valid", "\(wrong.text)")
            #expect(try await harness.auth.signIn(email).status == .ok, "a refused change changes nothing")

            let right = try await harness.auth.send(
                .put, "/user", json: #"{"password":"nonce-proven secret","nonce":"\#(nonce)"}"#, apikey: harness.auth.anonKey, bearer: token
            )
            #expect(right.status == .ok, "\(right.text)")
            #expect(try await harness.auth.signIn(email, password: "nonce-proven secret").status == .ok)
            let again = try await harness.auth.send(
                .put, "/user", json: #"{"password":"third secret here","nonce":"\#(nonce)"}"#, apikey: harness.auth.anonKey, bearer: token)
            #expect(again.errorCode == "reauthentication_not_valid", "a nonce works once: \(again.text)")
        }
    }

    @Test func generateLinkMakesEmailChangeLinksAndSettingsDescribeTheServer() async throws {
        try await MailHarness.run { harness in
            let old = uniqueEmail("gen-old")
            let new = uniqueEmail("gen-new")
            _ = try await harness.confirmedSession(old)
            var links: [String: String] = [:]
            for side in ["email_change_current", "email_change_new"] {
                let generated = try await harness.auth.send(
                    .post, "/admin/generate_link", json: #"{"type":"\#(side)","email":"\#(old)","new_email":"\#(new)"}"#,
                    apikey: harness.auth.serviceKey, bearer: harness.auth.serviceKey)
                #expect(generated.status == .ok, "\(generated.text)")
                // GoTrue names the type asked for (supabase-py's GenerateLinkType refuses anything else).
                #expect(generated.json["verification_type"] as? String == side)
                #expect(generated.json["new_email"] as? String == new)
                links[side] = try #require(generated.json["hashed_token"] as? String)
            }
            // Generating the second side replaced the first's token: only the latest pair is live.
            let currentLink = try #require(links["email_change_current"])
            let newLink = try #require(links["email_change_new"])
            let current = try await harness.auth.send(
                .post, "/verify", json: #"{"type":"email_change","token_hash":"\#(currentLink)"}"#, apikey: harness.auth.anonKey)
            #expect(current.status == .forbidden, "\(current.text)")
            let newSide = try await harness.auth.send(
                .post, "/verify", json: #"{"type":"email_change","token_hash":"\#(newLink)"}"#, apikey: harness.auth.anonKey)
            #expect(newSide.json["msg"] as? String == AuthService.singleConfirmationAccepted, "\(newSide.text)")
            #expect(harness.mail.messages(to: new).isEmpty, "generate_link mails nothing")

            let refused = try await harness.auth.send(
                .post, "/admin/generate_link", json: #"{"type":"email_change_new","email":"\#(old)"}"#,
                apikey: harness.auth.serviceKey, bearer: harness.auth.serviceKey)
            #expect(refused.status == .badRequest && refused.text.contains("new_email"), "\(refused.text)")

            let settings = try await harness.auth.send(.get, "/settings", apikey: harness.auth.anonKey)
            #expect(settings.status == .ok)
            #expect(settings.json["mailer_autoconfirm"] as? Bool == false)
            #expect((settings.json["external"] as? [String: Any])?["email"] as? Bool == true)
            #expect((settings.json["external"] as? [String: Any])?["anonymous_users"] as? Bool == false)
        }
    }
}

extension MailHarness {
    /// Signs `email` up, follows the confirmation mail and signs in: an access token.
    func confirmedSession(_ email: String) async throws -> String {
        _ = try await auth.signUp(email)
        let link = try #require(try await mail.mail(to: email).linkToken)
        _ = try await verifyLink(link, type: "signup")
        let signedIn = try await auth.signIn(email)
        return try #require(signedIn.json["access_token"] as? String, "\(signedIn.text)")
    }

    func email(ofAccountSignedInAs token: String) async throws -> String? {
        try await auth.send(.get, "/user", apikey: auth.anonKey, bearer: token).json["email"] as? String
    }
}
