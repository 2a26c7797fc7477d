import Hummingbird
import NIOCore
import StriveCore
import StriveIdentity

/// Realtime's plain HTTP routes beside its WebSocket: the socket URL answered without an upgrade, and the
/// operators' counters.
public struct RealtimeHTTPRoutes<Context: CallerRequestContext>: Sendable {
    let service: RealtimeService

    public init(service: RealtimeService) {
        self.service = service
    }

    public func register(on router: some RouterMethods<Context>) {
        router.get("realtime/v1/websocket") { _, _ -> Response in
            Self.json(
                .upgradeRequired,
                #"{"error":"upgrade_required","message":"connect with a WebSocket: GET /realtime/v1/websocket?apikey=<key>&vsn=1.0.0"}"#,
                extra: [.upgrade: "websocket"])
        }
        // The service role and platform admins only: the counters describe every tenant's traffic.
        let operators = router.group("realtime/v1").add(
            middleware: CallerScope<Context> { [service] caller, request, _ in
                guard try await caller.isAdministrator(on: service.database, method: "GET", path: request.uri.path) else {
                    throw RealtimeRefusal.notOperator
                }
            })
        operators.get("stats") { _, _ -> Response in
            let stats = await service.hub.stats
            return Response(
                status: .ok, headers: [.contentType: "application/json"],
                body: .init(byteBuffer: ByteBuffer(bytes: try SupabaseJSON.encoder.encode(stats))))
        }
    }

    private static func json(_ status: HTTPResponse.Status, _ body: String, extra: HTTPFields = [:]) -> Response {
        var headers: HTTPFields = [.contentType: "application/json"]
        headers.append(contentsOf: extra)
        return Response(status: status, headers: headers, body: .init(byteBuffer: ByteBuffer(string: body)))
    }
}

/// Refusals of realtime's HTTP routes, in realtime's `{error, message}` shape.
struct RealtimeRefusal: HTTPResponseError {
    let status: HTTPResponse.Status
    let code: String
    let message: String

    static let notOperator = RealtimeRefusal(
        status: .forbidden, code: "forbidden", message: "needs the service role key or a platform admin")

    func response(from request: Request, context: some RequestContext) throws -> Response {
        let body = try SupabaseJSON.encoder.encode(["error": code, "message": message])
        return Response(status: status, headers: [.contentType: "application/json"], body: .init(byteBuffer: ByteBuffer(bytes: body)))
    }
}
