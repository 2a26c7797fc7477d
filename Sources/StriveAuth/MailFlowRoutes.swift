import Foundation
import HTTPTypes
import Hummingbird
import StriveCore
import StriveIdentity

/// The handlers of GoTrue's mail flows: `/verify`, `/recover`, `/otp`, `/resend`, and the PKCE fields the
/// sign-up, recovery and OTP bodies carry.
extension AuthRoutes {
    func registerMailFlows(in scopes: Scopes) {
        scopes.open.get("verify") { request, context in try await verifyLink(request, context) }
        scopes.keyed.post("verify") { request, context in try await verify(request, context) }
        scopes.keyed.post("recover") { request, context in try await recover(request, context) }
        scopes.keyed.post("otp") { request, context in try await otp(request, context) }
        scopes.keyed.post("resend") { request, context in try await resend(request, context) }
        scopes.administrators.post("invite") { request, context in try await invite(request, context) }
        scopes.administrators.post("admin/generate_link") { request, context in try await generateLink(request, context) }
        scopes.users.get("reauthenticate") { request, context in try await reauthenticate(request, context) }
    }

    func reauthenticate(_ request: Request, _ context: Context) async throws -> Response {
        try await service.reauthenticate(try userToken(context))
        return try json([String: String]())
    }

    struct InviteBody: Decodable {
        var email: String?
        var data: [String: JSONValue]?
    }

    func invite(_ request: Request, _ context: Context) async throws -> Response {
        let body = try await decode(InviteBody.self, from: request, context)
        guard let email = body.email else { throw AuthError.validation("An email address is required") }
        let user = try await service.invite(email: email, metadata: body.data ?? [:], redirectTo: try query(request)["redirect_to"])
        return try json(user.json)
    }

    struct GenerateLinkBody: Decodable {
        var type: String?
        var email: String?
        var password: String?
        var new_email: String?
        var data: [String: JSONValue]?
        var redirect_to: String?
    }

    /// GoTrue's answer: the user's fields with `action_link`, `email_otp`, `hashed_token`, `redirect_to` and
    /// `verification_type` beside them (supabase-js splits them into `properties`).
    func generateLink(_ request: Request, _ context: Context) async throws -> Response {
        let body = try await decode(GenerateLinkBody.self, from: request, context)
        guard let typeName = body.type, let type = AuthService.LinkType(rawValue: typeName) else {
            throw AuthError.validation("type must be signup, invite, magiclink, recovery, email_change_current or email_change_new")
        }
        guard let email = body.email else { throw AuthError.validation("An email address is required") }
        let generated = try await service.generateLink(
            type, email: email, password: body.password, newEmail: body.new_email, metadata: body.data ?? [:],
            redirectTo: try query(request)["redirect_to"] ?? body.redirect_to)
        guard case .object(var fields) = try JSONDecoder().decode(JSONValue.self, from: SupabaseJSON.encoder.encode(generated.user.json))
        else { throw AuthError.validation("the user could not be encoded") }
        fields["action_link"] = .string(generated.link.link)
        fields["email_otp"] = .string(generated.link.code)
        fields["hashed_token"] = .string(generated.link.linkToken)
        fields["redirect_to"] = .string(generated.link.redirectTo)
        fields["verification_type"] = .string(type.rawValue)
        return try json(JSONValue.object(fields))
    }

