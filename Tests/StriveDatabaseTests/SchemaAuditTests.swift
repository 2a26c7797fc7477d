import Logging
import PostgresNIO
import StriveDatabase
import StriveTestSupport
import Testing

@Suite("Schema audit (strive verify)")
struct SchemaAuditTests {
    let logger = Logger(label: "test.audit")

    @Test func aFreshlyMigratedDatabaseScores100() async throws {
        let database = try await TestCluster.shared.makeDatabase()
        let report = try await database.withOwnerConnection { try await SchemaAudit.run(on: $0, logger: logger) }
        #expect(report.findings.isEmpty, "\(report.findings)")
        #expect(report.score == 100)
        #expect(report.lintsRun.count == SchemaAudit.lints.count)
    }

    /// Each lint, with a statement that breaks exactly what it checks. Roles are cluster-wide, so every
    /// breakage happens in a transaction that is rolled back after the audit has seen it.
    static let breakages: [(lint: String, sql: [String])] = [
        ("rls_disabled", ["alter table public.tasks disable row level security"]),
        ("rls_not_forced", ["alter table public.customers no force row level security"]),
        ("table_without_policies", ["drop policy subscriptions_select on public.subscriptions"]),
        (
            "update_policy_without_with_check",
            [
                "create policy customers_loose on public.customers for update to authenticated using (false)"
            ]
        ),
        (
            "security_definer_without_search_path",
            [
                "create function public.leaky() returns int language sql security definer as 'select 1'"
            ]
        ),
        (
            "policy_calls_function_per_row",
            [
                "create policy tasks_slow on public.tasks for select to authenticated using (created_by = auth.uid())"
            ]
        ),
        ("unindexed_foreign_key", ["drop index public.tasks_assigned_to_idx"]),
        ("unindexed_policy_column", ["drop index public.content_status_idx"]),
        ("bucket_missing_or_misconfigured", ["update storage.buckets set file_size_limit = 1 where id = 'avatars'"]),
        ("bucket_without_policies", ["drop policy avatars_delete on storage.objects"]),
        ("missing_helper", ["drop function app.org_role(uuid)"]),
        ("privileged_request_role", ["alter role authenticator bypassrls"]),
        // Inheriting would give the app login authenticated's rights even after `SET ROLE NONE`.
        ("privileged_request_role", ["alter role strive_app inherit"]),
        ("privileged_request_role", ["alter role strive_service createrole"]),
        ("anon_can_write", ["grant insert on public.tasks to anon"]),
        ("realtime_not_wired", ["drop trigger realtime_capture on public.customers"]),
        // A policy calling a function subscribers may not execute: evaluating it for them fails.
        (
            "realtime_not_wired",
            [
                "create function public.rt_private() returns boolean language sql stable as 'select true'",
                "revoke all on function public.rt_private() from public",
                "create policy customers_private on public.customers for select to authenticated using (public.rt_private())",
            ]
        ),
        (
            "realtime_published_without_rls",
            [
                "create table public.rt_open (id int primary key)",
                "select realtime.publish('public.rt_open')",
            ]
        ),
        (
            "policy_exists_rls_disabled",
            [
                "create schema crm", "create table crm.deals (id int primary key)",
                "create policy deals_read on crm.deals for select using (true)",
            ]
        ),
        (
            "security_definer_view",
            ["create view public.all_tasks as select * from public.tasks", "grant select on public.all_tasks to authenticated"]
        ),
        ("auth_users_exposed", ["create view public.people with (security_invoker = on) as select id, email from auth.users"]),
        ("materialized_view_in_api", ["create materialized view public.task_counts as select count(*) from public.tasks"]),
        (
            "rls_references_user_metadata",
            [
                "create policy tasks_by_metadata on public.tasks for select to authenticated using ((auth.jwt() -> 'user_metadata' ->> 'admin') = 'true')"
            ]
        ),
        ("extension_in_public", ["create extension if not exists pg_trgm schema public"]),
        ("no_primary_key", ["create table public.loose (id int)", "alter table public.loose enable row level security"]),
        ("duplicate_index", ["create index tasks_assigned_to_copy on public.tasks (assigned_to)"]),
        ("function_search_path_mutable", ["create function public.loose_path() returns int language sql as 'select 1'"]),
        (
            "multiple_permissive_policies",
            ["create policy tasks_select_too on public.tasks for select to authenticated using (assigned_to = (select auth.uid()))"]
        ),
        (
            "foreign_table_in_api",
            [
                "create foreign data wrapper nowhere", "create server faraway foreign data wrapper nowhere",
                "create foreign table public.remote_rows (id int) server faraway",
            ]
        ),
        (
            "unsupported_reg_types",
            ["create table public.hooks (id int primary key, handler regproc)", "alter table public.hooks enable row level security"]
        ),
        (
            "fkey_to_auth_unique",
            [
                "create unique index users_email_everywhere on auth.users (email)",
                "alter table public.customers add constraint customers_email_account foreign key (email) references auth.users (email)",
            ]
        ),
        ("extension_versions_outdated", ["create extension pg_trgm version '1.3' schema extensions"]),
        (
            "sensitive_columns_exposed",
            ["create table public.integrations (id int primary key, api_key text)", "grant select on public.integrations to anon"]
        ),
        ("rls_policy_always_true", ["create policy tasks_delete_any on public.tasks for delete to authenticated using (true)"]),
        (
            "public_bucket_allows_listing",
            ["create policy avatars_list on storage.objects for select to anon using (bucket_id = 'avatars')"]
        ),
        (
            "anon_security_definer_function_executable",
            [
                "create function public.open_door() returns int language sql security definer set search_path = '' as 'select 1'",
                "grant execute on function public.open_door() to anon",
            ]
        ),
        (
            "authenticated_security_definer_function_executable",
            ["comment on function public.create_organization(text, text) is 'Creates an organization.'"]
        ),
        (
            "invalid_index",
            ["update pg_catalog.pg_index set indisvalid = false where indexrelid = 'public.tasks_assigned_to_idx'::regclass"]
        ),
        ("autovacuum_disabled", ["alter table public.tasks set (autovacuum_enabled = false)"]),
        // The same lints over a schema of the project's own, not only public.
        (
            "unindexed_foreign_key",
            ["create schema crm", "create table crm.deals (id int primary key, customer_id uuid references public.customers (id))"]
        ),
        ("function_search_path_mutable", ["create schema crm", "create function crm.score() returns int language sql as 'select 1'"]),
        ("no_primary_key", ["create schema crm", "create table crm.events (at timestamptz)"]),
    ]

    @Test func everyLintHasABreakage() {
        #expect(Set(Self.breakages.map(\.lint)) == Set(SchemaAudit.lints.map(\.id)))
    }

    @Test(arguments: Self.breakages.indices)
    func breakingWhatALintChecksShowsAndCosts(breakage: Int) async throws {
        let (lint, statements) = Self.breakages[breakage]
        let database = try await TestCluster.shared.makeDatabase()
        let logger = self.logger
        let report = try await database.withOwnerConnection { connection in
            try await connection.run("begin", logger: logger)
            for statement in statements {
                try await connection.run(PostgresQuery(unsafeSQL: statement), logger: logger)
            }
            let report = try await SchemaAudit.run(on: connection, logger: logger)
            try await connection.run("rollback", logger: logger)
            return report
        }
        let found = report.findings.filter { $0.lint == lint }
        #expect(!found.isEmpty, "\(lint) did not report its breakage; findings: \(report.findings)")
        #expect(report.score <= 100 - (found.first?.severity.penalty ?? 1))
        // Rolled back: the database is healthy again.
        let after = try await database.withOwnerConnection { try await SchemaAudit.run(on: $0, logger: logger) }
        #expect(after.score == 100)
    }
}
