import Foundation
import HTTPTypes
import Hummingbird
import StriveCore
import StriveIdentity

/// GoTrue's external sign-in endpoints: the browser flow (`/authorize` → provider → `/callback`) and
/// identity linking. The two browser endpoints need no API key: a browser navigates to them.
extension AuthRoutes {
    func registerExternalSignIn(in scopes: Scopes) {
        scopes.open.get("authorize") { request, context in try await authorize(request, context) }
        scopes.open.get("callback") { request, context in try await callback(request, context, form: false) }
        // Apple's `response_mode=form_post` answers with a form POST.
        scopes.open.post("callback") { request, context in try await callback(request, context, form: true) }
        scopes.users.get("user/identities/authorize") { request, context in try await linkIdentity(request, context) }
        scopes.users.delete("user/identities/:identity") { request, context in try await unlinkIdentity(request, context) }
    }

    func authorize(_ request: Request, _ context: Context) async throws -> Response {
        let parameters = try query(request)
        guard let provider = parameters["provider"], !provider.isEmpty else {
            throw AuthError.validation("Unsupported provider: missing provider")
        }
        // Each start writes a pending flow: counted with sign-ins, so nobody fills the table.
        try await service.limit(.signIn, client: client(request, context))
        let location = try await service.startExternalSignIn(
            provider: provider, redirectTo: parameters["redirect_to"], scopes: parameters["scopes"],
            pkce: try Self.pkce(challenge: parameters["code_challenge"], method: parameters["code_challenge_method"]))
        return Self.found(location)
    }

    func callback(_ request: Request, _ context: Context, form: Bool) async throws -> Response {
        var parameters = try query(request)
        if form {
            let body = try await request.bodyData(upTo: Self.maximumBodyBytes, tooLarge: AuthError.payloadTooLarge)
            do {
                parameters = try QueryString(String(decoding: body, as: UTF8.self))
            } catch {
                throw AuthError.validation("the callback's form is not valid percent-encoding: \(error.part)")
            }
        }
        let location = await service.finishExternalSignIn(
            AuthService.ProviderCallback(
                state: parameters["state"], code: parameters["code"], error: parameters["error"],
                errorDescription: parameters["error_description"], issuer: parameters["iss"]),
            client: client(request, context))
        return Self.found(location)
    }

    /// `GET /user/identities/authorize`: the same flow, ending with the provider's identity added to the
    /// signed-in user. supabase-js and -py ask for `skip_http_redirect=true` and open `{url}` themselves.
    func linkIdentity(_ request: Request, _ context: Context) async throws -> Response {
        let parameters = try query(request)
        let user = try await service.currentUser(try userToken(context))
        guard let provider = parameters["provider"], !provider.isEmpty else {
            throw AuthError.validation("Unsupported provider: missing provider")
        }
        try await service.limit(.signIn, client: client(request, context))
        let location = try await service.startExternalSignIn(
            provider: provider, redirectTo: parameters["redirect_to"], scopes: parameters["scopes"],
            pkce: try Self.pkce(challenge: parameters["code_challenge"], method: parameters["code_challenge_method"]), linking: user.id)
        if parameters["skip_http_redirect"] == "true" { return try json(["url": location]) }
        return Self.found(location)
    }

    func unlinkIdentity(_ request: Request, _ context: Context) async throws -> Response {
        guard let text = context.parameters.get("identity"), let identity = UUID(uuidString: text) else {
            throw AuthError(status: .notFound, code: "validation_failed", message: "identity_id must be an UUID")
        }
        _ = try await service.unlinkIdentity(try userToken(context), identity: identity)
        return try json([String: String]())
    }

    static func found(_ location: String) -> Response {
        Response(status: .found, headers: [.location: location, .cacheControl: "no-store"])
    }
}
