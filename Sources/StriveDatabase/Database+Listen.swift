import Logging
import PostgresNIO

extension Database {
    /// LISTENs on `channel` on a connection of its own until the task is cancelled, reconnecting after
    /// outages with back-off. `onListening` runs at every (re)connection — whatever was announced while
    /// nobody listened is picked up then — and `onNotification` with each payload.
    public func listen(
        on channel: String, logger: Logger, onListening: @Sendable () -> Void, onNotification: @Sendable (String) -> Void
    ) async {
        var backoff = Backoff.reconnect
        while !Task.isCancelled {
            do {
                try await withDedicatedConnection { connection in
                    try await connection.listen(on: channel) { notifications in
                        backoff.reset()
                        onListening()
                        for try await notification in notifications { onNotification(notification.payload) }
                    }
                }
            } catch {
                if Task.isCancelled { return }
                logger.warning("notifications lost their connection; retrying", metadata: ["channel": "\(channel)", "error": "\(error)"])
                try? await Task.sleep(for: backoff.next())
            }
        }
    }
}
