import AsyncAlgorithms
import Foundation
import Logging
import NIOCore
import ServiceLifecycle
import StriveS3

/// Blobs as objects `blobs/<id>` of one S3 bucket. Bodies are streamed: up to `partSize` a body is one
/// PUT, above it a multipart upload whose parts go out while the next is received (at most two parts in
/// memory). Staged bytes are already at their final key: no row names them until the upload's
/// transaction commits, and the sweep removes those whose transaction never did.
///
/// As a `Service` it closes its HTTP connections when the application stops.
public final class S3BlobStore: BlobStore, Service {
    public let client: S3Client
    let partSize: Int
    let logger: Logger
    static let prefix = "blobs/"
    /// S3's limit for one CopyObject; larger objects are copied in parts of `copyPartSize`.
    let copyLimit: Int64
    let copyPartSize: Int64
    /// A multipart object's time is its upload's start, so an upload that took long looks old the moment
    /// it completes, before its row commits: objects that may be multipart are left this long.
    static let multipartGrace: TimeInterval = 24 * 3600

    public init(
        client: S3Client, partSize: Int = 8 << 20, copyLimit: Int64 = 5 << 30, copyPartSize: Int64 = 1 << 30, logger: Logger
    ) {
        self.client = client
        self.partSize = partSize
        self.copyLimit = copyLimit
        self.copyPartSize = copyPartSize
        self.logger = logger
    }

    public func run() async throws {
        try? await gracefulShutdown()
        try await client.shutdown()
    }

    func key(_ id: BlobID) -> String { Self.prefix + id.description }

    /// Checks that the bucket exists and the credentials may use it.
    public func checkBucket() async throws(S3Error) {
        try await client.headBucket()
    }

    public func stage<Body: AsyncSequence & Sendable>(_ body: Body, limit: Int64?) async throws -> StagedBlob
    where Body.Element == ByteBuffer {
        let id = BlobID()
        let key = key(id)
        var total: Int64 = 0
        var part = ByteBuffer()
        var chunks = body.makeAsyncIterator()
        // Until a part is full, the body may still be small enough for one PUT.
        while part.readableBytes < partSize, let chunk = try await chunks.next() {
            total += Int64(chunk.readableBytes)
            if let limit, total > limit { throw BlobStoreError.tooLarge(limit: limit) }
            part.writeImmutableBuffer(chunk)
        }
        if part.readableBytes < partSize {
            try await translating { try await client.putObject(key, body: part) }
            return StagedBlob(id: id, size: total, temporaryPath: nil)
        }
        let upload = try await translating { try await client.createMultipartUpload(key) }
        do {
            let parts = AsyncThrowingChannel<ByteBuffer, any Error>()
            let eTags = try await withThrowingTaskGroup(of: [String].self) { group in
                group.addTask { [client] in
                    var eTags: [String] = []
                    for try await body in parts {
                        eTags.append(try await client.uploadPart(key, uploadID: upload, number: eTags.count + 1, body: body))
                    }
                    return eTags
                }
                do {
                    await parts.send(part)
                    part = ByteBuffer()
                    while let chunk = try await chunks.next() {
                        total += Int64(chunk.readableBytes)
                        if let limit, total > limit { throw BlobStoreError.tooLarge(limit: limit) }
                        part.writeImmutableBuffer(chunk)
                        if part.readableBytes >= partSize {
                            await parts.send(part)
                            part = ByteBuffer()
                        }
                    }
                    if part.readableBytes > 0 { await parts.send(part) }
                    parts.finish()
                } catch {
                    parts.fail(error)
                    throw error
                }
                return try await group.next() ?? []
            }
            try await translating { try await client.completeMultipartUpload(key, uploadID: upload, parts: eTags) }
        } catch {
            try? await client.abortMultipartUpload(key, uploadID: upload)
            throw translate(error)
        }
        return StagedBlob(id: id, size: total, temporaryPath: nil)
    }

    /// The bytes are in place already; the committed row is what makes them an object.
    public func publish(_ staged: StagedBlob) async throws {}

    public func discard(_ staged: StagedBlob) async {
        do {
            try await client.deleteObject(key(staged.id))
        } catch {
            logger.warning("could not delete discarded bytes; the sweep will", metadata: ["blob": "\(staged.id)", "error": "\(error)"])
        }
    }

    public func read(_ id: BlobID, range: Range<Int64>?, _ consume: (ByteBuffer) async throws -> Void) async throws {
        do {
            try await client.getObject(key(id), range: range, consume)
        } catch let error as S3Error {
            throw error.isNotFound ? BlobStoreError.notFound(id) : translate(error)
        }
    }

    public func size(of id: BlobID) async throws -> Int64 {
        guard let head = try await translating({ try await client.headObject(key(id)) }) else { throw BlobStoreError.notFound(id) }
        return head.size
    }

    public func delete(_ id: BlobID) async throws {
        try await translating { try await client.deleteObject(key(id)) }
    }

