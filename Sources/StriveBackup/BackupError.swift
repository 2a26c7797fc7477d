/// Why a backup or a restore stopped. Every case says what to do about it; none leaves a partial result.
public enum BackupError: Error, Sendable, CustomStringConvertible {
    /// The archive cannot be read, is truncated, or a file in it does not match the manifest.
    case corruptArchive(String)
    /// The restore target already holds a Strive database or stored objects.
    case targetNotEmpty(String)
    /// pg_dump, pg_restore, psql or tar failed.
    case toolFailed(tool: String, status: Int32, output: String)
    case database(String)
    case files(String)
    /// The configuration asks for something backups do not cover.
    case unsupported(String)

    public var description: String {
        switch self {
        case .corruptArchive(let reason): "the archive is corrupt or incomplete: \(reason); nothing was restored"
        case .targetNotEmpty(let reason): "refusing to restore over existing data: \(reason)"
        case .toolFailed(let tool, let status, let output):
            "\(tool) failed (exit status \(status)): \(output.trimmingCharacters(in: .whitespacesAndNewlines).suffix(2000))"
        case .database(let reason): "database: \(reason)"
        case .files(let reason): "files: \(reason)"
        case .unsupported(let reason): reason
        }
    }
}

extension BackupError {
    /// Why `strive backup`, `strive restore` and scheduled backups refuse `STRIVE_STORAGE_BACKEND=s3`.
    public static let s3Backend =
        "backups copy object bytes from STRIVE_STORAGE_DIR, and STRIVE_STORAGE_BACKEND=s3 keeps them in the bucket: "
        + "protect the bucket with S3 versioning (and replication), and the database with your PostgreSQL's own "
        + "backups or pg_dump (see docs/SCALING.md)"
}
