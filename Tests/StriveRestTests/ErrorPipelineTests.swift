import Foundation
import HTTPTypes
import NIOCore
import StriveTestSupport
import Testing

/// Every answer carries `X-Request-Id`; a failure no handler raised (no route, another method) comes
/// in the shape of the surface the request was for, 405s with `Allow`.
/// One test at a time: its fifteen cases each seed a database and start a server, and all at once beside the other suites they
/// overran the test client's fixed 20 s read timeout in the suite's first minutes.
@Suite("Error pipeline", .serialized)
struct ErrorPipelineTests {
    struct Case: Sendable, CustomTestStringConvertible {
        let method: HTTPRequest.Method
        let path: String
        let status: Int
        /// The keys of the error body, which name the surface's shape.
        let keys: [String]
        var allow: String? = nil
        var testDescription: String { "\(method.rawValue) \(path) → \(status)" }
    }

    static let rest = ["code", "details", "hint", "message"]
    static let storage = ["error", "message", "statusCode"]
    static let auth = ["code", "error_code", "msg"]
    static let ops = ["code", "message"]

    static let cases: [Case] = [
        Case(method: .get, path: "/rest/v1/no_such_table", status: 404, keys: rest),
        Case(method: .get, path: "/rest/v1/tasks/extra/segments", status: 404, keys: rest),
        Case(method: .init("TRACE")!, path: "/rest/v1/tasks", status: 405, keys: rest, allow: "DELETE, GET, HEAD, PATCH, POST"),
        Case(method: .put, path: "/rest/v1/tasks", status: 405, keys: rest, allow: "DELETE, GET, HEAD, PATCH, POST"),
        // Every function answers GET, HEAD and POST (GET and HEAD read-only).
        Case(method: .options, path: "/rest/v1/rpc/mark_all_notifications_read", status: 405, keys: rest, allow: "GET, HEAD, POST"),
        // GET runs any function, read-only: one that writes fails with 25006, as in PostgREST.
        Case(method: .get, path: "/rest/v1/rpc/mark_all_notifications_read", status: 405, keys: rest),
        Case(method: .get, path: "/rest/v1/tasks?id=eq.nope", status: 400, keys: rest),
        Case(method: .get, path: "/storage/v1/nothing/here", status: 404, keys: storage),
        Case(method: .put, path: "/storage/v1/object/list/avatars", status: 405, keys: storage, allow: "POST"),
        Case(method: .get, path: "/storage/v1/bucket/none", status: 404, keys: storage),
        Case(method: .get, path: "/auth/v1/nothing", status: 404, keys: auth),
        Case(method: .delete, path: "/auth/v1/token", status: 405, keys: auth, allow: "POST"),
        Case(method: .post, path: "/auth/v1/token?grant_type=nope", status: 400, keys: auth),
        Case(method: .init("TRACE")!, path: "/health", status: 405, keys: ops, allow: "GET, HEAD"),
        Case(method: .get, path: "/no/such/route", status: 404, keys: ops),
    ]

    @Test(arguments: cases)
    func failuresAnswerInTheSurfacesShapeWithARequestID(_ testCase: Case) async throws {
        try await RestHarness.run { harness in
            let headers: HTTPFields = [
                HTTPField.Name("apikey")!: harness.serviceKey, .authorization: "Bearer \(harness.serviceKey)",
                HTTPField.Name("X-Request-Id")!: "probe-1",
            ]
            try await harness.client.execute(uri: testCase.path, method: testCase.method, headers: headers, body: nil) { response in
                #expect(Int(response.status.code) == testCase.status)
                #expect(response.headers[HTTPField.Name("X-Request-Id")!] == "probe-1")
                #expect(response.headers[HTTPField.Name("Allow")!] == testCase.allow)
                let body = try #require(try JSONSerialization.jsonObject(with: Data(response.body.readableBytesView)) as? [String: Any])
                #expect(body.keys.sorted() == testCase.keys, "\(body)")
            }
        }
    }

    /// Successful answers carry it too, generated when the client sent none.
    @Test func successesCarryARequestID() async throws {
        try await RestHarness.run { harness in
            let reply = try await harness.send(.get, "tasks?select=id&limit=1", token: harness.serviceKey)
            #expect(reply.status == .ok)
            #expect(UUID(uuidString: reply.headers[HTTPField.Name("X-Request-Id")!] ?? "") != nil)
        }
    }
}
