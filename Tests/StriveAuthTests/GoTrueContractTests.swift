import Foundation
import HTTPTypes
import PostgresNIO
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

    /// GoTrue's default: the session alone changes the password. Strive's default asks for proof
    /// (`passwordChangeNeedsTheCurrentPassword`).
    @Test func withoutSecurePasswordChangeTheSessionSuffices() async throws {
        try await withAuth(["STRIVE_AUTH_SECURE_PASSWORD_CHANGE": "false", "STRIVE_AUTH_PASSWORD_MIN_LENGTH": "6"]) { auth in
            let email = uniqueEmail("gotrue-default")
            let session = try await auth.session(email)
            let changed = try await auth.send(
                .put, "/user", json: #"{"password":"123e5a"}"#, apikey: auth.anonKey, bearer: session.access_token)
            #expect(changed.status == .ok, "\(changed.text)")
            #expect(try await auth.signIn(email, password: "123e5a").status == .ok)
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

/// Supabase's custom access token hook, as a PostgreSQL function named by a setting.
@Suite("Custom access token hook")
struct AccessTokenHookTests {
    /// Adds `plan` to every token, refuses addresses at blocked.test, and drops `role` for broken.test.
    static let hook = """
        create function public.customize_token(event jsonb) returns jsonb language plpgsql as $$
        begin
            if event->'claims'->>'email' like '%@blocked.test' then
                return jsonb_build_object('error', jsonb_build_object('http_code', 403, 'message', 'This address may not sign in'));
            end if;
            if event->'claims'->>'email' like '%@broken.test' then
                return jsonb_build_object('claims', (event->'claims') - 'role');
            end if;
            return jsonb_build_object('claims', jsonb_set(event->'claims', '{plan}', to_jsonb('pro:' || (event->>'authentication_method'))));
        end $$;
        """

    func withHook(_ body: @Sendable (AuthClient, TestDatabase) async throws -> Void) async throws {
        let database = try await TestCluster.shared.makeDatabase()
        try await database.withOwnerConnection { connection in
            try await connection.run(PostgresQuery(unsafeSQL: Self.hook), logger: database.logger)
            try await connection.run("grant execute on function public.customize_token(jsonb) to service_role", logger: database.logger)
            try await connection.run(
                "create function public.my_plan() returns text language sql stable as $$ select auth.jwt()->>'plan' $$",
                logger: database.logger)
            try await connection.run("grant execute on function public.my_plan() to authenticated", logger: database.logger)
        }
        try await database.withLiveApp(environment: [
            "STRIVE_AUTH_HOOK_CUSTOM_ACCESS_TOKEN": "pg-functions://postgres/public/customize_token"
        ]) { client, services in
            try await body(try await AuthClient(client, services), database)
        }
    }

    @Test func theHooksClaimsAreSignedAndReachRowLevelSecurity() async throws {
        try await withHook { auth, _ in
            let session = try await auth.session(uniqueEmail("hooked"))
            #expect(try claims(of: session.access_token)["plan"] as? String == "pro:password")
            let refreshed = try await auth.refresh(session.refresh_token).decode(TokenResponse.self)
            #expect(try claims(of: refreshed.access_token)["plan"] as? String == "pro:token_refresh")
            let plan = try await TestHTTP(auth.client).send(
                .post, "/rest/v1/rpc/my_plan", apikey: auth.anonKey, bearer: refreshed.access_token, json: "{}")
            #expect(plan.text == "\"pro:token_refresh\"", "\(plan.text)")
        }
    }

    @Test func aRefusingOrMalformedHookRefusesTheSignInAndChangesNothing() async throws {
        try await withHook { auth, database in
            let cases: [(String, HTTPResponse.Status, String)] = [
                ("blocked.test", .forbidden, "unknown"), ("broken.test", .internalServerError, "unexpected_failure"),
            ]
            for (domain, status, code) in cases {
                let email = "someone-\(UUID().uuidString.prefix(8).lowercased())@\(domain)"
                let created = try await auth.send(
                    .post, "/admin/users", json: #"{"email":"\#(email)","password":"correct horse battery","email_confirm":true}"#,
                    apikey: auth.serviceKey, bearer: auth.serviceKey)
                #expect(created.status == .ok, "\(created.text)")
                let refused = try await auth.signIn(email)
                #expect(refused.status == status && refused.errorCode == code, "\(refused.text)")
                if domain == "blocked.test" { #expect(refused.object["msg"] as? String == "This address may not sign in") }
                let (sessions, signedIn) = try await database.withOwnerConnection { connection in
                    try await connection.query(
                        """
                        select (select count(*)::int from auth.sessions s where s.user_id = u.id), u.last_sign_in_at is not null
                        from auth.users u where u.email = \(email)
                        """, logger: database.logger
                    ).collect().first?.decode((Int, Bool).self) ?? (-1, true)
                }
                #expect(sessions == 0 && !signedIn, "a refused sign-in leaves no session and no sign-in time")
            }
        }
    }
}
