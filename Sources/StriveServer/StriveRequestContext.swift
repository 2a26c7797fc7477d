import Hummingbird
import NIOCore
import StriveAuth
import StriveIdentity

/// Per-request state shared by middleware and routes.
public struct StriveRequestContext: RequestContext, AuthRequestContext, RemoteAddressRequestContext {
    public var coreContext: CoreRequestContextStorage
    /// The caller's `X-Request-Id` when it is well-formed, else one generated here; echoed in the response
    /// and attached to every log line of the request.
    public var requestID: String
    /// The peer of the connection (no proxy headers are trusted).
    public let remoteAddress: SocketAddress?
    /// Set by `CallerMiddleware` when the request carries a key or token.
    public var callerResolution: CallerResolution?
    /// Set by the scope the route is registered in.
    public var scopedIdentity: ScopedIdentity?

    public init(source: ApplicationRequestContextSource) {
        coreContext = .init(source: source)
        requestID = ""
        remoteAddress = source.channel.remoteAddress
    }
}
