import Logging
import PostgresNIO
import ServiceLifecycle
import StriveDatabase
import StriveRest
import UnixSignals

/// Keeps the data API's schema cache current: it reloads when the database announces a DDL commit on
/// `strive_schema` (migration 0017's event trigger), and on SIGHUP (`kill -HUP <pid>`) where no event
/// trigger could be created. Requests in flight finish on the cache they started with.
struct SchemaReloadService: Service {
    static let channel = "strive_schema"

    let schema: SchemaCacheStore
    let database: Database
    let logger: Logger

    func run() async throws {
        // Newest-only: a burst of DDL (a migration of many statements) becomes one reload, started after
        // the last notice of the burst has arrived or while the previous reload runs.
        let (changes, changed) = AsyncStream<String>.makeStream(bufferingPolicy: .bufferingNewest(1))
        await withDiscardingTaskGroup { group in
            group.addTask {
                for await reason in changes { await reload(reason) }
            }
            group.addTask {
                let signals = await UnixSignalsSequence(trapping: .sighup)
                for await _ in signals.cancelOnGracefulShutdown() { changed.yield("SIGHUP") }
            }
            group.addTask {
                // Every (re)connection reloads once: DDL committed while nobody listened is picked up then.
                await cancelWhenGracefulShutdown {
                    await database.listen(
                        on: Self.channel, logger: logger, onListening: { changed.yield("listening") },
                        onNotification: { changed.yield($0) })
                }
                changed.finish()
            }
        }
    }

    private func reload(_ reason: String) async {
        do {
            try await schema.reload()
            logger.notice("reloaded the data API schema cache", metadata: ["reason": "\(reason)"])
        } catch {
            logger.error("could not reload the data API schema cache", metadata: ["reason": "\(reason)", "error": "\(error)"])
        }
    }
}
