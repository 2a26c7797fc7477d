import Crypto
import Foundation
import NIOCore

/// Streams files in 1 MiB chunks: copies that hash what they write, and hashes of files as they are.
enum FileDigest {
    static let chunk = 1 << 20

    /// Copies `source` to `destination` (created with mode 0600) and returns the bytes and SHA-256 copied.
    static func copy(_ source: String, to destination: String) throws(BackupError) -> (bytes: Int64, sha256: String) {
        guard let input = FileHandle(forReadingAtPath: source) else { throw .files("cannot read \(source)") }
        defer { try? input.close() }
        let output = try DigestingFile(creating: destination)
        do {
            while let data = try input.read(upToCount: chunk), !data.isEmpty {
                try output.append(data)
            }
            return try output.finish()
        } catch {
            output.abandon()
            if let error = error as? BackupError { throw error }
            throw .files("copying \(source) to \(destination): \(error.localizedDescription)")
        }
    }

    /// The size and SHA-256 of `path`; nil when it cannot be read.
    static func digest(_ path: String) -> (bytes: Int64, sha256: String)? {
        guard let input = FileHandle(forReadingAtPath: path) else { return nil }
        defer { try? input.close() }
        var hash = SHA256()
        var bytes: Int64 = 0
        do {
            while let data = try input.read(upToCount: chunk), !data.isEmpty {
                hash.update(data: data)
                bytes += Int64(data.count)
            }
        } catch {
            return nil
        }
        return (bytes, hex(hash.finalize()))
    }

    static func hex(_ digest: SHA256.Digest) -> String {
        digest.map { String(format: "%02x", $0) }.joined()
    }
}

/// A file written chunk by chunk (mode 0600) while its SHA-256 is computed: the archive's copy of a blob.
final class DigestingFile {
    let path: String
    private let handle: FileHandle
    private var hash = SHA256()
    private var bytes: Int64 = 0

    init(creating path: String) throws(BackupError) {
        let directory = (path as NSString).deletingLastPathComponent
        do {
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        } catch {
            throw .files("cannot create \(directory): \(error.localizedDescription)")
        }
        guard FileManager.default.createFile(atPath: path, contents: nil, attributes: [.posixPermissions: 0o600]),
            let handle = FileHandle(forWritingAtPath: path)
        else { throw .files("cannot write \(path)") }
        self.path = path
        self.handle = handle
    }

    func append(_ chunk: ByteBuffer) throws(BackupError) {
        try append(Data(chunk.readableBytesView))
    }

    func append(_ data: Data) throws(BackupError) {
        hash.update(data: data)
        do {
            try handle.write(contentsOf: data)
        } catch {
            throw .files("writing \(path): \(error.localizedDescription)")
        }
        bytes += Int64(data.count)
    }

    /// Flushes and closes the file; its size and SHA-256.
    func finish() throws(BackupError) -> (bytes: Int64, sha256: String) {
        do {
            try handle.synchronize()
            try handle.close()
        } catch {
            throw .files("writing \(path): \(error.localizedDescription)")
        }
        return (bytes, FileDigest.hex(hash.finalize()))
    }

    /// Closes and removes a copy that did not complete.
    func abandon() {
        try? handle.close()
        try? FileManager.default.removeItem(atPath: path)
    }
}
