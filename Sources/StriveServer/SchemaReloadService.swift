import Logging
import ServiceLifecycle
import StriveRest
import UnixSignals

/// Reloads the data API's schema cache on SIGHUP, so a `strive migrate` against a running server takes
/// effect without a restart (`kill -HUP <pid>`).
struct SchemaReloadService: Service {
    let schema: SchemaCacheStore
    let logger: Logger

    func run() async throws {
        let signals = await UnixSignalsSequence(trapping: .sighup)
        for await _ in signals.cancelOnGracefulShutdown() {
            do {
                try await schema.reload()
                logger.notice("reloaded the data API schema cache (SIGHUP)")
            } catch {
                logger.error("could not reload the data API schema cache", metadata: ["error": "\(error)"])
            }
        }
    }
}
