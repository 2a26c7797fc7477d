import Foundation
import HTTPTypes
import Hummingbird
import Logging

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
        } catch var error as StriveHTTPError {
            error.requestID = context.requestID
            throw error
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

/// Turns every failure into a JSON error body. Anything that is not already an HTTP error is a bug:
/// it is logged with the request id and answered with a bare 500 that reveals nothing of the cause.
struct ErrorMiddleware: RouterMiddleware {
    typealias Context = StriveRequestContext

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        do {
            return try await next(request, context)
        } catch let error as StriveHTTPError {
            throw error
        } catch let error as HTTPError {
            throw StriveHTTPError(
                status: error.status, code: Self.code(for: error.status),
                message: error.body ?? Self.defaultMessage(error.status, request), requestID: context.requestID
            )
        } catch let error as any HTTPResponseError {
            // A surface's own error type (auth, rest, storage) already answers in its clients' shape.
            throw error
        } catch {
            context.logger.error("unhandled error", metadata: ["error": "\(String(reflecting: error))"])
            throw StriveHTTPError(
                status: .internalServerError, code: "internal_error",
                message: "internal error; quote the request id when reporting it", requestID: context.requestID
            )
        }
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

    static func defaultMessage(_ status: HTTPResponse.Status, _ request: Request) -> String {
        status == .notFound ? "no route for \(request.method.rawValue) \(request.uri.path)" : status.reasonPhrase
    }
}

/// An error answered as `{"code": …, "message": …, "request_id": …}`.
public struct StriveHTTPError: HTTPResponseError, Sendable {
    public let status: HTTPResponse.Status
    public let code: String
    public let message: String
    public var requestID: String?

    public init(status: HTTPResponse.Status, code: String, message: String, requestID: String? = nil) {
        self.status = status
        self.code = code
        self.message = message
        self.requestID = requestID
    }

    public func response(from request: Request, context: some RequestContext) throws -> Response {
        var body: [String: String] = ["code": code, "message": message]
        if let requestID { body["request_id"] = requestID }
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        let data = try encoder.encode(body)
        var headers: HTTPFields = [.contentType: "application/json"]
        if let requestID { headers[.xRequestID] = requestID }
        return Response(status: status, headers: headers, body: .init(byteBuffer: ByteBuffer(bytes: data)))
    }
}

extension HTTPField.Name {
    static let xRequestID = Self("X-Request-Id")!
}
