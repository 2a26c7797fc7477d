import Foundation
import HTTPTypes
import HummingbirdTesting
import StriveCore
import StriveTestSupport
import Testing

/// `/admin/v1`: the operator's reads, for the service role and platform admins only — the one path on
/// which they run as the owner, so who reaches it is what is under test.
@Suite("Admin routes")
struct AdminRoutesTests {
    @Test func onlyTheServiceRoleAndPlatformAdminsReadTheAuditMigrationsAndBackups() async throws {
        let database = try await TestCluster.shared.makeDatabase()
        let fixture = try await database.withOwnerConnection { try await TenantFixture.create(on: $0, logger: database.logger) }
        let tokens = try await fixture.accessTokens(on: database)
        let anon = try await APIKeys.derive(role: .anon, secret: TestCluster.jwtSecret)
        let service = try await APIKeys.derive(role: .serviceRole, secret: TestCluster.jwtSecret)
        try await database.withLiveApp { client, _ in
            let http = TestHTTP(client)
            for path in ["/admin/v1/verify", "/admin/v1/migrations", "/admin/v1/backups"] {
                #expect(try await http.send(.get, path, apikey: anon).status == .unauthorized, "\(path) anon")
                for actor in [TenantFixture.Actor.owner, .admin, .member] {
                    let refused = try await http.send(.get, path, apikey: anon, bearer: tokens[actor])
                    #expect(refused.status == .forbidden && refused.text.contains("platform admin"), "\(path) \(actor): \(refused.text)")
                }
                #expect(try await http.send(.get, path, apikey: service, bearer: service).status == .ok, "\(path) service")
                #expect(
                    try await http.send(.get, path, apikey: anon, bearer: tokens[.platformAdmin]).status == .ok, "\(path) platform admin")
            }
            let audit = try await http.send(.get, "/admin/v1/verify", apikey: service, bearer: service)
            #expect(audit.object["score"] as? Int == 100 && (audit.object["lints_run"] as? [Any])?.count ?? 0 >= 36, "\(audit.text)")
            let migrations = try await http.send(.get, "/admin/v1/migrations", apikey: service, bearer: service)
            #expect(migrations.object["current"] as? Bool == true)
            let entries = migrations.object["migrations"] as? [[String: Any]] ?? []
            #expect(
                entries.contains { $0["name"] as? String == "backups" && $0["state"] as? String == "applied" },
                "\(migrations.text.prefix(500))")
            #expect(try await http.send(.get, "/admin/v1/backups", apikey: service, bearer: service).text == "[]")
        }
    }
}
