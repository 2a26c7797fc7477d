import Foundation
import NIOCore
import NIOFileSystem

/// Where an object's bytes live, named by ids the store chose: never derived from the object key.
public struct BlobID: Sendable, Hashable, CustomStringConvertible {
    public let value: UUID
    public init(_ value: UUID = UUID()) { self.value = value }
    /// The id a metadata row records (`storage.objects.version`); nil for text that is not one.
    public init?(_ text: String) {
        guard let value = UUID(uuidString: text) else { return nil }
        self.value = value
    }
    public var description: String { value.uuidString.lowercased() }
}

/// Bytes written and flushed to stable storage, but not yet visible as a blob.
public struct StagedBlob: Sendable {
    public let id: BlobID
    public let size: Int64
    /// Where the local store keeps the bytes until `publish`; nil when staged bytes are already in place
    /// (S3: no row names them until the transaction that publishes them commits).
    let temporaryPath: FilePath?
}

/// One chunk of a resumable upload as the store kept it, recorded with the upload's new offset.
public struct UploadPart: Sendable {
    public let offset: Int64
    public let size: Int64
    /// The blob holding these bytes alone; nil when the store writes every chunk of an upload into one
    /// place (the local store), where the upload's offset says all there is to know.
    public let blob: BlobID?

    public init(offset: Int64, size: Int64, blob: BlobID?) {
        self.offset = offset
        self.size = size
        self.blob = blob
    }
}

public enum BlobStoreError: Error, Sendable, Equatable {
    /// The body was longer than the bucket allows; nothing was kept.
    case tooLarge(limit: Int64)
    case notFound(BlobID)
    /// A resumable upload's stored parts hold fewer bytes than its length.
    case incompleteUpload(received: Int64, expected: Int64)
    /// The store could not be used (unreachable, refusing, misconfigured); the reason is for the log.
    case unavailable(String)
}

/// A place for object bytes. The local directory is the default; an S3-compatible store can implement
/// the same protocol. Writes are two-phase so that a metadata row and its bytes appear together:
/// `stage` streams and fsyncs to a temporary name, `publish` makes it a blob, `discard` drops it.
public protocol BlobStore: Sendable {
    func stage<Body: AsyncSequence & Sendable>(_ body: Body, limit: Int64?) async throws -> StagedBlob where Body.Element == ByteBuffer
    func publish(_ staged: StagedBlob) async throws
    func discard(_ staged: StagedBlob) async
    /// Calls `consume` with the bytes of `range` (the whole blob when nil), chunk by chunk.
    func read(_ id: BlobID, range: Range<Int64>?, _ consume: (ByteBuffer) async throws -> Void) async throws
    func size(of id: BlobID) async throws -> Int64
    func delete(_ id: BlobID) async throws
    /// A new staged blob with the bytes of `id` (blobs are immutable, so a copy is the only way to share).
    func stageCopy(of id: BlobID) async throws -> StagedBlob
    /// Removes staged leftovers and every blob `liveAmong` does not vouch for, among files last modified
    /// before `cutoff` (so a write still in flight on another instance sharing the directory survives).
    /// `liveAmong` is asked in batches, so a large store costs one query per batch, not per blob.
    func sweep(modifiedBefore cutoff: Date, liveAmong: ([BlobID]) async throws -> Set<BlobID>) async throws -> Int
    /// Files the bytes at `path` as blob `id` (a restore putting back the blobs a backup names); the file
    /// may be moved away. Nothing is visible under `id` until the bytes are all there.
    func place(fileAt path: String, as id: BlobID) async throws
    /// Whether the store holds no blob at all (a restore goes only into an empty store).
    func isEmpty() async throws -> Bool
    /// Writes and flushes one chunk of resumable upload `upload` at `offset`. The caller records the part
    /// only if the upload's offset is still `offset`, else it calls `discardPart`.
    func writePart<Body: AsyncSequence & Sendable>(_ body: Body, upload: UUID, offset: Int64, limit: Int64) async throws -> UploadPart
    where Body.Element == ByteBuffer
    func discardPart(_ part: UploadPart) async
    /// A staged blob with the upload's `length` bytes, from its recorded parts in order. The parts stay
    /// until `removeUpload`, so a completion whose commit fails can be tried again.
    func assemble(upload: UUID, parts: [UploadPart], length: Int64) async throws -> StagedBlob
    /// Removes what the store keeps for an upload (finished, terminated or expired).
    func removeUpload(_ upload: UUID, parts: [UploadPart]) async
    /// Releases what the store holds open (its HTTP connections); the store is not used afterwards.
    func close() async
}

/// Resumable uploads in stores that keep each chunk as a blob of its own (S3): the chunks are read back in
/// order into one new blob at completion.
extension BlobStore {
    public func writePart<Body: AsyncSequence & Sendable>(_ body: Body, upload: UUID, offset: Int64, limit: Int64) async throws
        -> UploadPart
    where Body.Element == ByteBuffer {
        let staged = try await stage(body, limit: limit)
        do {
            try await publish(staged)
        } catch {
            await discard(staged)
            throw error
        }
        return UploadPart(offset: offset, size: staged.size, blob: staged.id)
    }

    public func discardPart(_ part: UploadPart) async {
        if let blob = part.blob { try? await delete(blob) }
    }

    public func assemble(upload: UUID, parts: [UploadPart], length: Int64) async throws -> StagedBlob {
        let staged = try await stage(PartsSequence(blobs: self, parts: parts), limit: length)
        guard staged.size == length else {
            await discard(staged)
            throw BlobStoreError.incompleteUpload(received: staged.size, expected: length)
        }
        return staged
    }

    public func removeUpload(_ upload: UUID, parts: [UploadPart]) async {
        for part in parts { await discardPart(part) }
    }
}

/// The bytes of an upload's parts, in order, read a range at a time: its parts as one body.
struct PartsSequence: AsyncSequence, Sendable {
    typealias Element = ByteBuffer
    let blobs: any BlobStore
    let parts: [UploadPart]
    static let chunk: Int64 = 1 << 20

    struct AsyncIterator: AsyncIteratorProtocol {
        let blobs: any BlobStore
        let parts: [UploadPart]
        var part = 0
        var position: Int64 = 0

        mutating func next() async throws -> ByteBuffer? {
            while part < parts.count && position >= parts[part].size {
                part += 1
                position = 0
            }
            guard part < parts.count else { return nil }
            let current = parts[part]
            guard let id = current.blob else { throw BlobStoreError.unavailable("part at \(current.offset) has no blob") }
            let end = Swift.min(current.size, position + PartsSequence.chunk)
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
