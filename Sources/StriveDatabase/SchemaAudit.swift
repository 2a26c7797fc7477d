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
            summary: "a request role or server login can log in where it must not, inherits, or bypasses security",
            query: """
                with expected(name, may_login) as (
                    values ('anon', false), ('authenticated', false), ('authenticator', true), ('strive_service', true), ('strive_app', true))
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
        // From Supabase's database advisor (splinter), the lints that apply to a Strive database.
        Lint(
            id: "policy_exists_rls_disabled", severity: .critical,
            summary: "a table outside the API schemas has policies but row-level security is off, so none of them applies",
            query: """
                select n.nspname || '.' || c.relname, count(*) || ' polic(ies) defined, but row-level security is disabled'
                from pg_catalog.pg_class c
                join pg_catalog.pg_namespace n on n.oid = c.relnamespace
                join pg_catalog.pg_policy p on p.polrelid = c.oid
                where c.relkind in ('r', 'p') and not c.relrowsecurity
                  -- rls_disabled reports these schemas' tables already, policies or not.
                  and n.nspname not in ('public', 'storage', 'auth', 'pg_catalog', 'information_schema')
                group by n.nspname, c.relname
                """),
        Lint(
            id: "security_definer_view", severity: .critical,
            summary: "an exposed view runs with its owner's rights, bypassing the caller's row-level security",
            query: """
                select n.nspname || '.' || c.relname, 'view without security_invoker: it reads as its owner, not as the caller'
                from pg_catalog.pg_class c join pg_catalog.pg_namespace n on n.oid = c.relnamespace
                where c.relkind = 'v' and n.nspname in \(exposedSchemas)
                  and not coalesce('security_invoker=true' = any(c.reloptions) or 'security_invoker=on' = any(c.reloptions), false)
                  and (pg_catalog.has_table_privilege('anon', c.oid, 'select')
                       or pg_catalog.has_table_privilege('authenticated', c.oid, 'select'))
                """),
        Lint(
            id: "auth_users_exposed", severity: .critical,
            summary: "an exposed view or materialized view reads auth.users, handing account data to the API",
            query: """
                select distinct n.nspname || '.' || c.relname, 'reads auth.users'
                from pg_catalog.pg_depend d
                join pg_catalog.pg_rewrite r on r.oid = d.objid
                join pg_catalog.pg_class c on c.oid = r.ev_class
                join pg_catalog.pg_namespace n on n.oid = c.relnamespace
                where d.refobjid = 'auth.users'::regclass and c.relkind in ('v', 'm') and n.nspname in \(exposedSchemas)
                  and c.oid <> 'auth.users'::regclass
                """),
        Lint(
            id: "materialized_view_in_api", severity: .high,
            summary: "a materialized view in an exposed schema has no row-level security",
            query: """
                select n.nspname || '.' || c.relname, 'materialized views cannot have row-level security; move it out of the API schemas'
                from pg_catalog.pg_class c join pg_catalog.pg_namespace n on n.oid = c.relnamespace
                where c.relkind = 'm' and n.nspname in \(exposedSchemas)
                """),
        Lint(
            id: "rls_references_user_metadata", severity: .high,
            summary: "a policy trusts user_metadata from the token, which every user can change for themselves",
            query: """
                select n.nspname || '.' || c.relname, 'policy ' || p.polname || ' reads user_metadata (use app_metadata or a table)'
                from pg_catalog.pg_policy p
                join pg_catalog.pg_class c on c.oid = p.polrelid
                join pg_catalog.pg_namespace n on n.oid = c.relnamespace
                where coalesce(pg_catalog.pg_get_expr(p.polqual, p.polrelid), '') || ' '
                      || coalesce(pg_catalog.pg_get_expr(p.polwithcheck, p.polrelid), '') like '%user_metadata%'
                """),
        Lint(
            id: "extension_in_public", severity: .low,
            summary: "an extension is installed in public, where its objects mix with the API's",
            query: """
                select e.extname, 'installed in schema public; create it in a schema of its own (extensions)'
                from pg_catalog.pg_extension e join pg_catalog.pg_namespace n on n.oid = e.extnamespace
                where n.nspname = 'public'
                """),
        Lint(
            id: "no_primary_key", severity: .low,
            summary: "a table has no primary key: rows cannot be addressed, replicated or updated one at a time reliably",
            query: """
                select n.nspname || '.' || c.relname, 'no primary key'
                from pg_catalog.pg_class c join pg_catalog.pg_namespace n on n.oid = c.relnamespace
                where c.relkind in ('r', 'p') and n.nspname in \(exposedSchemas)
                  and not exists (select 1 from pg_catalog.pg_index i where i.indrelid = c.oid and i.indisprimary)
                """),
        Lint(
            id: "duplicate_index", severity: .low,
            summary: "two indexes are identical: every write maintains both, reads use one",
            query: """
                select n.nspname || '.' || c.relname, 'identical indexes: ' || string_agg(ic.relname, ', ' order by ic.relname)
                from pg_catalog.pg_index i
                join pg_catalog.pg_class c on c.oid = i.indrelid
                join pg_catalog.pg_class ic on ic.oid = i.indexrelid
                join pg_catalog.pg_namespace n on n.oid = c.relnamespace
                where n.nspname in ('public', 'storage', 'auth', 'realtime')
                group by n.nspname, c.relname, i.indrelid, i.indkey::text, i.indclass::text, i.indcollation::text,
                         coalesce(pg_catalog.pg_get_expr(i.indexprs, i.indrelid), ''), coalesce(pg_catalog.pg_get_expr(i.indpred, i.indrelid), '')
                having count(*) > 1
                """),
    ]
}
