import HTTPTypes
import Hummingbird
import StriveAuth
import StriveDatabase
import StriveIdentity
import StriveRest
import StriveStorage

/// The API family a request is for, decided by its path. Each answers errors in the shape its clients
/// parse; the failures no handler raises — no route, a method the path does not take, a bug — are
/// rendered here, in the same shape, so a client never meets a foreign error body.
enum Surface: Sendable, Equatable {
    case auth, rest, storage, realtime, ops

    init(path: String) {
        if path.hasPrefix("/auth/v1") {
            self = .auth
        } else if path.hasPrefix("/rest/v1") {
            self = .rest
        } else if path.hasPrefix("/storage/v1") {
            self = .storage
        } else if path.hasPrefix("/realtime/v1") {
            self = .realtime
        } else {
            self = .ops
        }
    }

    /// How this surface answers what its handlers throw; nil where every error is already an answer.
    var translator: (any ErrorTranslator)? {
        switch self {
        case .auth: AuthErrorTranslator()
        case .rest: RestErrorTranslator()
        case .storage: StorageErrorTranslator()
        case .realtime, .ops: nil
        }
    }

    /// No route matches the path.
    func noRoute(_ request: Request) -> any HTTPResponseError {
        let message = "no route for \(request.method.rawValue) \(request.uri.path)"
        switch self {
        case .rest: return RestError(.notFound, code: "PGRST125", message: "Invalid path specified in request URL", details: message)
        default: return error(.notFound, code: "not_found", message: message)
        }
    }

    /// The path exists, but not for this method.
    func methodNotAllowed(_ method: HTTPRequest.Method, allowed: [HTTPRequest.Method]) -> any HTTPResponseError {
        let message = "\(method.rawValue) is not supported here; use \(allowed.map(\.rawValue).joined(separator: ", "))"
        let base: any HTTPResponseError =
            switch self {
            case .rest:
                RestError(.methodNotAllowed, code: "PGRST117", message: "Unsupported HTTP method: \(method.rawValue)", details: message)
            default: error(.methodNotAllowed, code: "method_not_allowed", message: message)
            }
        return EditedError(base: base, headers: [.allow: allowed.map(\.rawValue).joined(separator: ", ")])
    }

    /// The database cannot be reached: 503 with `Retry-After`, never a 500.
    func unavailable(_ reason: String) -> any HTTPResponseError {
        let message = "the database is unavailable; retry in a moment"
        let base: any HTTPResponseError =
            switch self {
            // PostgREST's "Could not connect with the database".
            case .rest: RestError(.serviceUnavailable, code: "PGRST000", message: "Could not connect with the database", details: reason)
            case .auth: AuthError(status: .serviceUnavailable, code: "database_unavailable", message: message)
            case .storage: StorageError(.serviceUnavailable, "DatabaseUnavailable", message)
            case .realtime, .ops: StriveHTTPError(status: .serviceUnavailable, code: "database_unavailable", message: message)
            }
        return EditedError(base: base, headers: [.retryAfter: String(DatabaseUnavailable.retryAfterSeconds)])
    }

    /// A failure that is a bug: nothing of its cause reaches the client.
    func internalError() -> any HTTPResponseError {
        let message = "internal error; quote the X-Request-Id header when reporting it"
        switch self {
        case .rest: return RestError(.internalServerError, code: "PGRSTX00", message: message)
        case .auth: return AuthError(status: .internalServerError, code: "unexpected_failure", message: message)
        default: return error(.internalServerError, code: "internal_error", message: message)
        }
    }

    /// An error of this surface's shape with a code in its vocabulary.
    func error(_ status: HTTPResponse.Status, code: String, message: String) -> any HTTPResponseError {
        switch self {
        case .auth: AuthError(status: status, code: code, message: message)
        case .rest: RestError(status, code: code, message: message)
        case .storage: StorageError(status, code, message)
        case .realtime, .ops: StriveHTTPError(status: status, code: code, message: message)
        }
    }
}

/// Another error's response with headers added (the request id, `Allow`), whatever its shape.
struct EditedError: HTTPResponseError {
    let base: any HTTPResponseError
    let headers: HTTPFields

    var status: HTTPResponse.Status { base.status }

    func response(from request: Request, context: some RequestContext) throws -> Response {
        var response = try base.response(from: request, context: context)
        for field in headers { response.headers[field.name] = field.value }
        return response
    }
}

extension HTTPField.Name {
    static let allow = Self("Allow")!
}
