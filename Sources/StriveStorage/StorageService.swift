import Foundation
import Logging
import PostgresNIO
import StriveBlobs
import StriveCore
import StriveDatabase
import StriveMetrics

/// A bucket's rules for what may be stored in it, read through the service role (buckets are configuration).
public struct BucketRules: Sendable, Equatable {
    public let id: String
    public let isPublic: Bool
    public let sizeLimit: Int64?
    public let allowedMimeTypes: [String]?

    /// Refuses a declared size over the bucket's limit before a byte is stored.
    func check(size: Int64) throws(StorageError) {
        if let sizeLimit, size > sizeLimit { throw .tooLarge(limit: sizeLimit) }
    }

    /// `image/*` allows every image type; parameters such as `;charset=utf-8` are ignored.
    func check(mimeType: String) throws(StorageError) {
        guard let allowed = allowedMimeTypes, !allowed.isEmpty else { return }
        let type = mimeType.split(separator: ";").first.map { $0.trimmingCharacters(in: .whitespaces).lowercased() } ?? ""
        let matches = allowed.contains { pattern in
            let pattern = pattern.lowercased()
            return pattern.hasSuffix("/*") ? type.hasPrefix(String(pattern.dropLast())) : type == pattern
        }
        guard matches else { throw .mimeTypeNotAllowed(type) }
    }
}

/// What an object row says about its bytes, enough to serve them.
public struct StoredObject: Sendable {
    public let id: UUID
    public let blob: BlobID
    public let size: Int64
    public let mimeType: String
    public let cacheControl: String
    public let eTag: String
    public let lastModified: Date
}

/// What an upload writes into the row beside the bytes.
public struct UploadAttributes: Sendable {
    public var owner: UUID?
    public var mimeType: String
    public var cacheControl: String
    /// User metadata as JSON text (storage-js's `metadata` option), or nil.
    public var userMetadata: String?
}

/// Object metadata and bytes kept in step: every metadata change runs in the caller's request transaction
/// (so the bucket policies on `storage.objects` decide), bytes are published inside that transaction just
/// before it commits, and blobs the rows stop pointing at are deleted after commit from the queue the
/// database keeps (`storage.blob_garbage`).
public struct StorageService: Sendable {
    public let database: Database
    public let blobs: any BlobStore
    public let signer: SignedURLSigner
    let logger: Logger
    /// What an image transformation may cost (`STRIVE_STORAGE_IMAGE_*`).
    public var imageSettings = ImageSettings.default

    public init(database: Database, blobs: any BlobStore, signer: SignedURLSigner, logger: Logger) {
        self.database = database
        self.blobs = blobs
        self.signer = signer
        self.logger = logger
    }

    /// Thrown inside a transaction to roll it back on purpose.
    private struct DryRun: Error {}

    // MARK: Buckets

    /// The bucket's rules, through the service role: a user may not read `storage.buckets`, but every
    /// upload must know the limits before it accepts a byte.
    public func rules(of bucket: String) async throws -> BucketRules {
        let found = try await database.withServiceRoleTransaction(method: "STORAGE", path: "bucket-rules", logger: logger) { connection in
            try await connection.rows(
                "select id, public, file_size_limit, allowed_mime_types from storage.buckets where id = \(bucket)", logger: logger
            ).first.map { row in
                let (id, isPublic, limit, types) = try row.decode((String, Bool, Int64?, [String]?).self)
                return BucketRules(id: id, isPublic: isPublic, sizeLimit: limit, allowedMimeTypes: types)
            }
        }
        guard let found else { throw StorageError.bucketNotFound }
        return found
    }

    // MARK: Writes

    static func writeStatement(
        id: UUID, bucket: String, key: ObjectKey, blob: String, size: Int64, attributes: UploadAttributes, upsert: Bool
    ) -> PostgresQuery {
        let owner = attributes.owner?.uuidString.lowercased()
        var query: PostgresQuery = """
            insert into storage.objects (id, bucket_id, name, owner, owner_id, version, metadata, user_metadata)
            values (\(id), \(bucket), \(key.value), \(owner)::uuid, \(owner), \(blob),
                    jsonb_build_object('eTag', '"' || \(blob) || '"', 'size', \(size)::bigint, 'mimetype', \(attributes.mimeType)::text,
                        'cacheControl', \(attributes.cacheControl)::text, 'lastModified', now(), 'contentLength', \(size)::bigint,
                        'httpStatusCode', 200),
                    \(attributes.userMetadata)::jsonb)
            """
        if upsert {
            query.sql += """

                on conflict (bucket_id, name) do update set
                    id = excluded.id, owner = excluded.owner, owner_id = excluded.owner_id, version = excluded.version,
                    metadata = excluded.metadata, user_metadata = excluded.user_metadata, last_accessed_at = now()
                """
        }
        return query
    }

    /// Runs the upload's row write and rolls it back: the bucket policies (and a taken key) refuse an
    /// upload before its body is read, not after it was stored.
    public func authorizeUpload(_ identity: RequestIdentity, bucket: String, key: ObjectKey, attributes: UploadAttributes, upsert: Bool)
        async throws
    {
        do {
            try await database.withRequestTransaction(identity, logger: logger) { connection in
                try await connection.run(
                    Self.writeStatement(
                        id: UUID(), bucket: bucket, key: key, blob: "preflight", size: 0, attributes: attributes, upsert: upsert),
                    logger: logger)
                throw DryRun()
            }
        } catch is DryRun {}
    }

