import StriveCore
import StriveDatabase

/// Why `strive serve` (or another command) could not start, with the exit code a script can test.
/// Codes follow sysexits(3).
public enum StartupError: Error, CustomStringConvertible {
    case configuration(ConfigurationError)
    case cluster(LocalClusterError)
    case database(DatabaseError)
    case migration(MigrationError)
    case portInUse(host: String, port: Int)
    case server(String)
    /// The self-managed cluster kept dying; restarting it did not help.
    case clusterKeepsStopping(ClusterSupervisor.GaveUp)
    /// The S3 bucket refused these credentials or does not exist.
    case objectStore(String)

    public var description: String {
        switch self {
        case .configuration(let error): error.description
        case .cluster(let error): error.description
        case .database(let error): error.description
        case .migration(let error): error.description
        case .portInUse(let host, let port):
            "port \(port) on \(host) is already in use; stop what listens there or set STRIVE_PORT"
        case .server(let reason): "the HTTP server failed: \(reason)"
        case .clusterKeepsStopping(let error): error.description
        case .objectStore(let reason): "the object store cannot be used: \(reason)"
        }
    }

    public var exitCode: Int32 {
        switch self {
        case .configuration: 78 // EX_CONFIG
        case .cluster(.dataDirectoryIsNotADirectory), .cluster(.dataDirectoryNotWritable), .cluster(.socketPathTooLong):
            73 // EX_CANTCREAT
        case .cluster(.binariesNotFound), .cluster(.noUnprivilegedUser): 69 // EX_UNAVAILABLE
        case .cluster(.alreadyInUse), .portInUse: 75 // EX_TEMPFAIL: retry once the other process is gone
        case .cluster: 70 // EX_SOFTWARE
        case .database: 69
        case .migration: 65 // EX_DATAERR
        case .server: 70
        case .clusterKeepsStopping: 69 // EX_UNAVAILABLE
        case .objectStore: 78 // EX_CONFIG: credentials or bucket name
        }
    }
}
