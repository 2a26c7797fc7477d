import Foundation
import HTTPTypes
import HummingbirdTesting
import NIOCore
import StriveCore
import StriveTestSupport
import Testing

@Suite("Storage buckets over HTTP")
struct BucketRoutesTests {
    @Test func serviceRoleManagesBucketsOthersAreRefused() async throws {
        let database = try await TestCluster.shared.makeDatabase()
        try await database.withLiveApp { client, _ in
            let service = try await APIKeys.derive(role: .serviceRole, secret: TestCluster.jwtSecret)
            let anon = try await APIKeys.derive(role: .anon, secret: TestCluster.jwtSecret)
            func send(_ method: HTTPRequest.Method, _ path: String, key: String = service, json: String? = nil) async throws -> (
                HTTPResponse.Status, [String: Any], Data
            ) {
                let reply = try await TestHTTP(client).send(method, "/storage/v1/" + path, apikey: key, bearer: key, json: json)
                return (reply.status, reply.object, reply.body)
            }

            let (status, _, body) = try await send(.get, "bucket")
            #expect(status == .ok)
            let buckets = try #require(try JSONSerialization.jsonObject(with: body) as? [[String: Any]])
            #expect(Set(buckets.compactMap { $0["id"] as? String }) == ["attachments", "avatars", "public-assets"])
            let avatars = try #require(buckets.first { $0["id"] as? String == "avatars" })
            #expect(avatars["public"] as? Bool == true)
            #expect(avatars["file_size_limit"] as? Int == 5_242_880)
            #expect(avatars["owner"] as? String == "")
            #expect(avatars["created_at"] is String)

            let refused = try await send(.get, "bucket", key: anon)
            #expect(refused.0 == .forbidden)
            #expect(refused.1["statusCode"] as? String == "403")

            let created = try await send(
                .post, "bucket",
                json: #"{"name":"reports","public":false,"file_size_limit":"2MB","allowed_mime_types":["application/pdf"]}"#)
            #expect(created.0 == .ok)
            #expect(created.1["name"] as? String == "reports")
            #expect(try await send(.post, "bucket", json: #"{"name":"reports"}"#).0 == .conflict)
            #expect(try await send(.post, "bucket", json: #"{"name":"Bad Name!"}"#).0 == .badRequest)
            #expect(try await send(.post, "bucket", json: #"{"name":"x","allowed_mime_types":["not a type"]}"#).0 == .badRequest)

            let fetched = try await send(.get, "bucket/reports")
            #expect(fetched.1["file_size_limit"] as? Int == 2 * 1024 * 1024)
            #expect(fetched.1["allowed_mime_types"] as? [String] == ["application/pdf"])
            #expect(try await send(.put, "bucket/reports", json: #"{"public":true,"file_size_limit":null}"#).0 == .ok)
            let changed = try await send(.get, "bucket/reports")
            #expect(changed.1["public"] as? Bool == true)
            #expect(changed.1["file_size_limit"] is NSNull || changed.1["file_size_limit"] == nil)
            #expect(try await send(.get, "bucket/nope").0 == .notFound)

            // A bucket with objects is not deleted until emptied.
            try await database.withOwnerConnection { connection in
                try await connection.run(
                    "insert into storage.objects (bucket_id, name) values ('reports', 'a/b.pdf')", logger: database.logger)
            }
            let full = try await send(.delete, "bucket/reports")
            #expect(full.0 == .conflict)
            #expect((full.1["message"] as? String)?.contains("empty it first") == true)
            #expect(try await send(.post, "bucket/reports/empty").0 == .ok)
            #expect(try await send(.delete, "bucket/reports").0 == .ok)
            #expect(try await send(.get, "bucket/reports").0 == .notFound)
        }
    }
}
