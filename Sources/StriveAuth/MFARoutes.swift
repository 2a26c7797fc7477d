import Foundation
import Hummingbird
import StriveIdentity

/// GoTrue's `/factors` endpoints (TOTP).
extension AuthRoutes {
    func registerFactors(in scopes: Scopes) {
        scopes.users.post("factors") { request, context in try await enroll(request, context) }
        scopes.users.post("factors/:factor/challenge") { request, context in try await challenge(request, context) }
        scopes.users.post("factors/:factor/verify") { request, context in try await verifyFactor(request, context) }
        scopes.users.delete("factors/:factor") { request, context in try await unenroll(request, context) }
    }

    struct EnrollBody: Decodable {
        var factor_type: String?
        var friendly_name: String?
        var issuer: String?
    }

    func enroll(_ request: Request, _ context: Context) async throws -> Response {
        let token = try userToken(context)
        let body = try await decode(EnrollBody.self, from: request, context)
        switch body.factor_type {
        case "totp": break
        case "webauthn":
            throw AuthError(
                status: .unprocessableContent, code: "mfa_webauthn_enroll_not_enabled", message: "MFA enroll is disabled for WebAuthn")
        case "phone":
            throw AuthError(
                status: .unprocessableContent, code: "mfa_phone_enroll_not_enabled", message: "MFA enroll is disabled for Phone")
        default: throw AuthError.validation("factor_type needs to be totp, phone, or webauthn")
        }
        return try json(
            try await service.enrollFactor(token, friendlyName: body.friendly_name, issuer: body.issuer, client: client(request, context)))
    }

    func challenge(_ request: Request, _ context: Context) async throws -> Response {
        let token = try userToken(context)
        return try json(try await service.challengeFactor(token, factor: try factorID(context), client: client(request, context)))
    }

    struct VerifyFactorBody: Decodable {
        var challenge_id: String?
        var code: String?
    }

    func verifyFactor(_ request: Request, _ context: Context) async throws -> Response {
        let token = try userToken(context)
        let body = try await decode(VerifyFactorBody.self, from: request, context)
        guard let challengeText = body.challenge_id, let challenge = UUID(uuidString: challengeText) else {
            throw AuthError.validation("challenge_id must be the id of a challenge")
        }
        guard let code = body.code else { throw AuthError.validation("code is required") }
        return try json(
            try await service.verifyFactor(
                token, factor: try factorID(context), challenge: challenge, code: code, client: client(request, context)))
    }

    func unenroll(_ request: Request, _ context: Context) async throws -> Response {
        let token = try userToken(context)
        return try json(["id": try await service.unenrollFactor(token, factor: try factorID(context))])
    }

    func factorID(_ context: Context) throws -> UUID {
        guard let text = context.parameters.get("factor"), let id = UUID(uuidString: text) else { throw AuthService.factorNotFound }
        return id
    }
}
