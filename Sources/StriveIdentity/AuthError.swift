import Foundation
import HTTPTypes
import Hummingbird
import StriveCore

/// Every way an auth request can fail, with Supabase Auth's error codes so its clients branch on them.
/// Answered in one of Supabase Auth's two shapes: `{code, message}` when the request carries
/// `X-Supabase-Api-Version: 2024-01-01`, else the older `{code: <status>, error_code, msg}`.
public struct AuthError: Error, Sendable, Equatable, HTTPResponseError {
    public let status: HTTPResponse.Status
    /// Supabase Auth's `error_code`.
    public let code: String
    public let message: String
    /// Seconds, for 429 answers.
    public var retryAfter: Int?
    /// Which rules a refused password broke (`length`, `characters`): GoTrue's `weak_password.reasons`.
    public var weakPasswordReasons: [String]?

    public init(status: HTTPResponse.Status, code: String, message: String, retryAfter: Int? = nil) {
        self.status = status
        self.code = code
        self.message = message
        self.retryAfter = retryAfter
    }

    public static let invalidCredentials = AuthError(status: .badRequest, code: "invalid_credentials", message: "Invalid login credentials")
    public static let userAlreadyExists = AuthError(
        status: .unprocessableContent, code: "user_already_exists", message: "User already registered")
    public static let emailExists = AuthError(
        status: .unprocessableContent, code: "email_exists", message: "A user with this email address has already been registered")
    public static let sessionNotFound = AuthError(
        status: .forbidden, code: "session_not_found", message: "Session from session_id claim in JWT does not exist")
    public static let refreshTokenNotFound = AuthError(
        status: .badRequest, code: "refresh_token_not_found", message: "Invalid Refresh Token: Refresh Token Not Found")
    public static let refreshTokenAlreadyUsed = AuthError(
        status: .badRequest, code: "refresh_token_already_used", message: "Invalid Refresh Token: Already Used")
    public static let notAdmin = AuthError(
        status: .forbidden, code: "not_admin", message: "User not allowed: this endpoint needs the service role key or a platform admin")
    public static let userNotFound = AuthError(status: .notFound, code: "user_not_found", message: "User not found")
    public static let noAuthorization = AuthError(
        status: .unauthorized, code: "no_authorization", message: "This endpoint requires a Bearer token")
    public static let noAPIKey = AuthError(
        status: .unauthorized, code: "no_api_key",
        message: "No API key found in request: send the anon or service role key as the apikey header")
    public static let payloadTooLarge = AuthError(status: .contentTooLarge, code: "request_too_large", message: "Request body is too large")
    /// A password change whose current_password is wrong: the caller is signed in but cannot prove it is
    /// the account's owner now — forbidden, not a malformed request.
    public static let wrongCurrentPassword = AuthError(
        status: .forbidden, code: "invalid_credentials", message: "current_password is not this user's password")
    public static let reauthenticationNeeded = AuthError(
        status: .badRequest, code: "reauthentication_needed",
        message: "Changing the password needs current_password, or the nonce GET /reauthenticate mails")
    public static let reauthenticationNotValid = AuthError(
        status: .badRequest, code: "reauthentication_not_valid", message: "Nonce has expired or is invalid")
    public static let samlDisabled = AuthError(status: .notFound, code: "saml_provider_disabled", message: "SAML 2.0 is disabled")
    public static let phoneProviderDisabled = AuthError(
        status: .badRequest, code: "phone_provider_disabled", message: "Phone logins are disabled")
    public static let signupDisabled = AuthError(
        status: .unprocessableContent, code: "signup_disabled", message: "Signups not allowed for this instance")
    public static let otpSignupsDisabled = AuthError(
        status: .unprocessableContent, code: "otp_disabled", message: "Signups not allowed for otp")
    public static let userBanned = AuthError(status: .badRequest, code: "user_banned", message: "User is banned")

