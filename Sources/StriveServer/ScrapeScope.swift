import Hummingbird
import StriveCore
import StriveIdentity

/// The scope of `/metrics`: a scraper's `STRIVE_METRICS_TOKEN` as a bearer token (not a JWT), or the
/// service role key.
struct ScrapeScope: RouterMiddleware {
    typealias Context = StriveRequestContext
    let token: Secret?

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        if let token, let presented = request.headers[.authorization].flatMap(Caller.bearerToken),
            MetricsRoutes.constantTimeEqual(presented, token.value)
        {
            return try await next(request, context)
        }
        guard case .resolved(let caller) = context.callerResolution, caller.role == .serviceRole else {
            throw StriveHTTPError(
                status: .unauthorized, code: "unauthorized",
                message: "/metrics needs the service role key or STRIVE_METRICS_TOKEN as a bearer token")
        }
        return try await next(request, context)
    }
}
