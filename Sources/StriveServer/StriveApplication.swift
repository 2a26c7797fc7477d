import Foundation
import Hummingbird
import HummingbirdWebSocket
import Logging
import NIOCore
import StriveAuth
import StriveBlobs
import StriveCore
import StriveDatabase
import StriveIdentity
import StriveMail
import StriveMetrics
import StriveOutbound
import StriveRealtime
import StriveRest
import StriveStorage

/// Assembles the HTTP application: middleware in order, then every surface's routes.
public enum StriveApplication {
    /// What the routes work with.
    public struct Services: Sendable {
        public let database: Database
        public let migrator: Migrator
        public let auth: AuthService
        public let rest: RestService
        public let storage: StorageService
        public let realtime: RealtimeService
        /// The URL clients use, for documents and links that name the server.
        public let publicURL: String
        /// The mail server, sender and templates auth mail is delivered with.
        public let mailSettings: MailSettings
        public let mailTemplates: MailTemplates
        /// Lets a Prometheus scraper read `/metrics` without the service role key.
        public let metricsToken: Secret?
        /// How HTTP requests from SQL are sent (`httpOutbox`).
        public var outboundSettings = OutboundSettings(allowPrivate: [], maxAttempts: 5, signingSecret: nil)
        /// The key the console signs in with.
        public let anonKey: String
        /// The last 5xx answers, for `/admin/v1/errors`.
        public let recentErrors = RecentErrors()
        public let logger: Logger

        public init(
            database: Database, migrator: Migrator, auth: AuthService, rest: RestService, storage: StorageService,
            realtime: RealtimeService, publicURL: String, mailSettings: MailSettings, mailTemplates: MailTemplates,
            metricsToken: Secret? = nil, anonKey: String = "", logger: Logger
        ) {
            self.metricsToken = metricsToken
            self.anonKey = anonKey
            self.mailSettings = mailSettings
            self.mailTemplates = mailTemplates
            self.logger = logger
            self.database = database
            self.migrator = migrator
            self.auth = auth
            self.rest = rest
            self.storage = storage
            self.realtime = realtime
            self.publicURL = publicURL
        }

        /// The services of `config` on `database`.
        public static func make(config: StriveConfig, database: Database, migrator: Migrator, logger: Logger) async throws -> Services {
            let auth = try await AuthService(
                database: database, secret: config.jwtSecret, issuer: config.publicURL + "/auth/v1",
                settings: config.auth, logger: logger
            )
            let schema = SchemaCacheStore(database: database, schemas: config.dbSchemas, logger: logger)
            let rest = RestService(
                database: database, schema: schema,
                settings: RestSettings(
                    maxRows: config.maxRows, maxBodyBytes: config.restMaxBodyBytes, planEnabled: config.dbPlanEnabled,
                    aggregatesEnabled: config.dbAggregatesEnabled, transactionEnd: config.dbTxEnd, schemas: config.dbSchemas),
                logger: logger)
            var storage = StorageService(
                database: database, blobs: try await blobStore(config, logger: logger),
                signer: await SignedURLSigner(secret: config.jwtSecret), logger: logger)
            storage.imageSettings = config.imageSettings
            ImageTransformer.use(library: config.imageSettings.library)
            let realtime = RealtimeService(
                database: database, tokens: auth.tokens, instance: config.instanceID, replayWindow: config.realtimeReplayWindow,
                logger: logger)
            var services = Services(
                database: database, migrator: migrator, auth: auth, rest: rest, storage: storage, realtime: realtime,
                publicURL: config.publicURL, mailSettings: config.mail,
                mailTemplates: try MailTemplates.load(directory: config.mail.templatesDirectory), metricsToken: config.metricsToken,
                anonKey: config.apiKeys.anon, logger: logger)
            services.outboundSettings = config.outbound
            return services
        }

        /// The store `STRIVE_STORAGE_BACKEND` names (see `BlobStoreFactory`); one it cannot use stops the start.
        static func blobStore(_ config: StriveConfig, logger: Logger) async throws(StartupError) -> any BlobStore {
            do {
                return try await BlobStoreFactory.open(config.storageBackend, localRoot: config.storageDirectory, logger: logger)
            } catch {
                throw .objectStore(error.reason)
            }
        }

        /// Sends the HTTP requests SQL queues (net.http_*, Database Webhooks); the launcher runs it beside the
        /// HTTP server, on every instance.
        public func httpOutbox(pollInterval: Duration = .seconds(1)) -> HTTPOutbox {
            HTTPOutbox(
                database: database, settings: outboundSettings, version: StriveVersion.current, pollInterval: pollInterval, logger: logger)
        }

