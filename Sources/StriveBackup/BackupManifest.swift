import Foundation

/// `manifest.json`, the first thing a restore reads: what the archive holds, each file's size and SHA-256,
/// so a corrupt or truncated archive is refused before anything is restored.
public struct BackupManifest: Codable, Sendable, Equatable {
    public static let formatName = "strive-backup"
    public static let currentVersion = 1

    public struct File: Codable, Sendable, Equatable {
        /// Relative to the archive's root.
        public let path: String
        public let bytes: Int64
        public let sha256: String
    }

    /// One stored object: the row's bucket and name, and the blob (`version`) its bytes are in.
    public struct Object: Codable, Sendable, Equatable {
        public let bucket: String
        public let name: String
        public let version: String
        public let bytes: Int64
        public let sha256: String

        /// Where the blob's bytes are inside the archive.
        public var path: String { "objects/\(version)" }
    }

    public var format: String = formatName
    public var formatVersion: Int = currentVersion
    public let createdAt: Date
    public let striveVersion: String
    public let postgresVersion: String
    /// The role that owned the database's objects (restores into a database owned by another role drop ownership).
    public let owner: String
    /// The newest built-in migration applied.
    public let migrationVersion: Int
    /// `database.dump` (pg_dump custom format), `roles.sql` (pg_dumpall --roles-only) and, for a
    /// development data directory, `jwt-secret`.
    public let files: [File]
    public let objects: [Object]

    public var totalBytes: Int64 { files.reduce(0) { $0 + $1.bytes } + objects.reduce(0) { $0 + $1.bytes } }

    static let databaseFile = "database.dump"
    static let rolesFile = "roles.sql"
    static let secretFile = "jwt-secret"
    static let manifestFile = "manifest.json"

    static var encoder: JSONEncoder {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        encoder.dateEncodingStrategy = .iso8601
        encoder.keyEncodingStrategy = .convertToSnakeCase
        return encoder
    }

    static var decoder: JSONDecoder {
        let decoder = JSONDecoder()
        decoder.dateDecodingStrategy = .iso8601
        decoder.keyDecodingStrategy = .convertFromSnakeCase
        return decoder
    }
}
