import Foundation
import HTTPTypes
import HummingbirdTesting
import StriveAuth
import StriveCore
import StriveServer
import StriveTestSupport
import Testing

/// Anonymous sign-ins: off unless configured, `is_anonymous` in the token, limited per IP per hour, and
/// made permanent by giving an address (confirmed at once with auto-confirm, else by mail).
@Suite("Anonymous sign-ins")
struct AnonymousSignInTests {
    @Test func offUnlessConfigured() async throws {
        let database = try await TestCluster.shared.makeDatabase()
        try await database.withLiveApp { client, services in
            let auth = try await AuthClient(client, services)
            let refused = try await auth.send(.post, "/signup", json: "{}", apikey: auth.anonKey)
            #expect(refused.status == .unprocessableContent && refused.errorCode == "anonymous_provider_disabled", "\(refused.text)")
        }
    }

    @Test func anAnonymousUserBecomesPermanentWithAnAddress() async throws {
        let database = try await TestCluster.shared.makeDatabase()
        try await database.withLiveApp(environment: ["STRIVE_AUTH_ANONYMOUS": "true", "STRIVE_AUTH_RATE_LIMIT_ANONYMOUS": "2"]) {
            client, services in
            let auth = try await AuthClient(client, services)
            let signedIn = try await auth.send(.post, "/signup", json: #"{"data":{"theme":"dark"}}"#, apikey: auth.anonKey)
            #expect(signedIn.status == .ok, "\(signedIn.text)")
            let token = try #require(signedIn.json["access_token"] as? String)
            let claims = try claims(of: token)
            #expect(claims["is_anonymous"] as? Bool == true && claims["role"] as? String == "authenticated")
            #expect((claims["amr"] as? [[String: Any]])?.first?["method"] as? String == "anonymous")
            let user = try await auth.send(.get, "/user", apikey: auth.anonKey, bearer: token)
            #expect(user.json["is_anonymous"] as? Bool == true && user.json["email"] as? String == "")
            #expect((user.json["user_metadata"] as? [String: Any])?["theme"] as? String == "dark")

            // Giving an address and a password (auto-confirm on in tests) makes the account permanent.
            let email = uniqueEmail("converted")
            let converted = try await auth.send(
                .put, "/user", json: #"{"email":"\#(email)","password":"a permanent password"}"#, apikey: auth.anonKey, bearer: token)
            #expect(converted.status == .ok, "\(converted.text)")
            #expect(converted.json["is_anonymous"] as? Bool == false && converted.json["email"] as? String == email)
            let later = try await auth.signIn(email, password: "a permanent password")
            #expect(
                later.status == .ok && later.json["user"].flatMap { ($0 as? [String: Any])?["id"] as? String } == user.json["id"] as? String
            )

            // Two anonymous sign-ins per hour from one address here: the third is refused.
            #expect(try await auth.send(.post, "/signup", json: "{}", apikey: auth.anonKey).status == .ok)
            let third = try await auth.send(.post, "/signup", json: "{}", apikey: auth.anonKey)
            #expect(third.status == .tooManyRequests && third.errorCode == "over_request_rate_limit", "\(third.text)")
        }
    }

    @Test func withoutAutoconfirmTheAddressIsConfirmedByMail() async throws {
        try await MailHarness.run(["STRIVE_AUTH_ANONYMOUS": "true"]) { harness in
            let signedIn = try await harness.auth.send(.post, "/signup", json: "{}", apikey: harness.auth.anonKey)
            let token = try #require(signedIn.json["access_token"] as? String)
            let email = uniqueEmail("claimed")
            let pending = try await harness.auth.send(
                .put, "/user", json: #"{"email":"\#(email)"}"#, apikey: harness.auth.anonKey, bearer: token)
            #expect(pending.status == .ok && pending.json["is_anonymous"] as? Bool == true, "\(pending.text)")
            let mail = try await harness.mail.mail(to: email)
            let link = try #require(mail.linkToken)
            let location = try #require(try await harness.verifyLink(link, type: "signup")["Location"])
            let fragment = MailHarness.fragment(location)
            let confirmed = try claims(of: try #require(fragment["access_token"], "\(location)"))
            #expect(confirmed["is_anonymous"] as? Bool == false && confirmed["email"] as? String == email)
        }
    }
}
