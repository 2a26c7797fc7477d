import Foundation

/// Why the self-managed cluster could not be prepared, started or stopped.
public enum LocalClusterError: Error, Sendable, Equatable, CustomStringConvertible {
    case binariesNotFound(searched: [String])
    case dataDirectoryIsNotADirectory(String)
    case dataDirectoryNotWritable(String, reason: String)
    case alreadyInUse(dataDirectory: String, pid: Int32?)
    case noUnprivilegedUser(String)
    case unreachableForServerUser(user: String, path: String)
    case socketPathTooLong(String)
    case commandFailed(command: String, output: String)
    case notRunning(dataDirectory: String)
    case notInitialized(dataDirectory: String)

    public var description: String {
        switch self {
        case .binariesNotFound:
            "PostgreSQL server programs (initdb, pg_ctl, postgres) were not found. Install them, e.g. "
                + "`apt-get install postgresql` (Debian/Ubuntu), `dnf install postgresql-server` (Fedora) or "
                + "`brew install postgresql@16` (macOS), or point STRIVE_PG_BIN_DIR at their directory, "
                + "or set DATABASE_URL to use an existing server"
        case .dataDirectoryIsNotADirectory(let path):
            "data directory \(path) exists but is not a directory"
        case .dataDirectoryNotWritable(let path, let reason):
            "data directory \(path) is not writable: \(reason)"
        case .alreadyInUse(let path, let pid):
            "another Strive process\(pid.map { " (pid \($0))" } ?? "") is already using data directory \(path); stop it first or choose another STRIVE_DATA_DIR"
        case .noUnprivilegedUser(let user):
            "PostgreSQL refuses to run as root and the OS user '\(user)' does not exist; create it or set STRIVE_PG_USER to an unprivileged user"
        case .unreachableForServerUser(let user, let path):
            "the PostgreSQL OS user '\(user)' cannot reach \(path); make its parent directories traversable (chmod o+x) or choose another STRIVE_DATA_DIR"
        case .socketPathTooLong(let path):
            "the cluster's socket path \(path) is longer than the 107 bytes Unix allows; choose a shorter STRIVE_DATA_DIR"
        case .commandFailed(let command, let output):
            "\(command) failed: \(output.trimmingCharacters(in: .whitespacesAndNewlines).split(separator: "\n").suffix(3).joined(separator: " | "))"
        case .notRunning(let path):
            "the local PostgreSQL cluster in \(path) is not running; start it with `strive db start`"
        case .notInitialized(let path):
            "no local PostgreSQL cluster in \(path) yet; `strive serve` or `strive db start` creates one"
        }
    }
}
