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

public enum BlobStoreError: Error, Sendable, Equatable {
    /// The body was longer than the bucket allows; nothing was kept.
    case tooLarge(limit: Int64)
    case notFound(BlobID)
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
    /// Releases what the store holds open (its HTTP connections); the store is not used afterwards.
    func close() async
}
