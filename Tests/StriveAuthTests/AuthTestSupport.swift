import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import StriveAuth
import StriveCore
import StriveIdentity
import StriveServer
import StriveTestSupport
import Testing

/// A thin Supabase-client stand-in: the requests supabase-js sends, over real HTTP.
struct AuthClient: Sendable {
    let client: any TestClientProtocol
    let services: StriveApplication.Services
    let anonKey: String
    let serviceKey: String

    init(_ client: any TestClientProtocol, _ services: StriveApplication.Services) async throws {
        self.client = client
        self.services = services
        anonKey = try await APIKeys.derive(role: .anon, secret: TestCluster.jwtSecret)
        serviceKey = try await APIKeys.derive(role: .serviceRole, secret: TestCluster.jwtSecret)
    }

    typealias Reply = TestHTTP.Reply

    func send(
        _ method: HTTPRequest.Method, _ path: String, json body: String? = nil, apikey: String? = nil, bearer: String? = nil,
        headers extra: HTTPFields = [:], rawBody: ByteBuffer? = nil
    ) async throws -> Reply {
        try await TestHTTP(client).send(
            method, "/auth/v1" + path, apikey: apikey, bearer: bearer, headers: extra, json: body, body: rawBody)
    }

    func signUp(_ email: String, password: String = "correct horse battery", data: String = "{}") async throws -> Reply {
        try await send(.post, "/signup", json: #"{"email":"\#(email)","password":"\#(password)","data":\#(data)}"#, apikey: anonKey)
    }

    func signIn(_ email: String, password: String = "correct horse battery") async throws -> Reply {
        try await send(.post, "/token?grant_type=password", json: #"{"email":"\#(email)","password":"\#(password)"}"#, apikey: anonKey)
    }

    func refresh(_ token: String) async throws -> Reply {
        try await send(.post, "/token?grant_type=refresh_token", json: #"{"refresh_token":"\#(token)"}"#, apikey: anonKey)
    }

    /// Signs up and returns the session.
    func session(_ email: String) async throws -> TokenResponse {
        let reply = try await signUp(email)
        #expect(reply.status == .ok, "sign-up of \(email): \(String(decoding: reply.body, as: UTF8.self))")
        return try reply.decode(TokenResponse.self)
    }
}

/// Decodes a JWT's payload without verifying it (the server's answer is what is under test).
func claims(of token: String) throws -> [String: Any] {
    let parts = token.split(separator: ".")
    try #require(parts.count == 3)
    var base64 = String(parts[1]).replacingOccurrences(of: "-", with: "+").replacingOccurrences(of: "_", with: "/")
    base64 += String(repeating: "=", count: (4 - base64.count % 4) % 4)
    let data = try #require(Data(base64Encoded: base64))
    return try #require(JSONSerialization.jsonObject(with: data) as? [String: Any])
}

func uniqueEmail(_ prefix: String = "user") -> String {
    "\(prefix)-\(UUID().uuidString.prefix(8).lowercased())@example.com"
}

extension TestHTTP.Reply {
    var json: [String: Any] { object }

    /// Supabase Auth's legacy error shape: `{code: <status>, error_code, msg}`.
    var errorCode: String? { object["error_code"] as? String }

    /// Auth's dates are ISO 8601 with fractional seconds.
    func decode<T: Decodable>(_ type: T.Type) throws -> T {
        let decoder = JSONDecoder()
        decoder.dateDecodingStrategy = .custom { decoder in
            let text = try decoder.singleValueContainer().decode(String.self)
            guard let date = try? Date(text, strategy: Date.ISO8601FormatStyle(includingFractionalSeconds: true)) else {
                throw DecodingError.dataCorrupted(.init(codingPath: decoder.codingPath, debugDescription: "not ISO 8601: \(text)"))
            }
            return date
        }
        return try decoder.decode(T.self, from: body)
    }
}
