import Logging
import StriveCore
import StriveDatabase

/// The self-managed cluster as one `strive` process holds it: the data directory lock, then the
/// running cluster. `close` stops the cluster unless `strive db start` left it running on purpose.
public struct ManagedCluster: Sendable {
    public let cluster: LocalCluster
    public let running: LocalCluster.Running
    /// nil when another Strive holds the data directory and this process only connects.
    let lock: DataDirectoryLock?

    public static func open(_ settings: DatabaseSettings, detached: Bool = false, logger: Logger) async throws(StartupError)
        -> ManagedCluster
    {
        do {
            let cluster = try cluster(settings)
            try await cluster.prepareDataDirectory()
            let lock = try DataDirectoryLock(dataDirectory: settings.dataDirectory)
            try await cluster.initializeIfNeeded(logger: logger)
            let running = try await cluster.start(detached: detached, logger: logger)
            return ManagedCluster(cluster: cluster, running: running, lock: lock)
        } catch {
            throw .cluster(error)
        }
    }

    /// For one-shot commands (migrate, verify, seed): the cluster a running `strive serve` already holds,
    /// else the cluster opened as `serve` would (and stopped again by `close`).
    public static func openForCommand(_ settings: DatabaseSettings, logger: Logger) async throws(StartupError) -> ManagedCluster {
        do {
            return try await open(settings, logger: logger)
        } catch .cluster(.alreadyInUse(let path, let pid)) {
            do {
                let cluster = try cluster(settings)
                if let running = try await cluster.runningElsewhere() {
                    logger.info(
                        "using the local PostgreSQL of the Strive that holds the data directory", metadata: ["port": "\(running.port)"])
                    return ManagedCluster(cluster: cluster, running: running, lock: nil)
                }
            } catch {
                throw .cluster(error)
            }
            throw .cluster(.alreadyInUse(dataDirectory: path, pid: pid))
        }
    }

    /// The self-managed cluster `settings` describe (not started).
    public static func cluster(_ settings: DatabaseSettings) throws(LocalClusterError) -> LocalCluster {
        LocalCluster(
            dataDirectory: settings.dataDirectory, binaries: try PostgresBinaries.locate(in: settings.postgresBinDirectory),
            serverUserWhenRoot: settings.postgresUser)
    }

    /// Whether this process holds the data directory and so runs (and may restart) the cluster.
    public var ownsCluster: Bool { lock != nil && !running.detached }

    public func target() throws(StartupError) -> DatabaseTarget {
        do { return try cluster.target(running) } catch { throw .cluster(error) }
    }

    public func close(logger: Logger) async {
        guard lock != nil, !running.detached else { return }
        do {
            try await cluster.stop(logger: logger)
        } catch {
            logger.error("could not stop the local PostgreSQL", metadata: ["error": "\(error)"])
        }
    }
}
