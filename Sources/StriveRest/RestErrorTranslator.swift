import Hummingbird
import StriveDatabase
import StriveIdentity

/// What `/rest/v1` answers for an error its stages throw, as PostgREST would: its own refusals as they are,
/// a caller without valid credentials as PGRST301, and database refusals through `RestError.database`
/// (a permission refused to an anonymous caller is 401, to a signed-in one 403).
public struct RestErrorTranslator: ErrorTranslator {
    public init() {}

    public func translate(_ error: any Error, caller: Caller?) -> (any HTTPResponseError)? {
        if let error = error as? RestError { return error }
        if let error = error as? AuthError {
            return RestError(.unauthorized, code: "PGRST301", message: error.message, details: error.code)
        }
        guard let fields = DatabaseError.serverFields(in: error) else { return nil }
        return RestError.database(fields, anonymous: caller.map { $0.role == .anon } ?? true)
    }
}
