import Foundation
import Logging
import PostgresNIO

/// `strive verify`: audits a live database against the security model (docs/ARCHITECTURE.md, "Where security is decided") by reading its catalogs.
/// Every lint is a query that returns one row per problem it finds; the score starts at 100 and loses each
/// finding's penalty, so a single regression always shows.
public enum SchemaAudit {
    public enum Severity: String, Codable, Sendable, CaseIterable, Comparable {
        case critical, high, medium, low

        public var penalty: Int {
            switch self {
            case .critical: 25
            case .high: 10
            case .medium: 5
            case .low: 2
            }
        }

        /// Most severe first.
        public static func < (lhs: Severity, rhs: Severity) -> Bool { lhs.penalty > rhs.penalty }
    }

    public struct Lint: Sendable {
        public let id: String
        public let severity: Severity
        public let summary: String
        /// Returns rows of (object text, detail text).
        let query: String
    }

    public struct Finding: Codable, Sendable, Equatable {
        public let lint: String
        public let severity: Severity
        public let object: String
        public let detail: String
    }

    public struct Report: Codable, Sendable {
        public let score: Int
        public let lintsRun: [String]
        public let findings: [Finding]
    }

    public static func run(on connection: PostgresConnection, logger: Logger) async throws -> Report {
        var findings: [Finding] = []
        for lint in lints {
            let rows = try await connection.rows(PostgresQuery(unsafeSQL: lint.query), logger: logger)
            for row in rows {
                let (object, detail) = try row.decode((String, String).self)
                findings.append(Finding(lint: lint.id, severity: lint.severity, object: object, detail: detail))
            }
        }
        findings.sort { ($0.severity, $0.lint, $0.object) < ($1.severity, $1.lint, $1.object) }
        let score = max(0, 100 - findings.reduce(0) { $0 + $1.severity.penalty })
        return Report(score: score, lintsRun: lints.map(\.id), findings: findings)
    }

    /// Schemas the request roles reach: the data API's and storage's.
    static let exposedSchemas = "('public', 'storage')"

