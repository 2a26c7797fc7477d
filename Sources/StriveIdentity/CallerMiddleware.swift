import Hummingbird
import Logging

/// A request's caller, resolved once by `CallerMiddleware`: routes read it, and every log line of the
/// request names the user and organization.
public enum CallerResolution: Sendable {
    case resolved(Caller)
    case failed(AuthError)
}

public protocol CallerRequestContext: RequestContext {
    /// Set by `CallerMiddleware` when the request carries a key or token.
    var callerResolution: CallerResolution? { get set }
    /// Set by the scope the route is registered in (`CallerScope`, `GrantScope`); routes read it.
    var scopedIdentity: ScopedIdentity? { get set }
}

extension CallerRequestContext {
    /// The resolved caller, or the reason there is none; the scopes ask, routes read what they put on the
    /// context (`scopedCaller()`).
    func resolvedCaller() throws(AuthError) -> Caller {
        switch callerResolution {
        case .resolved(let caller): return caller
        case .failed(let error): throw error
        case nil: throw .noAPIKey
        }
    }
}

/// Verifies `apikey` / `Authorization: Bearer` when present and records the outcome on the context; the
/// scope a route is registered in decides whether it needs a caller.
public struct CallerMiddleware<Context: CallerRequestContext>: RouterMiddleware {
    let tokens: TokenService

    public init(tokens: TokenService) {
        self.tokens = tokens
    }

    public func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        guard request.headers[.apikey] != nil || request.headers[.authorization] != nil else {
            return try await next(request, context)
        }
        var context = context
        do {
            let caller = try await Caller.resolve(headers: request.headers, tokens: tokens)
            context.callerResolution = .resolved(caller)
            context.logger[metadataKey: "role"] = .string(caller.role.rawValue)
            if let user = caller.userID { context.logger[metadataKey: "user_id"] = .string(user.uuidString.lowercased()) }
            if let organization = caller.token.claims.app_metadata?.objectValue?["organization_id"]?.stringValue {
                context.logger[metadataKey: "org_id"] = .string(organization)
            }
        } catch {
            context.callerResolution = .failed(error)
        }
        return try await next(request, context)
    }
}
