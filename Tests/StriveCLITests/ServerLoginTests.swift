import Foundation
import StriveTestSupport
import Testing

/// `strive db url --role service|app`: logins for a team's own server code that are not the schema owner,
/// used the way an ORM would — plain connections, one `set_config` per transaction.
@Suite("Server-side logins (strive db url --role)", .capacityBound, .serialized)
struct ServerLoginTests {
    @Test func theAppLoginSeesOnlyItsCallersTenantAndTheServiceLoginCannotChangeTheSchema() async throws {
        let dataDirectory = temporaryPath("strive-logins")
        defer { try? FileManager.default.removeItem(atPath: dataDirectory) }
        let seeded = try await StriveProcess.run(["seed", "--scale", "1", "--data-dir", dataDirectory], timeout: .seconds(120))
        try #require(seeded.status == 0, "\(seeded.stderr)")
        try #require(try await StriveProcess.run(["db", "start", "--data-dir", dataDirectory]).status == 0)
        let owner = try await url(role: "owner", dataDirectory)
        let app = try await url(role: "app", dataDirectory)
        let service = try await url(role: "service", dataDirectory)
        #expect(app.hasPrefix("postgres://strive_app:") && service.hasPrefix("postgres://strive_service:"), "\(app) \(service)")
        // Derived from the JWT secret: asking again gives the same URL, so running code keeps working.
        #expect(try await url(role: "app", dataDirectory) == app)

        let member = try await value(owner, "select id from auth.users where email = 'member@acme.example'")
        let acme = try await value(owner, "select id from public.organizations where slug = 'acme'")
        let globex = try await value(owner, "select id from public.organizations where slug = 'globex'")
        let globexCustomers = try await value(owner, "select count(*) from public.customers where organization_id = '\(globex)'")
        #expect(Int(globexCustomers) ?? 0 > 0)
        let claims = #"select set_config('request.jwt.claims', '{"sub": "\#(member)", "role": "authenticated"}', true);"#

        #expect(try await value(app, "select current_user") == "authenticated")
        // No claims set: no caller, so no tenant's rows.
        #expect(try await value(app, "select count(*) from public.customers") == "0")
        // As Acme's member: Acme's customers, none of Globex's, and no write into Globex.
        let seen = try await value(app, claims + "select string_agg(distinct organization_id::text, ','), count(*) from public.customers")
        #expect(seen.hasPrefix("\(acme)|") && !seen.contains(globex), "\(seen)")
        #expect(try await value(app, claims + "select count(*) from public.customers where organization_id = '\(globex)'") == "0")
        let intrusion = try await psqlResult(
            app, claims + "insert into public.customers (organization_id, name) values ('\(globex)', 'planted')")
        #expect(intrusion.status != 0 && intrusion.stderr.contains("row-level security"), "\(intrusion.stderr)")
        #expect(try await value(owner, "select count(*) from public.customers where name = 'planted'") == "0")
        // The claims are transaction-local: the next transaction is nobody again.
        #expect(try await value(app, "begin; " + claims + "commit; select count(*) from public.customers") == "0")
        // Leaving the default role leaves the session with no rights at all, not more.
        let escaped = try await psqlResult(app, "set role none; select count(*) from public.customers")
        #expect(escaped.status != 0 && escaped.stderr.contains("permission denied"), "\(escaped.stderr)")

        // The service login reads every tenant, but owns nothing and creates nothing.
        #expect(try await value(service, "select current_user") == "service_role")
        #expect(
            try await value(service, "select count(*) from public.customers")
                == (try await value(owner, "select count(*) from public.customers")))
        let ddl = try await psqlResult(service, "create table public.intruder (id int)")
        #expect(ddl.status != 0 && ddl.stderr.contains("permission denied"), "\(ddl.stderr)")
        let dropped = try await psqlResult(service, "drop table public.customers")
        #expect(dropped.status != 0 && dropped.stderr.contains("must be owner"), "\(dropped.stderr)")

        let unknown = try await StriveProcess.run(["db", "url", "--role", "superuser", "--data-dir", dataDirectory])
        #expect(unknown.status != 0 && unknown.stderr.contains("owner"), "\(unknown.stderr)")
        #expect(try await StriveProcess.run(["db", "stop", "--data-dir", dataDirectory]).status == 0)
    }

    private func url(role: String, _ dataDirectory: String) async throws -> String {
        let result = try await StriveProcess.run(["db", "url", "--role", role, "--data-dir", dataDirectory])
        try #require(result.status == 0, "\(result.stderr)")
        return result.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
    }

    /// The last line psql printed: the answer of the last statement (set_config prints its value first).
    private func value(_ url: String, _ sql: String) async throws -> String {
        try await psql(url, sql).split(separator: "\n").last.map(String.init) ?? ""
    }
}
