import Foundation
import HTTPTypes
import Hummingbird
import Logging
import NIOCore
import NIOFoundationCompat
import StriveCore
import StriveDatabase
import StriveIdentity

/// Supabase Storage's bucket endpoints under `/storage/v1/bucket`. Every call runs as its caller, so the
/// policies on `storage.buckets` decide (the built-in ones: platform admins read, only the service role
/// changes); parsing, validation and the answer's shape live here, the SQL in `BucketService`.
public struct BucketRoutes<Context: CallerRequestContext>: Sendable {
    let storage: StorageService
    let buckets: BucketService

    public init(storage: StorageService, logger: Logger) {
        self.storage = storage
        self.buckets = BucketService(database: storage.database, logger: logger)
    }

    public func register(on router: some RouterMethods<Context>) {
        let callers = router.group("storage/v1/bucket").add(middleware: CallerScope<Context>())
        callers.get { request, context in
            try Response.storageJSON(try await buckets.list(identity(request, context), try Self.listOptions(request)))
        }
        callers.get(":id") { request, context in try await bucket(request, context) }
        callers.post { request, context in try await create(request, context) }
        callers.put(":id") { request, context in try await update(request, context) }
        callers.delete(":id") { request, context in try await delete(request, context) }
        callers.post(":id/empty") { request, context in try await empty(request, context) }
    }

    /// storage-js's `listBuckets({limit, offset, search, sortColumn, sortOrder})`.
    static func listOptions(_ request: Request) throws -> BucketService.ListOptions {
        var options = BucketService.ListOptions()
        let query = try request.queryString { StorageError.invalidInput("the query string is not valid percent-encoding: \($0.part)") }
        for (name, value) in query.pairs where !value.isEmpty {
            switch name {
            case "limit":
                guard let limit = Int(value), limit >= 1 else { throw StorageError.invalidInput("limit must be a positive integer") }
                options.limit = limit
            case "offset":
                guard let offset = Int(value), offset >= 0 else { throw StorageError.invalidInput("offset must be a non-negative integer") }
                options.offset = offset
            case "search": options.search = value
            case "sortColumn":
                guard let column = BucketService.ListOptions.Column(rawValue: value) else {
                    throw StorageError.invalidInput("sortColumn must be id, name, created_at or updated_at")
                }
                options.column = column
            case "sortOrder":
                guard ["asc", "desc"].contains(value) else { throw StorageError.invalidInput("sortOrder must be asc or desc") }
                options.descending = value == "desc"
            default: continue
            }
        }
        return options
    }

    func identity(_ request: Request, _ context: Context) throws -> RequestIdentity {
        try context.scopedCaller().identity(method: request.method.rawValue, path: request.uri.path)
    }

    func bucket(_ request: Request, _ context: Context) async throws -> Response {
        guard let found = try await buckets.bucket(identity(request, context), id: try bucketID(context)) else {
            throw StorageError.bucketNotFound
        }
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
                file_size_limit =
                    try container.decodeNil(forKey: .file_size_limit)
                    ? SizeLimit(bytes: nil) : try container.decode(SizeLimit.self, forKey: .file_size_limit)
            }
        }
    }

    /// `file_size_limit` as storage-js sends it: a number of bytes or a string such as "50MB" in Supabase's
    /// decimal units (1 MB = 1,000,000 bytes, fractions allowed: "1.5GB"); null clears it.
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
                let units: [(String, Decimal)] = [("GB", 1_000_000_000), ("MB", 1_000_000), ("KB", 1000), ("B", 1)]
                let number = { (unit: String) in text.dropLast(unit.count).trimmingCharacters(in: .whitespaces) }
                guard let (unit, factor) = units.first(where: { text.hasSuffix($0.0) }),
                    number(unit).range(of: "^[0-9]{1,12}(\\.[0-9]{1,6})?$", options: .regularExpression) != nil,
                    let value = Decimal(string: number(unit), locale: Locale(identifier: "en_US_POSIX"))
                else {
                    throw DecodingError.dataCorruptedError(
                        in: container, debugDescription: "Invalid file size format, hint: use 20GB / 20MB / 30KB / 3B")
                }
                bytes = NSDecimalNumber(decimal: value * factor).int64Value
            }
        }
    }

    func create(_ request: Request, _ context: Context) async throws -> Response {
        let settings = try await decode(request)
        guard let id = settings.id ?? settings.name, !id.isEmpty else {
            throw StorageError(.badRequest, "Invalid Input", "a bucket needs a name")
        }
        guard id.range(of: "^[a-z0-9][a-z0-9._-]{0,62}$", options: .regularExpression) != nil else {
            throw StorageError(.badRequest, "Invalid Input", "bucket names are 1–63 lowercase letters, digits, '.', '_' or '-'")
        }
        try Self.check(settings)
        let created = try await buckets.create(
            identity(request, context), id: id, name: settings.name ?? id, isPublic: settings.public ?? false,
            sizeLimit: settings.file_size_limit?.bytes,
            allowedMimeTypes: settings.allowed_mime_types)
        guard created else { throw StorageError.duplicate }
        return try Response.storageJSON(["name": id])
    }

    func update(_ request: Request, _ context: Context) async throws -> Response {
        let id = try bucketID(context)
        let settings = try await decode(request)
        try Self.check(settings)
        let changes = BucketService.Changes(
            isPublic: settings.public, sizeLimit: settings.file_size_limit.map(\.bytes),
            allowedMimeTypes: settings.allowed_mime_types.map { .some($0) })
        let updated = try await buckets.update(identity(request, context), id: id, changes)
        guard updated else { throw StorageError.bucketNotFound }
        return try Response.storageJSON(["message": "Successfully updated"])
    }

    func delete(_ request: Request, _ context: Context) async throws -> Response {
        let id = try bucketID(context)
        switch try await buckets.delete(identity(request, context), id: id) {
        case .deleted:
            break
        case .notFound:
            throw StorageError.bucketNotFound
        case .holdsObjects:
            throw StorageError(
                .conflict, "ResourceNotEmpty", "The bucket you tried to delete is not empty (empty it first: POST /bucket/\(id)/empty)")
        }
        return try Response.storageJSON(["message": "Successfully deleted"])
    }

    func empty(_ request: Request, _ context: Context) async throws -> Response {
        let id = try bucketID(context)
        let exists = try await buckets.empty(identity(request, context), id: id)
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
            types.contains(where: {
                $0.range(of: "^[a-z0-9.+-]+/([a-z0-9.+-]+|\\*)$", options: [.regularExpression, .caseInsensitive]) == nil
            })
        {
            throw StorageError(.badRequest, "Invalid Input", "allowed_mime_types must be MIME types such as image/png or image/*")
        }
    }

    func bucketID(_ context: Context) throws -> String {
        guard let id = context.parameters.get("id"), !id.isEmpty else { throw StorageError.bucketNotFound }
        return id
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
