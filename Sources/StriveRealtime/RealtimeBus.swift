import Foundation
import Logging
import PostgresNIO
import StriveCore
import StriveDatabase
import Synchronization

/// Broadcasts and presence between Strive instances sharing a database, over NOTIFY on
/// `strive_realtime_bus`. Messages too large for a NOTIFY payload are stored in realtime.bus_messages
/// and announced by id. Each instance ignores its own messages (it delivered them locally already).
public final class RealtimeBus: Sendable {
    let database: Database
    let origin = UUID()
    let logger: Logger
    static let channel = "strive_realtime_bus"
    /// NOTIFY payloads are limited to 8000 bytes.
    static let inlineLimit = 7900
    /// How often an instance says it is alive, and how long the others wait before they forget the
    /// presences of one that went silent (crashed, or cut off from the database).
    public static let heartbeatInterval: Duration = .seconds(2)
    public static let silenceLimit: Duration = .seconds(6)

    init(database: Database, logger: Logger) {
        self.database = database
        self.logger = logger
    }

    struct RemotePresence: Codable, Sendable {
        let key: String
        let meta: JSONValue
    }

    enum Event: Sendable {
        case broadcast(topic: String, payload: JSONValue)
        case presence(topic: String, joins: [RemotePresence], leaves: [String])
        /// A starting instance asks the others for their presences.
        case sync
        /// This instance is alive.
        case heartbeat
    }

    struct Envelope: Codable {
        var origin: UUID
        var kind: String
        var topic: String?
        var payload: JSONValue?
        var joins: [RemotePresence]?
        var leaves: [String]?
        /// Set when the message itself is in realtime.bus_messages.
        var stored: Int64?
    }

    func publish(_ event: Event, hub: RealtimeHub) async {
        var envelope = Envelope(origin: origin, kind: "sync")
        switch event {
        case .broadcast(let topic, let payload):
            envelope.kind = "broadcast"
            envelope.topic = topic
            envelope.payload = payload
        case .presence(let topic, let joins, let leaves):
            envelope.kind = "presence"
            envelope.topic = topic
            envelope.joins = joins
            envelope.leaves = leaves
        case .sync:
            break
        case .heartbeat:
            envelope.kind = "heartbeat"
        }
        do {
            let text = String(decoding: try JSONEncoder().encode(envelope), as: UTF8.self)
            try await database.withServiceRoleTransaction(method: "REALTIME", path: "bus", logger: logger) { connection in
                var notice = text
                if text.utf8.count > Self.inlineLimit {
                    let id =
                        try await connection.rows("insert into realtime.bus_messages (body) values (\(text)) returning id", logger: logger)
                        .first?.decode(Int64.self) ?? 0
                    notice = #"{"origin":"\#(origin.uuidString)","kind":"stored","stored":\#(id)}"#
                }
                try await connection.run("select pg_notify(\(Self.channel), \(notice))", logger: logger)
            }
        } catch {
            // Stopping cancels the heartbeat mid-send: that is not worth a warning.
            if !Task.isCancelled {
                logger.warning("realtime: could not reach other instances", metadata: ["error": "\(error)"])
            }
        }
    }

    /// Listens until cancelled, reconnecting after database outages.
    func run(hub: RealtimeHub) async {
        var announced = false
        var backoff = Backoff.reconnect
        while !Task.isCancelled {
            do {
                try await database.withDedicatedConnection { connection in
                    try await connection.listen(on: Self.channel) { notifications in
                        backoff.reset()
                        if !announced {
                            announced = true
                            await publish(.sync, hub: hub)
                        }
                        try await receive(notifications, on: connection, hub: hub)
                    }
                }
            } catch {
                if Task.isCancelled { return }
                logger.warning("realtime bus lost its database connection; retrying", metadata: ["error": "\(error)"])
                try? await Task.sleep(for: backoff.next())
            }
        }
    }

    private final class LastHeard: Sendable {
        let instant = Mutex(ContinuousClock.now)
    }

    struct SilentConnection: Error, CustomStringConvertible {
        var description: String {
            "the LISTEN connection heard nothing, not even this instance's heartbeats, for \(RealtimeBus.silenceLimit)"
        }
    }

    /// Hands each notification to the hub. This instance hears its own heartbeat every couple of seconds,
    /// so a connection that stays silent longer is dead without having said so (no reset reached us): it
    /// is closed, and `run` opens another.
    private func receive(_ notifications: PostgresNotificationSequence, on connection: PostgresConnection, hub: RealtimeHub) async throws {
        let lastHeard = LastHeard()
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask {
                while true {
                    try await Task.sleep(for: Self.heartbeatInterval)
                    if ContinuousClock.now - lastHeard.instant.withLock({ $0 }) > Self.silenceLimit {
                        connection.closeNow()
                        throw SilentConnection()
                    }
                }
            }
            group.addTask {
                for try await notification in notifications {
                    lastHeard.instant.withLock { $0 = .now }
                    await self.handle(notification.payload, hub: hub)
                }
            }
            try await group.next()
            group.cancelAll()
        }
    }

    private func handle(_ text: String, hub: RealtimeHub) async {
        guard var envelope = try? JSONDecoder().decode(Envelope.self, from: Data(text.utf8)), envelope.origin != origin else { return }
        await hub.heard(from: envelope.origin)
        if let stored = envelope.stored {
            let body = try? await database.withServiceRoleTransaction(method: "REALTIME", path: "bus", logger: logger) { connection in
                try await connection.rows("select body from realtime.bus_messages where id = \(stored)", logger: logger).first?.decode(
                    String.self)
            }
            guard let body, let full = try? JSONDecoder().decode(Envelope.self, from: Data(body.utf8)) else { return }
            envelope = full
        }
        switch envelope.kind {
        case "broadcast":
            if let topic = envelope.topic, let payload = envelope.payload { await hub.remoteBroadcast(topic: topic, payload: payload) }
        case "presence":
            if let topic = envelope.topic {
                await hub.remotePresence(origin: envelope.origin, topic: topic, joins: envelope.joins ?? [], leaves: envelope.leaves ?? [])
            }
        case "sync":
            for (topic, presence) in await hub.localPresences() {
                await publish(.presence(topic: topic, joins: [presence], leaves: []), hub: hub)
            }
        default:
            break
        }
    }
}
