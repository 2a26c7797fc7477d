import Foundation
import Logging
import PostgresNIO
import StriveCore

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

    /// Audits the database with the lints of the product schema it carries.
    public static func run(on connection: PostgresConnection, logger: Logger) async throws -> Report {
        let lints = lints(for: try await ProductSchema.installed(on: connection, logger: logger))
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
    /// Schemas whose objects a team writes itself (public and any of its own), not PostgreSQL's or Strive's.
    static let isProjectSchema = """
        n.nspname not in ('pg_catalog', 'information_schema', 'auth', 'storage', 'realtime', 'app', 'strive_meta') \
        and n.nspname not like 'pg\\_%'
        """
    /// Every schema but PostgreSQL's own: for lints about performance and upkeep, which apply to Strive's too.
    static let isUserSchema = "n.nspname not in ('pg_catalog', 'information_schema') and n.nspname not like 'pg\\_%'"
    /// A policy expression that allows everything, as PostgreSQL deparses it (spaces removed).
    static let alwaysTrue = "('true', '(true)', '1=1', '(1=1)')"

    /// The lints for a database carrying `product`: the platform's, and the product's own
    /// (`StriveProduct.lints`), with the functions and published tables the product promises.
    public static func lints(for product: ProductSchema) -> [Lint] {
        let promises = product == .strive ? StriveProduct.promises : .none
        return platformLints + [missingHelper(promises.helpers), realtimeNotWired(promises.realtimeTables)]
            + (product == .strive ? StriveProduct.lints : [])
    }

    /// The lints of a Strive product database.
    public static var lints: [Lint] { lints(for: .strive) }

    /// What a product's schema promises the servers and its policies, beyond the platform.
    struct ProductPromises {
        /// Function signatures (`app.is_org_member(uuid)`) that must exist.
        var helpers: [String] = []
        /// `public` tables realtime must publish.
        var realtimeTables: [String] = []

        static let none = ProductPromises()
    }

    static func missingHelper(_ productHelpers: [String]) -> Lint {
        let signatures = (["auth.uid()", "auth.role()", "auth.jwt()", "app.is_admin()", "storage.foldername(text)"] + productHelpers)
            .map { "'" + $0.replacingOccurrences(of: "'", with: "''") + "'" }.joined(separator: ", ")
        return Lint(
            id: "missing_helper", severity: .critical,
            summary: "a helper the policies and servers rely on does not exist",
            query: """
                select signature, 'function is missing'
                from unnest(array[\(signatures)]) signature
                where to_regprocedure(signature) is null
                """)
    }

    static func realtimeNotWired(_ requiredTables: [String]) -> Lint {
        let required =
            requiredTables.isEmpty
            ? ""
            : """
            with required(name) as (values \(requiredTables.map { "('\($0)')" }.joined(separator: ", ")))
            select 'public.' || r.name, 'changes are not captured for realtime: publish it with realtime.publish(table)'
            from required r where r.name not in (select table_name from realtime.published where schema_name = 'public')
            union all

            """
        return Lint(
            id: "realtime_not_wired", severity: .high,
            summary:
                "a table realtime must publish captures no changes, or a published table's policies cannot be evaluated for its subscribers",
            query: required + """
                select format('%I.%I', p.schema_name, p.table_name),
                       'its SELECT policies cannot be evaluated for realtime subscribers, so nobody receives its changes: ' || problem
                from realtime.published p cross join lateral realtime.authorizer_problem(p.relation) as problem
                where problem is not null
                """)
    }

    static let platformLints: [Lint] = [
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
                where p.polcmd in ('w', '*') and p.polwithcheck is null and \(isUserSchema)
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
                    where \(isUserSchema)
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
                where c.contype = 'f' and \(isUserSchema)
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
                where \(isUserSchema)
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
                  -- Supabase Storage's model: every role holds the privileges on its tables and their forced
                  -- row-level security decides (TRUNCATE, which policies cannot stop, is still flagged).
                  and not (n.nspname = 'storage' and c.relname in ('buckets', 'objects') and privilege <> 'TRUNCATE'
                           and c.relrowsecurity and c.relforcerowsecurity)
                group by 1
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
                where c.relkind in ('r', 'p') and \(isUserSchema)
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
                where \(isUserSchema)
                group by n.nspname, c.relname, i.indrelid, i.indkey::text, i.indclass::text, i.indcollation::text,
                         coalesce(pg_catalog.pg_get_expr(i.indexprs, i.indrelid), ''), coalesce(pg_catalog.pg_get_expr(i.indpred, i.indrelid), '')
                having count(*) > 1
                """),
        Lint(
            id: "function_search_path_mutable", severity: .medium,
            summary: "a project function resolves names through the caller's search_path, which the caller controls",
            query: """
                select n.nspname || '.' || p.proname || '(' || pg_catalog.pg_get_function_identity_arguments(p.oid) || ')',
                       'no fixed search_path: add SET search_path = '''' and qualify names'
                from pg_catalog.pg_proc p join pg_catalog.pg_namespace n on n.oid = p.pronamespace
                where \(isProjectSchema) and p.prokind in ('f', 'p')
                  and not exists (select 1 from pg_catalog.pg_depend d where d.objid = p.oid and d.deptype = 'e')
                  and not exists (select 1 from unnest(coalesce(p.proconfig, '{}')) setting where setting like 'search_path=%')
                """),
        Lint(
            id: "multiple_permissive_policies", severity: .low,
            summary: "a table has several permissive policies for one role and action: every one is evaluated for every row",
            query: """
                select n.nspname || '.' || c.relname,
                       'role ' || r.rolname || ', ' || action || ': ' || string_agg(p.polname, ', ' order by p.polname) || '; merge them'
                from pg_catalog.pg_policy p
                join pg_catalog.pg_class c on c.oid = p.polrelid
                join pg_catalog.pg_namespace n on n.oid = c.relnamespace
                join pg_catalog.pg_roles r on p.polroles @> array[r.oid] or p.polroles = array[0::oid]
                cross join lateral unnest(case p.polcmd when 'r' then array['SELECT'] when 'a' then array['INSERT']
                                                        when 'w' then array['UPDATE'] when 'd' then array['DELETE']
                                                        else array['SELECT', 'INSERT', 'UPDATE', 'DELETE'] end) action
                where p.polpermissive and c.relkind in ('r', 'p') and \(isProjectSchema)
                  and not r.rolbypassrls and r.rolname not like 'pg\\_%'
                group by n.nspname, c.relname, r.rolname, action
                having count(*) > 1
                """),
        Lint(
            id: "foreign_table_in_api", severity: .high,
            summary: "a foreign table in an exposed schema: foreign tables cannot have row-level security",
            query: """
                select n.nspname || '.' || c.relname, 'foreign table in the API schemas; move it to a private schema'
                from pg_catalog.pg_class c join pg_catalog.pg_namespace n on n.oid = c.relnamespace
                where c.relkind = 'f' and n.nspname in \(exposedSchemas)
                """),
        Lint(
            id: "unsupported_reg_types", severity: .low,
            summary: "a column stores an OID-based reg* type, which pg_upgrade cannot carry over",
            query: """
                select n.nspname || '.' || c.relname, 'column ' || a.attname || ' is ' || pg_catalog.format_type(a.atttypid, a.atttypmod)
                from pg_catalog.pg_attribute a
                join pg_catalog.pg_class c on c.oid = a.attrelid
                join pg_catalog.pg_namespace n on n.oid = c.relnamespace
                where c.relkind in ('r', 'p', 'm') and a.attnum > 0 and not a.attisdropped and \(isUserSchema)
                  and a.atttypid in ('regcollation'::regtype, 'regconfig'::regtype, 'regdictionary'::regtype, 'regnamespace'::regtype,
                                     'regoper'::regtype, 'regoperator'::regtype, 'regproc'::regtype, 'regprocedure'::regtype)
                """),
        Lint(
            id: "fkey_to_auth_unique", severity: .high,
            summary: "a foreign key references a unique key of an auth table other than its primary key, which Auth may change",
            query: """
                select c.conrelid::regclass::text, 'foreign key ' || c.conname || ' references ' || c.confrelid::regclass::text
                       || ' by a key that is not its primary key'
                from pg_catalog.pg_constraint c
                join pg_catalog.pg_class rc on rc.oid = c.confrelid
                join pg_catalog.pg_namespace rn on rn.oid = rc.relnamespace
                where c.contype = 'f' and rn.nspname = 'auth'
                  and not exists (select 1 from pg_catalog.pg_index i where i.indexrelid = c.conindid and i.indisprimary)
                """),
        Lint(
            id: "extension_versions_outdated", severity: .low,
            summary: "an extension is older than the version this server ships",
            query: """
                select e.extname, 'installed ' || e.extversion || ', available ' || a.default_version || ': ALTER EXTENSION ' || e.extname || ' UPDATE'
                from pg_catalog.pg_extension e join pg_catalog.pg_available_extensions a on a.name = e.extname
                where a.default_version is not null and e.extversion <> a.default_version
                """),
        Lint(
            id: "sensitive_columns_exposed", severity: .critical,
            summary: "a table the request roles can read has no row-level security and a column named like a secret or personal data",
            query: """
                select n.nspname || '.' || c.relname,
                       'readable without row-level security, with ' || string_agg(a.attname, ', ' order by a.attname)
                from pg_catalog.pg_class c
                join pg_catalog.pg_namespace n on n.oid = c.relnamespace
                join pg_catalog.pg_attribute a on a.attrelid = c.oid and a.attnum > 0 and not a.attisdropped
                where c.relkind in ('r', 'p') and n.nspname in \(exposedSchemas) and not c.relrowsecurity
                  and (pg_catalog.has_table_privilege('anon', c.oid, 'select')
                       or pg_catalog.has_table_privilege('authenticated', c.oid, 'select'))
                  and replace(lower(a.attname), '-', '_') in (
                      'password', 'passwd', 'pwd', 'passphrase', 'secret', 'secret_key', 'private_key', 'api_key', 'apikey', 'auth_key',
                      'token', 'jwt', 'access_token', 'refresh_token', 'oauth_token', 'session_token', 'bearer_token', 'auth_code',
                      'session_id', 'session_key', 'session_secret', 'recovery_code', 'backup_code', 'verification_code', 'otp',
                      'two_factor', '2fa_secret', '2fa_code', 'ssn', 'social_security', 'social_security_number', 'driver_license',
                      'drivers_license', 'license_number', 'passport_number', 'passport_id', 'national_id', 'tax_id', 'credit_card',
                      'card_number', 'cvv', 'cvc', 'cvn', 'bank_account', 'account_number', 'routing_number', 'iban', 'swift_code', 'bic',
                      'health_record', 'medical_record', 'patient_id', 'insurance_number', 'health_insurance', 'medical_insurance',
                      'treatment', 'mac_address', 'macaddr', 'imei', 'device_uuid', 'pgp_key', 'gpg_key', 'ssh_key', 'certificate',
                      'license_key', 'activation_key', 'facial_recognition')
                group by n.nspname, c.relname
                """),
        Lint(
            id: "rls_policy_always_true", severity: .high,
            summary: "a policy lets anon or authenticated write any row (its USING or WITH CHECK is true or missing)",
            query: """
                select n.nspname || '.' || c.relname,
                       'policy ' || p.polname || ' allows '
                       || case p.polcmd when 'a' then 'INSERT' when 'w' then 'UPDATE' when 'd' then 'DELETE' else 'ALL' end
                       || ' of any row to ' || (select string_agg(case when r = 0 then 'public' else r::regrole::text end, ', ')
                                                from unnest(p.polroles) r)
                from pg_catalog.pg_policy p
                join pg_catalog.pg_class c on c.oid = p.polrelid
                join pg_catalog.pg_namespace n on n.oid = c.relnamespace
                where c.relkind in ('r', 'p') and c.relrowsecurity and p.polpermissive and p.polcmd <> 'r' and \(isProjectSchema)
                  and (p.polroles = array[0::oid] or p.polroles && array['anon'::regrole::oid, 'authenticated'::regrole::oid])
                  and (replace(lower(coalesce(pg_catalog.pg_get_expr(p.polqual, p.polrelid), '')), ' ', '') in \(alwaysTrue)
                       or replace(lower(coalesce(pg_catalog.pg_get_expr(p.polwithcheck, p.polrelid), '')), ' ', '') in \(alwaysTrue)
                       or (p.polqual is null and p.polcmd in ('w', 'd', '*'))
                       or (p.polwithcheck is null and p.polcmd = 'a'))
                """),
        Lint(
            id: "public_bucket_allows_listing", severity: .medium,
            summary: "a public bucket lets every caller list its objects; public URLs need no SELECT policy",
            query: """
                select 'bucket ' || b.id, 'listable by anyone through ' || string_agg(p.polname, ', ' order by p.polname)
                from storage.buckets b
                join pg_catalog.pg_policy p on p.polrelid = 'storage.objects'::regclass
                where b.public and p.polpermissive and p.polcmd in ('r', '*')
                  and (p.polroles = array[0::oid] or p.polroles && array['anon'::regrole::oid, 'authenticated'::regrole::oid])
                  and (p.polqual is null
                       or replace(lower(pg_catalog.pg_get_expr(p.polqual, p.polrelid)), ' ', '') in \(alwaysTrue)
                       or pg_catalog.pg_get_expr(p.polqual, p.polrelid)
                          ~ ('^\\(*bucket_id = ' || pg_catalog.quote_literal(b.id) || '(::text)?\\)*$'))
                group by b.id
                """),
        Lint(
            id: "anon_security_definer_function_executable", severity: .critical,
            summary: "anyone with the anon key can call a SECURITY DEFINER function through /rpc, bypassing row-level security",
            query: """
                select 'public.' || p.proname || '(' || pg_catalog.pg_get_function_identity_arguments(p.oid) || ')',
                       'SECURITY DEFINER and executable by anon'
                from pg_catalog.pg_proc p join pg_catalog.pg_namespace n on n.oid = p.pronamespace
                where n.nspname = 'public' and p.prosecdef and pg_catalog.has_function_privilege('anon', p.oid, 'execute')
                """),
        Lint(
            id: "authenticated_security_definer_function_executable", severity: .medium,
            summary: "every signed-in user can call a SECURITY DEFINER function through /rpc, and its comment gives no reason",
            query: """
                select 'public.' || p.proname || '(' || pg_catalog.pg_get_function_identity_arguments(p.oid) || ')',
                       'SECURITY DEFINER and executable by authenticated; if intended, add a line ''@security-definer <reason>'' '
                       || 'to its comment'
                from pg_catalog.pg_proc p join pg_catalog.pg_namespace n on n.oid = p.pronamespace
                where n.nspname = 'public' and p.prosecdef and pg_catalog.has_function_privilege('authenticated', p.oid, 'execute')
                  and not pg_catalog.has_function_privilege('anon', p.oid, 'execute')
                  and coalesce(pg_catalog.obj_description(p.oid, 'pg_proc'), '') !~ '(^|\\n)@security-definer \\S'
                """),
        Lint(
            id: "invalid_index", severity: .medium,
            summary: "an index is invalid (a failed CREATE INDEX CONCURRENTLY): writes maintain it, no query uses it",
            query: """
                select n.nspname || '.' || ic.relname, 'invalid index on ' || c.relname || ': drop it and build it again'
                from pg_catalog.pg_index i
                join pg_catalog.pg_class ic on ic.oid = i.indexrelid
                join pg_catalog.pg_class c on c.oid = i.indrelid
                join pg_catalog.pg_namespace n on n.oid = c.relnamespace
                where not i.indisvalid and \(isUserSchema)
                """),
        Lint(
            id: "autovacuum_disabled", severity: .low,
            summary: "autovacuum is off for a table: dead rows pile up and statistics go stale",
            query: """
                select n.nspname || '.' || c.relname, 'autovacuum_enabled = false'
                from pg_catalog.pg_class c join pg_catalog.pg_namespace n on n.oid = c.relnamespace
                where c.relkind in ('r', 'p', 'm') and \(isUserSchema)
                  and exists (select 1 from unnest(c.reloptions) o where lower(o) in ('autovacuum_enabled=false', 'autovacuum_enabled=off'))
                """),
    ]
}
