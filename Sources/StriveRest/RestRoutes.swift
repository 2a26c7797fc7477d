import Foundation
import HTTPTypes
import Hummingbird
import NIOCore
import NIOFoundationCompat
import StriveDatabase
import StriveIdentity

/// PostgREST's endpoints under `/rest/v1`: tables and views, and `rpc/` functions.
public struct RestRoutes<Context: CallerRequestContext>: Sendable {
    public let service: RestService

    public init(service: RestService) {
        self.service = service
    }

    public func register(on router: some RouterMethods<Context>) {
        let group = router.group("rest/v1")
        group.get("rpc/:name") { request, context in try await rpc(request, context, viaGet: true) }
        group.post("rpc/:name") { request, context in try await rpc(request, context, viaGet: false) }
        group.get(":table") { request, context in
            try await handle(request, context) { call, table in try await service.read(table: table, call, head: false) }
        }
        group.head(":table") { request, context in
            try await handle(request, context) { call, table in try await service.read(table: table, call, head: true) }
        }
        group.post(":table") { request, context in
            try await handle(request, context) { call, table in try await service.insert(table: table, call) }
        }
        group.patch(":table") { request, context in
            try await handle(request, context) { call, table in try await service.update(table: table, call) }
        }
        group.delete(":table") { request, context in
            try await handle(request, context) { call, table in try await service.delete(table: table, call) }
        }
    }

    private func rpc(_ request: Request, _ context: Context, viaGet: Bool) async throws -> Response {
        try await handle(request, context, parameter: "name") { call, name in try await service.rpc(function: name, call, viaGet: viaGet) }
    }

    private func handle(
        _ request: Request, _ context: Context, parameter: String = "table",
        _ body: (RestService.Call, String) async throws -> RestReply
    ) async throws -> Response {
        guard let name = context.parameters.get(parameter) else { throw RestError.unknownTable("") }
        if let profile = request.headers[.acceptProfile] ?? request.headers[.contentProfile], profile != "public" {
            throw RestError(.notAcceptable, code: "PGRST106", message: "The schema must be one of the following: public", details: profile)
        }
        let caller: Caller
        do {
            caller = try context.caller()
        } catch {
            throw RestError(.unauthorized, code: "PGRST301", message: error.message, details: error.code)
        }
        var data: Data?
        if [.post, .patch, .put].contains(request.method) {
            data = try await request.bodyData(upTo: service.settings.maxBodyBytes, tooLarge: RestError.bodyTooLarge)
        }
        let call = RestService.Call(
            identity: caller.identity(method: request.method.rawValue, path: request.uri.path),
            anonymous: caller.role == .anon, query: request.uri.query ?? "", headers: request.headers, body: data
        )
        let reply = try await body(call, name)
        var headers = reply.headers
        let buffer = reply.body.map { ByteBuffer(string: $0) }
        if let buffer { headers[.contentLength] = String(buffer.readableBytes) }
        return Response(status: reply.status, headers: headers, body: buffer.map { .init(byteBuffer: $0) } ?? .init())
    }
}
