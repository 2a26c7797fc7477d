import Foundation
import HTTPTypes
import HummingbirdTesting
import PostgresNIO
import StriveAuth
import StriveCore
import StriveServer
import StriveTestSupport
import Testing

/// TOTP factors as GoTrue serves them: codes computed here (RFC 6238), QR codes read by a real decoder
/// (zbarimg), sessions raised to aal2, and a policy that demands it.
@Suite("MFA (TOTP)")
struct MFATests {
    @Test func totpMatchesRFC6238() {
        let totp = TOTP(secret: Array("12345678901234567890".utf8))
        // RFC 6238 appendix B (SHA-1), last six of the eight digits.
        let vectors: [(Int64, String)] = [
            (59, "287082"), (1_111_111_109, "081804"), (1_111_111_111, "050471"), (1_234_567_890, "005924"),
            (2_000_000_000, "279037"), (20_000_000_000, "353130"),
        ]
        for (time, code) in vectors { #expect(totp.code(atStep: time / 30) == code, "T=\(time)") }
        #expect(Base32.encode(totp.secret) == "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ")
        #expect(Base32.decode("gezdgnbvgy3tqojqgezdgnbvgy3tqojq") == totp.secret)
        let now = Date(timeIntervalSince1970: 1_111_111_111)
        let step: Int64 = 37_037_037
        #expect(TOTP.step(at: now) == step)
        #expect(totp.matchingStep("050471", at: now, after: nil) == step)
        #expect(totp.matchingStep("050471", at: now, after: step) == nil, "a code is accepted once")
        #expect(totp.matchingStep("05047a", at: now, after: nil) == nil)
    }

    @Test(arguments: [
        "otpauth://totp/app.test:ada@example.com?secret=GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ&issuer=app.test",
        String(repeating: "strive-", count: 25),
        "x",
    ])
    func qrCodesReadBack(text: String) async throws {
        let code = try QRCode(text)
        let zbar = try #require(ToolProcess.find("zbarimg"), "zbarimg not found: install Debian's zbar-tools (Scripts/test does)")
        // 4 pixels a module and a 4-module quiet zone, as a plain PGM any reader takes.
        let scale = 4
        let extent = (code.size + 8) * scale
        var pixels = [UInt8](repeating: 255, count: extent * extent)
        for (y, row) in code.modules.enumerated() {
            for (x, dark) in row.enumerated() where dark {
                for dy in 0..<scale {
                    for dx in 0..<scale { pixels[((y + 4) * scale + dy) * extent + (x + 4) * scale + dx] = 0 }
                }
            }
        }
        let file = NSTemporaryDirectory() + "strive-qr-\(UUID().uuidString.prefix(8)).pgm"
        defer { try? FileManager.default.removeItem(atPath: file) }
        try (Data("P5\n\(extent) \(extent)\n255\n".utf8) + Data(pixels)).write(to: URL(fileURLWithPath: file))
        let read = try await ToolProcess.run(zbar, ["--raw", "-q", file])
        #expect(read.status == 0, "\(read.output)")
        // zbarimg may complain on stderr (no D-Bus here); the decoded text is a line of its own.
        #expect(read.output.split(separator: "\n").map(String.init).contains(text), "version \(code.version): \(read.output)")
        #expect(code.svg.hasPrefix("<svg xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 \(code.size + 8) \(code.size + 8)\""))
        #expect(throws: QRCode.EncodingError.tooLong(300)) { try QRCode(String(repeating: "a", count: 300)) }
    }

    @Test func enrollChallengeVerifyRaisesTheSessionAndPoliciesCanDemandIt() async throws {
        let database = try await TestCluster.shared.makeDatabase()
        try await database.withOwnerConnection { connection in
            for statement in [
                "create table public.vault (id int primary key, note text not null)",
                "alter table public.vault enable row level security", "alter table public.vault force row level security",
                "create policy vault_select on public.vault for select to authenticated using ((select auth.mfa_satisfied()))",
                "grant select on public.vault to authenticated", "insert into public.vault values (1, 'launch codes')",
            ] {
                try await connection.run(PostgresQuery(unsafeSQL: statement), logger: database.logger)
            }
        }
        try await database.withLiveApp { client, services in
            let auth = try await AuthClient(client, services)
            let email = uniqueEmail("mfa")
            let session = try await auth.session(email)
            let aal1 = session.access_token
            func vault(_ token: String) async throws -> String {
                try await TestHTTP(client).send(.get, "/rest/v1/vault?select=note", apikey: auth.anonKey, bearer: token).text
            }
            // No verified factor yet: aal1 is all the account needs.
            #expect(try await vault(aal1) == #"[{"note":"launch codes"}]"#)

            let enrolled = try await auth.send(
                .post, "/factors", json: #"{"factor_type":"totp","friendly_name":"phone"}"#, apikey: auth.anonKey, bearer: aal1)
            #expect(enrolled.status == .ok, "\(enrolled.text)")
            let factor = try #require(enrolled.json["id"] as? String)
            let totpDetails = try #require(enrolled.json["totp"] as? [String: Any])
            let secretText = try #require(totpDetails["secret"] as? String)
            let secret = try #require(Base32.decode(secretText))
            #expect((totpDetails["uri"] as? String)?.contains("secret=\(totpDetails["secret"] as? String ?? "")") == true)
            #expect((totpDetails["qr_code"] as? String)?.hasPrefix("data:image/svg+xml;utf-8,<svg") == true)
            let phone = try await auth.send(.post, "/factors", json: #"{"factor_type":"phone"}"#, apikey: auth.anonKey, bearer: aal1)
            #expect(phone.status == .unprocessableContent && phone.errorCode == "mfa_phone_enroll_not_enabled", "\(phone.text)")
            let webauthn = try await auth.send(.post, "/factors", json: #"{"factor_type":"webauthn"}"#, apikey: auth.anonKey, bearer: aal1)
            #expect(webauthn.errorCode == "mfa_webauthn_enroll_not_enabled", "\(webauthn.text)")
            let unknown = try await auth.send(.post, "/factors", json: #"{"factor_type":"sms"}"#, apikey: auth.anonKey, bearer: aal1)
            #expect(unknown.status == .badRequest && unknown.text.contains("totp, phone, or webauthn"), "\(unknown.text)")
            let duplicate = try await auth.send(
                .post, "/factors", json: #"{"factor_type":"totp","friendly_name":"phone"}"#, apikey: auth.anonKey, bearer: aal1)
            #expect(duplicate.errorCode == "mfa_factor_name_conflict", "\(duplicate.text)")

            let listed = try await auth.send(.get, "/user", apikey: auth.anonKey, bearer: aal1)
            let factors = try #require(listed.json["factors"] as? [[String: Any]])
            #expect(factors.count == 1 && factors[0]["status"] as? String == "unverified")

            func challenge() async throws -> String {
                let reply = try await auth.send(.post, "/factors/\(factor)/challenge", apikey: auth.anonKey, bearer: aal1)
                #expect(reply.status == .ok, "\(reply.text)")
                #expect((reply.json["expires_at"] as? Int).map { $0 > Int(Date().timeIntervalSince1970) } == true)
                return try #require(reply.json["id"] as? String)
            }
            func verify(_ challenge: String, _ code: String) async throws -> TestHTTP.Reply {
                try await auth.send(
                    .post, "/factors/\(factor)/verify", json: #"{"challenge_id":"\#(challenge)","code":"\#(code)"}"#, apikey: auth.anonKey,
                    bearer: aal1)
            }
            let totp = TOTP(secret: secret)
            let code = totp.code(atStep: TOTP.step(at: Date()))
            let first = try await challenge()
            let wrong = try await verify(first, code == "000000" ? "111111" : "000000")
            #expect(wrong.status == .unprocessableContent && wrong.errorCode == "mfa_verification_failed", "\(wrong.text)")
            let verified = try await verify(first, code)
            #expect(verified.status == .ok, "\(verified.text)")
            let aal2 = try #require(verified.json["access_token"] as? String)
            let raised = try claims(of: aal2)
            #expect(raised["aal"] as? String == "aal2")
            let methods = (raised["amr"] as? [[String: Any]])?.compactMap { $0["method"] as? String } ?? []
            #expect(methods.first == "totp" && methods.contains("password"), "\(methods)")
            // The challenge and the code are spent.
            #expect(try await verify(first, code).errorCode == "mfa_challenge_expired")
            #expect(try await verify(try await challenge(), code).errorCode == "mfa_verification_failed", "a code works once")

            // Now the account has a verified factor: the policy wants aal2.
            #expect(try await vault(aal1) == "[]")
            #expect(try await vault(aal2) == #"[{"note":"launch codes"}]"#)
            // A refreshed aal2 session stays aal2.
            let refreshToken = try #require(verified.json["refresh_token"] as? String)
            let refreshed = try await auth.refresh(refreshToken)
            let refreshedToken = try #require(refreshed.json["access_token"] as? String)
            #expect(try claims(of: refreshedToken)["aal"] as? String == "aal2")

            // Removing the verified factor needs aal2; afterwards the account is back to aal1.
            let refused = try await auth.send(.delete, "/factors/\(factor)", apikey: auth.anonKey, bearer: aal1)
            #expect(refused.status == .forbidden && refused.errorCode == "insufficient_aal", "\(refused.text)")
            let removed = try await auth.send(.delete, "/factors/\(factor)", apikey: auth.anonKey, bearer: aal2)
            #expect(removed.status == .ok && removed.json["id"] as? String == factor, "\(removed.text)")
            #expect(try await vault(aal1) == #"[{"note":"launch codes"}]"#)
            let missing = try await auth.send(.post, "/factors/\(factor)/challenge", apikey: auth.anonKey, bearer: aal1)
            #expect(missing.status == .notFound && missing.errorCode == "mfa_factor_not_found")
            // Another user's factor is not found either.
            let stranger = try await auth.session(uniqueEmail("stranger"))
            let theirs = try await auth.send(
                .post, "/factors", json: #"{"factor_type":"totp"}"#, apikey: auth.anonKey, bearer: stranger.access_token)
            let theirFactor = try #require(theirs.json["id"] as? String)
            #expect(try await auth.send(.post, "/factors/\(theirFactor)/challenge", apikey: auth.anonKey, bearer: aal1).status == .notFound)
        }
    }

    @Test func theServiceRoleListsAndRemovesAnyUsersFactors() async throws {
        let database = try await TestCluster.shared.makeDatabase()
        try await database.withLiveApp { client, services in
            let auth = try await AuthClient(client, services)
            let session = try await auth.session(uniqueEmail("lost-phone"))
            let enrolled = try await auth.send(
                .post, "/factors", json: #"{"factor_type":"totp","friendly_name":"old phone"}"#, apikey: auth.anonKey,
                bearer: session.access_token)
            let factor = try #require(enrolled.json["id"] as? String, "\(enrolled.text)")
            let user = session.user.id

            let forbidden = try await auth.send(.get, "/admin/users/\(user)/factors", apikey: auth.anonKey, bearer: session.access_token)
            #expect(forbidden.status == .forbidden, "a user's own token is not the service role: \(forbidden.text)")
            let listed = try await auth.send(.get, "/admin/users/\(user)/factors", apikey: auth.serviceKey, bearer: auth.serviceKey)
            #expect(listed.status == .ok, "\(listed.text)")
            let factors = try #require(try JSONSerialization.jsonObject(with: Data(listed.body)) as? [[String: Any]])
            #expect(factors.map { $0["id"] as? String } == [factor] && factors.first?["friendly_name"] as? String == "old phone")

            let removed = try await auth.send(
                .delete, "/admin/users/\(user)/factors/\(factor)", apikey: auth.serviceKey, bearer: auth.serviceKey)
            #expect(removed.status == .ok && removed.json["id"] as? String == factor, "\(removed.text)")
            let again = try await auth.send(
                .delete, "/admin/users/\(user)/factors/\(factor)", apikey: auth.serviceKey, bearer: auth.serviceKey)
            #expect(again.status == .notFound && again.errorCode == "mfa_factor_not_found", "\(again.text)")
            let nobody = try await auth.send(
                .get, "/admin/users/\(UUID().uuidString.lowercased())/factors", apikey: auth.serviceKey, bearer: auth.serviceKey)
            #expect(nobody.status == .notFound, "\(nobody.text)")
        }
    }
}
