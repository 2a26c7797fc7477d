import Foundation
import Hummingbird
import Logging
import NIOCore
import StriveBackup
import StriveCore
import StriveDatabase
import StriveIdentity
import StriveStorage

/// `/admin/v1`: what an operator reads about the deployment — the security audit, migrations, backups,
/// storage's uploads in progress and image cache, this instance's recent server errors.
/// For the service role, or a user whose platform role is ADMIN or SUPER_ADMIN (`app.is_admin()`,
/// asked under the user's own identity). The reads themselves run on the owner's admin connection: they
/// are catalog and bookkeeping queries no request role may make, and this is their one named path.
struct AdminRoutes: Sendable {
    let database: Database
    let migrator: Migrator
    let storage: StorageService
    let recentErrors: RecentErrors
    let logger: Logger

    func register(on router: some RouterMethods<StriveRequestContext>) {
        // The service role, or a signed-in platform admin; anyone else gets 401/403 and nothing is read.
        let group = router.group("admin/v1").add(
            middleware: CallerScope<StriveRequestContext> { [database] caller, request, _ in
                if caller.role == .anon {
                    throw StriveHTTPError(
                        status: .unauthorized, code: "unauthorized", message: "needs a platform admin's token or the service role key")
                }
                guard try await caller.isAdministrator(on: database, method: "GET", path: request.uri.path) else {
                    throw StriveHTTPError(status: .forbidden, code: "forbidden", message: "needs a platform admin or the service role key")
                }
            })
        group.get("verify") { request, context in try await verify(request, context) }
        group.get("migrations") { request, context in try await migrations(request, context) }
        group.get("backups") { request, context in try await backups(request, context) }
        group.get("tables") { request, context in try await tables(request, context) }
        group.get("errors") { _, _ in try Self.json(recentErrors.newestFirst) }
        group.get("storage") { _, _ in try Self.json(try await storage.statistics()) }
        group.get("background") { request, context in try await background(request, context) }
    }

    func verify(_ request: Request, _ context: StriveRequestContext) async throws -> Response {
        let report = try await database.withAdminConnection { connection in
            try await SchemaAudit.run(on: connection, logger: context.logger)
        }
        return try Self.json(report)
    }

    struct MigrationsJSON: Encodable {
        struct Entry: Encodable {
            let name: String
            let kind: String
            let state: String
        }
        let current: Bool
        let migrations: [Entry]
        let problems: [String]
    }

    func migrations(_ request: Request, _ context: StriveRequestContext) async throws -> Response {
        let status = try await database.withAdminConnection { connection in
            try await migrator.status(on: connection, logger: context.logger)
        }
        let applied = status.applied.map { MigrationsJSON.Entry(name: $0.name, kind: "built_in", state: "applied") }
        let project = status.projectApplied.map { MigrationsJSON.Entry(name: $0, kind: "project", state: "applied") }
        let pending =
            status.pending.map { MigrationsJSON.Entry(name: $0.fileName, kind: "built_in", state: "pending") }
            + status.projectPending.map { MigrationsJSON.Entry(name: $0.fileName, kind: "project", state: "pending") }
        return try Self.json(
            MigrationsJSON(
                current: status.isCurrent, migrations: applied + project + pending, problems: status.problems.map(\.description)))
    }

    struct TableJSON: Encodable {
        let schema: String
        let name: String
        let rlsEnabled: Bool
        let rlsForced: Bool
        /// The planner's estimate (`reltuples`), not a count: cheap on any size of table.
        let estimatedRows: Int64
        let policies: JSONValue
    }

    /// Every table outside PostgreSQL's own schemas: whether row-level security is on and forced, and its
    /// policies as `pg_policies` states them.
    func tables(_ request: Request, _ context: StriveRequestContext) async throws -> Response {
        let tables = try await database.withAdminConnection { connection in
            try await connection.rows(
                """
                select n.nspname::text, c.relname::text, c.relrowsecurity, c.relforcerowsecurity, greatest(c.reltuples, 0)::bigint,
                       coalesce((select json_agg(json_build_object(
                                    'name', p.policyname, 'command', p.cmd, 'roles', p.roles, 'permissive', p.permissive,
                                    'using', p.qual, 'with_check', p.with_check) order by p.policyname)
                                 from pg_catalog.pg_policies p where p.schemaname = n.nspname and p.tablename = c.relname), '[]')::text
                from pg_catalog.pg_class c join pg_catalog.pg_namespace n on n.oid = c.relnamespace
                where c.relkind in ('r', 'p') and n.nspname not in ('pg_catalog', 'information_schema')
                  and n.nspname not like 'pg\\_%'
                order by n.nspname, c.relname
                """, logger: context.logger
            ).map { row in
                let (schema, name, enabled, forced, rows, policies) = try row.decode((String, String, Bool, Bool, Int64, String).self)
                return TableJSON(
                    schema: schema, name: name, rlsEnabled: enabled, rlsForced: forced, estimatedRows: rows,
                    policies: JSONValue(jsonText: policies) ?? .array([]))
            }
        }
        return try Self.json(tables)
    }

    /// HTTP requests from SQL (queued, and the last 50 answers), scheduled jobs with their last run, and
    /// the queues' metrics: what the console's background page shows.
    func background(_ request: Request, _ context: StriveRequestContext) async throws -> Response {
        let text = try await database.withAdminConnection { connection in
            try await connection.rows(
                """
                select json_build_object(
                    'http_queued', (select count(*) from net.http_request_queue),
                    'http_answers', coalesce((select json_agg(r order by r.created desc) from (
                        select id, status_code, error_msg, timed_out, attempts, created from net._http_response
                        order by created desc limit 50) r), '[]'),
                    'jobs', coalesce((select json_agg(j order by j.jobid) from (
                        select job.jobid, job.jobname, job.schedule, job.command, job.username, job.active,
                               (select json_build_object('status', d.status, 'start_time', d.start_time, 'end_time', d.end_time,
                                                         'return_message', d.return_message)
                                from cron.job_run_details d where d.jobid = job.jobid order by d.runid desc limit 1) as last_run
                        from cron.job) j), '[]'),
                    'queues', coalesce((select json_agg(m) from pgmq.metrics_all() m), '[]'))::text
                """, logger: context.logger
            ).first?.decode(String.self) ?? "{}"
        }
        return Response(
            status: .ok, headers: [.contentType: "application/json", .cacheControl: "no-store"],
            body: .init(byteBuffer: ByteBuffer(string: text)))
    }

    func backups(_ request: Request, _ context: StriveRequestContext) async throws -> Response {
        let entries = try await database.withAdminConnection { connection in
            try await BackupCatalog.list(on: connection, logger: context.logger)
        }
        return try Self.json(entries)
    }

    static func json(_ value: some Encodable) throws -> Response {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        encoder.dateEncodingStrategy = .iso8601
        encoder.keyEncodingStrategy = .convertToSnakeCase
        return Response(
            status: .ok, headers: [.contentType: "application/json", .cacheControl: "no-store"],
            body: .init(byteBuffer: ByteBuffer(bytes: try encoder.encode(value))))
    }
}
