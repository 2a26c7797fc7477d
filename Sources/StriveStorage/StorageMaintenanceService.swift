import Foundation
import Logging
import ServiceLifecycle
import StriveStorage

/// Deletes released blobs and the leftovers of interrupted writes: at start-up, then every `interval`.
/// Files younger than a minute are left alone, so a write in flight is never mistaken for an orphan.
struct StorageMaintenanceService: Service {
    let storage: StorageService
    let interval: Duration
    let logger: Logger

    func run() async throws {
        while !Task.isCancelled {
            do {
                let removed = try await storage.sweep(modifiedBefore: Date(timeIntervalSinceNow: -60))
                if removed > 0 { logger.notice("storage sweep removed orphaned blobs", metadata: ["count": "\(removed)"]) }
            } catch {
                logger.warning("storage sweep failed; it runs again later", metadata: ["error": "\(error)"])
            }
            do {
                try await cancelWhenGracefulShutdown { try await Task.sleep(for: interval) }
            } catch {
                return
            }
        }
    }
}
