import Hummingbird
import Logging
import NIOCore
import StriveAuth
import StriveCore
import StriveDatabase
import StriveRest
import StriveStorage

/// Assembles the HTTP application: middleware in order, then every surface's routes.
public enum StriveApplication {
    /// What the routes work with.
    public struct Services: Sendable {
        public let database: StriveDatabase
        public let migrator: Migrator
        public let auth: AuthService
        public let rest: RestService
        public let storage: StorageService
        /// The URL clients use, for documents and links that name the server.
        public let publicURL: String
        public let logger: Logger

        public init(
            database: StriveDatabase, migrator: Migrator, auth: AuthService, rest: RestService, storage: StorageService, publicURL: String,
            logger: Logger
        ) {
            self.logger = logger
            self.database = database
            self.migrator = migrator
            self.auth = auth
            self.rest = rest
            self.storage = storage
            self.publicURL = publicURL
        }

        /// The services of `config` on `database`.
        public static func make(config: StriveConfig, database: StriveDatabase, migrator: Migrator, logger: Logger) async throws -> Services {
            let auth = try await AuthService(
                database: database, secret: config.jwtSecret, issuer: config.publicURL + "/auth/v1",
                settings: config.auth, logger: logger
            )
            let schema = SchemaCacheStore(database: database, logger: logger)
            let rest = RestService(
                database: database, schema: schema,
                settings: RestSettings(maxRows: config.maxRows, maxBodyBytes: config.restMaxBodyBytes), logger: logger)
            let storage = StorageService(
                database: database, blobs: try await LocalBlobStore(root: config.storageDirectory),
                signer: await SignedURLSigner(secret: config.jwtSecret), logger: logger)
            return Services(
                database: database, migrator: migrator, auth: auth, rest: rest, storage: storage, publicURL: config.publicURL, logger: logger)
        }
    }

    public static func makeRouter(_ services: Services) -> Router<StriveRequestContext> {
        let router = Router(context: StriveRequestContext.self)
        router.add(middleware: RequestIDMiddleware())
        router.add(middleware: CallerMiddleware<StriveRequestContext>(tokens: services.auth.tokens))
        router.add(middleware: AccessLogMiddleware())
        router.add(middleware: ErrorMiddleware())
        HealthRoutes(database: services.database, migrator: services.migrator, readinessTimeout: .seconds(3)).register(on: router)
        AuthRoutes<StriveRequestContext>(service: services.auth).register(on: router)
        RestRoutes<StriveRequestContext>(service: services.rest).register(on: router)
        BucketRoutes<StriveRequestContext>(storage: services.storage, logger: services.logger).register(on: router)
        ObjectRoutes<StriveRequestContext>(service: services.storage).register(on: router)
        router.get("openapi.json") { request, _ in
            let schema = try await services.rest.schema.current
            let document = OpenAPIDocument.make(schema: schema, serverURL: services.publicURL, version: StriveVersion.current)
            return Response(
                status: .ok, headers: [.contentType: "application/openapi+json"],
                body: .init(byteBuffer: ByteBuffer(string: document.jsonText)))
        }
        return router
    }

    public static func make(
        host: String,
        port: Int,
        services: Services,
        logger: Logger,
        onServerRunning: @escaping @Sendable (any Channel) async -> Void = { _ in }
    ) -> some ApplicationProtocol {
        Application(
            router: makeRouter(services),
            configuration: .init(address: .hostname(host, port: port), serverName: "strive"),
            onServerRunning: onServerRunning,
            logger: logger
        )
    }
}
