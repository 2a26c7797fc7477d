import Foundation
import HTTPTypes
import StriveAuth
import StriveCore
import StriveTestSupport
import Testing

/// Answers the Supabase clients branch on, as GoTrue gives them: password rules with their reasons,
/// closed sign-ups, identities, address and phone checks, and the providers Strive does not offer.
@Suite("GoTrue's contract")
struct GoTrueContractTests {
    func withAuth(_ environment: [String: String] = [:], _ body: @Sendable (AuthClient) async throws -> Void) async throws {
        let database = try await TestCluster.shared.makeDatabase()
        try await database.withLiveApp(environment: environment) { client, services in
            try await body(try await AuthClient(client, services))
        }
    }

    @Test func aWeakPasswordIsRefusedWithEveryBrokenRuleAsAReason() async throws {
        try await withAuth([
            "STRIVE_AUTH_PASSWORD_MIN_LENGTH": "10", "STRIVE_AUTH_PASSWORD_REQUIRED_CHARACTERS": "abcdefghijklmnopqrstuvwxyz:0123456789",
        ]) { auth in
            let weak = try await auth.signUp(uniqueEmail("weak"), password: "ABCDEFG")
            #expect(weak.status == .unprocessableContent && weak.errorCode == "weak_password", "\(weak.text)")
            #expect((weak.object["weak_password"] as? [String: Any])?["reasons"] as? [String] == ["length", "characters"])
            #expect(
                weak.object["msg"] as? String
                    == "Password should be at least 10 characters. Password should contain at least one character of each: "
                    + "abcdefghijklmnopqrstuvwxyz, 0123456789.")
            let modern = try await auth.send(
                .post, "/signup", json: #"{"email":"\#(uniqueEmail("modern"))","password":"abcdefghij"}"#, apikey: auth.anonKey,
                headers: [HTTPField.Name("X-Supabase-Api-Version")!: "2024-01-01"])
            #expect(modern.object["code"] as? String == "weak_password")
            #expect((modern.object["weak_password"] as? [String: Any])?["reasons"] as? [String] == ["characters"])
            #expect(try await auth.signUp(uniqueEmail("strong"), password: "abcdefghi1").status == .ok)
        }
    }

    @Test func theDefaultMinimumIsEightCharacters() async throws {
        try await withAuth { auth in
            let seven = try await auth.signUp(uniqueEmail("seven"), password: "1234567")
            #expect((seven.object["weak_password"] as? [String: Any])?["reasons"] as? [String] == ["length"], "\(seven.text)")
            #expect(try await auth.signUp(uniqueEmail("eight"), password: "12345678").status == .ok)
        }
    }

    @Test func closedSignUpsRefuseNewAccountsButNotAdministrators() async throws {
        try await withAuth(["STRIVE_AUTH_DISABLE_SIGNUP": "true"]) { auth in
            let refused = try await auth.signUp(uniqueEmail("closed"))
            #expect(refused.status == .unprocessableContent && refused.errorCode == "signup_disabled", "\(refused.text)")
            let otp = try await auth.send(.post, "/otp", json: #"{"email":"\#(uniqueEmail("otp"))"}"#, apikey: auth.anonKey)
            #expect(otp.errorCode == "signup_disabled", "\(otp.text)")
            let email = uniqueEmail("admin-made")
            let created = try await auth.send(
                .post, "/admin/users", json: #"{"email":"\#(email)","password":"correct horse battery","email_confirm":true}"#,
                apikey: auth.serviceKey, bearer: auth.serviceKey)
            #expect(created.status == .ok, "\(created.text)")
            #expect(try await auth.signIn(email).status == .ok, "existing accounts still sign in")
        }
    }

    @Test func anEmailUserHasAnEmailIdentity() async throws {
        try await withAuth { auth in
            let email = uniqueEmail("identity")
            let session = try await auth.session(email)
            let user = try await auth.send(.get, "/user", apikey: auth.anonKey, bearer: session.access_token)
            let identities = try #require(user.object["identities"] as? [[String: Any]], "\(user.text)")
            #expect(identities.count == 1)
            let identity = try #require(identities.first)
            #expect(identity["provider"] as? String == "email")
            #expect(identity["id"] as? String == session.user.id && identity["user_id"] as? String == session.user.id)
            #expect(identity["identity_id"] is String && identity["email"] as? String == email)
            let data = try #require(identity["identity_data"] as? [String: Any])
            #expect(data["email"] as? String == email && data["sub"] as? String == session.user.id)
            #expect(data["email_verified"] as? Bool == true, "auto-confirmed")

            let admin = try await auth.send(.get, "/admin/users/\(session.user.id)", apikey: auth.serviceKey, bearer: auth.serviceKey)
            #expect((admin.object["identities"] as? [[String: Any]])?.first?["provider"] as? String == "email")
            let anonymous = try await auth.send(.post, "/signup", json: "{}", apikey: auth.anonKey)
            if anonymous.status == .ok {
                #expect(((anonymous.object["user"] as? [String: Any])?["identities"] as? [Any])?.isEmpty == true)
            }
        }
    }

    @Test func adminListsNewestFirstAndInvitesCarryInvitedAt() async throws {
        try await withAuth { auth in
            let older = uniqueEmail("older")
            let newer = uniqueEmail("newer")
            for email in [older, newer] {
                let created = try await auth.send(
                    .post, "/admin/users", json: #"{"email":"\#(email)"}"#, apikey: auth.serviceKey, bearer: auth.serviceKey)
                #expect(created.status == .ok, "\(created.text)")
            }
            let listed = try await auth.send(.get, "/admin/users?per_page=2", apikey: auth.serviceKey, bearer: auth.serviceKey)
            let emails = (listed.object["users"] as? [[String: Any]])?.compactMap { $0["email"] as? String }
            #expect(emails == [newer, older], "\(listed.text)")

            let invited = try await auth.send(
                .post, "/admin/generate_link", json: #"{"type":"invite","email":"\#(uniqueEmail("invited"))"}"#,
                apikey: auth.serviceKey, bearer: auth.serviceKey)
            #expect(invited.object["invited_at"] is String, "\(invited.text)")
        }
    }

    static let malformedAddresses = ["xx:;x@x.x", "two@@example.com", "space in@example.com", "ünï@example.com", "x@-bad.example"]

    @Test(arguments: malformedAddresses)
    func malformedAddressesCreateNoUser(address: String) async throws {
        try await withAuth { auth in
            let json = String(decoding: try JSONEncoder().encode(["email": address]), as: UTF8.self)
            for path in ["/admin/users", "/invite"] {
                let refused = try await auth.send(.post, path, json: json, apikey: auth.serviceKey, bearer: auth.serviceKey)
                #expect(refused.status == .badRequest && refused.errorCode == "validation_failed", "\(path): \(refused.text)")
                #expect(refused.object["msg"] as? String == "Unable to validate email address: invalid format")
            }
        }
    }

    @Test func phoneAndSAMLRequestsGetGoTruesAnswersForProvidersThatAreOff() async throws {
        try await withAuth { auth in
            let malformed = try await auth.send(
                .post, "/verify", json: #"{"type":"sms","phone":"+1555-invalid","token":"123456"}"#, apikey: auth.anonKey)
            #expect(malformed.status == .badRequest && malformed.object["msg"] as? String == "Invalid phone number format (E.164 required)")
            let unknown = try await auth.send(
                .post, "/verify", json: #"{"type":"sms","phone":"+15555550100","token":"123456"}"#, apikey: auth.anonKey)
            #expect(unknown.status == .forbidden && unknown.errorCode == "otp_expired", "\(unknown.text)")
            let resend = try await auth.send(.post, "/resend", json: #"{"type":"sms","phone":"+15555550100"}"#, apikey: auth.anonKey)
            #expect(resend.errorCode == "phone_provider_disabled", "\(resend.text)")
            let sso = try await auth.send(.post, "/sso", json: #"{"domain":"example.com"}"#, apikey: auth.anonKey)
            #expect(
                sso.status == .notFound && sso.errorCode == "saml_provider_disabled"
                    && sso.object["msg"] as? String == "SAML 2.0 is disabled")
        }
    }

    @Test func gotrueMetaSecurityOfTheWrongShapeIsRefused() async throws {
        try await withAuth { auth in
            let email = uniqueEmail("meta")
            _ = try await auth.session(email)
            let wrong = try await auth.send(
                .post, "/token?grant_type=password",
                json: #"{"email":"\#(email)","password":"correct horse battery","gotrue_meta_security":"token"}"#, apikey: auth.anonKey)
            #expect(wrong.status == .badRequest && wrong.errorCode == "bad_json", "\(wrong.text)")
            let right = try await auth.send(
                .post, "/token?grant_type=password",
                json: #"{"email":"\#(email)","password":"correct horse battery","gotrue_meta_security":{"captcha_token":"t"}}"#,
                apikey: auth.anonKey)
            #expect(right.status == .ok, "\(right.text)")
        }
    }
}
