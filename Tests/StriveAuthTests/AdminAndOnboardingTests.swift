import Foundation
import HTTPTypes
import PostgresNIO
import StriveAuth
import StriveDatabase
import StriveIdentity
import StriveTestSupport
import Testing

@Suite("Auth administration and onboarding")
struct AdminAndOnboardingTests {
    @Test func adminUsersNeedTheServiceRole() async throws {
        let database = try await TestCluster.shared.makeDatabase()
        try await database.withLiveApp { client, services in
            let auth = try await AuthClient(client, services)
            let user = try await auth.session(uniqueEmail())
            let service = auth.serviceKey

            for (apikey, bearer) in [(auth.anonKey, nil), (auth.anonKey, user.access_token)] as [(String, String?)] {
                let refused = try await auth.send(.get, "/admin/users", apikey: apikey, bearer: bearer)
                #expect(refused.status == .forbidden)
                #expect(refused.errorCode == "not_admin")
                let create = try await auth.send(.post, "/admin/users", json: #"{"email":"x@example.com"}"#, apikey: apikey, bearer: bearer)
                #expect(create.errorCode == "not_admin")
            }

            let email = uniqueEmail("admin-made")
            let created = try await auth.send(
                .post, "/admin/users",
                json:
                    #"{"email":"\#(email)","password":"a long password","email_confirm":true,"user_metadata":{"name":"Made"},"app_metadata":{"tier":"gold"}}"#,
                apikey: service, bearer: service
            )
            #expect(created.status == .ok)
            let made = try created.decode(UserJSON.self)
            #expect(made.email == email)
            #expect(made.email_confirmed_at != nil)
            #expect(made.app_metadata.objectValue?["tier"] == .string("gold"))
            #expect(made.app_metadata.objectValue?["provider"] == .string("email"))
            #expect(try await auth.signIn(email, password: "a long password").status == .ok)

            let duplicate = try await auth.send(.post, "/admin/users", json: #"{"email":"\#(email)"}"#, apikey: service, bearer: service)
            #expect(duplicate.errorCode == "email_exists")

            let fetched = try await auth.send(.get, "/admin/users/\(made.id)", apikey: service, bearer: service)
            #expect(try fetched.decode(UserJSON.self).id == made.id)
            #expect(try await auth.send(.get, "/admin/users/\(UUID())", apikey: service, bearer: service).errorCode == "user_not_found")
            #expect(try await auth.send(.get, "/admin/users/not-a-uuid", apikey: service, bearer: service).status == .notFound)

            let banned = try await auth.send(
                .put, "/admin/users/\(made.id)", json: #"{"ban_duration":"24h","user_metadata":{"name":"Renamed"}}"#, apikey: service,
                bearer: service)
            #expect(banned.status == .ok)
            #expect(try banned.decode(UserJSON.self).user_metadata.objectValue?["name"] == .string("Renamed"))
            #expect(try await auth.signIn(email, password: "a long password").errorCode == "user_banned")
            let badBan = try await auth.send(
                .put, "/admin/users/\(made.id)", json: #"{"ban_duration":"forever"}"#, apikey: service, bearer: service)
            #expect(badBan.errorCode == "validation_failed")
            // A zero duration is a duration (GoTrue's time.ParseDuration): the ban ends at once.
            #expect(
                try await auth.send(.put, "/admin/users/\(made.id)", json: #"{"ban_duration":"0m"}"#, apikey: service, bearer: service)
                    .status == .ok)
            #expect(
                try await auth.send(.put, "/admin/users/\(made.id)", json: #"{"ban_duration":"none"}"#, apikey: service, bearer: service)
                    .status == .ok)
            #expect(try await auth.signIn(email, password: "a long password").status == .ok)

            for _ in 0..<3 { _ = try await auth.session(uniqueEmail("page")) }
            let page = try await auth.send(.get, "/admin/users?page=2&per_page=2", apikey: service, bearer: service)
            #expect(page.status == .ok)
            let total = try #require(page.headers[HTTPField.Name("X-Total-Count")!].flatMap { Int($0) })
            #expect(total >= 5)
            #expect(try page.decode(UserListResponse.self).users.count == 2)
            #expect(page.headers[HTTPField.Name("Link")!]?.contains("rel=\"last\"") == true)
            #expect(try await auth.send(.get, "/admin/users?per_page=0", apikey: service, bearer: service).errorCode == "validation_failed")
            // Empty values are the defaults, as GoTrue reads them (supabase-py sends `?page=&per_page=`).
            let defaults = try await auth.send(.get, "/admin/users?page=&per_page=", apikey: service, bearer: service)
            #expect(defaults.status == .ok, "\(defaults.body)")
            #expect(try defaults.decode(UserListResponse.self).users.count >= 5)

            let deleted = try await auth.send(.delete, "/admin/users/\(made.id)", apikey: service, bearer: service)
            #expect(deleted.status == .ok)
            #expect(try await auth.send(.delete, "/admin/users/\(made.id)", apikey: service, bearer: service).errorCode == "user_not_found")
            #expect(try await auth.signIn(email, password: "a long password").errorCode == "invalid_credentials")
        }
    }

    @Test func aNewUserCreatesAnOrganizationAndTheTokenSelectsTheActiveOne() async throws {
        let database = try await TestCluster.shared.makeDatabase()
        try await database.withLiveApp { client, services in
            let auth = try await AuthClient(client, services)
            let email = uniqueEmail("founder")
            let session = try await auth.session(email)
            let logger = database.logger

            func identity(_ token: String) async throws -> RequestIdentity {
                try await Caller.resolve(
                    headers: [HTTPField.Name("apikey")!: auth.anonKey, .authorization: "Bearer \(token)"], tokens: services.auth.tokens
                ).identity(method: "POST", path: "/rest/v1/rpc/create_organization")
            }
            func createOrganization(_ slug: String, as token: String) async throws -> UUID? {
                try await services.database.withRequestTransaction(try await identity(token)) { connection in
                    try await connection.query("select id from public.create_organization(\(slug), \(slug))", logger: logger)
                        .collect().first?.decode(UUID.self)
                }
            }
            let first = try #require(
                try await createOrganization("first-\(UUID().uuidString.prefix(6).lowercased())", as: session.access_token))
            let second = try #require(
                try await createOrganization("second-\(UUID().uuidString.prefix(6).lowercased())", as: session.access_token))

            func activeOrganization(_ token: String) async throws -> UUID? {
                try await services.database.withRequestTransaction(try await identity(token)) { connection in
                    try await connection.query("select app.current_user_org(), app.org_role(app.current_user_org())::text", logger: logger)
                        .collect().first?.decode((UUID?, String?).self).0
                }
            }
            #expect(try await activeOrganization(session.access_token) == first, "the earliest membership by default")

            let service = auth.serviceKey
            let update = try await auth.send(
                .put, "/admin/users/\(session.user.id)",
                json: #"{"app_metadata":{"organization_id":"\#(second.uuidString.lowercased())"}}"#,
                apikey: service, bearer: service)
            #expect(update.status == .ok)
            let renewed = try await auth.refresh(session.refresh_token).decode(TokenResponse.self)
            let claimed = try claims(of: renewed.access_token)["app_metadata"] as? [String: Any]
            #expect(claimed?["organization_id"] as? String == second.uuidString.lowercased())
            #expect(try await activeOrganization(renewed.access_token) == second)

            // The last OWNER cannot be deleted out from under an organization: a clear 422, nothing removed.
            let refused = try await auth.send(.delete, "/admin/users/\(session.user.id)", apikey: service, bearer: service)
            #expect(refused.status == .unprocessableContent)
            #expect((refused.json["msg"] as? String)?.contains("must keep an OWNER") == true)
            #expect(try await auth.send(.get, "/user", apikey: auth.anonKey, bearer: renewed.access_token).status == .ok)
        }
    }
}
