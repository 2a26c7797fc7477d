import Crypto
import Foundation

/// Streams files in 1 MiB chunks: copies that hash what they write, and hashes of files as they are.
enum FileDigest {
    static let chunk = 1 << 20

    /// Copies `source` to `destination` (created with mode 0600) and returns the bytes and SHA-256 copied.
    static func copy(_ source: String, to destination: String) throws(BackupError) -> (bytes: Int64, sha256: String) {
        guard let input = FileHandle(forReadingAtPath: source) else { throw .files("cannot read \(source)") }
        defer { try? input.close() }
        let directory = (destination as NSString).deletingLastPathComponent
        do {
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        } catch {
            throw .files("cannot create \(directory): \(error.localizedDescription)")
        }
        guard FileManager.default.createFile(atPath: destination, contents: nil, attributes: [.posixPermissions: 0o600]),
            let output = FileHandle(forWritingAtPath: destination)
        else { throw .files("cannot write \(destination)") }
        defer { try? output.close() }
        var hash = SHA256()
        var bytes: Int64 = 0
        do {
            while let data = try input.read(upToCount: chunk), !data.isEmpty {
                hash.update(data: data)
                try output.write(contentsOf: data)
                bytes += Int64(data.count)
            }
            try output.synchronize()
        } catch {
            throw .files("copying \(source) to \(destination): \(error.localizedDescription)")
        }
        return (bytes, hex(hash.finalize()))
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
