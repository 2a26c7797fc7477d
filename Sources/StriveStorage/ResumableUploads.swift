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

    /// Stores `body` as the part at `offset`. The bytes are written first (a slow client holds no lock),
    /// then recorded with the new offset only if nobody else appended at that offset meanwhile.
    func append<Body: AsyncSequence & Sendable>(_ upload: ResumableUpload, offset: Int64, body: Body) async throws -> Appended
    where Body.Element == ByteBuffer {
        guard offset == upload.offset else { return .conflict(current: upload.offset) }
        let part = try await storage.blobs.writePart(body, upload: upload.id, offset: offset, limit: upload.length - offset)
        guard part.size > 0 else {
            await storage.blobs.discardPart(part)
            return .offset(offset)
        }
        do {
            return try await service("/upload/resumable") { connection in
                let current = try await connection.rows(
                    "select upload_offset from storage.resumable_uploads where id = \(upload.id) for update", logger: logger
                ).first?.decode(Int64.self)
                guard let current else { throw StorageError.objectNotFound }
                guard current == offset else { throw ConflictingAppend(current: current) }
                if let blob = part.blob {
                    try await connection.run(
                        """
                        insert into storage.resumable_parts (upload_id, part_offset, size, blob)
                        values (\(upload.id), \(offset), \(part.size), \(blob.description))
                        """, logger: logger)
                }
                try await connection.run(
                    """
                    update storage.resumable_uploads set upload_offset = \(offset + part.size), updated_at = now()
                    where id = \(upload.id)
                    """, logger: logger)
                StriveMetrics.resumablePart(bytes: Int(part.size))
                return .offset(offset + part.size)
            }
        } catch let conflict as ConflictingAppend {
            await storage.blobs.discardPart(part)
            return .conflict(current: conflict.current)
        } catch {
            await storage.blobs.discardPart(part)
            throw error
        }
    }

    struct ConflictingAppend: Error {
        let current: Int64
    }

    private func parts(of id: UUID) async throws -> [UploadPart] {
        try await service("/upload/resumable") { connection in
            try await connection.rows(
                "select part_offset, size, blob from storage.resumable_parts where upload_id = \(id) order by part_offset",
                logger: logger
            ).map { row in
                let (offset, size, blob) = try row.decode((Int64, Int64, String).self)
                guard let id = BlobID(blob) else { throw StorageError.unavailable }
                return UploadPart(offset: offset, size: size, blob: id)
            }
        }
    }

    /// The parts of a complete upload become the object, committed as the creator; then the upload and
    /// its parts go. The store assembles them without a copy where it can (a hard link on disk, S3
    /// copying parts into a multipart object).
    func finish(_ upload: ResumableUpload) async throws -> UUID {
        let staged = try await storage.blobs.assemble(upload: upload.id, parts: try await parts(of: upload.id), length: upload.length)
        let id = try await storage.commitUpload(
            upload.identity, bucket: upload.bucket, key: upload.key, staged: staged, attributes: upload.attributes, upsert: upload.upsert)
        try await discard(upload.id)
        StriveMetrics.resumableFinished()
        return id
    }

    /// Deletes an upload (terminated, finished or expired) and what the store keeps for it.
    func discard(_ id: UUID) async throws {
        let parts = try await service("/upload/resumable") { connection in
            try await connection.rows(
                """
                with gone as (delete from storage.resumable_uploads where id = \(id) returning id)
                select p.part_offset, p.size, p.blob from storage.resumable_parts p join gone on gone.id = p.upload_id
                """, logger: logger
            ).map { row in
                let (offset, size, blob) = try row.decode((Int64, Int64, String).self)
                return UploadPart(offset: offset, size: size, blob: BlobID(blob))
            }
        }
        await storage.blobs.removeUpload(id, parts: parts)
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
