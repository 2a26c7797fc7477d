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
        for directory in [self.root, staging, blobs, uploads] {
            try await fileSystem.createDirectory(at: directory, withIntermediateDirectories: true, permissions: [.ownerReadWriteExecute])
        }
    }

    var staging: FilePath { root.appending("staging") }
    var blobs: FilePath { root.appending("blobs") }
    var uploads: FilePath { root.appending("uploads") }
    /// Resumable uploads expire a day after creation and their rows go first; a file in `uploads` idle
    /// this long belongs to no upload any more.
    static let uploadGrace: TimeInterval = 2 * 24 * 3600

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
                try await Self.write(body, to: handle, at: 0, limit: limit)
            }
        } catch {
            _ = try? await fileSystem.removeItem(at: temporary)
            throw error
        }
        return StagedBlob(id: id, size: size, temporaryPath: temporary)
    }

    /// Streams `body` into `handle` from `start` and flushes it; returns how many bytes it wrote.
    /// Receiving and writing overlap: while one batch is written (on the file system's threads), the next
    /// is read from the network. At most two batches are in memory.
    private static func write<Body: AsyncSequence & Sendable>(
        _ body: Body, to handle: WriteFileHandle, at start: Int64, limit: Int64?
    ) async throws -> Int64 where Body.Element == ByteBuffer {
        let batches = AsyncThrowingChannel<ByteBuffer, any Error>()
        return try await withThrowingTaskGroup(of: Int64.self) { group in
            group.addTask {
                var offset = start
                for try await batch in batches {
                    try await handle.write(contentsOf: batch.readableBytesView, toAbsoluteOffset: offset)
                    offset += Int64(batch.readableBytes)
                }
                // On disk before anyone is told the bytes are there.
                try await handle.synchronize()
                return offset - start
            }
            do {
                var total: Int64 = 0
                var batch = ByteBuffer()
                for try await chunk in body {
                    total += Int64(chunk.readableBytes)
                    if let limit, total > limit { throw BlobStoreError.tooLarge(limit: limit) }
                    if batch.readableBytes == 0 && chunk.readableBytes >= batchBytes {
                        await batches.send(chunk)
                        continue
                    }
                    batch.writeImmutableBuffer(chunk)
                    if batch.readableBytes >= batchBytes {
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
        for name in try await names(in: uploads)
        where try await isOlder(uploads.appending(name), than: cutoff.addingTimeInterval(-Self.uploadGrace)) {
            _ = try await fileSystem.removeItem(at: uploads.appending(name))
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

    // Resumable uploads: every chunk of an upload is written in place into one file, `uploads/<id>`, so
    // completing it is a hard link into staging, not a copy. A chunk that was written but not recorded (a
    // lost race, a crash mid-PATCH) lies beyond the recorded offset, where the next chunk overwrites it.

    func path(ofUpload upload: UUID) -> FilePath {
        uploads.appending(upload.uuidString.lowercased())
    }

    public func writePart<Body: AsyncSequence & Sendable>(_ body: Body, upload: UUID, offset: Int64, limit: Int64) async throws
        -> UploadPart
    where Body.Element == ByteBuffer {
        let size = try await fileSystem.withFileHandle(
            forWritingAt: path(ofUpload: upload), options: .modifyFile(createIfNecessary: true, permissions: [.ownerReadWrite])
        ) { handle in
            try await Self.write(body, to: handle, at: offset, limit: limit)
        }
        return UploadPart(offset: offset, size: size, blob: nil)
    }

    public func discardPart(_ part: UploadPart) async {}

    public func assemble(upload: UUID, parts: [UploadPart], length: Int64) async throws -> StagedBlob {
        let source = path(ofUpload: upload)
        let received = try await fileSystem.info(forFileAt: source)?.size ?? 0
        guard received >= length else { throw BlobStoreError.incompleteUpload(received: received, expected: length) }
        if received > length {
            try await fileSystem.withFileHandle(forWritingAt: source, options: .modifyFile(createIfNecessary: false)) { handle in
                try await handle.resize(to: .bytes(length))
            }
        }
        let id = BlobID()
        let temporary = staging.appending(id.description + ".part")
        // link(2) is one metadata operation, as quick as the rename that publishes the blob afterwards.
        try FileManager.default.linkItem(atPath: source.string, toPath: temporary.string)
        // The link shares the upload's modification time, which a retried completion may find old enough
        // for the staging sweep; it is new as of now.
        try FileManager.default.setAttributes([.modificationDate: Date()], ofItemAtPath: temporary.string)
        return StagedBlob(id: id, size: length, temporaryPath: temporary)
    }

    public func removeUpload(_ upload: UUID, parts: [UploadPart]) async {
        _ = try? await fileSystem.removeItem(at: path(ofUpload: upload))
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
