import Foundation
import Logging
import PostgresNIO
import StriveDatabase

/// Bucket configuration: `storage.buckets` read and written through the service role's own transaction,
/// the named admin path (requests made with user tokens cannot see the table at all). The routes decide
/// who may call it; this type only speaks SQL.
public struct BucketService: Sendable {
    let database: Database
    let logger: Logger

    public init(database: Database, logger: Logger) {
        self.database = database
        self.logger = logger
    }

    /// A bucket as Supabase Storage answers it.
    public struct Bucket: Encodable, Sendable {
        let id: String
        let name: String
        let owner: String
        let `public`: Bool
        let file_size_limit: Int64?
        let allowed_mime_types: [String]?
        let created_at: Date
        let updated_at: Date
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
        case notFound
        case holdsObjects(Int)
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

    public func list() async throws -> [Bucket] {
        try await admin { connection in
            try await connection.rows("select \(unescaped: Self.columns) from storage.buckets order by name", logger: logger)
                .map(Self.bucket)
        }
    }

    public func bucket(id: String) async throws -> Bucket? {
        try await admin { connection in
            try await connection.rows("select \(unescaped: Self.columns) from storage.buckets where id = \(id)", logger: logger)
                .first.map(Self.bucket)
        }
    }

    /// False when a bucket with that id exists already.
    public func create(id: String, name: String, isPublic: Bool, sizeLimit: Int64?, allowedMimeTypes: [String]?) async throws -> Bool {
        try await admin { connection in
            try await connection.rows(
                """
                insert into storage.buckets (id, name, public, file_size_limit, allowed_mime_types)
                values (\(id), \(name), \(isPublic), \(sizeLimit), \(allowedMimeTypes))
                on conflict do nothing returning id
                """, logger: logger
            ).count == 1
        }
    }

    /// False when there is no such bucket.
    public func update(id: String, _ changes: Changes) async throws -> Bool {
        let setsLimit = changes.sizeLimit != nil
        let setsTypes = changes.allowedMimeTypes != nil
        let limit = changes.sizeLimit ?? nil
        let types = changes.allowedMimeTypes ?? nil
        return try await admin { connection in
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

    /// Deletes an empty bucket; one that still holds objects stays (they must be emptied first).
    public func delete(id: String) async throws -> DeleteOutcome {
        try await admin { connection in
            guard try await !connection.rows("select 1 from storage.buckets where id = \(id) for update", logger: logger).isEmpty else {
                return .notFound
            }
            let objects =
                try await connection.rows("select count(*)::int from storage.objects where bucket_id = \(id)", logger: logger).first?
                .decode(Int.self) ?? 0
            guard objects == 0 else { return .holdsObjects(objects) }
            try await connection.run("delete from storage.buckets where id = \(id)", logger: logger)
            return .deleted
        }
    }

    /// Deletes every object row of the bucket (their blobs are queued for collection); false when there is
    /// no such bucket.
    public func empty(id: String) async throws -> Bool {
        try await admin { connection in
            guard try await !connection.rows("select 1 from storage.buckets where id = \(id)", logger: logger).isEmpty else { return false }
            try await connection.run("delete from storage.objects where bucket_id = \(id)", logger: logger)
            return true
        }
    }

    private func admin<T: Sendable>(_ body: (PostgresConnection) async throws -> T) async throws -> T {
        try await database.withServiceRoleTransaction(method: "STORAGE", path: "/storage/v1/bucket", logger: logger, body)
    }
}
