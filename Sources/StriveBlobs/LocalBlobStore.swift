import AsyncAlgorithms
import Foundation
import NIOCore
import NIOFileSystem

/// Blobs as files under `root/blobs/<first two hex digits>/<id>`, staged in `root/staging`.
public struct LocalBlobStore: BlobStore {
    public let root: FilePath
    let fileSystem: FileSystem
    static let chunk = ByteCount.kibibytes(256)
    /// Bytes gathered from the network before one write: large enough that the thread hop per write is noise.
    static let batchBytes = 1 << 20

    public init(root: String, fileSystem: FileSystem = .shared) async throws {
        self.root = FilePath(root)
        self.fileSystem = fileSystem
        for directory in [self.root, staging, blobs] {
            try await fileSystem.createDirectory(at: directory, withIntermediateDirectories: true, permissions: [.ownerReadWriteExecute])
        }
    }

    var staging: FilePath { root.appending("staging") }
    var blobs: FilePath { root.appending("blobs") }

    func path(of id: BlobID) -> FilePath {
        blobs.appending(String(id.description.prefix(2))).appending(id.description)
    }

    public func stage<Body: AsyncSequence & Sendable>(_ body: Body, limit: Int64?) async throws -> StagedBlob
    where Body.Element == ByteBuffer {
        let id = BlobID()
        let temporary = staging.appending(id.description + ".part")
        let size: Int64
        do {
            size = try await fileSystem.withFileHandle(forWritingAt: temporary, options: .newFile(replaceExisting: false)) { handle in
                // Receiving and writing overlap: while one batch is written (on the file system's threads),
                // the next is read from the network. At most two batches are in memory.
                let batches = AsyncThrowingChannel<ByteBuffer, any Error>()
                return try await withThrowingTaskGroup(of: Int64.self) { group in
                    group.addTask {
                        var offset: Int64 = 0
                        for try await batch in batches {
                            try await handle.write(contentsOf: batch.readableBytesView, toAbsoluteOffset: offset)
                            offset += Int64(batch.readableBytes)
                        }
                        // On disk before anyone is told the object exists.
                        try await handle.synchronize()
                        return offset
                    }
                    do {
                        var total: Int64 = 0
                        var batch = ByteBuffer()
                        for try await chunk in body {
                            total += Int64(chunk.readableBytes)
                            if let limit, total > limit { throw BlobStoreError.tooLarge(limit: limit) }
                            if batch.readableBytes == 0 && chunk.readableBytes >= Self.batchBytes {
                                await batches.send(chunk)
                                continue
                            }
                            batch.writeImmutableBuffer(chunk)
                            if batch.readableBytes >= Self.batchBytes {
                                await batches.send(batch)
                                batch = ByteBuffer()
                            }
                        }
                        if batch.readableBytes > 0 { await batches.send(batch) }
                        batches.finish()
                    } catch {
                        batches.fail(error)
                        throw error
                    }
                    return try await group.next() ?? 0
                }
            }
        } catch {
            _ = try? await fileSystem.removeItem(at: temporary)
            throw error
        }
        return StagedBlob(id: id, size: size, temporaryPath: temporary)
    }

    public func publish(_ staged: StagedBlob) async throws {
        guard let temporaryPath = staged.temporaryPath else { return }
        try await moveIntoPlace(temporaryPath, as: staged.id)
    }

    /// A rename within one file system, from staging to the blob's path: the blob appears whole or not at all.
    private func moveIntoPlace(_ temporary: FilePath, as id: BlobID) async throws {
        let destination = path(of: id)
        try await fileSystem.createDirectory(
            at: destination.removingLastComponent(), withIntermediateDirectories: true, permissions: [.ownerReadWriteExecute])
        try await fileSystem.moveItem(at: temporary, to: destination)
    }

    public func discard(_ staged: StagedBlob) async {
        guard let temporaryPath = staged.temporaryPath else { return }
        _ = try? await fileSystem.removeItem(at: temporaryPath)
    }

    public func read(_ id: BlobID, range: Range<Int64>?, _ consume: (ByteBuffer) async throws -> Void) async throws {
        let file = path(of: id)
        guard try await fileSystem.info(forFileAt: file) != nil else { throw BlobStoreError.notFound(id) }
        try await fileSystem.withFileHandle(forReadingAt: file) { handle in
            let chunks = range.map { handle.readChunks(in: $0, chunkLength: Self.chunk) } ?? handle.readChunks(chunkLength: Self.chunk)
            for try await chunk in chunks {
                try await consume(chunk)
            }
        }
    }

    public func size(of id: BlobID) async throws -> Int64 {
        guard let info = try await fileSystem.info(forFileAt: path(of: id)) else { throw BlobStoreError.notFound(id) }
        return info.size
    }

    public func delete(_ id: BlobID) async throws {
        _ = try await fileSystem.removeItem(at: path(of: id))
    }

    public func stageCopy(of id: BlobID) async throws -> StagedBlob {
        let source = path(of: id)
        guard let info = try await fileSystem.info(forFileAt: source) else { throw BlobStoreError.notFound(id) }
        let copy = BlobID()
        let temporary = staging.appending(copy.description + ".part")
        try await fileSystem.copyItem(at: source, to: temporary)
        return StagedBlob(id: copy, size: info.size, temporaryPath: temporary)
    }

    public func sweep(modifiedBefore cutoff: Date, liveAmong: ([BlobID]) async throws -> Set<BlobID>) async throws -> Int {
        var removed = 0
        for name in try await names(in: staging) where try await isOlder(staging.appending(name), than: cutoff) {
            _ = try await fileSystem.removeItem(at: staging.appending(name))
            removed += 1
        }
        for shard in try await names(in: blobs) {
            let directory = blobs.appending(shard)
            var candidates: [String] = []
            for name in try await names(in: directory) where try await isOlder(directory.appending(name), than: cutoff) {
                candidates.append(name)
            }
            let live = try await liveAmong(candidates.compactMap { UUID(uuidString: $0).map(BlobID.init) })
            for name in candidates {
                if let uuid = UUID(uuidString: name), live.contains(BlobID(uuid)) { continue }
                _ = try await fileSystem.removeItem(at: directory.appending(name))
                removed += 1
            }
        }
        return removed
    }

    public func place(fileAt path: String, as id: BlobID) async throws {
        // Into staging first (a copy when `path` is on another file system), then one rename: the blob
        // appears whole or not at all.
        let temporary = staging.appending(id.description + ".part")
        try await fileSystem.moveItem(at: FilePath(path), to: temporary)
        try await moveIntoPlace(temporary, as: id)
    }

    public func isEmpty() async throws -> Bool {
        for shard in try await names(in: blobs) where try await !names(in: blobs.appending(shard)).isEmpty {
            return false
        }
        return true
    }

    public func close() async {}

    private func isOlder(_ path: FilePath, than cutoff: Date) async throws -> Bool {
        guard let info = try await fileSystem.info(forFileAt: path) else { return false }
        let modified = info.lastDataModificationTime
        return Double(modified.seconds) + Double(modified.nanoseconds) / 1e9 < cutoff.timeIntervalSince1970
    }

    private func names(in directory: FilePath) async throws -> [String] {
        try await fileSystem.withDirectoryHandle(atPath: directory) { handle in
            var names: [String] = []
            for try await entry in handle.listContents() { names.append(entry.name.string) }
            return names
        }
    }
}
