import Foundation
import HTTPTypes
import HummingbirdTesting
import NIOCore

/// Requests to a live test server the way the Supabase clients send them — the `apikey` header, a
/// bearer token, a JSON or raw body — and the reply, decoded on demand. Every surface's harness sends
/// through this one.
public struct TestHTTP: Sendable {
    public let client: any TestClientProtocol

    public init(_ client: any TestClientProtocol) {
        self.client = client
    }

    public struct Reply: Sendable {
        public let status: HTTPResponse.Status
        public let headers: HTTPFields
        public let body: Data

        public var text: String { String(decoding: body, as: UTF8.self) }
        public var object: [String: Any] { (try? JSONSerialization.jsonObject(with: body) as? [String: Any]) ?? [:] }
        public var array: [[String: Any]] { (try? JSONSerialization.jsonObject(with: body) as? [[String: Any]]) ?? [] }
        public subscript(_ name: String) -> String? { HTTPField.Name(name).flatMap { headers[$0] } }
    }

    /// `json`, when given, is the body with `Content-Type: application/json`; otherwise `body` is sent as is.
    /// Fields in `extra` win over the ones these arguments make (a test may send a broken `Authorization`).
    public func send(
        _ method: HTTPRequest.Method, _ uri: String, apikey: String?, bearer: String? = nil, headers extra: HTTPFields = [:],
        json: String? = nil, body: ByteBuffer? = nil
    ) async throws -> Reply {
        var headers = HTTPFields()
        if let apikey { headers[Self.apikey] = apikey }
        if let bearer { headers[.authorization] = "Bearer \(bearer)" }
        var payload = body
        if let json {
            headers[.contentType] = "application/json"
            payload = ByteBuffer(string: json)
        }
        for name in Set(extra.map(\.name)) { headers[name] = nil }
        headers.append(contentsOf: extra)
        return try await client.execute(uri: uri, method: method, headers: headers, body: payload) { response in
            Reply(status: response.status, headers: response.headers, body: Data(response.body.readableBytesView))
        }
    }

    /// Signs in with the password grant and returns the access token.
    public func accessToken(email: String, password: String, apikey: String) async throws -> String {
        let reply = try await send(
            .post, "/auth/v1/token?grant_type=password", apikey: apikey, json: #"{"email":"\#(email)","password":"\#(password)"}"#)
        guard let token = reply.object["access_token"] as? String else {
            throw SignInFailed(email: email, reply: reply.text)
        }
        return token
    }

    public struct SignInFailed: Error, CustomStringConvertible {
        public let email: String
        public let reply: String
        public var description: String { "sign-in of \(email) failed: \(reply)" }
    }

    /// Header fields from names and values (names that are not valid field names are dropped).
    public static func fields(_ pairs: [String: String]) -> HTTPFields {
        var fields = HTTPFields()
        for (name, value) in pairs {
            if let name = HTTPField.Name(name) { fields[name] = value }
        }
        return fields
    }

    static let apikey = HTTPField.Name("apikey")!
}
