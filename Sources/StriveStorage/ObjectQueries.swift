import Foundation
import PostgresNIO

/// The statements behind the object endpoints that answer with JSON. PostgreSQL builds the JSON, in the
/// shapes storage-js parses; every value is a bind parameter and every identifier comes from a fixed list.
enum ObjectQueries {
    /// A row as Supabase Storage returns objects (list, remove).
    static func fileObject(_ o: String) -> String {
        """
        json_build_object('name', \(o).name, 'bucket_id', \(o).bucket_id, 'owner', coalesce(\(o).owner_id, ''), 'owner_id', \(o).owner_id,
            'id', \(o).id, 'version', \(o).version, 'updated_at', \(o).updated_at, 'created_at', \(o).created_at,
            'last_accessed_at', \(o).last_accessed_at, 'metadata', \(o).metadata, 'user_metadata', \(o).user_metadata)
        """
    }

    static func info(bucket: String, key: ObjectKey) -> PostgresQuery {
        """
        select json_build_object('id', o.id, 'name', o.name, 'version', o.version, 'bucket_id', o.bucket_id,
                   'size', (o.metadata->>'size')::bigint, 'content_type', o.metadata->>'mimetype',
                   'cache_control', o.metadata->>'cacheControl', 'etag', o.metadata->>'eTag', 'metadata', o.user_metadata,
                   'last_modified', o.updated_at, 'created_at', o.created_at)::text
        from storage.objects o where o.bucket_id = \(bucket) and o.name = \(key.value)
        """
    }

    static func remove(bucket: String, names: [String]) -> PostgresQuery {
        """
        with removed as (delete from storage.objects o where o.bucket_id = \(bucket) and o.name = any(\(names)) returning o.*)
        select coalesce(json_agg(\(unescaped: fileObject("removed"))), '[]')::text from removed
        """
    }

    struct ListOptions: Decodable {
        var prefix: String?
        var limit: Int?
        var offset: Int?
        var sortBy: SortBy?
        var search: String?

        struct SortBy: Decodable {
            var column: Column?
            var order: Order?
        }

        enum Column: String, Decodable {
            case name, id, updated_at, created_at, last_accessed_at
        }

        enum Order: String, Decodable {
            case asc, desc
        }
    }

    /// One level of the bucket under `prefix` (a folder path; `a` and `a/` are the same folder): files as
    /// rows, deeper names folded into folder entries whose id and metadata are null, as Supabase lists them.
    static func list(bucket: String, options: ListOptions) throws(StorageError) -> PostgresQuery {
        var prefix = options.prefix ?? ""
        if !prefix.isEmpty && !prefix.hasSuffix("/") { prefix += "/" }
        let limit = options.limit ?? 100
        let offset = options.offset ?? 0
        guard (1...1000).contains(limit) else { throw .invalidInput("limit must be between 1 and 1000") }
        guard offset >= 0 else { throw .invalidInput("offset must not be negative") }
        let column = options.sortBy?.column ?? .name
        let order = options.sortBy?.order ?? .asc
        let search = (options.search ?? "").lowercased()
        // substr counts characters as PostgreSQL does: code points.
        let start = prefix.unicodeScalars.count + 1
        return """
            with matching as (
                select o.*, substr(o.name, \(start)::int) as rest
                from storage.objects o
                where o.bucket_id = \(bucket) and starts_with(o.name, \(prefix))
            ), entries as (
                select split_part(rest, '/', 1) as name, null::uuid as id, null::timestamptz as updated_at,
                       null::timestamptz as created_at, null::timestamptz as last_accessed_at, null::jsonb as metadata
                from matching where strpos(rest, '/') > 0
                group by 1
                union all
                select rest, id, updated_at, created_at, last_accessed_at, metadata from matching where strpos(rest, '/') = 0
            ), page as (
                select * from entries
                where starts_with(lower(name), \(search))
                order by \(unescaped: column.rawValue) \(unescaped: order.rawValue) nulls last, name
                limit \(limit) offset \(offset)
            )
            select coalesce(json_agg(json_build_object('name', name, 'id', id, 'updated_at', updated_at,
                       'created_at', created_at, 'last_accessed_at', last_accessed_at, 'metadata', metadata)
                   order by \(unescaped: column.rawValue) \(unescaped: order.rawValue) nulls last, name), '[]')::text
            from page
            """
    }

    static func move(from source: (bucket: String, key: ObjectKey), to destination: (bucket: String, key: ObjectKey)) -> PostgresQuery {
        """
        update storage.objects set bucket_id = \(destination.bucket), name = \(destination.key.value), last_accessed_at = now()
        where bucket_id = \(source.bucket) and name = \(source.key.value)
        """
    }

    /// The names among `keys` that `identity` may read (signing a URL needs the right to read the object).
    static func visible(bucket: String, keys: [String]) -> PostgresQuery {
        """
        select coalesce(json_agg(name), '[]')::text from storage.objects where bucket_id = \(bucket) and name = any(\(keys))
        """
    }
}