    public func stageCopy(of id: BlobID) async throws -> StagedBlob {
        let size = try await size(of: id)
        let copy = BlobID()
        if size <= copyLimit {
            try await translating { try await client.copyObject(from: key(id), to: key(copy)) }
            return StagedBlob(id: copy, size: size, temporaryPath: nil)
        }
        let upload = try await translating { try await client.createMultipartUpload(key(copy)) }
        do {
            var eTags: [String] = []
            var offset: Int64 = 0
            while offset < size {
                let end = min(size, offset + copyPartSize)
                eTags.append(
                    try await client.uploadPartCopy(
                        key(copy), uploadID: upload, number: eTags.count + 1, source: key(id), range: offset..<end))
                offset = end
            }
            try await client.completeMultipartUpload(key(copy), uploadID: upload, parts: eTags)
        } catch {
            try? await client.abortMultipartUpload(key(copy), uploadID: upload)
            throw translate(error)
        }
        return StagedBlob(id: copy, size: size, temporaryPath: nil)
    }

    /// S3's smallest part but the last.
    static let minimumPartSize: Int64 = 5 << 20

    /// An upload's parts copied into one new object by S3 itself (UploadPartCopy), no byte through this
    /// server, when every part but the last is large enough to be a multipart part (supabase-js sends
    /// 6 MiB chunks); else they are read back in order.
    public func assemble(upload: UUID, parts: [UploadPart], length: Int64) async throws -> StagedBlob {
        var pieces: [(BlobID, Range<Int64>)] = []
        for part in parts {
            guard let blob = part.blob else { throw BlobStoreError.unavailable("part at \(part.offset) has no blob") }
            var start: Int64 = 0
            while start < part.size {
                let end = min(part.size, start + copyPartSize)
                pieces.append((blob, start..<end))
                start = end
            }
        }
        let received = parts.reduce(0) { $0 + $1.size }
        guard received == length else { throw BlobStoreError.incompleteUpload(received: received, expected: length) }
        if pieces.count == 1, let (blob, _) = pieces.first { return try await stageCopy(of: blob) }
        guard pieces.count > 1, pieces.dropLast().allSatisfy({ $0.1.count >= Self.minimumPartSize }) else {
            return try await stage(PartsSequence(blobs: self, parts: parts), limit: length)
        }
        let id = BlobID()
        let multipart = try await translating { try await client.createMultipartUpload(key(id)) }
        do {
            var eTags: [String] = []
            for (blob, range) in pieces {
                eTags.append(
                    try await client.uploadPartCopy(key(id), uploadID: multipart, number: eTags.count + 1, source: key(blob), range: range))
            }
            try await client.completeMultipartUpload(key(id), uploadID: multipart, parts: eTags)
        } catch {
            try? await client.abortMultipartUpload(key(id), uploadID: multipart)
            throw translate(error)
        }
        return StagedBlob(id: id, size: length, temporaryPath: nil)
    }

    public func sweep(modifiedBefore cutoff: Date, liveAmong: ([BlobID]) async throws -> Set<BlobID>) async throws -> Int {
        var removed = 0
        // Uploads a crash or a lost connection left open: invisible, but S3 keeps (and bills) their parts.
        for upload in try await translating({ try await client.listMultipartUploads(prefix: Self.prefix) })
        where upload.initiated < cutoff {
            try await translating { try await client.abortMultipartUpload(upload.key, uploadID: upload.uploadID) }
            removed += 1
        }
        var page: String?
        repeat {
            let listed = try await translating { try await client.listObjects(prefix: Self.prefix, continuationToken: page) }
            let old = listed.objects.filter { object in
                object.lastModified < (object.size > partSize ? cutoff.addingTimeInterval(-Self.multipartGrace) : cutoff)
            }
            let candidates = old.compactMap { UUID(uuidString: String($0.key.dropFirst(Self.prefix.count))).map(BlobID.init) }
            let live = try await liveAmong(candidates)
            for id in candidates where !live.contains(id) {
                try await delete(id)
                removed += 1
            }
            page = listed.next
        } while page != nil
        return removed
    }

    public func place(fileAt path: String, as id: BlobID) async throws {
        // A multipart upload appears under its key only when it completes: whole or not at all.
        try await translating { try await client.upload(fileAt: path, to: key(id), partSize: partSize) }
    }

    public func isEmpty() async throws -> Bool {
        try await translating { try await client.listObjects(prefix: Self.prefix) }.objects.isEmpty
    }

    public func close() async {
        try? await client.shutdown()
    }

    @discardableResult
    private func translating<T>(_ call: () async throws -> T) async throws -> T {
        do {
            return try await call()
        } catch {
            throw translate(error)
        }
    }

    /// S3's failures as the store's: anything but "not found" means the store cannot be used right now.
    /// Clients hear only that; the log says why.
    func translate(_ error: any Error) -> any Error {
        guard let s3 = error as? S3Error else { return error }
        logger.error("the S3 object store failed", metadata: ["error": "\(s3)", "bucket": "\(client.configuration.bucket)"])
        return BlobStoreError.unavailable(s3.description)
    }
}
