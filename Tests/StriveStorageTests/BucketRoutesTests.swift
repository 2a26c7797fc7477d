import Foundation
import HTTPTypes
import HummingbirdTesting
import NIOCore
import StriveCore
import StriveTestSupport
import Testing

@Suite("Storage buckets over HTTP")
struct BucketRoutesTests {
    @Test func theServiceRoleManagesBuckets() async throws {
        let database = try await TestCluster.shared.makeDatabase()
        try await database.withLiveApp { client, _ in
            let service = try await APIKeys.derive(role: .serviceRole, secret: TestCluster.jwtSecret)
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
            #expect(avatars["type"] as? String == "STANDARD")
            // storage-js's listBuckets options: a page, a name search, a sort.
            let (_, _, page) = try await send(.get, "bucket?limit=2&offset=1&sortColumn=id&sortOrder=desc")
            let paged = try #require(try JSONSerialization.jsonObject(with: page) as? [[String: Any]])
            #expect(paged.compactMap { $0["id"] as? String } == ["avatars", "attachments"])
            let (_, _, found) = try await send(.get, "bucket?search=VATA")
            #expect((try JSONSerialization.jsonObject(with: found) as? [[String: Any]])?.compactMap { $0["id"] as? String } == ["avatars"])
            #expect(try await send(.get, "bucket?sortColumn=owner").0 == .badRequest)
            #expect(try await send(.get, "bucket?search=%zz").0 == .badRequest, "malformed percent-encoding is refused, not ignored")
            #expect(try await send(.get, "bucket?limit=0").0 == .badRequest)

            let created = try await send(
                .post, "bucket",
                json: #"{"name":"reports","public":false,"file_size_limit":"2MB","allowed_mime_types":["application/pdf"]}"#)
            #expect(created.0 == .ok)
            #expect(created.1["name"] as? String == "reports")
            #expect(try await send(.post, "bucket", json: #"{"name":"reports"}"#).0 == .conflict)
            #expect(try await send(.post, "bucket", json: #"{"name":"Bad Name!"}"#).0 == .badRequest)
            #expect(try await send(.post, "bucket", json: #"{"name":"x","allowed_mime_types":["not a type"]}"#).0 == .badRequest)

            let fetched = try await send(.get, "bucket/reports")
            // Supabase's decimal units: 2MB is 2,000,000 bytes.
            #expect(fetched.1["file_size_limit"] as? Int == 2_000_000)
            #expect(fetched.1["allowed_mime_types"] as? [String] == ["application/pdf"])
            #expect(try await send(.put, "bucket/reports", json: #"{"public":true,"file_size_limit":null}"#).0 == .ok)
            let changed = try await send(.get, "bucket/reports")
            #expect(changed.1["public"] as? Bool == true)
            #expect(changed.1["file_size_limit"] is NSNull, "an unset limit is null, not left out")
            #expect(try await send(.get, "bucket/nope").0 == .notFound)

            // A bucket with objects is not deleted until emptied.
            try await database.withOwnerConnection { connection in
                try await connection.run(
                    "insert into storage.objects (bucket_id, name) values ('reports', 'a/b.pdf')", logger: database.logger)
            }
            let full = try await send(.delete, "bucket/reports")
            #expect(full.0 == .conflict)
            #expect(full.1["error"] as? String == "ResourceNotEmpty")
            #expect((full.1["message"] as? String)?.contains("empty it first") == true)
            #expect(try await send(.post, "bucket/reports/empty").0 == .ok)
            #expect(try await send(.delete, "bucket/reports").0 == .ok)
            #expect(try await send(.get, "bucket/reports").0 == .notFound)
        }
    }

    /// Bucket management is the policies' decision, as in Supabase: with only the built-in ones, anon sees
    /// no bucket and creates, changes or deletes none; a project policy opens creation to signed-in users.
    @Test func policiesOnBucketsDecideWhoManagesThem() async throws {
        let database = try await TestCluster.shared.makeDatabase()
        try await database.withLiveApp { client, _ in
            let anon = try await APIKeys.derive(role: .anon, secret: TestCluster.jwtSecret)
            let user = UUID()
            try await database.withOwnerConnection { connection in
                try await connection.run(
                    "insert into auth.users (id, email) values (\(user), \(user.uuidString.lowercased() + "@example.com"))",
                    logger: database.logger)
            }
            let token = try await TenantFixture.accessToken(for: user, on: database)
            func send(_ method: HTTPRequest.Method, _ path: String, bearer: String, json: String? = nil) async throws -> TestHTTP.Reply {
                try await TestHTTP(client).send(method, "/storage/v1/" + path, apikey: anon, bearer: bearer, json: json)
            }

            let listed = try await send(.get, "bucket", bearer: anon)
            #expect(listed.status == .ok)
            #expect(listed.text == "[]", "the policies hide every bucket from anon")
            #expect(try await send(.get, "bucket/avatars", bearer: anon).status == .notFound)
            let refused = try await send(.post, "bucket", bearer: token, json: #"{"name":"mine"}"#)
            #expect(refused.status == .forbidden)
            #expect(refused.object["message"] as? String == "new row violates row-level security policy")
            #expect(try await send(.put, "bucket/avatars", bearer: token, json: #"{"public":false}"#).status == .notFound)
            #expect(try await send(.delete, "bucket/public-assets", bearer: anon).status == .notFound)

            try await database.withOwnerConnection { connection in
                try await connection.run(
                    """
                    create policy users_create_their_buckets on storage.buckets for insert to authenticated
                        with check (owner = (select auth.uid()))
                    """, logger: database.logger)
                try await connection.run(
                    """
                    create policy users_see_their_buckets on storage.buckets for select to authenticated
                        using (owner = (select auth.uid()))
                    """, logger: database.logger)
            }
            #expect(try await send(.post, "bucket", bearer: token, json: #"{"name":"mine"}"#).status == .ok)
            let mine = try await send(.get, "bucket/mine", bearer: token)
            #expect(mine.object["owner"] as? String == user.uuidString.lowercased())
            #expect(try await send(.get, "bucket/mine", bearer: anon).status == .notFound)
        }
    }
}
