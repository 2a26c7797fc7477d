import Foundation
import Logging
import PostgresNIO
import ServiceLifecycle
import StriveDatabase
import StriveIdentity

/// Realtime as a service: the change feed, the bus to other instances and token expiry, around one hub.
public final class RealtimeService: Service, Sendable {
    public let hub: RealtimeHub
    let feed: ChangeFeed
    let bus: RealtimeBus
    let columns: ColumnCatalog
    let database: Database
    let logger: Logger

    public init(
        database: Database, tokens: TokenService, instance: String, replayWindow: Duration, limits: RealtimeLimits = .init(),
        pollInterval: ClosedRange<Duration> = .milliseconds(5)...(.milliseconds(40)), logger: Logger
    ) {
        hub = RealtimeHub(database: database, tokens: tokens, limits: limits, logger: logger)
        feed = ChangeFeed(database: database, instance: instance, replayWindow: replayWindow, pollInterval: pollInterval, logger: logger)
        bus = RealtimeBus(database: database, logger: logger)
        columns = ColumnCatalog(database: database, logger: logger)
        self.database = database
        self.logger = logger
    }

    public func run() async throws {
        await hub.attach(bus: bus)
        await cancelWhenGracefulShutdown { [hub, feed, bus, columns, logger] in
            await withDiscardingTaskGroup { group in
                group.addTask {
                    await feed.run(isWanted: { await hub.hasChannels }) { changes in
                        await hub.deliver(changes) { change in await columns.json(schema: change.schema, table: change.table) }
                    }
                    logger.debug("realtime: change feed stopped")
                }
                group.addTask {
                    await bus.run(hub: hub)
                    logger.debug("realtime: bus stopped")
                }
                group.addTask {
                    while !Task.isCancelled {
                        try? await Task.sleep(for: .seconds(1))
                        await hub.expireTokens()
                        await hub.forgetSilentInstances(limit: RealtimeBus.silenceLimit)
                    }
                    logger.debug("realtime: token and presence expiry stopped")
                }
                group.addTask {
                    while !Task.isCancelled {
                        try? await Task.sleep(for: RealtimeBus.heartbeatInterval)
                        await bus.publish(.heartbeat, hub: hub)
                    }
                    logger.debug("realtime: heartbeat stopped")
                }
            }
        }
        // Sockets end with the server; their presences leave on the other instances.
        await hub.shutdown()
    }
}

/// `columns` of change payloads (`[{name, type}]`), read from the catalog once per table.
actor ColumnCatalog {
    let database: Database
    let logger: Logger
    private var cache: [String: String] = [:]

    init(database: Database, logger: Logger) {
        self.database = database
        self.logger = logger
    }

    func json(schema: String, table: String) async -> String {
        let key = schema + "." + table
        if let known = cache[key] { return known }
        let logger = self.logger
        let text = try? await database.withServiceRoleTransaction(method: "REALTIME", path: "columns", logger: logger) { connection in
            try await connection.rows(
                """
                select coalesce(json_agg(json_build_object('name', a.attname, 'type', format_type(a.atttypid, a.atttypmod)) order by a.attnum), '[]')::text
                from pg_attribute a join pg_class c on c.oid = a.attrelid join pg_namespace n on n.oid = c.relnamespace
                where n.nspname = \(schema) and c.relname = \(table) and a.attnum > 0 and not a.attisdropped
                """, logger: logger
            ).first?.decode(String.self)
        }
        let result = text ?? "[]"
        if text != nil { cache[key] = result }
        return result
    }
}