    /// Writes the row for `staged` as `identity` and publishes the bytes before COMMIT. Whatever fails,
    /// the staged or published bytes are removed; bytes an upsert replaced are deleted after commit.
    public func commitUpload(
        _ identity: RequestIdentity, bucket: String, key: ObjectKey, staged: StagedBlob, attributes: UploadAttributes, upsert: Bool
    ) async throws -> UUID {
        let id = UUID()
        do {
            try await database.withRequestTransaction(identity, logger: logger) { connection in
                try await connection.run(
                    Self.writeStatement(
                        id: id, bucket: bucket, key: key, blob: staged.id.description, size: staged.size, attributes: attributes,
                        upsert: upsert),
                    logger: logger)
                try await blobs.publish(staged)
            }
        } catch {
            await blobs.discard(staged)
            try? await blobs.delete(staged.id)
            throw error
        }
        StriveMetrics.storageReceived(bytes: Int(staged.size))
        await collectGarbage()
        return id
    }

    /// Deletes the blobs queued by released rows. Failures only delay this: the queue survives, and the
    /// periodic sweep removes blobs that lost their queue entry in a crash. While a backup runs (it holds
    /// `BackupLock`), nothing is taken from the queue: its snapshot may still name those blobs.
    public func collectGarbage() async {
        do {
            let versions = try await database.withServiceRoleTransaction(method: "STORAGE", path: "blob-garbage", logger: logger) {
                connection in
                try await connection.rows(
                    """
                    delete from storage.blob_garbage where (select pg_try_advisory_xact_lock_shared(\(BackupLock.key)))
                    returning version
                    """, logger: logger
                ).map { try $0.decode(String.self) }
            }
            for version in versions {
                guard let uuid = UUID(uuidString: version) else { continue }
                try await blobs.delete(BlobID(uuid))
            }
        } catch {
            logger.warning("deleting released blobs failed; they stay queued", metadata: ["error": "\(error)"])
        }
    }

    /// Removes leftovers of interrupted writes and blobs no row points at. Run at start-up and periodically.
    @discardableResult
    public func sweep(modifiedBefore cutoff: Date) async throws -> Int {
        try await ImageVariants(storage: self).sweep()
        await collectGarbage()
        return try await blobs.sweep(modifiedBefore: cutoff) { candidates in
            guard !candidates.isEmpty else { return [] }
            let versions = candidates.map(\.description)
            let live = try await database.withServiceRoleTransaction(method: "STORAGE", path: "blob-sweep", logger: logger) { connection in
                // A running backup may need blobs no row names any more: all of them count as live until it ends.
                let backupRunning =
                    try await connection.rows(
                        "select not pg_try_advisory_xact_lock_shared(\(BackupLock.key))", logger: logger
                    ).first?.decode(Bool.self) ?? true
                if backupRunning { return versions }
                // A resumable upload's parts are live until the upload finishes or expires; a kept image
                // variant until it is evicted or its object's version released.
                return try await connection.rows(
                    """
                    select version from storage.objects where version = any(\(versions))
                    union all select blob from storage.resumable_parts where blob = any(\(versions))
                    union all select blob from storage.image_variants where blob = any(\(versions))
                    """, logger: logger
                ).map { try $0.decode(String.self) }
            }
            return Set(live.compactMap { UUID(uuidString: $0).map(BlobID.init) })
        }
    }

    // MARK: Reads

    static let storedColumns = """
        id, version, coalesce((metadata->>'size')::bigint, 0), coalesce(metadata->>'mimetype', 'application/octet-stream'),
        coalesce(metadata->>'cacheControl', 'no-cache'), coalesce(metadata->>'eTag', '"' || version || '"'), updated_at
        """

    /// The object as `identity` may see it (nil when it does not exist or the policies hide it).
    public func object(_ identity: RequestIdentity, bucket: String, key: ObjectKey) async throws -> StoredObject? {
        try await database.withRequestTransaction(identity, logger: logger) { connection in
            try await connection.rows(
                "select \(unescaped: Self.storedColumns) from storage.objects where bucket_id = \(bucket) and name = \(key.value) and version is not null",
                logger: logger
            ).first.map(Self.stored)
        }
    }

    static func stored(_ row: PostgresRow) throws -> StoredObject {
        let (id, version, size, type, cache, eTag, modified) = try row.decode((UUID, String, Int64, String, String, String, Date).self)
        guard let blob = UUID(uuidString: version) else { throw StorageError.objectNotFound }
        return StoredObject(
            id: id, blob: BlobID(blob), size: size, mimeType: type, cacheControl: cache, eTag: eTag, lastModified: modified)
    }

    /// Runs `query` as `identity` and returns the JSON text PostgreSQL built (the first column of the first row).
    public func json(_ identity: RequestIdentity, _ query: PostgresQuery) async throws -> String? {
        try await database.withRequestTransaction(identity, logger: logger) { connection in
            try await connection.rows(query, logger: logger).first?.decode(String?.self)
        }
    }

    /// Runs `query` as `identity`, then deletes the blobs its changes released.
    public func change(_ identity: RequestIdentity, _ query: PostgresQuery) async throws -> String? {
        let result = try await json(identity, query)
        await collectGarbage()
        return result
    }
}
