import Foundation
import Logging
import PostgresNIO
import StriveDatabase

/// Bucket configuration: `storage.buckets` read and written in the caller's request transaction, so its
/// row-level security policies decide who sees, creates, changes or deletes a bucket (as Supabase Storage
/// lets them); the service role bypasses them. This type only speaks SQL.
public struct BucketService: Sendable {
    let database: Database
    let logger: Logger

    public init(database: Database, logger: Logger) {
        self.database = database
        self.logger = logger
    }

    /// A bucket as Supabase Storage answers it: unset limits are null, not left out.
    public struct Bucket: Encodable, Sendable {
        let id: String
        let name: String
        let owner: String
        let `public`: Bool
        let file_size_limit: Int64?
        let allowed_mime_types: [String]?
        let created_at: Date
        let updated_at: Date
        /// Supabase's bucket type; every bucket here is a standard one (no analytics or vector buckets).
        let type = "STANDARD"

        enum CodingKeys: String, CodingKey {
            case id, name, owner, `public`, file_size_limit, allowed_mime_types, created_at, updated_at, type
        }

        public func encode(to encoder: any Encoder) throws {
            var container = encoder.container(keyedBy: CodingKeys.self)
            try container.encode(id, forKey: .id)
            try container.encode(name, forKey: .name)
            try container.encode(owner, forKey: .owner)
            try container.encode(`public`, forKey: .public)
            try container.encode(file_size_limit, forKey: .file_size_limit)
            try container.encode(allowed_mime_types, forKey: .allowed_mime_types)
            try container.encode(created_at, forKey: .created_at)
            try container.encode(updated_at, forKey: .updated_at)
            try container.encode(type, forKey: .type)
        }
    }

    /// What an update changes; nil leaves a setting as it is, `.some(nil)` clears a limit.
    public struct Changes: Sendable {
        var isPublic: Bool?
        var sizeLimit: Int64??
        var allowedMimeTypes: [String]??
    }

    /// Why a bucket was not deleted.
    public enum DeleteOutcome: Sendable, Equatable {
        case deleted
        /// No such bucket, or the policies hide it from the caller.
        case notFound
        case holdsObjects
    }

    private static let columns =
        "id, name, coalesce(owner::text, owner_id, ''), public, file_size_limit, allowed_mime_types, created_at, updated_at"

    private static func bucket(_ row: PostgresRow) throws -> Bucket {
        let (id, name, owner, isPublic, limit, types, created, updated) =
            try row.decode((String, String, String, Bool, Int64?, [String]?, Date, Date).self)
        return Bucket(
            id: id, name: name, owner: owner, public: isPublic, file_size_limit: limit, allowed_mime_types: types,
            created_at: created, updated_at: updated)
    }

    /// `GET /bucket`'s query: a page of the buckets the caller sees, optionally those whose name contains
    /// `search`, sorted by one of a fixed set of columns.
    public struct ListOptions: Sendable {
        public enum Column: String, Sendable, CaseIterable { case id, name, created_at, updated_at }
        var limit: Int?
        var offset = 0
        var search: String?
        var column = Column.name
        var descending = false

        public init() {}
    }

    public func list(_ identity: RequestIdentity, _ options: ListOptions = ListOptions()) async throws -> [Bucket] {
        let pattern = options.search.map {
            "%"
                + $0.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "%", with: "\\%").replacingOccurrences(
                    of: "_", with: "\\_") + "%"
        }
        let order = "\(options.column.rawValue) \(options.descending ? "desc" : "asc"), id"
        return try await database.withRequestTransaction(identity, logger: logger) { connection in
            try await connection.rows(
                """
                select \(unescaped: Self.columns) from storage.buckets where \(pattern)::text is null or name ilike \(pattern)
                order by \(unescaped: order) limit \(options.limit) offset \(options.offset)
                """, logger: logger
            ).map(Self.bucket)
        }
    }

    public func bucket(_ identity: RequestIdentity, id: String) async throws -> Bucket? {
        try await database.withRequestTransaction(identity, logger: logger) { connection in
            try await connection.rows("select \(unescaped: Self.columns) from storage.buckets where id = \(id)", logger: logger)
                .first.map(Self.bucket)
        }
    }

    /// False when a bucket with that id exists already. The caller owns the bucket it creates.
    public func create(
        _ identity: RequestIdentity, id: String, name: String, isPublic: Bool, sizeLimit: Int64?, allowedMimeTypes: [String]?
    )
        async throws -> Bool
    {
        try await database.withRequestTransaction(identity, logger: logger) { connection in
            try await connection.rows(
                """
                insert into storage.buckets (id, name, owner, owner_id, public, file_size_limit, allowed_mime_types)
                values (\(id), \(name), auth.uid(), auth.uid()::text, \(isPublic), \(sizeLimit), \(allowedMimeTypes))
                on conflict do nothing returning id
                """, logger: logger
            ).count == 1
        }
    }

    /// False when there is no such bucket (or the policies hide it from the caller).
    public func update(_ identity: RequestIdentity, id: String, _ changes: Changes) async throws -> Bool {
        let setsLimit = changes.sizeLimit != nil
        let setsTypes = changes.allowedMimeTypes != nil
        let limit = changes.sizeLimit ?? nil
        let types = changes.allowedMimeTypes ?? nil
        return try await database.withRequestTransaction(identity, logger: logger) { connection in
            try await connection.rows(
                """
                update storage.buckets set
                    public = coalesce(\(changes.isPublic), public),
                    file_size_limit = case when \(setsLimit) then \(limit) else file_size_limit end,
                    allowed_mime_types = case when \(setsTypes) then \(types) else allowed_mime_types end
                where id = \(id) returning id
                """, logger: logger
            ).count == 1
        }
    }

    /// Deletes an empty bucket; one that still holds objects stays (they must be emptied first): the
    /// objects' foreign key says so, whoever the caller is.
    public func delete(_ identity: RequestIdentity, id: String) async throws -> DeleteOutcome {
        do {
            return try await database.withRequestTransaction(identity, logger: logger) { connection in
                try await connection.rows("delete from storage.buckets where id = \(id) returning id", logger: logger).isEmpty
                    ? .notFound : .deleted
            }
        } catch  where DatabaseError.serverFields(in: error)?.code == .foreignKeyViolation {
            return .holdsObjects
        }
    }

    /// Deletes the bucket's object rows the caller may delete (their blobs are queued for collection);
    /// false when the caller sees no such bucket.
    public func empty(_ identity: RequestIdentity, id: String) async throws -> Bool {
        try await database.withRequestTransaction(identity, logger: logger) { connection in
            guard try await !connection.rows("select 1 from storage.buckets where id = \(id)", logger: logger).isEmpty else { return false }
            try await connection.run("delete from storage.objects where bucket_id = \(id)", logger: logger)
            return true
        }
    }
}
