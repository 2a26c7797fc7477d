import Foundation
import Logging
import ServiceLifecycle

/// Deletes released blobs and the leftovers of interrupted writes: at start-up, then every `interval`.
/// Files younger than a minute are left alone, so a write in flight is never mistaken for an orphan.
public struct StorageMaintenanceService: Service {
    let storage: StorageService
    let interval: Duration
    let logger: Logger

    /// Sweeps every `interval` (an hour unless a test wants it sooner).
    public init(storage: StorageService, interval: Duration = .seconds(3600), logger: Logger) {
        self.storage = storage
        self.interval = interval
        self.logger = logger
    }

    public func run() async throws {
        while !Task.isCancelled {
            do {
                try await ResumableUploads(storage: storage).sweepExpired()
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