    public static let lints: [Lint] = [
        Lint(
            id: "rls_disabled", severity: .critical,
            summary: "a table request roles can reach has row-level security disabled",
            query: """
                select n.nspname || '.' || c.relname, 'row-level security is disabled'
                from pg_catalog.pg_class c join pg_catalog.pg_namespace n on n.oid = c.relnamespace
                where c.relkind in ('r', 'p') and n.nspname in ('public', 'storage', 'auth') and not c.relrowsecurity
                """),
        Lint(
            id: "rls_not_forced", severity: .high,
            summary: "row-level security is not forced, so the table owner bypasses it",
            query: """
                select n.nspname || '.' || c.relname, 'row-level security is enabled but not forced'
                from pg_catalog.pg_class c join pg_catalog.pg_namespace n on n.oid = c.relnamespace
                where c.relkind in ('r', 'p') and n.nspname in ('public', 'storage', 'auth')
                  and c.relrowsecurity and not c.relforcerowsecurity
                """),
        Lint(
            id: "table_without_policies", severity: .high,
            summary: "an exposed table has no policy, so its rules are implicit",
            query: """
                select n.nspname || '.' || c.relname, 'no row-level security policy is defined'
                from pg_catalog.pg_class c join pg_catalog.pg_namespace n on n.oid = c.relnamespace
                where c.relkind in ('r', 'p')
                  and (n.nspname = 'public' or (n.nspname = 'storage' and c.relname = 'objects'))
                  and not exists (select 1 from pg_catalog.pg_policy p where p.polrelid = c.oid)
                """),
        Lint(
            id: "update_policy_without_with_check", severity: .high,
            summary: "an UPDATE policy has no WITH CHECK, so a row could be moved where its writer cannot see it",
            query: """
                select n.nspname || '.' || c.relname, 'policy ' || p.polname || ' has no WITH CHECK'
                from pg_catalog.pg_policy p
                join pg_catalog.pg_class c on c.oid = p.polrelid
                join pg_catalog.pg_namespace n on n.oid = c.relnamespace
                where p.polcmd in ('w', '*') and p.polwithcheck is null and n.nspname in \(exposedSchemas)
                """),
        Lint(
            id: "security_definer_without_search_path", severity: .high,
            summary: "a SECURITY DEFINER function runs with the caller's search_path",
            query: """
                select n.nspname || '.' || p.proname || '(' || pg_catalog.pg_get_function_identity_arguments(p.oid) || ')',
                       'SECURITY DEFINER without a fixed search_path'
                from pg_catalog.pg_proc p join pg_catalog.pg_namespace n on n.oid = p.pronamespace
                where p.prosecdef and n.nspname in ('public', 'storage', 'auth', 'app')
                  and not exists (select 1 from unnest(p.proconfig) setting where setting like 'search_path=%')
                """),
        Lint(
            id: "policy_calls_function_per_row", severity: .medium,
            summary: "a policy calls auth.*() or an app helper per row instead of once per statement",
            query: """
                with expressions as (
                    select c.oid as relid, n.nspname || '.' || c.relname as object, p.polname,
                           coalesce(pg_catalog.pg_get_expr(p.polqual, p.polrelid), '') || ' '
                           || coalesce(pg_catalog.pg_get_expr(p.polwithcheck, p.polrelid), '') as text
                    from pg_catalog.pg_policy p
                    join pg_catalog.pg_class c on c.oid = p.polrelid
                    join pg_catalog.pg_namespace n on n.oid = c.relnamespace
                    where n.nspname in \(exposedSchemas)
                )
                select object, 'policy ' || polname || ' calls ' || (calls - wrapped) || ' function(s) per row; wrap them as (select f())'
                from (
                    select object, polname,
                           (select count(*) from regexp_matches(text, '(auth\\.(uid|jwt|role)|app\\.[a-z_]+)\\(', 'g')) as calls,
                           (select count(*) from regexp_matches(text, 'SELECT (auth\\.(uid|jwt|role)|app\\.[a-z_]+)\\(', 'g')) as wrapped
                    from expressions
                ) counted
                where calls > wrapped
                """),
        Lint(
            id: "unindexed_foreign_key", severity: .medium,
            summary: "a foreign key has no index starting with its column, so cascades and joins scan",
            query: """
                select c.conrelid::regclass::text, 'foreign key ' || c.conname || ' has no index starting with '
                       || (select a.attname from pg_catalog.pg_attribute a where a.attrelid = c.conrelid and a.attnum = c.conkey[1])
                from pg_catalog.pg_constraint c join pg_catalog.pg_namespace n on n.oid = c.connamespace
                where c.contype = 'f' and n.nspname in ('public', 'storage', 'auth')
                  and not exists (
                      select 1 from pg_catalog.pg_index i
                      where i.indrelid = c.conrelid and (string_to_array(i.indkey::text, ' ')::int2[])[1] = c.conkey[1]
                  )
                """),
        Lint(
            id: "unindexed_policy_column", severity: .medium,
            summary: "a column a policy filters on is in no index",
            query: """
                with policy_columns as (
                    select distinct d.refobjid as relid, d.refobjsubid as attnum
                    from pg_catalog.pg_depend d
                    where d.classid = 'pg_catalog.pg_policy'::regclass and d.refclassid = 'pg_catalog.pg_class'::regclass
                      and d.refobjsubid > 0
                )
                select pc.relid::regclass::text, 'column ' || a.attname || ' is read by a policy but no index covers it'
                from policy_columns pc
                join pg_catalog.pg_attribute a on a.attrelid = pc.relid and a.attnum = pc.attnum
                join pg_catalog.pg_class c on c.oid = pc.relid
                join pg_catalog.pg_namespace n on n.oid = c.relnamespace
                where n.nspname in \(exposedSchemas)
                  and not exists (
                      select 1 from pg_catalog.pg_index i
                      where i.indrelid = pc.relid and pc.attnum = any (string_to_array(i.indkey::text, ' ')::int2[])
                  )
                  and not exists (
                      select 1 from pg_catalog.pg_depend d join pg_catalog.pg_index i on i.indexrelid = d.objid
                      where d.classid = 'pg_catalog.pg_class'::regclass and d.refobjid = pc.relid and d.refobjsubid = pc.attnum
                  )
                """),
        Lint(
            id: "bucket_missing_or_misconfigured", severity: .high,
            summary: "a storage bucket the built-in schema creates (attachments, avatars, public-assets) is missing or has other limits",
            query: """
                with expected(id, public, file_size_limit, allowed_mime_types) as (values
                    ('attachments', false, 52428800::bigint, null::text[]),
                    ('avatars', true, 5242880, array['image/jpeg', 'image/png', 'image/gif', 'image/webp']),
                    ('public-assets', true, 10485760, array['image/jpeg', 'image/png', 'image/webp', 'application/pdf', 'video/mp4'])
                )
                select 'storage.buckets/' || e.id,
                       case when to_regclass('storage.buckets') is null then 'storage.buckets does not exist'
                            else 'bucket is missing or its public flag, size limit or MIME types differ' end
                from expected e
                where to_regclass('storage.buckets') is null
                   or not exists (
                       select 1 from storage.buckets b
                       where b.id = e.id and b.public = e.public
                         and b.file_size_limit is not distinct from e.file_size_limit
                         and (select array_agg(m order by m) from unnest(b.allowed_mime_types) m)
                             is not distinct from (select array_agg(m order by m) from unnest(e.allowed_mime_types) m)
                   )
                """),
        Lint(
            id: "bucket_without_policies", severity: .high,
            summary: "a bucket lacks a storage.objects policy for an operation",
            query: """
                with buckets(id) as (values ('attachments'), ('avatars'), ('public-assets')),
                     operations(cmd, name) as (values ('r', 'select'), ('a', 'insert'), ('w', 'update'), ('d', 'delete'))
                select 'storage.objects/' || b.id, 'no ' || o.name || ' policy names this bucket'
                from buckets b cross join operations o
                where not exists (
                    select 1 from pg_catalog.pg_policy p
                    where p.polrelid = to_regclass('storage.objects') and p.polcmd in (o.cmd, '*')
                      and (coalesce(pg_catalog.pg_get_expr(p.polqual, p.polrelid), '')
                           || coalesce(pg_catalog.pg_get_expr(p.polwithcheck, p.polrelid), '')) like '%''' || b.id || '''%'
                )
                """),
        Lint(
            id: "missing_helper", severity: .critical,
            summary: "a helper the policies and servers rely on does not exist",
            query: """
                select signature, 'function is missing'
                from unnest(array[
                    'auth.uid()', 'auth.role()', 'auth.jwt()', 'app.current_user_org()', 'app.is_admin()',
                    'app.is_org_owner(uuid)', 'app.is_org_member(uuid)', 'app.org_role(uuid)', 'app.is_org_admin(uuid)',
                    'app.org_ids(uuid, "OrgRole"[])', 'storage.foldername(text)', 'public.create_organization(text, text)'
                ]) signature
                where to_regprocedure(signature) is null
                """),
        Lint(
            id: "privileged_request_role", severity: .critical,
            summary: "a role requests use can log in where it must not, or bypasses security",
            query: """
                with expected(name, may_login) as (values ('anon', false), ('authenticated', false), ('authenticator', true))
                select 'role ' || e.name,
                       case when r.rolname is null then 'role is missing'
                            else concat_ws(', ',
                                case when r.rolsuper then 'is a superuser' end,
                                case when r.rolbypassrls then 'bypasses row-level security' end,
                                case when r.rolcreaterole then 'can create roles' end,
                                case when r.rolcreatedb then 'can create databases' end,
                                case when r.rolcanlogin and not e.may_login then 'can log in' end,
                                case when r.rolinherit then 'inherits the rights of its roles' end)
                       end
                from expected e left join pg_catalog.pg_roles r on r.rolname = e.name
                where r.rolname is null or r.rolsuper or r.rolbypassrls or r.rolcreaterole or r.rolcreatedb
                   or r.rolinherit or (r.rolcanlogin and not e.may_login)
                """),
        Lint(
            id: "anon_can_write", severity: .high,
            summary: "the anonymous role may write to a table",
            query: """
                select n.nspname || '.' || c.relname, 'anon has ' || string_agg(privilege, ', ') || ' privilege'
                from pg_catalog.pg_class c join pg_catalog.pg_namespace n on n.oid = c.relnamespace
                cross join unnest(array['INSERT', 'UPDATE', 'DELETE', 'TRUNCATE']) privilege
                where c.relkind in ('r', 'p') and n.nspname in ('public', 'storage', 'auth')
                  and pg_catalog.has_table_privilege('anon', c.oid, privilege)
                group by 1
                """),
        Lint(
            id: "realtime_not_wired", severity: .high,
            summary:
                "a table realtime must publish captures no changes, or a published table's policies cannot be evaluated for its subscribers",
            query: """
                with required(name) as (values ('tasks'), ('customers'), ('projects'), ('notifications'))
                select 'public.' || r.name, 'changes are not captured for realtime: publish it with realtime.publish(table)'
                from required r where r.name not in (select table_name from realtime.published where schema_name = 'public')
                union all
                select format('%I.%I', p.schema_name, p.table_name),
                       'its SELECT policies cannot be evaluated for realtime subscribers, so nobody receives its changes: ' || problem
                from realtime.published p cross join lateral realtime.authorizer_problem(p.relation) as problem
                where problem is not null
                """),
        Lint(
            id: "realtime_published_without_rls", severity: .medium,
            summary: "a published table has row-level security off: every subscriber allowed to SELECT it receives every change",
            query: """
                select format('%I.%I', p.schema_name, p.table_name), 'row-level security is off; its changes go to every subscriber with SELECT on it'
                from realtime.published p join pg_catalog.pg_class c on c.oid = p.relation
                where not c.relrowsecurity
                """),
    ]
}
