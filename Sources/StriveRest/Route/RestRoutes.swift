import Foundation
import HTTPTypes
import Hummingbird
import NIOCore
import NIOFoundationCompat
import StriveDatabase
import StriveIdentity

/// PostgREST's endpoints under `/rest/v1`: tables and views, and `rpc/` functions. The pipeline's first
/// step: a route becomes an `ApiRequest`.
public struct RestRoutes<Context: CallerRequestContext>: Sendable {
    public let service: RestService

    public init(service: RestService) {
        self.service = service
    }

    public func register(on router: some RouterMethods<Context>) {
        // Every data API request acts as its caller (the anon key is a caller), under row-level security.
        let group = router.group("rest/v1").add(middleware: CallerScope<Context>())
        group.get("rpc/:name") { request, context in try await handle(request, context, .call(method: .get), parameter: "name") }
        group.head("rpc/:name") { request, context in try await handle(request, context, .call(method: .head), parameter: "name") }
        group.post("rpc/:name") { request, context in try await handle(request, context, .call(method: .post), parameter: "name") }
        group.get(":table") { request, context in try await handle(request, context, .read(head: false)) }
        group.head(":table") { request, context in try await handle(request, context, .read(head: true)) }
        group.post(":table") { request, context in try await handle(request, context, .insert) }
        group.patch(":table") { request, context in try await handle(request, context, .update) }
        group.delete(":table") { request, context in try await handle(request, context, .delete) }
    }

    private func handle(_ request: Request, _ context: Context, _ action: ApiRequest.Action, parameter: String = "table") async throws
        -> Response
    {
        guard let name = context.parameters.get(parameter) else { throw RestError.unknownTable("") }
        let caller = try context.scopedCaller()
        var data: Data?
        if [.post, .patch, .put].contains(request.method) {
            data = try await request.bodyData(upTo: service.settings.maxBodyBytes, tooLarge: RestError.bodyTooLarge)
        }
        let apiRequest = try ApiRequest(
            action: action, target: name, identity: caller.identity(method: request.method.rawValue, path: request.uri.path),
            query: request.uri.query ?? "", headers: request.headers, body: data,
            settings: service.settings)
        let reply = try await service.handle(apiRequest)
        var headers = reply.headers
        let buffer = reply.body.map { ByteBuffer(string: $0) }
        if let buffer { headers[.contentLength] = String(buffer.readableBytes) }
        return Response(status: reply.status, headers: headers, body: buffer.map { .init(byteBuffer: $0) } ?? .init())
    }
}
