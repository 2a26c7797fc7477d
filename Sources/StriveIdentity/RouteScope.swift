import Foundation
import Hummingbird
import StriveDatabase

/// What the scope a route is registered in verified about the request, put on the context before the
/// handler runs. Handlers read it; none decides whom it acts as or whether a caller is needed.
public enum ScopedIdentity: Sendable {
    /// A verified caller (any role the scope accepts): statements run as them, under row-level security.
    case caller(Caller)
    /// A grant the scope verified instead of a caller: a signed URL, a public bucket.
    case grant(Grant)
}

/// Leave to act on one named service path for exactly what a verified grant names (one object of a
/// signed URL or of a public bucket). Only scopes make them.
public struct Grant: Sendable {
    /// The identity statements run with: a service path named for the grant (`signed-object`, …).
    public let identity: RequestIdentity
    /// The user the grant was issued to, when it stands for one (a signed upload's signer).
    public let owner: UUID?
    /// Whether the grant lets an existing object be replaced.
    public let upsert: Bool
    /// Query parameters the grant fixes, which the request's own cannot change (a signed image URL's
    /// transformation).
    public let fixedParameters: [String: String]

    public init(identity: RequestIdentity, owner: UUID? = nil, upsert: Bool = false, fixedParameters: [String: String] = [:]) {
        self.identity = identity
        self.owner = owner
        self.upsert = upsert
        self.fixedParameters = fixedParameters
    }
}

/// A route asked for an identity its scope does not give: a route registered in the wrong scope. A bug,
/// answered 500, never a pass.
public struct ScopeError: Error, CustomStringConvertible {
    public let description: String
}

extension CallerRequestContext {
    /// The caller the route's `CallerScope` verified.
    public func scopedCaller() throws(ScopeError) -> Caller {
        guard case .caller(let caller) = scopedIdentity else {
            throw ScopeError(description: "\(coreContext.endpointPath.value ?? "a route") reads a caller outside a caller scope")
        }
        return caller
    }

    /// The grant the route's `GrantScope` verified.
    public func scopedGrant() throws(ScopeError) -> Grant {
        guard case .grant(let grant) = scopedIdentity else {
            throw ScopeError(description: "\(coreContext.endpointPath.value ?? "a route") reads a grant outside a grant scope")
        }
        return grant
    }
}

/// The scope of routes that act as their caller: a request without a valid key or token is refused here
/// (the surface's translator renders the `AuthError`), then `check` may refuse the caller (a role, an
/// admin rule) before the route runs with `.caller(caller)` on its context.
public struct CallerScope<Context: CallerRequestContext>: RouterMiddleware {
    public typealias Check = @Sendable (Caller, Request, Context) async throws -> Void
    let check: Check?

    /// Any verified caller: the anon key is enough.
    public init() { check = nil }

    /// A verified caller that `check` accepts (it throws the refusal).
    public init(_ check: @escaping Check) { self.check = check }

    public func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        let caller = try context.resolvedCaller()
        try await check?(caller, request, context)
        var context = context
        context.scopedIdentity = .caller(caller)
        return try await next(request, context)
    }
}

/// The scope of routes a verified grant opens without a caller (signed URLs, public buckets): `verify`
/// checks the request's token or the bucket and returns the grant, or throws the refusal.
public struct GrantScope<Context: CallerRequestContext>: RouterMiddleware {
    public typealias Verify = @Sendable (Request, Context) async throws -> Grant
    let verify: Verify

    public init(_ verify: @escaping Verify) { self.verify = verify }

    public func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        let grant = try await verify(request, context)
        var context = context
        context.scopedIdentity = .grant(grant)
        return try await next(request, context)
    }
}
