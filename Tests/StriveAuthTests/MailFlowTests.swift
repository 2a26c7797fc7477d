import Crypto
import Foundation
import HTTPTypes
import HummingbirdTesting
import PostgresNIO
import StriveAuth
import StriveCore
import StriveServer
import StriveTestSupport
import Testing

/// Confirmation, recovery, magic links, codes, PKCE and the send limits, end to end: the server delivers
/// through a real SMTP server (STARTTLS and AUTH), and every link and code comes out of a received mail.
@Suite("Auth mail flows", .serialized)
struct MailFlowTests {
    @Test func signUpMailsAConfirmationLinkThatSignsInOnce() async throws {
        try await MailHarness.run { harness in
            let email = uniqueEmail("confirm")
            let signedUp = try await harness.auth.signUp(email)
            #expect(signedUp.status == .ok, "\(signedUp.text)")
            #expect(signedUp.json["access_token"] == nil && signedUp.json["email"] as? String == email, "\(signedUp.text)")
            let refused = try await harness.auth.signIn(email)
            #expect(refused.status == .badRequest && refused.errorCode == "email_not_confirmed", "\(refused.text)")

            let mail = try await harness.mail.mail(to: email)
            #expect(mail.arrivedOverTLS)
            #expect(mail.subject == "Confirm your sign-up")
            #expect(mail.headers["from"] == "\"Strive\" <no-reply@localhost>")
            #expect(mail.html.contains("<a href=\""), "\(mail.html)")
            let token = try #require(mail.linkToken, "\(mail.text)")
            #expect(try #require(mail.code).count == 6)

            let followed = try await harness.verifyLink(token, type: "signup")
            #expect(followed.status == .seeOther)
            let location = try #require(followed["Location"])
            #expect(location.hasPrefix("http://app.test#access_token="), "\(location)")
            let fragment = MailHarness.fragment(location)
            #expect(fragment["type"] == "signup" && fragment["token_type"] == "bearer" && fragment["refresh_token"] != nil)
            let claims = try claims(of: try #require(fragment["access_token"]))
            #expect(claims["sub"] as? String == signedUp.json["id"] as? String)
            #expect(claims["email"] as? String == email)

            // Single use: the same link again is an error for the browser, not a second session.
            let again = try #require(try await harness.verifyLink(token, type: "signup")["Location"])
            #expect(again.hasPrefix("http://app.test#error=access_denied&error_code=otp_expired"), "\(again)")
            #expect(try await harness.auth.signIn(email).status == .ok)
        }
    }

    @Test func aMailedCodeVerifiesAndFiveWrongCodesVoidIt() async throws {
        try await MailHarness.run { harness in
            let email = uniqueEmail("code")
            _ = try await harness.auth.signUp(email)
            let code = try #require(try await harness.mail.mail(to: email).code)
            let wrong = code == "000000" ? "111111" : "000000"
            for _ in 0..<2 {
                let refused = try await harness.verifyCode(email: email, code: wrong, type: "email")
                #expect(refused.status == .forbidden && refused.errorCode == "otp_expired", "\(refused.text)")
            }
            let verified = try await harness.verifyCode(email: email, code: code, type: "email")
            #expect(verified.status == .ok, "\(verified.text)")
            #expect(verified.json["access_token"] is String)
            #expect((verified.json["user"] as? [String: Any])?["email_confirmed_at"] is String)

            let other = uniqueEmail("guess")
            _ = try await harness.auth.signUp(other)
            let otherCode = try #require(try await harness.mail.mail(to: other).code)
            let otherWrong = otherCode == "000000" ? "111111" : "000000"
            for _ in 0..<5 { _ = try await harness.verifyCode(email: other, code: otherWrong, type: "signup") }
            let tooLate = try await harness.verifyCode(email: other, code: otherCode, type: "signup")
            #expect(tooLate.status == .forbidden, "the fifth wrong code voids the right one too")
            // Malformed codes are refused the same way, not with a different error that tells them apart.
            #expect(try await harness.verifyCode(email: other, code: "12ab56", type: "signup").status == .forbidden)
        }
    }

    @Test func recoveryMailsOnlyKnownAddressesAndSetsANewPassword() async throws {
        try await MailHarness.run { harness in
            let email = uniqueEmail("recover")
            _ = try await harness.auth.signUp(email)
            let confirmation = try #require(try await harness.mail.mail(to: email).linkToken)
            _ = try await harness.verifyLink(confirmation, type: "signup")

            // Unknown and known addresses get the same answer; only the known one gets mail.
            let unknown = uniqueEmail("nobody")
            let forUnknown = try await harness.auth.send(.post, "/recover", json: #"{"email":"\#(unknown)"}"#, apikey: harness.auth.anonKey)
            let forKnown = try await harness.auth.send(.post, "/recover", json: #"{"email":"\#(email)"}"#, apikey: harness.auth.anonKey)
            #expect(forUnknown.status == .ok && forKnown.status == .ok)
            #expect(forUnknown.text == forKnown.text, "\(forUnknown.text) vs \(forKnown.text)")
            let mail = try await harness.mail.mail(to: email, number: 2)
            #expect(mail.subject == "Reset your password")
            #expect(harness.mail.messages(to: unknown).isEmpty)

            let recoveryToken = try #require(mail.linkToken)
            let session = try await harness.auth.send(
                .post, "/verify", json: #"{"type":"recovery","token_hash":"\#(recoveryToken)"}"#,
                apikey: harness.auth.anonKey)
            #expect(session.status == .ok, "\(session.text)")
            let token = try #require(session.json["access_token"] as? String)
            let methods = (try claims(of: token)["amr"] as? [[String: Any]])?.compactMap { $0["method"] as? String }
            #expect(methods == ["recovery"])
            // A recovery session sets a new password without the old one.
            let changed = try await harness.auth.send(
                .put, "/user", json: #"{"password":"a brand new password"}"#, apikey: harness.auth.anonKey, bearer: token)
            #expect(changed.status == .ok, "\(changed.text)")
            #expect(try await harness.auth.signIn(email, password: "a brand new password").status == .ok)
            #expect(try await harness.auth.signIn(email).status == .badRequest)
            // A session from a password sign-in still has to prove the old one.
            let signedIn = try await harness.auth.signIn(email, password: "a brand new password")
            let plain = try #require(signedIn.json["access_token"] as? String)
            let unproven = try await harness.auth.send(
                .put, "/user", json: #"{"password":"yet another password"}"#, apikey: harness.auth.anonKey, bearer: plain)
            #expect(unproven.errorCode == "reauthentication_needed", "\(unproven.text)")
        }
    }

    @Test func magicLinksSignInAndCreateAccountsOnlyWhenAsked() async throws {
        try await MailHarness.run { harness in
            let email = uniqueEmail("magic")
            let sent = try await harness.auth.send(
                .post, "/otp", json: #"{"email":"\#(email)","data":{"plan":"pro"}}"#, apikey: harness.auth.anonKey)
            #expect(sent.status == .ok && sent.text == "{}", "\(sent.text)")
            let mail = try await harness.mail.mail(to: email)
            #expect(mail.subject == "Your sign-in link")
            let mailToken = try #require(mail.linkToken)
            let location = try #require(try await harness.verifyLink(mailToken, type: "magiclink")["Location"])
            let fragment = MailHarness.fragment(location)
            let claims = try claims(of: try #require(fragment["access_token"], "\(location)"))
            #expect((claims["user_metadata"] as? [String: Any])?["plan"] as? String == "pro")

            // create_user false: an unknown address gets GoTrue's otp_disabled, and no account, no mail.
            let stranger = uniqueEmail("stranger")
            let quiet = try await harness.auth.send(
                .post, "/otp", json: #"{"email":"\#(stranger)","create_user":false}"#, apikey: harness.auth.anonKey)
            #expect(quiet.status == .unprocessableContent && quiet.errorCode == "otp_disabled", "\(quiet.text)")
            let accounts = try await harness.database.withOwnerConnection { connection in
                try await connection.query(
                    "select count(*)::int from auth.users where email = \(stranger)", logger: harness.database.logger
                )
                .collect().first?.decode(Int.self)
            }
            #expect(accounts == 0)
            try await Task.sleep(for: .milliseconds(500))
            #expect(harness.mail.messages(to: stranger).isEmpty)
        }
    }

    @Test func pkceHandsTheBrowserACodeOnlyItsVerifierExchanges() async throws {
        try await MailHarness.run { harness in
            let verifier = String(repeating: "v3rifier-", count: 6)
            let challenge = Data(SHA256.hash(data: Data(verifier.utf8))).base64EncodedString()
                .replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_").replacingOccurrences(of: "=", with: "")
            let email = uniqueEmail("pkce")
            let signedUp = try await harness.auth.send(
                .post, "/signup?redirect_to=http%3A%2F%2Fpr-7.preview.test%2Fauth%2Fcallback",
                json:
                    #"{"email":"\#(email)","password":"correct horse battery","code_challenge":"\#(challenge)","code_challenge_method":"s256"}"#,
                apikey: harness.auth.anonKey)
            #expect(signedUp.status == .ok, "\(signedUp.text)")
            let token = try #require(try await harness.mail.mail(to: email).linkToken)
            let location = try #require(try await harness.verifyLink(token, type: "signup")["Location"])
            #expect(location.hasPrefix("http://pr-7.preview.test/auth/callback?code="), "\(location)")
            let code = try #require(URLComponents(string: location)?.queryItems?.first { $0.name == "code" }?.value)

            let wrong = try await harness.exchange(code, verifier: String(repeating: "x", count: 50))
            #expect(wrong.status == .badRequest && wrong.errorCode == "bad_code_verifier", "\(wrong.text)")
            let spent = try await harness.exchange(code, verifier: verifier)
            #expect(spent.status == .notFound && spent.errorCode == "flow_state_not_found", "a code is exchanged once, right or wrong")

            // Recovery with PKCE, the right verifier the first time.
            _ = try await harness.auth.send(
                .post, "/recover", json: #"{"email":"\#(email)","code_challenge":"\#(challenge)","code_challenge_method":"S256"}"#,
                apikey: harness.auth.anonKey)
            let recovery = try #require(try await harness.mail.mail(to: email, number: 2).linkToken)
            let back = try #require(try await harness.verifyLink(recovery, type: "recovery")["Location"])
            let recoveryCode = try #require(URLComponents(string: back)?.queryItems?.first { $0.name == "code" }?.value, "\(back)")
            let session = try await harness.exchange(recoveryCode, verifier: verifier)
            #expect(session.status == .ok, "\(session.text)")
            #expect((session.json["user"] as? [String: Any])?["email"] as? String == email)

            let half = try await harness.auth.send(
                .post, "/otp", json: #"{"email":"\#(email)","code_challenge":"\#(challenge)"}"#, apikey: harness.auth.anonKey)
            #expect(half.status == .badRequest, "a challenge without its method is refused: \(half.text)")
            for (badChallenge, method) in [("short", "s256"), (String(repeating: "ü", count: 50), "s256"), (challenge, "md5")] {
                let refused = try await harness.auth.send(
                    .post, "/otp", json: #"{"email":"\#(email)","code_challenge":"\#(badChallenge)","code_challenge_method":"\#(method)"}"#,
                    apikey: harness.auth.anonKey)
                #expect(refused.status == .badRequest && refused.text.contains("code_challenge"), "\(method): \(refused.text)")
            }
        }
    }

    @Test func linksNeverRedirectOutsideTheSiteAndTheAllowList() async throws {
        try await MailHarness.run { harness in
            let attempts = [
                "https://evil.test/steal", "http://app.test.evil.test/", "javascript:alert(1)", "http://evil.test@app.test/",
                "//evil.test", "http://a.b.preview.test/", "http://pr-1.preview.test.evil.test/",
            ]
            for (index, target) in attempts.enumerated() {
                let email = uniqueEmail("redirect\(index)")
                let encoded = target.addingPercentEncoding(withAllowedCharacters: .alphanumerics) ?? ""
                _ = try await harness.auth.send(
                    .post, "/otp?redirect_to=\(encoded)", json: #"{"email":"\#(email)"}"#, apikey: harness.auth.anonKey)
                let mail = try await harness.mail.mail(to: email)
                let mailToken = try #require(mail.linkToken)
                let location = try #require(try await harness.verifyLink(mailToken, type: "magiclink")["Location"])
                #expect(location.hasPrefix("http://app.test#access_token="), "\(target) → \(location)")
            }
            // The site itself and the allow-list's patterns are kept.
            for target in ["http://app.test/welcome?from=mail", "http://pr-42.preview.test/deep/path"] {
                let email = uniqueEmail("allowed")
                let encoded = target.addingPercentEncoding(withAllowedCharacters: .alphanumerics) ?? ""
                _ = try await harness.auth.send(
                    .post, "/otp?redirect_to=\(encoded)", json: #"{"email":"\#(email)"}"#, apikey: harness.auth.anonKey)
                let allowedToken = try #require(try await harness.mail.mail(to: email).linkToken)
                let location = try #require(try await harness.verifyLink(allowedToken, type: "magiclink")["Location"])
                #expect(location.hasPrefix(target + "#access_token="), "\(target) → \(location)")
            }
            // A link whose token is unknown still lands only on the site.
            let bogus = try #require(
                try await harness.auth.send(.get, "/verify?token=nope&type=signup&redirect_to=https%3A%2F%2Fevil.test")["Location"])
            #expect(bogus.hasPrefix("http://app.test#error="), "\(bogus)")
        }
    }

    @Test func sendLimitsAreSharedThroughTheDatabase() async throws {
        try await MailHarness.run(["STRIVE_AUTH_EMAIL_INTERVAL": "60", "STRIVE_AUTH_EMAIL_RATE_LIMIT": "4"]) { harness in
            let email = uniqueEmail("limits")
            _ = try await harness.auth.signUp(email)
            _ = try await harness.mail.mail(to: email)
            let resent = try await harness.auth.send(
                .post, "/resend", json: #"{"type":"signup","email":"\#(email)"}"#, apikey: harness.auth.anonKey)
            #expect(resent.status == .tooManyRequests && resent.errorCode == "over_email_send_rate_limit", "\(resent.text)")
            let wait = try #require(resent["Retry-After"].flatMap { Int($0) })
            #expect((1...60).contains(wait))
            // Each kind of mail has its own interval, as in GoTrue: "forgot password" right after signing up
            // is mailed; a second recovery inside the interval is refused with the time to wait.
            let recover = try await harness.auth.send(.post, "/recover", json: #"{"email":"\#(email)"}"#, apikey: harness.auth.anonKey)
            #expect(recover.status == .ok)
            #expect(try await harness.mail.mail(to: email, number: 2).text.contains("type=recovery"))
            let again = try await harness.auth.send(.post, "/recover", json: #"{"email":"\#(email)"}"#, apikey: harness.auth.anonKey)
            #expect(again.status == .tooManyRequests && again.errorCode == "over_email_send_rate_limit", "\(again.text)")
            #expect((again.object["msg"] as? String)?.hasPrefix("For security purposes, you can only request this after ") == true)

            // The hourly allowance counts every address: the fourth mail of the hour is refused.
            _ = try await harness.auth.signUp(uniqueEmail("second"))
            _ = try await harness.auth.signUp(uniqueEmail("third"))
            let fourth = try await harness.auth.signUp(uniqueEmail("fourth"))
            #expect(fourth.status == .tooManyRequests && fourth.errorCode == "over_email_send_rate_limit", "\(fourth.text)")
            try await Task.sleep(for: .milliseconds(500))
            #expect(harness.mail.messages(to: email).count == 2)
        }
    }

    @Test func anExpiredLinkIsRefused() async throws {
        try await MailHarness.run { harness in
            let email = uniqueEmail("expired")
            _ = try await harness.auth.signUp(email)
            let mail = try await harness.mail.mail(to: email)
            try await harness.database.withOwnerConnection { connection in
                try await connection.run(
                    "update auth.one_time_tokens set expires_at = now() - interval '1 second' where relates_to = \(email)",
                    logger: harness.database.logger)
            }
            let mailToken = try #require(mail.linkToken)
            let location = try #require(try await harness.verifyLink(mailToken, type: "signup")["Location"])
            #expect(location.contains("error_code=otp_expired"), "\(location)")
            let code = try #require(mail.code)
            #expect(try await harness.verifyCode(email: email, code: code, type: "signup").status == .forbidden)
            #expect(try await harness.auth.signIn(email).errorCode == "email_not_confirmed")
        }
    }

    @Test func invitationsAndGeneratedLinksAreForTheServiceRole() async throws {
        try await MailHarness.run { harness in
            let auth = harness.auth
            let email = uniqueEmail("invited")
            let refused = try await auth.send(.post, "/invite", json: #"{"email":"\#(email)"}"#, apikey: auth.anonKey)
            #expect(refused.status == .forbidden, "\(refused.text)")
            let invited = try await auth.send(
                .post, "/invite", json: #"{"email":"\#(email)","data":{"team":"blue"}}"#, apikey: auth.serviceKey, bearer: auth.serviceKey)
            #expect(invited.status == .ok && invited.json["email"] as? String == email, "\(invited.text)")
            let mail = try await harness.mail.mail(to: email)
            #expect(mail.subject == "You have been invited")
            let invitation = try #require(mail.linkToken)
            let location = try #require(try await harness.verifyLink(invitation, type: "invite")["Location"])
            let token = try #require(MailHarness.fragment(location)["access_token"], "\(location)")
            // No password yet: the invitee sets one without an old one to prove.
            let chosen = try await auth.send(
                .put, "/user", json: #"{"password":"the invitee's password"}"#, apikey: auth.anonKey, bearer: token)
            #expect(chosen.status == .ok, "\(chosen.text)")
            #expect(try await auth.signIn(email, password: "the invitee's password").status == .ok)
            let again = try await auth.send(
                .post, "/invite", json: #"{"email":"\#(email)"}"#, apikey: auth.serviceKey, bearer: auth.serviceKey)
            #expect(again.status == .unprocessableContent && again.errorCode == "email_exists", "\(again.text)")

            // generate_link: the link and code, no mail.
            let linked = uniqueEmail("linked")
            let generated = try await auth.send(
                .post, "/admin/generate_link", json: #"{"type":"magiclink","email":"\#(linked)"}"#, apikey: auth.serviceKey,
                bearer: auth.serviceKey)
            #expect(generated.status == .ok, "\(generated.text)")
            #expect(generated.json["verification_type"] as? String == "magiclink" && generated.json["email"] as? String == linked)
            #expect((generated.json["email_otp"] as? String)?.count == 6)
            let action = try #require(generated.json["action_link"] as? String)
            let hashed = try #require(generated.json["hashed_token"] as? String)
            #expect(action.contains("token=\(hashed)") && action.contains("/auth/v1/verify?"), "\(action)")
            let session = try await auth.send(
                .post, "/verify", json: #"{"type":"magiclink","token_hash":"\#(hashed)"}"#, apikey: auth.anonKey)
            #expect(session.status == .ok, "\(session.text)")
            try await Task.sleep(for: .milliseconds(400))
            #expect(harness.mail.messages(to: linked).isEmpty, "generate_link sends nothing")
            let unknown = try await auth.send(
                .post, "/admin/generate_link", json: #"{"type":"recovery","email":"\#(uniqueEmail("ghost"))"}"#, apikey: auth.serviceKey,
                bearer: auth.serviceKey)
            #expect(unknown.status == .notFound, "\(unknown.text)")
            let noPassword = try await auth.send(
                .post, "/admin/generate_link", json: #"{"type":"signup","email":"\#(uniqueEmail("nopw"))"}"#, apikey: auth.serviceKey,
                bearer: auth.serviceKey)
            #expect(noPassword.status == .badRequest, "\(noPassword.text)")
        }
    }

    @Test func aSlowMailServerNeverHoldsTheRequest() async throws {
        try await MailHarness.run(delay: 2) { harness in
            let email = uniqueEmail("slow")
            let signedUp = try await harness.auth.signUp(email)
            #expect(signedUp.status == .ok)
            // Answered while the mail server still holds the message.
            #expect(harness.mail.messages(to: email).isEmpty)
            let mail = try await harness.mail.mail(to: email)
            #expect(mail.linkToken != nil)
            let outbox = try await harness.database.withOwnerConnection { connection in
                try await connection.query(
                    "select count(*)::int from auth.mail_outbox where recipient = \(email) and sent_at is not null and variables is null",
                    logger: harness.database.logger
                ).collect().first?.decode(Int.self)
            }
            // Delivered, and the link and code no longer kept anywhere.
            var delivered = outbox
            for _ in 0..<40 where delivered != 1 {
                try await Task.sleep(for: .milliseconds(100))
                delivered = try await harness.database.withOwnerConnection { connection in
                    try await connection.query(
                        "select count(*)::int from auth.mail_outbox where recipient = \(email) and sent_at is not null and variables is null",
                        logger: harness.database.logger
                    ).collect().first?.decode(Int.self)
                }
            }
            #expect(delivered == 1)
        }
    }
}

/// A server with mail confirmation on, delivering to a real SMTP server, with its mail delivery running.
struct MailHarness: Sendable {
    let auth: AuthClient
    let mail: TestMailServer
    let database: TestDatabase

    static func run(
        _ extra: [String: String] = [:], delay: Double = 0, _ body: @Sendable @escaping (MailHarness) async throws -> Void
    ) async throws {
        let mail = delay > 0 ? try await TestMailServer.start(delay: delay) : try await TestMailServer.shared()
        defer { if delay > 0 { mail.stop() } }
        let database = try await TestCluster.shared.makeDatabase()
        var environment = mail.environment
        environment["STRIVE_AUTH_AUTOCONFIRM"] = "false"
        environment["STRIVE_SITE_URL"] = "http://app.test"
        environment["STRIVE_AUTH_REDIRECT_URLS"] = "http://*.preview.test/**"
        environment["STRIVE_AUTH_EMAIL_INTERVAL"] = "0"
        environment["STRIVE_AUTH_RATE_LIMIT_EMAIL"] = "1000"
        environment.merge(extra) { $1 }
        try await database.withLiveApp(environment: environment) { client, services in
            let harness = MailHarness(auth: try await AuthClient(client, services), mail: mail, database: database)
            try await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask { try await services.mailDelivery(pollInterval: .milliseconds(200)).run() }
                defer { group.cancelAll() }
                try await body(harness)
            }
        }
    }

    func verifyLink(_ token: String, type: String) async throws -> TestHTTP.Reply {
        try await auth.send(.get, "/verify?token=\(token)&type=\(type)")
    }

    func verifyCode(email: String, code: String, type: String) async throws -> TestHTTP.Reply {
        try await auth.send(.post, "/verify", json: #"{"type":"\#(type)","email":"\#(email)","token":"\#(code)"}"#, apikey: auth.anonKey)
    }

    func exchange(_ code: String, verifier: String) async throws -> TestHTTP.Reply {
        try await auth.send(
            .post, "/token?grant_type=pkce", json: #"{"auth_code":"\#(code)","code_verifier":"\#(verifier)"}"#, apikey: auth.anonKey)
    }

    static func fragment(_ location: String) -> [String: String] {
        guard let hash = location.firstIndex(of: "#") else { return [:] }
        var result: [String: String] = [:]
        for pair in location[location.index(after: hash)...].split(separator: "&") {
            let parts = pair.split(separator: "=", maxSplits: 1).map(String.init)
            if parts.count == 2 { result[parts[0]] = parts[1].removingPercentEncoding }
        }
        return result
    }
}
