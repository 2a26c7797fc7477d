import Foundation
import HTTPTypes
import Hummingbird
import Logging
import StriveCore
import StriveDatabase
import StriveIdentity

/// Adopts a well-formed incoming `X-Request-Id` or makes one, and puts it on the logger and the response.
struct RequestIDMiddleware: RouterMiddleware {
    typealias Context = StriveRequestContext

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        var context = context
        let incoming = request.headers[.xRequestID]
        context.requestID = incoming.flatMap(Self.acceptable) ?? UUID().uuidString.lowercased()
        context.logger[metadataKey: "hb.request.id"] = nil
        context.logger[metadataKey: "request_id"] = .string(context.requestID)
        do {
            var response = try await next(request, context)
            response.headers[.xRequestID] = context.requestID
            return response
        } catch let error as any HTTPResponseError {
            // Every answer carries the id, whichever surface's error shape it has.
            throw EditedError(base: error, headers: [.xRequestID: context.requestID])
        }
    }

    /// Client-supplied ids end up in logs: accept only short, plain tokens.
    static func acceptable(_ value: String) -> String? {
        let allowed = value.utf8.allSatisfy { byte in
            (byte >= 0x30 && byte <= 0x39) || (byte >= 0x41 && byte <= 0x5A) || (byte >= 0x61 && byte <= 0x7A)
                || byte == 0x2D || byte == 0x5F || byte == 0x2E
        }
        return (1...128).contains(value.utf8.count) && allowed ? value : nil
    }
}

/// One line per request: method, path, status, duration. Query strings are left out (they can hold tokens).
struct AccessLogMiddleware: RouterMiddleware {
    typealias Context = StriveRequestContext

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        let start = ContinuousClock.now
        let status: Int
        let response: Response
        do {
            response = try await next(request, context)
            status = Int(response.status.code)
        } catch let error as any HTTPResponseError {
            log(request, context, status: Int(error.status.code), since: start)
            throw error
        } catch {
            log(request, context, status: 500, since: start)
            throw error
        }
        log(request, context, status: status, since: start)
        return response
    }

    private func log(_ request: Request, _ context: Context, status: Int, since start: ContinuousClock.Instant) {
        let elapsed = ContinuousClock.now - start
        let milliseconds = Double(elapsed.components.seconds) * 1000 + Double(elapsed.components.attoseconds) / 1e15
        context.logger.log(
            level: status >= 500 && status != 503 ? .error : .info,
            "request",
            metadata: [
                "method": .string(request.method.rawValue),
                "path": .string(request.uri.path),
                "status": .stringConvertible(status),
                "duration_ms": .string(String(format: "%.1f", milliseconds)),
            ]
        )
    }
}

/// The one place a failure becomes an answer, in the shape of the surface the request was for: the
/// surface's translator turns what handlers throw (domain and database errors) into its errors, a request
/// no route takes becomes 405 with `Allow` or 404, the database out of reach 503, and anything else is a
/// bug — logged with the request id, answered 500 revealing nothing.
struct ErrorMiddleware: RouterMiddleware {
    typealias Context = StriveRequestContext
    let routes: RouteCatalog
    let recent: RecentErrors

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        do {
            return try await next(request, context)
        } catch let error as HTTPError {
            let surface = Surface(path: request.uri.path)
            // Hummingbird's router answers a path it has no route for with a bare 404 before any handler
            // runs, naming the endpoint "NotFound".
            if error.status == .notFound, context.coreContext.endpointPath.value.map({ $0 == "NotFound" }) ?? true {
                let allowed = await routes.allowedMethods(for: request.uri.path)
                if allowed.isEmpty { throw surface.noRoute(request) }
                throw surface.methodNotAllowed(request.method, allowed: allowed)
            }
            throw surface.error(error.status, code: Self.code(for: error.status), message: error.body ?? error.status.reasonPhrase)
        } catch {
            let surface = Surface(path: request.uri.path)
            let caller: Caller? = if case .resolved(let caller) = context.callerResolution { caller } else { nil }
            if let answer = surface.translator?.translate(error, caller: caller) ?? (error as? any HTTPResponseError) {
                if answer.status.code >= 500 { record(request, context, status: answer.status.code, message: "\(answer.status)") }
                throw answer
            }
            if DatabaseError.isConnectionFailure(error) {
                let reason = DatabaseError.connectionFailureReason(error)
                context.logger.warning("database unavailable", metadata: ["reason": "\(reason)"])
                record(request, context, status: 503, message: "database unavailable: \(reason)")
                throw surface.unavailable(reason)
            }
            context.logger.error("unhandled error", metadata: ["error": "\(String(reflecting: error))"])
            record(request, context, status: 500, message: String(String(reflecting: error).prefix(1000)))
            throw surface.internalError()
        }
    }

    private func record(_ request: Request, _ context: Context, status: Int, message: String) {
        recent.record(
            .init(
                at: Date(), requestID: context.requestID, method: request.method.rawValue, path: request.uri.path, status: status,
                message: message))
    }

    static func code(for status: HTTPResponse.Status) -> String {
        switch status {
        case .notFound: "not_found"
        case .methodNotAllowed: "method_not_allowed"
        case .contentTooLarge: "payload_too_large"
        case .badRequest: "bad_request"
        default: "http_\(status.code)"
        }
    }
}

/// An error of the ops endpoints, answered as `{"code": …, "message": …}` (the request id is in `X-Request-Id`).
public struct StriveHTTPError: HTTPResponseError, Sendable {
    public let status: HTTPResponse.Status
    public let code: String
    public let message: String

    public init(status: HTTPResponse.Status, code: String, message: String) {
        self.status = status
        self.code = code
        self.message = message
    }

    public func response(from request: Request, context: some RequestContext) throws -> Response {
        let data = try SupabaseJSON.encoder.encode(["code": code, "message": message])
        return Response(status: status, headers: [.contentType: "application/json"], body: .init(byteBuffer: ByteBuffer(bytes: data)))
    }
}

extension HTTPField.Name {
    static let xRequestID = Self("X-Request-Id")!
}
