import Crypto
import Foundation
import Hummingbird
import Logging
import NIOCore
import StriveCore
import StriveDatabase
import StriveIdentity
import StriveMetrics
import StriveRealtime

/// `GET /metrics`: Prometheus's text format, for the service role or a scraper holding
/// `STRIVE_METRICS_TOKEN` (`Authorization: Bearer <token>`). Gauges of state the server keeps anyway
/// (sockets, channels, migrations) are read when scraped rather than kept up to date on every change.
struct MetricsRoutes: Sendable {
    let database: Database
    let migrator: Migrator
    let realtime: RealtimeService
    let token: Secret?
    let logger: Logger

    func register(on router: some RouterMethods<StriveRequestContext>) {
        router.group().add(middleware: ScrapeScope(token: token)).get("/metrics") { _, _ in try await metrics() }
    }

    func metrics() async throws -> Response {
        let stats = await realtime.hub.stats
        StriveMetrics.realtime(sockets: stats.sockets, channels: stats.channels)
        await recordMigrations()
        return Response(
            status: .ok, headers: [.contentType: StriveMetrics.contentType, .cacheControl: "no-store"],
            body: .init(byteBuffer: ByteBuffer(bytes: StriveMetrics.render())))
    }

    /// A scrape must answer while the database does not: the migration gauges keep their last values then.
    private func recordMigrations() async {
        let outcome: Result<Migrator.Status, any Error> = await withDeadline(.seconds(1)) {
            try await database.withAdminConnection { connection in
                try await migrator.status(on: connection, logger: logger)
            }
        }
        guard case .success(let status) = outcome else { return }
        let version = status.applied.map(\.version).max() ?? 0
        StriveMetrics.migrations(builtIn: status.applied.count, project: status.projectApplied.count, version: version)
    }

    static func constantTimeEqual(_ a: String, _ b: String) -> Bool {
        let left = SHA256.hash(data: Data(a.utf8))
        let right = SHA256.hash(data: Data(b.utf8))
        return left == right
    }
}