        /// Delivers the mail auth queues (the launcher runs it beside the HTTP server).
        public func mailDelivery(pollInterval: Duration = .seconds(5)) -> MailDelivery {
            MailDelivery(database: database, settings: mailSettings, templates: mailTemplates, pollInterval: pollInterval, logger: logger)
        }
    }

    /// What every request passes before its route, outermost first. docs/ARCHITECTURE.md states this order
    /// and a test holds it to this list.
    static func middleware(_ services: Services, routes: RouteCatalog) -> [any MiddlewareProtocol<Request, Response, StriveRequestContext>]
    {
        [
            // Outermost: it sees every answer, errors included, with the route template the router matched.
            MetricsMiddleware(),
            RequestIDMiddleware(),
            CallerMiddleware<StriveRequestContext>(tokens: services.auth.tokens),
            AccessLogMiddleware(),
            // Innermost: what a handler throws becomes its surface's answer before the log and metrics see it.
            ErrorMiddleware(routes: routes, recent: services.recentErrors),
        ]
    }

    /// The type names of `middleware`, outermost first (what the architecture document must state).
    public static func middlewareNames(_ services: Services) -> [String] {
        middleware(services, routes: RouteCatalog()).map { String(String(describing: type(of: $0)).prefix { $0 != "<" }) }
    }

    public static func makeRouter(_ services: Services) -> Router<StriveRequestContext> {
        let routes = RouteCatalog()
        let router = CatalogingRouter(
            router: Router(context: StriveRequestContext.self, options: .autoGenerateHeadEndpoints), catalog: routes)
        StriveMetrics.bootstrap()
        for layer in middleware(services, routes: routes) { _ = router.add(middleware: layer) }
        HealthRoutes(database: services.database, migrator: services.migrator, readinessTimeout: .seconds(3)).register(on: router)
        AuthRoutes<StriveRequestContext>(service: services.auth).register(on: router)
        RestRoutes<StriveRequestContext>(service: services.rest).register(on: router)
        BucketRoutes<StriveRequestContext>(storage: services.storage, logger: services.logger).register(on: router)
        ObjectRoutes<StriveRequestContext>(service: services.storage).register(on: router)
        ResumableUploadRoutes<StriveRequestContext>(storage: services.storage).register(on: router)
        RealtimeHTTPRoutes<StriveRequestContext>(service: services.realtime).register(on: router)
        AdminRoutes(
            database: services.database, migrator: services.migrator, storage: services.storage, recentErrors: services.recentErrors,
            logger: services.logger
        )
        .register(on: router)
        ConsoleRoutes(anonKey: services.anonKey, version: StriveVersion.current).register(on: router)
        MetricsRoutes(
            database: services.database, migrator: services.migrator, realtime: services.realtime, token: services.metricsToken,
            logger: services.logger
        ).register(on: router)
        router.get("openapi.json") { request, _ in
            // Per profile, as PostgREST's root: `Accept-Profile` names an exposed schema.
            let schema = try await services.rest.schemaCache(profile: request.headers[values: .acceptProfile].first)
            let document = OpenAPIDocument.make(schema: schema, serverURL: services.publicURL, version: StriveVersion.current)
            return Response(
                status: .ok, headers: [.contentType: "application/openapi+json"],
                body: .init(byteBuffer: ByteBuffer(string: document.jsonText)))
        }
        return router.router
    }

    public static func make(
        host: String,
        port: Int,
        services: Services,
        logger: Logger,
        runsRealtime: Bool = true,
        onServerRunning: @escaping @Sendable (any Channel) async -> Void = { _ in }
    ) -> some ApplicationProtocol {
        var app = Application(
            router: makeRouter(services),
            server: .http1WebSocketUpgrade(
                webSocketRouter: RealtimeRoutes(service: services.realtime, tokens: services.auth.tokens).webSocketRouter(),
                configuration: .init(
                    http1: .init(additionalChannelHandlers: [ExpectContinueHandler()]),
                    ws: .init(maxFrameSize: RealtimeLimits().maxFrameBytes))),
            configuration: .init(address: .hostname(host, port: port), serverName: "strive"),
            onServerRunning: onServerRunning,
            logger: logger
        )
        // With `runsRealtime`, realtime runs inside the application. Hummingbird stops its own services
        // after the HTTP server, so a caller that stops realtime first (to flush the sockets' last changes
        // before the server closes them) runs it beside the application instead.
        if runsRealtime { app.addServices(services.realtime) }
        // Added after the server: its connections close once requests no longer need them.
        if let s3 = services.storage.blobs as? S3BlobStore { app.addServices(s3) }
        return app
    }
}
