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

    public var description: String {
        switch self {
        case .corruptArchive(let reason): "the archive is corrupt or incomplete: \(reason); nothing was restored"
        case .targetNotEmpty(let reason): "refusing to restore over existing data: \(reason)"
        case .toolFailed(let tool, let status, let output):
            "\(tool) failed (exit status \(status)): \(output.trimmingCharacters(in: .whitespacesAndNewlines).suffix(2000))"
        case .database(let reason): "database: \(reason)"
        case .files(let reason): "files: \(reason)"
        }
    }
}
