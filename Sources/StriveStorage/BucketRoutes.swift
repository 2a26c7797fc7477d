import Foundation
import HTTPTypes
import Hummingbird
import Logging
import NIOCore
import NIOFoundationCompat
import PostgresNIO
import StriveAuth
import StriveCore
import StriveDatabase

/// Supabase Storage's bucket endpoints under `/storage/v1/bucket`, for the service role: buckets are
/// configuration, and requests made with user tokens cannot see `storage.buckets` at all.
public struct BucketRoutes<Context: CallerRequestContext>: Sendable {
    let storage: StorageService
    let logger: Logger
    var database: StriveDatabase { storage.database }

    public init(storage: StorageService, logger: Logger) {
        self.storage = storage
        self.logger = logger
    }

    public func register(on router: some RouterMethods<Context>) {
        let group = router.group("storage/v1/bucket")
        group.get { _, context in try await list(context) }
        group.post { request, context in try await create(request, context) }
        group.get(":id") { _, context in try await bucket(context) }
        group.put(":id") { request, context in try await update(request, context) }
        group.delete(":id") { _, context in try await delete(context) }
        group.post(":id/empty") { _, context in try await empty(context) }
    }

    struct Bucket: Encodable {
        let id: String
        let name: String
        let owner: String
        let `public`: Bool
        let file_size_limit: Int64?
        let allowed_mime_types: [String]?
        let created_at: Date
        let updated_at: Date
    }

    static var columns: String { "id, name, coalesce(owner::text, owner_id, ''), public, file_size_limit, allowed_mime_types, created_at, updated_at" }

    static func bucket(_ row: PostgresRow) throws -> Bucket {
        let (id, name, owner, isPublic, limit, types, created, updated) =
            try row.decode((String, String, String, Bool, Int64?, [String]?, Date, Date).self)
        return Bucket(
            id: id, name: name, owner: owner, public: isPublic, file_size_limit: limit, allowed_mime_types: types,
            created_at: created, updated_at: updated)
    }

    func list(_ context: Context) async throws -> Response {
        try requireService(context)
        let buckets = try await service(context) { connection in
            try await connection.rows("select \(unescaped: Self.columns) from storage.buckets order by name", logger: logger).map(Self.bucket)
        }
        return try Response.storageJSON(buckets)
    }

    func bucket(_ context: Context) async throws -> Response {
        try requireService(context)
        let id = try bucketID(context)
        let found = try await service(context) { connection in
            try await connection.rows("select \(unescaped: Self.columns) from storage.buckets where id = \(id)", logger: logger).first.map(Self.bucket)
        }
        guard let found else { throw StorageError.bucketNotFound }
        return try Response.storageJSON(found)
    }

    struct Settings: Decodable {
        var id: String?
        var name: String?
        var `public`: Bool?
        /// nil: not sent; a limit of nil bytes: sent as null, which clears it.
        var file_size_limit: SizeLimit?
        var allowed_mime_types: [String]?

        enum CodingKeys: String, CodingKey { case id, name, `public`, file_size_limit, allowed_mime_types }

        init(from decoder: any Decoder) throws {
            let container = try decoder.container(keyedBy: CodingKeys.self)
            id = try container.decodeIfPresent(String.self, forKey: .id)
            name = try container.decodeIfPresent(String.self, forKey: .name)
            `public` = try container.decodeIfPresent(Bool.self, forKey: .public)
            allowed_mime_types = try container.decodeIfPresent([String].self, forKey: .allowed_mime_types)
            if container.contains(.file_size_limit) {
                file_size_limit = try container.decodeNil(forKey: .file_size_limit)
                    ? SizeLimit(bytes: nil) : try container.decode(SizeLimit.self, forKey: .file_size_limit)
            }
        }
    }

    /// `file_size_limit` as storage-js sends it: a number of bytes or a string such as "50MB"; null clears it.
    struct SizeLimit: Decodable {
        let bytes: Int64?

        init(bytes: Int64?) {
            self.bytes = bytes
        }

        init(from decoder: any Decoder) throws {
            let container = try decoder.singleValueContainer()
            if container.decodeNil() {
                bytes = nil
            } else if let number = try? container.decode(Int64.self) {
                bytes = number
            } else {
                let text = try container.decode(String.self).trimmingCharacters(in: .whitespaces).uppercased()
                let units: [(String, Int64)] = [("GB", 1 << 30), ("MB", 1 << 20), ("KB", 1 << 10), ("B", 1)]
                guard let (unit, factor) = units.first(where: { text.hasSuffix($0.0) }),
                    let value = Int64(text.dropLast(unit.count).trimmingCharacters(in: .whitespaces))
                else {
                    throw DecodingError.dataCorruptedError(in: container, debugDescription: "file_size_limit must be bytes or a size like \"50MB\"")
                }
                bytes = value * factor
            }
        }
    }

