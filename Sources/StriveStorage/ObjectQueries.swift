import Foundation
import PostgresNIO

/// The statements behind the object endpoints that answer with JSON. PostgreSQL builds the JSON, in the
/// shapes storage-js parses; every value is a bind parameter and every identifier comes from a fixed list.
enum ObjectQueries {
    /// A timestamp as Supabase Storage writes it (JavaScript's toISOString): UTC, milliseconds, `Z`.
    static func timestamp(_ column: String) -> String {
        "to_char(\(column) at time zone 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"')"
    }

    /// A row as Supabase Storage returns objects (list, remove).
    static func fileObject(_ o: String) -> String {
        """
        json_build_object('name', \(o).name, 'bucket_id', \(o).bucket_id, 'owner', coalesce(\(o).owner_id, ''), 'owner_id', \(o).owner_id,
            'id', \(o).id, 'version', \(o).version, 'updated_at', \(timestamp("\(o).updated_at")),
            'created_at', \(timestamp("\(o).created_at")), 'last_accessed_at', \(timestamp("\(o).last_accessed_at")),
            'metadata', \(o).metadata, 'user_metadata', \(o).user_metadata)
        """
    }

    /// `metadata` is the user's metadata, `{}` when the upload gave none (storage-js expects an object).
    static func info(bucket: String, key: ObjectKey) -> PostgresQuery {
        """
        select json_build_object('id', o.id, 'name', o.name, 'version', o.version, 'bucket_id', o.bucket_id,
                   'size', (o.metadata->>'size')::bigint, 'content_type', o.metadata->>'mimetype',
                   'cache_control', o.metadata->>'cacheControl', 'etag', o.metadata->>'eTag',
                   'metadata', coalesce(o.user_metadata, '{}'::jsonb),
                   'last_modified', \(unescaped: timestamp("o.updated_at")), 'created_at', \(unescaped: timestamp("o.created_at")))::text
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
            select coalesce(json_agg(json_build_object('name', name, 'id', id, 'updated_at', \(unescaped: timestamp("updated_at")),
                       'created_at', \(unescaped: timestamp("created_at")), 'last_accessed_at', \(unescaped: timestamp("last_accessed_at")),
                       'metadata', metadata)
                   order by \(unescaped: column.rawValue) \(unescaped: order.rawValue) nulls last, name), '[]')::text
            from page
            """
    }

    struct ListV2Options: Decodable {
        var prefix: String?
        var limit: Int?
        var cursor: String?
        var with_delimiter: Bool?
        var sortBy: ListOptions.SortBy?
    }

    /// `POST /object/list-v2/{bucket}`, Supabase Storage's paged listing: names under `prefix` by name
    /// (bytewise, as `COLLATE "C"`), at most `limit` (default and most 1000) per page, the page after
    /// `cursor`. With `with_delimiter`, names deeper than the prefix's level fold into one folder entry
    /// (`{key, name: "<path>/"}`) and objects carry their `key` (the name's last segment).
    static func listV2(bucket: String, options: ListV2Options) throws(StorageError) -> PostgresQuery {
        let prefix = options.prefix ?? ""
        let limit = min(options.limit ?? 1000, 1000)
        guard limit >= 1 else { throw .invalidInput("limit must be at least 1") }
        if let column = options.sortBy?.column, column != .name {
            throw .invalidInput("list-v2 sorts by name only")
        }
        let descending = options.sortBy?.order == .desc
        let after = try cursorName(options.cursor)
        // The folder the prefix names or ends in: "a/b" lists a/'s entries that start with b.
        let folder = prefix.lastIndex(of: "/").map { String(prefix[...$0]) } ?? ""
        let start = folder.unicodeScalars.count + 1
        let grouped = options.with_delimiter ?? false
        let order = descending ? "desc" : "asc"
        let comparison = descending ? "<" : ">"
        return """
            with matching as (
                select o.*, substr(o.name, \(start)::int) as rest
                from storage.objects o where o.bucket_id = \(bucket) and starts_with(o.name, \(prefix))
            ), entries as (
                select \(folder) || split_part(rest, '/', 1) || '/' as name, split_part(rest, '/', 1) as key, true as folder,
                       null::uuid as id, null::jsonb as metadata, null::timestamptz as updated_at, null::timestamptz as created_at,
                       null::timestamptz as last_accessed_at
                from matching where \(grouped) and strpos(rest, '/') > 0 group by split_part(rest, '/', 1)
                union all
                select name, rest, false, id, metadata, updated_at, created_at, last_accessed_at
                from matching where not \(grouped) or strpos(rest, '/') = 0
            ), fetched as (
                select * from entries where \(after)::text is null or name collate "C" \(unescaped: comparison) \(after)
                order by name collate "C" \(unescaped: order) limit \(limit + 1)
            ), page as (
                select * from fetched order by name collate "C" \(unescaped: order) limit \(limit)
            )
            select (jsonb_build_object(
                'hasNext', (select count(*) from fetched) > \(limit),
                'folders', coalesce((select jsonb_agg(jsonb_build_object('key', key, 'name', name) order by name collate "C" \(unescaped: order))
                                     from page where folder), '[]'),
                'objects', coalesce((select jsonb_agg(jsonb_build_object('id', id, 'name', name, 'metadata', metadata,
                                         'updated_at', \(unescaped: timestamp("updated_at")), 'created_at', \(unescaped: timestamp("created_at")),
                                         'last_accessed_at', \(unescaped: timestamp("last_accessed_at")))
                                         || case when \(grouped) then jsonb_build_object('key', key) else '{}' end
                                         order by name collate "C" \(unescaped: order))
                                     from page where not folder), '[]'))
                || case when (select count(*) from fetched) > \(limit) then jsonb_build_object('nextCursor',
                       translate(encode(convert_to('l:' || (select name from page order by name collate "C" \(unescaped: order) offset \(limit - 1) limit 1),
                                        'UTF8'), 'base64'), E'\\n', ''))
                   else '{}' end)::text
            """
    }

    /// The last name of the previous page, from list-v2's cursor: base64 of lines, `l:<name>` first.
    static func cursorName(_ cursor: String?) throws(StorageError) -> String? {
        guard let cursor, !cursor.isEmpty else { return nil }
        guard let data = Data(base64Encoded: cursor), let text = String(data: data, encoding: .utf8),
            let line = text.split(separator: "\n", omittingEmptySubsequences: false).first, line.hasPrefix("l:")
        else { throw .invalidInput("Invalid Parameter continuation token") }
        return String(line.dropFirst(2))
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