    /// The PKCE pair of a body: both or neither.
    static func pkce(challenge: String?, method: String?) throws -> PKCEChallenge? {
        switch (challenge, method) {
        case (nil, nil): return nil
        case (let challenge?, let method?):
            guard let parsed = PKCEChallenge.Method(rawValue: method.lowercased()) else {
                throw AuthError.validation("code_challenge_method must be s256 or plain")
            }
            guard (43...128).contains(challenge.utf8.count),
                challenge.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || "-._~".contains($0)) })
            else {
                throw AuthError.validation("code_challenge must be 43 to 128 characters of A-Z a-z 0-9 - . _ ~ (RFC 7636)")
            }
            return PKCEChallenge(challenge: challenge, method: parsed)
        default:
            throw AuthError.validation("PKCE flow requires code_challenge_method and code_challenge")
        }
    }

    /// `redirect_to` of the query string (supabase-js sends it there), or of the body.
    func mailRequest(_ request: Request, bodyRedirect: String? = nil, challenge: String?, method: String?) throws
        -> AuthService.MailRequest
    {
        AuthService.MailRequest(
            redirectTo: try query(request)["redirect_to"] ?? bodyRedirect, pkce: try Self.pkce(challenge: challenge, method: method))
    }

    func verifyLink(_ request: Request, _ context: Context) async throws -> Response {
        let parameters = try query(request)
        let location = try await service.verifyLink(
            token: parameters["token"] ?? "", type: parameters["type"] ?? "", redirectTo: parameters["redirect_to"],
            client: client(request, context))
        return Response(status: .seeOther, headers: [.location: location, .cacheControl: "no-store"])
    }

    struct VerifyBody: Decodable {
        var type: String?
        var token_hash: String?
        var email: String?
        var phone: String?
        var token: String?
        var redirect_to: String?
    }

    func verify(_ request: Request, _ context: Context) async throws -> Response {
        let body = try await decode(VerifyBody.self, from: request, context)
        guard let type = body.type else { throw AuthError.validation("Verify requires a verification type") }
        if let phone = body.phone, body.email == nil {
            // No account has a phone number here, so no SMS code can match: GoTrue's answers for a
            // malformed number and for one without a pending code.
            guard AuthService.isE164(phone) else { throw AuthError.validation("Invalid phone number format (E.164 required)") }
            throw AuthError.otpExpired
        }
        switch try await service.verifyOTP(
            type: type, tokenHash: body.token_hash, email: body.email, code: body.token, client: client(request, context))
        {
        case .session(let session): return try json(session)
        case .awaitingOtherSide: return try json(["msg": AuthService.singleConfirmationAccepted, "code": "200"])
        }
    }

    struct RecoverBody: Decodable {
        var email: String?
        var code_challenge: String?
        var code_challenge_method: String?
    }

    func recover(_ request: Request, _ context: Context) async throws -> Response {
        let body = try await decode(RecoverBody.self, from: request, context)
        guard let email = body.email else { throw AuthError.validation("Password recovery requires an email") }
        try await service.recover(
            email: email, request: try mailRequest(request, challenge: body.code_challenge, method: body.code_challenge_method),
            client: client(request, context))
        return try json([String: String]())
    }

    struct OTPBody: Decodable {
        var email: String?
        var phone: String?
        var create_user: Bool?
        var data: [String: JSONValue]?
        var code_challenge: String?
        var code_challenge_method: String?
    }

    func otp(_ request: Request, _ context: Context) async throws -> Response {
        let body = try await decode(OTPBody.self, from: request, context)
        if body.phone != nil && body.email == nil { throw AuthError.phoneProviderDisabled }
        guard let email = body.email else { throw AuthError.validation("An email address is required") }
        try await service.sendOTP(
            email: email, createUser: body.create_user ?? true, metadata: body.data ?? [:],
            request: try mailRequest(request, challenge: body.code_challenge, method: body.code_challenge_method),
            client: client(request, context))
        return try json([String: String]())
    }

    struct ResendBody: Decodable {
        var type: String?
        var email: String?
        var phone: String?
    }

    func resend(_ request: Request, _ context: Context) async throws -> Response {
        let body = try await decode(ResendBody.self, from: request, context)
        if body.phone != nil && body.email == nil { throw AuthError.phoneProviderDisabled }
        guard let email = body.email else { throw AuthError.validation("An email address is required") }
        let mail = try mailRequest(request, challenge: nil, method: nil)
        switch body.type {
        case "signup": try await service.resendConfirmation(email: email, request: mail, client: client(request, context))
        case "email_change": try await service.resendEmailChange(email: email, request: mail, client: client(request, context))
        case "sms", "phone_change": throw AuthError.phoneProviderDisabled
        default: throw AuthError.validation("type must be signup or email_change")
        }
        return try json([String: String]())
    }
}
