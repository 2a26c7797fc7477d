import Logging
import ServiceLifecycle

extension Database {
    /// The loop of a worker that drains a table other instances drain too (mail, requests from SQL):
    /// `drain` runs at start, at every notification on `channel` and every (re)connection of its
    /// listener — whatever was announced while nobody listened is picked up then — and every
    /// `pollInterval`, for work that comes due without a notification (retries). Wake-ups while `drain`
    /// runs fold into one. Returns at graceful shutdown or cancellation.
    public func runOutbox(channel: String, pollInterval: Duration, logger: Logger, drain: @escaping @Sendable () async -> Void) async {
        let (wakeUps, wake) = AsyncStream<Void>.makeStream(bufferingPolicy: .bufferingNewest(1))
        await withDiscardingTaskGroup { group in
            group.addTask {
                await cancelWhenGracefulShutdown {
                    await self.listen(on: channel, logger: logger, onListening: { wake.yield() }, onNotification: { _ in wake.yield() })
                }
                wake.finish()
            }
            group.addTask {
                try? await cancelWhenGracefulShutdown {
                    while true {
                        try await Task.sleep(for: pollInterval)
                        wake.yield()
                    }
                }
            }
            group.addTask {
                wake.yield()
                for await _ in wakeUps { await drain() }
            }
        }
    }
}
