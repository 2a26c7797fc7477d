import Hummingbird
import Logging
import NIOCore
import StriveCore
import StriveDatabase

/// Assembles the HTTP application: middleware in order, then every surface's routes.
public enum StriveApplication {
    public static func makeRouter(database: StriveDatabase, migrator: Migrator) -> Router<StriveRequestContext> {
        let router = Router(context: StriveRequestContext.self)
        router.add(middleware: RequestIDMiddleware())
        router.add(middleware: AccessLogMiddleware())
        router.add(middleware: ErrorMiddleware())
        HealthRoutes(database: database, migrator: migrator, readinessTimeout: .seconds(3)).register(on: router)
        return router
    }

    public static func make(
        host: String,
        port: Int,
        database: StriveDatabase,
        migrator: Migrator,
        logger: Logger,
        onServerRunning: @escaping @Sendable (any Channel) async -> Void = { _ in }
    ) -> some ApplicationProtocol {
        Application(
            router: makeRouter(database: database, migrator: migrator),
            configuration: .init(address: .hostname(host, port: port), serverName: "strive"),
            onServerRunning: onServerRunning,
            logger: logger
        )
    }
}
