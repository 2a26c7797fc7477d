import Foundation
import Hummingbird
import StriveIdentity
import StriveWebAuthn

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
            return try json(
                try await service.enrollWebAuthnFactor(token, friendlyName: body.friendly_name, client: client(request, context)))
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
        let factor = try factorID(context)
        let client = client(request, context)
        let user = try await service.currentUser(token)
        if let webAuthn = try await service.store.webAuthnFactor(user: user.id, id: factor) {
            try await service.limit(.mfa, client: client)
            return try json(try await service.challengeWebAuthnFactor(webAuthn, user: user, client: client))
        }
        return try json(try await service.challengeFactor(token, factor: factor, client: client))
    }

    /// `webauthn`: `{type: create|request, credential_response}`; `rpId` and `rpOrigins`, which supabase-js
    /// still sends, are ignored: the relying party is the project's setting, not the caller's to choose.
    struct VerifyFactorBody: Decodable {
        struct WebAuthn: Decodable {
            var type: String?
            var credential_response: CredentialJSON?
        }
        var challenge_id: String?
        var code: String?
        var webauthn: WebAuthn?
    }

    func verifyFactor(_ request: Request, _ context: Context) async throws -> Response {
        let token = try userToken(context)
        let body = try await decode(VerifyFactorBody.self, from: request, context)
        guard let challengeText = body.challenge_id, let challenge = UUID(uuidString: challengeText) else {
            throw AuthError.validation("challenge_id must be the id of a challenge")
        }
        if let webAuthn = body.webauthn {
            return try json(try await verifyWebAuthn(webAuthn, token: token, challenge: challenge, request, context))
        }
        guard let code = body.code else { throw AuthError.validation("code is required") }
        return try json(
            try await service.verifyFactor(
                token, factor: try factorID(context), challenge: challenge, code: code, client: client(request, context)))
    }

    func verifyWebAuthn(_ body: VerifyFactorBody.WebAuthn, token: VerifiedToken, challenge: UUID, _ request: Request, _ context: Context)
        async throws -> TokenResponse
    {
        guard let type = body.type, type == "create" || type == "request" else {
            throw AuthError.validation("WebAuthn type must be create or request")
        }
        guard let credential = body.credential_response else { throw AuthError.validation("credential_response required") }
        let client = client(request, context)
        try await service.limit(.mfa, client: client)
        let user = try await service.currentUser(token)
        let answer = AuthService.WebAuthnAnswer(
            type: type, clientDataJSON: try Self.bytes(credential.response.clientDataJSON, "clientDataJSON"),
            attestationObject: try credential.response.attestationObject.map { text throws(AuthError) in
                try Self.bytes(text, "attestationObject")
            },
            authenticatorData: try credential.response.authenticatorData.map { text throws(AuthError) in
                try Self.bytes(text, "authenticatorData")
            },
            signature: try credential.response.signature.map { text throws(AuthError) in try Self.bytes(text, "signature") },
            credentialID: RelyingParty.base64URLDecode(credential.rawId ?? credential.id))
        return try await service.verifyWebAuthnFactor(
            token, user: user, factor: try factorID(context), challenge: challenge, answer: answer, client: client)
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
