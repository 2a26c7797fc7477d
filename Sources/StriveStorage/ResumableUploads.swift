import Foundation
import Logging
import NIOCore
import PostgresNIO
import StriveBlobs
import StriveCore
import StriveDatabase
import StriveMetrics

/// One TUS upload as `storage.resumable_uploads` keeps it.
struct ResumableUpload: Sendable {
    let id: UUID
    let bucket: String
    let key: ObjectKey
    let length: Int64
    let offset: Int64
    let upsert: Bool
    let attributes: UploadAttributes
    /// The creator's identity: the policies judged the upload with it, and it writes the object row.
    let identity: RequestIdentity
    let expiresAt: Date
    let expired: Bool
}

/// Resumable uploads (TUS 1.0.0): the policies decide at creation, each PATCH's bytes become a part (a
/// blob, recorded with the new offset in one transaction), and the object appears only when the last
/// byte has arrived — written as the creator, through the same two-phase path as any upload. Parts live
/// in the blob store and their record in the database, so an upload resumes after a crash and on any
/// instance sharing both.
public struct ResumableUploads: Sendable {
    let storage: StorageService
    var database: Database { storage.database }
    var logger: Logger { storage.logger }
    /// Abandoned uploads expire (TUS expiration); their parts are swept.
    static let lifetime: TimeInterval = 24 * 3600

    public init(storage: StorageService) {
        self.storage = storage
    }

    private func service<T: Sendable>(_ path: String, _ body: (PostgresConnection) async throws -> T) async throws -> T {
        try await database.withServiceRoleTransaction(method: "STORAGE", path: path, logger: logger, body)
    }

    /// Creates an upload after the bucket's limits and the policies allowed it.
    func create(
        identity: RequestIdentity, bucket: String, key: ObjectKey, length: Int64, attributes: UploadAttributes, upsert: Bool
    ) async throws -> (id: UUID, expiresAt: Date) {
        let rules = try await storage.rules(of: bucket)
        try rules.check(size: length)
        try rules.check(mimeType: attributes.mimeType)
        try await storage.authorizeUpload(identity, bucket: bucket, key: key, attributes: attributes, upsert: upsert)
        let owner = attributes.owner
        return try await service("/upload/resumable") { connection in
            try await connection.run(
                "delete from storage.resumable_uploads where expires_at < now() - interval '1 day'", logger: logger)
            guard
                let row = try await connection.rows(
                    """
                    insert into storage.resumable_uploads
                        (bucket_id, name, upload_length, upsert, content_type, cache_control, user_metadata, owner, role, claims,
                         session_id, expires_at)
                    values (\(bucket), \(key.value), \(length), \(upsert), \(attributes.mimeType), \(attributes.cacheControl),
                            \(attributes.userMetadata)::jsonb, \(owner), \(identity.role.rawValue), \(identity.claimsJSON)::jsonb,
                            \(identity.sessionID), now() + make_interval(secs => \(Self.lifetime)))
                    returning id, expires_at
                    """, logger: logger
                ).first
            else { throw StorageError.unavailable }
            let (id, expires) = try row.decode((UUID, Date).self)
            return (id, expires)
        }
    }

    /// The upload `id` when `caller` created it (anyone else is told it does not exist).
    func upload(_ id: UUID, for caller: RequestIdentity) async throws -> ResumableUpload? {
        try await service("/upload/resumable") { connection in
            guard
                let row = try await connection.rows(
                    """
                    select bucket_id, name, upload_length, upload_offset, upsert, content_type, cache_control, user_metadata::text,
                           owner, role, claims::text, session_id, expires_at, expires_at <= now(), claims ->> 'sub'
                    from storage.resumable_uploads where id = \(id)
                    """, logger: logger
                ).first
            else { return nil }
            let (bucket, name, length, offset, upsert, type, cache, metadata, owner, role, claims, session, expires, expired, subject) =
                try row.decode(
                    (String, String, Int64, Int64, Bool, String, String, String?, UUID?, String, String, UUID?, Date, Bool, String?).self)
            guard let databaseRole = DatabaseRole(rawValue: role), databaseRole == caller.role,
                subject == Self.subject(of: caller.claimsJSON), let key = try? ObjectKey(name)
            else { return nil }
            return ResumableUpload(
                id: id, bucket: bucket, key: key, length: length, offset: offset, upsert: upsert,
                attributes: UploadAttributes(owner: owner, mimeType: type, cacheControl: cache, userMetadata: metadata),
                identity: RequestIdentity(
                    role: databaseRole, claimsJSON: claims, method: "PATCH", path: "/upload/resumable", sessionID: session),
                expiresAt: expires, expired: expired)
        }
    }

    static func subject(of claimsJSON: String) -> String? {
        JSONValue(jsonText: claimsJSON)?.objectValue?["sub"]?.stringValue
    }

    enum Appended: Sendable {
        case offset(Int64)
        case conflict(current: Int64)
    }