    func create(_ request: Request, _ context: Context) async throws -> Response {
        try requireService(context)
        let settings = try await decode(request)
        guard let id = settings.id ?? settings.name, !id.isEmpty else {
            throw StorageError(.badRequest, "Invalid Input", "a bucket needs a name")
        }
        guard id.range(of: "^[a-z0-9][a-z0-9._-]{0,62}$", options: .regularExpression) != nil else {
            throw StorageError(.badRequest, "Invalid Input", "bucket names are 1–63 lowercase letters, digits, '.', '_' or '-'")
        }
        try Self.check(settings)
        let limit = settings.file_size_limit?.bytes
        let created = try await service(context) { connection in
            try await connection.rows(
                """
                insert into storage.buckets (id, name, public, file_size_limit, allowed_mime_types)
                values (\(id), \(settings.name ?? id), \(settings.public ?? false), \(limit), \(settings.allowed_mime_types))
                on conflict do nothing returning id
                """, logger: logger
            ).count
        }
        guard created == 1 else { throw StorageError(.conflict, "Duplicate", "The resource already exists") }
        return try Response.storageJSON(["name": id])
    }

    func update(_ request: Request, _ context: Context) async throws -> Response {
        try requireService(context)
        let id = try bucketID(context)
        let settings = try await decode(request)
        try Self.check(settings)
        let limit = settings.file_size_limit?.bytes
        let setsLimit = settings.file_size_limit != nil
        let updated = try await service(context) { connection in
            try await connection.rows(
                """
                update storage.buckets set
                    public = coalesce(\(settings.public), public),
                    file_size_limit = case when \(setsLimit) then \(limit) else file_size_limit end,
                    allowed_mime_types = case when \(settings.allowed_mime_types != nil) then \(settings.allowed_mime_types) else allowed_mime_types end
                where id = \(id) returning id
                """, logger: logger
            ).count
        }
        guard updated == 1 else { throw StorageError.bucketNotFound }
        return try Response.storageJSON(["message": "Successfully updated"])
    }

    func delete(_ context: Context) async throws -> Response {
        try requireService(context)
        let id = try bucketID(context)
        let outcome: (exists: Bool, objects: Int, deleted: Bool) = try await service(context) { connection in
            let exists = try await !connection.rows("select 1 from storage.buckets where id = \(id) for update", logger: logger).isEmpty
            let objects = try await connection.rows("select count(*)::int from storage.objects where bucket_id = \(id)", logger: logger).first?.decode(Int.self) ?? 0
            guard exists, objects == 0 else { return (exists, objects, false) }
            try await connection.run("delete from storage.buckets where id = \(id)", logger: logger)
            return (true, 0, true)
        }
        guard outcome.exists else { throw StorageError.bucketNotFound }
        guard outcome.deleted else {
            throw StorageError(.conflict, "InvalidRequest", "The bucket holds \(outcome.objects) objects; empty it first (POST /bucket/\(id)/empty)")
        }
        return try Response.storageJSON(["message": "Successfully deleted"])
    }

    func empty(_ context: Context) async throws -> Response {
        try requireService(context)
        let id = try bucketID(context)
        let exists = try await service(context) { connection in
            guard try await !connection.rows("select 1 from storage.buckets where id = \(id)", logger: logger).isEmpty else { return false }
            try await connection.run("delete from storage.objects where bucket_id = \(id)", logger: logger)
            return true
        }
        guard exists else { throw StorageError.bucketNotFound }
        // The deleted rows queued their blobs; delete the bytes now rather than at the next sweep.
        await storage.collectGarbage()
        return try Response.storageJSON(["message": "Successfully emptied"])
    }

    // MARK: Helpers

    static func check(_ settings: Settings) throws(StorageError) {
        if let limit = settings.file_size_limit?.bytes, limit <= 0 {
            throw StorageError(.badRequest, "Invalid Input", "file_size_limit must be positive")
        }
        if let types = settings.allowed_mime_types,
            types.contains(where: { $0.range(of: "^[a-z0-9.+-]+/([a-z0-9.+-]+|\\*)$", options: [.regularExpression, .caseInsensitive]) == nil })
        {
            throw StorageError(.badRequest, "Invalid Input", "allowed_mime_types must be MIME types such as image/png or image/*")
        }
    }

    func requireService(_ context: Context) throws {
        let caller: Caller
        do {
            caller = try context.caller()
        } catch {
            throw StorageError.unauthorized(error)
        }
        guard caller.role == .serviceRole else { throw StorageError.notServiceRole }
    }

    func bucketID(_ context: Context) throws -> String {
        guard let id = context.parameters.get("id"), !id.isEmpty else { throw StorageError.bucketNotFound }
        return id
    }

    /// Buckets are managed through the service role's own transaction: the named admin path.
    func service<T: Sendable>(_ context: Context, _ body: (PostgresConnection) async throws -> T) async throws -> T {
        try await database.withServiceRoleTransaction(method: "STORAGE", path: "/storage/v1/bucket", logger: logger, body)
    }

    func decode(_ request: Request) async throws -> Settings {
        let data = try await request.bodyData(
            upTo: 64 * 1024, tooLarge: StorageError(.contentTooLarge, "Payload too large", "bucket settings are at most 64 KiB"))
        do {
            return try JSONDecoder().decode(Settings.self, from: data)
        } catch {
            throw StorageError(.badRequest, "Invalid Input", "the body must be a JSON object of bucket settings")
        }
    }

}
