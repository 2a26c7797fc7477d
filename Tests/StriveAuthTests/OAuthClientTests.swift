import Foundation
import HTTPTypes
import PostgresNIO
import StriveCore
import StriveTestSupport
import Testing

/// The admin API for the applications that may sign users in with Strive (Supabase Auth's OAuth 2.1
/// server clients), as supabase-py's `auth.admin.oauth` calls it.
@Suite("OAuth clients (admin API)")
struct OAuthClientTests {
    func withAuth(_ body: @Sendable (AuthClient, TestDatabase) async throws -> Void) async throws {
        let database = try await TestCluster.shared.makeDatabase()
        try await database.withLiveApp { client, services in
            try await body(try await AuthClient(client, services), database)
        }
    }

    @Test func aRegisteredClientIsListedChangedGivenANewSecretAndDeleted() async throws {
        try await withAuth { auth, database in
            func admin(_ method: HTTPRequest.Method, _ path: String, _ json: String? = nil) async throws -> TestHTTP.Reply {
                try await auth.send(method, path, json: json, apikey: auth.serviceKey, bearer: auth.serviceKey)
            }
            let created = try await admin(
                .post, "/admin/oauth/clients", #"{"client_name":"Reports app","redirect_uris":["https://reports.example/callback"]}"#)
            #expect(created.status == .created, "\(created.text)")
            let id = try #require(created.object["client_id"] as? String)
            let secret = try #require(created.object["client_secret"] as? String)
            #expect(created.object["client_type"] as? String == "confidential")
            #expect(created.object["token_endpoint_auth_method"] as? String == "client_secret_basic")
            #expect(created.object["grant_types"] as? [String] == ["authorization_code", "refresh_token"])
            #expect(created.object["scope"] is NSNull, "optional fields are null, not left out")
            let stored = try await database.withOwnerConnection { connection in
                try await connection.query(
                    "select client_secret_hash from auth.oauth_clients where id = \(UUID(uuidString: id))", logger: database.logger
                )
                .collect().first?.decode(String.self)
            }
            #expect(stored != nil && stored != secret, "only the secret's hash is kept")

            let listed = try await admin(.get, "/admin/oauth/clients")
            #expect((listed.object["clients"] as? [[String: Any]])?.contains { $0["client_id"] as? String == id } == true)
            #expect(listed["X-Total-Count"] == "1" && listed["Link"]?.contains("rel=\"last\"") == true)
            let fetched = try await admin(.get, "/admin/oauth/clients/\(id)")
            #expect(fetched.object["client_name"] as? String == "Reports app" && fetched.object["client_secret"] == nil)

            let renamed = try await admin(.put, "/admin/oauth/clients/\(id)", #"{"client_name":"Reports"}"#)
            #expect(renamed.object["client_name"] as? String == "Reports")
            #expect(renamed.object["redirect_uris"] as? [String] == ["https://reports.example/callback"], "what was not sent stays")
            let regenerated = try await admin(.post, "/admin/oauth/clients/\(id)/regenerate_secret")
            let newSecret = try #require(regenerated.object["client_secret"] as? String)
            #expect(newSecret != secret)

            #expect(try await admin(.delete, "/admin/oauth/clients/\(id)").status == .noContent)
            let gone = try await admin(.get, "/admin/oauth/clients/\(id)")
            #expect(gone.status == .notFound && gone.errorCode == "oauth_client_not_found")
        }
    }

    @Test func aPublicClientHasNoSecretAndBadRegistrationsAreRefused() async throws {
        try await withAuth { auth, _ in
            func register(_ json: String, key: String? = nil) async throws -> TestHTTP.Reply {
                try await auth.send(
                    .post, "/admin/oauth/clients", json: json, apikey: key ?? auth.serviceKey, bearer: key ?? auth.serviceKey)
            }
            let spa = try await register(
                #"{"client_name":"SPA","redirect_uris":["http://localhost:5173/cb"],"token_endpoint_auth_method":"none"}"#)
            #expect(spa.status == .created && spa.object["client_type"] as? String == "public" && spa.object["client_secret"] == nil)
            let id = try #require(spa.object["client_id"] as? String)
            let regenerate = try await auth.send(
                .post, "/admin/oauth/clients/\(id)/regenerate_secret", apikey: auth.serviceKey, bearer: auth.serviceKey)
            #expect(regenerate.status == .badRequest, "\(regenerate.text)")

            for refused in [
                #"{"client_name":"x","redirect_uris":[]}"#, #"{"client_name":"x","redirect_uris":["http://evil.example/cb"]}"#,
                #"{"client_name":"x","redirect_uris":["https://a.example/cb#frag"]}"#, #"{"redirect_uris":["https://a.example/cb"]}"#,
                #"{"client_name":"x","redirect_uris":["https://a.example/cb"],"grant_types":["password"]}"#,
                #"{"client_name":"x","redirect_uris":["https://a.example/cb"],"token_endpoint_auth_method":"private_key_jwt"}"#,
            ] {
                let answer = try await register(refused)
                #expect(answer.status == .badRequest && answer.errorCode == "validation_failed", "\(refused): \(answer.text)")
            }
            #expect(
                try await register(#"{"client_name":"x","redirect_uris":["https://a.example/cb"]}"#, key: auth.anonKey).status == .forbidden
            )
            let malformedID = try await auth.send(.get, "/admin/oauth/clients/not-a-uuid", apikey: auth.serviceKey, bearer: auth.serviceKey)
            #expect(malformedID.status == .notFound)
        }
    }
}
