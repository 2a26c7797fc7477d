import Foundation
import HTTPTypes
import HummingbirdTesting
import StriveCore
import StriveServer
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
            for path in ["/admin/v1/verify", "/admin/v1/migrations", "/admin/v1/backups", "/admin/v1/errors", "/admin/v1/tables"] {
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
            let tables = try await http.send(.get, "/admin/v1/tables", apikey: anon, bearer: tokens[.platformAdmin]).array
            let customers = try #require(tables.first { $0["schema"] as? String == "public" && $0["name"] as? String == "customers" })
            #expect(customers["rls_enabled"] as? Bool == true && customers["rls_forced"] as? Bool == true)
            let policies = (customers["policies"] as? [[String: Any]])?.compactMap { $0["command"] as? String } ?? []
            #expect(Set(policies) == ["SELECT", "INSERT", "UPDATE", "DELETE"], "\(policies)")
            #expect(!tables.contains { ($0["schema"] as? String)?.hasPrefix("pg_") == true })
        }
    }

    /// The console administers with the admin's own token: the auth admin API and realtime's counters take a
    /// platform admin as they take the service role, and nobody else.
    @Test func platformAdminsAdministerUsersAndReadRealtimeCountersWithTheirOwnToken() async throws {
        let database = try await TestCluster.shared.makeDatabase()
        let fixture = try await database.withOwnerConnection { try await TenantFixture.create(on: $0, logger: database.logger) }
        let tokens = try await fixture.accessTokens(on: database)
        let anon = try await APIKeys.derive(role: .anon, secret: TestCluster.jwtSecret)
        try await database.withLiveApp { client, _ in
            let http = TestHTTP(client)
            let member = try #require(fixture.userID(of: .member)).uuidString.lowercased()
            for actor in [TenantFixture.Actor.member, .owner] {
                let refused = try await http.send(.get, "/auth/v1/admin/users", apikey: anon, bearer: tokens[actor])
                #expect(refused.status == .forbidden && refused.text.contains("not_admin"), "\(actor): \(refused.text)")
                #expect(try await http.send(.get, "/realtime/v1/stats", apikey: anon, bearer: tokens[actor]).status == .forbidden)
            }
            let listed = try await http.send(.get, "/auth/v1/admin/users?per_page=100", apikey: anon, bearer: tokens[.platformAdmin])
            #expect(
                listed.status == .ok && (listed.object["users"] as? [[String: Any]])?.contains { $0["id"] as? String == member } == true)
            let banned = try await http.send(
                .put, "/auth/v1/admin/users/\(member)", apikey: anon, bearer: tokens[.platformAdmin], json: #"{"ban_duration":"1h"}"#)
            #expect(banned.status == .ok && banned.object["banned_until"] is String, "\(banned.text)")
            let stats = try await http.send(.get, "/realtime/v1/stats", apikey: anon, bearer: tokens[.platformAdmin])
            #expect(stats.status == .ok && stats.object["sockets"] is Int, "\(stats.text)")
        }
    }

    /// The console's page, style and script come from the binary, under a policy that runs no inline script.
    @Test func theConsoleIsServedFromTheBinaryUnderAStrictContentSecurityPolicy() async throws {
        let database = try await TestCluster.shared.makeDatabase()
        let anon = try await APIKeys.derive(role: .anon, secret: TestCluster.jwtSecret)
        try await database.withLiveApp { client, _ in
            let http = TestHTTP(client)
            let page = try await http.send(.get, "/console", apikey: nil)
            #expect(page.status == .ok && page["Content-Type"]?.hasPrefix("text/html") == true)
            #expect(page.text.contains(#"<main id="main""#) && page.text.contains(#"src="/console/console.js""#))
            #expect(page["Content-Security-Policy"]?.contains("script-src 'self'") == true)
            #expect(page["Content-Security-Policy"]?.contains("unsafe-inline") == false)
            let script = try await http.send(.get, "/console/console.js", apikey: nil)
            #expect(script["Content-Type"]?.hasPrefix("text/javascript") == true && script.text.contains("/admin/v1/verify"))
            #expect(!script.text.contains("innerHTML"), "values go on the page as text only")
            #expect(try await http.send(.get, "/console/console.css", apikey: nil).status == .ok)
            let config = try await http.send(.get, "/console/config.json", apikey: nil)
            #expect(config.object["anon_key"] as? String == anon)
        }
    }

    @Test func recentErrorsKeepTheNewestUpToTheirCapacity() {
        let recent = RecentErrors(capacity: 3)
        for status in 500..<505 {
            recent.record(.init(at: Date(), requestID: "r\(status)", method: "GET", path: "/x", status: status, message: "m"))
        }
        #expect(recent.newestFirst.map(\.status) == [504, 503, 502])
    }
}