    public static func badJWT(_ reason: String) -> AuthError {
        AuthError(status: .unauthorized, code: "bad_jwt", message: "invalid JWT: \(reason)")
    }

    public static func validation(_ message: String) -> AuthError {
        AuthError(status: .badRequest, code: "validation_failed", message: message)
    }

    public static func badJSON(_ message: String) -> AuthError {
        AuthError(status: .badRequest, code: "bad_json", message: message)
    }

    /// GoTrue's 422: each broken rule's sentence, and the rules as `weak_password: {reasons}` (supabase-js
    /// and supabase-py raise their AuthWeakPasswordError from it).
    public static func weakPassword(message: String, reasons: [String]) -> AuthError {
        var error = AuthError(status: .unprocessableContent, code: "weak_password", message: message)
        error.weakPasswordReasons = reasons
        return error
    }

    public static func rateLimited(retryAfter seconds: Int) -> AuthError {
        AuthError(
            status: .tooManyRequests, code: "over_request_rate_limit", message: "Request rate limit reached; retry in \(seconds) s",
            retryAfter: seconds)
    }

    /// The project's hourly mail allowance is spent.
    public static func overEmailSendRateLimit(retryAfter seconds: Int) -> AuthError {
        AuthError(
            status: .tooManyRequests, code: "over_email_send_rate_limit",
            message: "Email rate limit exceeded; retry in \(seconds) s", retryAfter: seconds)
    }

    /// A mail of this kind went to this address less than the interval ago (GoTrue's text).
    public static func mailSentTooRecently(retryAfter seconds: Int) -> AuthError {
        AuthError(
            status: .tooManyRequests, code: "over_email_send_rate_limit",
            message: "For security purposes, you can only request this after \(seconds) seconds.", retryAfter: seconds)
    }

    public static let emailNotConfirmed = AuthError(status: .badRequest, code: "email_not_confirmed", message: "Email not confirmed")
    public static let otpExpired = AuthError(status: .forbidden, code: "otp_expired", message: "Token has expired or is invalid")
    public static let flowStateNotFound = AuthError(
        status: .notFound, code: "flow_state_not_found", message: "invalid flow state, no valid flow state found")
    public static let flowStateExpired = AuthError(
        status: .badRequest, code: "flow_state_expired", message: "invalid flow state, flow state has expired")
    public static let badCodeVerifier = AuthError(
        status: .badRequest, code: "bad_code_verifier", message: "code challenge does not match previously saved code verifier")

    /// The `X-Supabase-Api-Version` from which Supabase Auth answers `{code, message}`.
    static let currentAPIVersion = "2024-01-01"

    public func response(from request: Request, context: some RequestContext) throws -> Response {
        let modern = request.headers[.supabaseAPIVersion].map { $0 >= Self.currentAPIVersion } ?? false
        var body: [String: AnyJSONScalar] =
            modern
            ? ["code": .string(code), "message": .string(message)]
            : ["code": .int(Int(status.code)), "error_code": .string(code), "msg": .string(message)]
        if let weakPasswordReasons { body["weak_password"] = .reasons(weakPasswordReasons) }
        var headers: HTTPFields = [.contentType: "application/json"]
        if let retryAfter { headers[.retryAfter] = String(retryAfter) }
        if modern { headers[.supabaseAPIVersion] = Self.currentAPIVersion }
        return Response(status: status, headers: headers, body: .init(byteBuffer: ByteBuffer(bytes: try SupabaseJSON.encoder.encode(body))))
    }
}

/// A JSON string or integer, or `{reasons: [...]}`, for small error bodies.
enum AnyJSONScalar: Encodable {
    case string(String)
    case int(Int)
    case reasons([String])

    func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        switch self {
        case .string(let value): try container.encode(value)
        case .int(let value): try container.encode(value)
        case .reasons(let reasons): try container.encode(["reasons": reasons])
        }
    }
}

extension HTTPField.Name {
    static let supabaseAPIVersion = Self("X-Supabase-Api-Version")!
    static let apikey = Self("apikey")!
}
