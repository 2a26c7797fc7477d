import Logging
import StriveDatabase

/// The self-managed cluster as one `strive` process holds it: the data directory lock, then the
/// running cluster. `close` stops the cluster unless `strive db start` left it running on purpose.
public struct ManagedCluster: Sendable {
    public let cluster: LocalCluster
    public let running: LocalCluster.Running
    let lock: DataDirectoryLock

    public static func open(dataDirectory: String, detached: Bool = false, logger: Logger) async throws(StartupError) -> ManagedCluster {
        do {
            let binaries = try PostgresBinaries.locate()
            let cluster = LocalCluster(dataDirectory: dataDirectory, binaries: binaries)
            try await cluster.prepareDataDirectory()
            let lock = try DataDirectoryLock(dataDirectory: dataDirectory)
            try await cluster.initializeIfNeeded(logger: logger)
            let running = try await cluster.start(detached: detached, logger: logger)
            return ManagedCluster(cluster: cluster, running: running, lock: lock)
        } catch {
            throw .cluster(error)
        }
    }

    public func target() throws(StartupError) -> DatabaseTarget {
        do { return try cluster.target(running) } catch { throw .cluster(error) }
    }

    public func close(logger: Logger) async {
        guard !running.detached else { return }
        do {
            try await cluster.stop(logger: logger)
        } catch {
            logger.error("could not stop the local PostgreSQL", metadata: ["error": "\(error)"])
        }
    }
}
