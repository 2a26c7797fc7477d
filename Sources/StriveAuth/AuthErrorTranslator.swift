import Hummingbird
import StriveDatabase
import StriveIdentity
import StriveMetrics

/// What `/auth/v1` answers for an error its handlers throw: auth refusals as they are (each counted by
/// its code), database refusals as auth errors — an ended session as `session_not_found`, a rule of the
/// schema (the last OWNER of an organization, say) as a 422 naming it. Anything else is not auth's to say.
public struct AuthErrorTranslator: ErrorTranslator {
    public init() {}

    public func translate(_ error: any Error, caller: Caller?) -> (any HTTPResponseError)? {
        // The OAuth server's token endpoint answers in OAuth's own shape, for the libraries that call it.
        if let error = error as? OAuthProtocolError {
            StriveMetrics.authFailed(reason: error.error)
            return error
        }
        guard let refusal = Self.authError(for: error) else { return nil }
        StriveMetrics.authFailed(reason: refusal.code)
        return refusal
    }

    static func authError(for error: any Error) -> AuthError? {
        if let error = error as? AuthError { return error }
        guard let fields = DatabaseError.serverFields(in: error) else { return nil }
        switch fields.code {
        case .sessionNotFound: return .sessionNotFound
        case .checkViolation, .foreignKeyViolation, .uniqueViolation, .insufficientPrivilege:
            return AuthError(status: .unprocessableContent, code: "validation_failed", message: fields.message)
        default:
            // Class 22, data exceptions: a value PostgreSQL cannot store (NUL in metadata, say).
            return fields.sqlState.hasPrefix("22") ? .validation(fields.message) : nil
        }
    }
}
