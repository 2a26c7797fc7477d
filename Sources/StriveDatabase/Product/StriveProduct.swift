import Logging
import PostgresNIO
import StriveCore

/// The Strive CRM as a product on the platform (`STRIVE_PRODUCT_SCHEMA=strive`): its schema's own
/// migrations are `Migrations/Product/` (and, as they landed, parts of 0002-0019), its demo data is
/// `DemoSeed`, and this is what it promises `strive verify` beyond the platform.
enum StriveProduct {
    static let promises = SchemaAudit.ProductPromises(
        helpers: [
            "app.current_user_org()", "app.is_org_owner(uuid)", "app.is_org_member(uuid)", "app.org_role(uuid)",
            "app.is_org_admin(uuid)", #"app.org_ids(uuid, "OrgRole"[])"#, "public.create_organization(text, text)",
        ],
        realtimeTables: ["tasks", "customers", "projects", "notifications"])

    /// The product's buckets and their policies.
    static let lints: [SchemaAudit.Lint] = [
        SchemaAudit.Lint(
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
        SchemaAudit.Lint(
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
    ]
}

extension ProductSchema {
    /// The product schema the database was built with: `none` when its history starts from the platform
    /// baseline, else `strive` (also for a database not migrated yet).
    public static func installed(on connection: PostgresConnection, logger: Logger) async throws -> ProductSchema {
        let migrated = try await connection.rows("select to_regclass('strive_meta.schema_migrations') is not null", logger: logger)
        guard try migrated.first?.decode(Bool.self) == true else { return .strive }
        let rows = try await connection.rows(
            "select exists (select 1 from strive_meta.schema_migrations where name = \(Migration.baselineName))", logger: logger)
        return try rows.first?.decode(Bool.self) == true ? .none : .strive
    }
}
