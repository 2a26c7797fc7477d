import Foundation
import Logging
import ServiceLifecycle
import StriveDatabase

/// The last resort that makes SIGTERM always end `strive serve`: once shutdown has begun (a signal, or a
/// service that failed), the process gets `grace` to finish on its own. If something still waits — a
/// request on a database connection that neither answers nor fails — it stops the cluster it started
/// (immediate mode: PostgreSQL recovers at the next start) and exits with status 70.
struct ShutdownDeadline: Service {
    let grace: Duration
    let cluster: LocalCluster?
    let logger: Logger

    func run() async {
        // Returns on graceful shutdown and on cancellation alike: either way the group is ending.
        try? await gracefulShutdown()
        let deadline = DispatchTime.now() + .milliseconds(Int(grace.components.seconds * 1000))
        let cluster = cluster
        let logger = logger
        // Not a task: if shutdown hangs, the tasks are what hangs; a timer on a queue still fires.
        DispatchQueue.global().asyncAfter(deadline: deadline) {
            logger.critical("shutdown did not finish within the grace period; stopping the local PostgreSQL and exiting")
            if let cluster { cluster.stopImmediatelyBlocking() }
            FileHandle.standardError.write(Data("strive: shutdown did not finish within \(grace); exited without waiting\n".utf8))
            exit(70)
        }
    }
}