    /// Stores `body` as the part at `offset`. The bytes are staged first (a slow client holds no lock), then
    /// recorded and published with the new offset only if nobody else appended at that offset meanwhile.
    func append<Body: AsyncSequence & Sendable>(_ upload: ResumableUpload, offset: Int64, body: Body) async throws -> Appended
    where Body.Element == ByteBuffer {
        guard offset == upload.offset else { return .conflict(current: upload.offset) }
        let staged = try await storage.blobs.stage(body, limit: upload.length - offset)
        guard staged.size > 0 else {
            await storage.blobs.discard(staged)
            return .offset(offset)
        }
        do {
            return try await service("/upload/resumable") { connection in
                let current = try await connection.rows(
                    "select upload_offset from storage.resumable_uploads where id = \(upload.id) for update", logger: logger
                ).first?.decode(Int64.self)
                guard let current else { throw StorageError.objectNotFound }
                guard current == offset else { throw ConflictingAppend(current: current) }
                try await connection.run(
                    """
                    insert into storage.resumable_parts (upload_id, part_offset, size, blob)
                    values (\(upload.id), \(offset), \(staged.size), \(staged.id.description))
                    """, logger: logger)
                try await connection.run(
                    """
                    update storage.resumable_uploads set upload_offset = \(offset + staged.size), updated_at = now()
                    where id = \(upload.id)
                    """, logger: logger)
                try await storage.blobs.publish(staged)
                StriveMetrics.resumablePart(bytes: Int(staged.size))
                return .offset(offset + staged.size)
            }
        } catch let conflict as ConflictingAppend {
            await storage.blobs.discard(staged)
            return .conflict(current: conflict.current)
        } catch {
            await storage.blobs.discard(staged)
            try? await storage.blobs.delete(staged.id)
            throw error
        }
    }

    struct ConflictingAppend: Error {
        let current: Int64
    }

    /// The parts of a complete upload become the object: one staged blob read from the parts in order,
    /// committed as the creator; then the upload and its parts go.
    func finish(_ upload: ResumableUpload) async throws -> UUID {
        let parts = try await service("/upload/resumable") { connection in
            try await connection.rows(
                "select blob, size from storage.resumable_parts where upload_id = \(upload.id) order by part_offset", logger: logger
            ).map { row -> (BlobID, Int64) in
                let (blob, size) = try row.decode((String, Int64).self)
                guard let id = BlobID(blob) else { throw StorageError.unavailable }
                return (id, size)
            }
        }
        let staged = try await storage.blobs.stage(PartsSequence(blobs: storage.blobs, parts: parts), limit: upload.length)
        guard staged.size == upload.length else {
            await storage.blobs.discard(staged)
            throw StorageError(.conflict, "InvalidUpload", "the upload's parts hold \(staged.size) of \(upload.length) bytes")
        }
        let id = try await storage.commitUpload(
            upload.identity, bucket: upload.bucket, key: upload.key, staged: staged, attributes: upload.attributes, upsert: upload.upsert)
        try await discard(upload.id)
        StriveMetrics.resumableFinished()
        return id
    }

    /// Deletes an upload (terminated, finished or expired) and its parts' bytes.
    func discard(_ id: UUID) async throws {
        let blobs = try await service("/upload/resumable") { connection in
            try await connection.rows(
                """
                with gone as (delete from storage.resumable_uploads where id = \(id) returning id)
                select p.blob from storage.resumable_parts p join gone on gone.id = p.upload_id
                """, logger: logger
            ).map { try $0.decode(String.self) }
        }
        for blob in blobs.compactMap(BlobID.init) { try? await storage.blobs.delete(blob) }
    }

    /// Removes expired uploads and their bytes. Run with the storage sweep.
    @discardableResult
    public func sweepExpired() async throws -> Int {
        let expired = try await service("/upload/resumable") { connection in
            try await connection.rows(
                "select id from storage.resumable_uploads where expires_at < now() limit 1000", logger: logger
            ).map { try $0.decode(UUID.self) }
        }
        for id in expired { try await discard(id) }
        return expired.count
    }
}

/// The bytes of a list of blobs, in order, read a range at a time: an upload's parts as one body.
struct PartsSequence: AsyncSequence, Sendable {
    typealias Element = ByteBuffer
    let blobs: any BlobStore
    let parts: [(BlobID, Int64)]
    static let chunk: Int64 = 1 << 20

    struct AsyncIterator: AsyncIteratorProtocol {
        let blobs: any BlobStore
        let parts: [(BlobID, Int64)]
        var part = 0
        var position: Int64 = 0

        mutating func next() async throws -> ByteBuffer? {
            while part < parts.count && position >= parts[part].1 {
                part += 1
                position = 0
            }
            guard part < parts.count else { return nil }
            let (id, size) = parts[part]
            let end = Swift.min(size, position + PartsSequence.chunk)
            var collected = ByteBuffer()
            try await blobs.read(id, range: position..<end) { buffer in
                var buffer = buffer
                collected.writeBuffer(&buffer)
            }
            guard collected.readableBytes == Int(end - position) else { throw BlobStoreError.notFound(id) }
            position = end
            return collected
        }
    }

    func makeAsyncIterator() -> AsyncIterator { AsyncIterator(blobs: blobs, parts: parts) }
}
