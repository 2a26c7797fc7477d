import Foundation
import HTTPTypes
import OpenAPIKit
import StriveTestSupport
import Testing

@Suite("OpenAPI document")
struct OpenAPITests {
    @Test func describesEveryTableAndFunctionAndValidates() async throws {
        let database = try await TestCluster.shared.makeDatabase()
        try await database.withLiveApp { client, services in
            let data = try await client.execute(uri: "/openapi.json", method: .get) { response in
                #expect(response.status == .ok)
                return Data(response.body.readableBytesView)
            }
            let document = try JSONDecoder().decode(OpenAPI.Document.self, from: data)
            try document.validate()
            let paths = Set(document.paths.keys.map(\.rawValue))
            let schema = try await services.rest.schema.current
            for table in schema.tables.keys { #expect(paths.contains("/rest/v1/\(table)"), "missing \(table)") }
            for function in schema.functions.keys { #expect(paths.contains("/rest/v1/rpc/\(function)"), "missing rpc \(function)") }
            #expect(schema.tables.count == 23)
            #expect(
                paths.isSuperset(of: ["/health", "/ready", "/auth/v1/signup", "/auth/v1/token", "/rest/v1/rpc/mark_notifications_read"]))
            let tasks = try #require(document.components.schemas["tasks"])
            #expect(tasks.objectContext?.properties["title"] != nil)
        }
    }
}
