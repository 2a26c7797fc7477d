// swift-tools-version:6.2
import PackageDescription

let package = Package(
    name: "strive",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "strive", targets: ["strive"])
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-log.git", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-crypto.git", from: "4.5.2"),
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.101.2"),
        .package(url: "https://github.com/apple/swift-nio-ssl.git", from: "2.37.6"),
        .package(url: "https://github.com/apple/swift-http-types.git", from: "1.8.0"),
        .package(url: "https://github.com/apple/swift-subprocess.git", from: "1.0.2"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle.git", from: "2.13.0"),
        .package(url: "https://github.com/hummingbird-project/hummingbird.git", from: "2.28.1"),
        .package(url: "https://github.com/vapor/postgres-nio.git", from: "1.33.2"),
        .package(url: "https://github.com/vapor/jwt-kit.git", from: "5.8.0"),
        .package(url: "https://github.com/hummingbird-project/hummingbird-auth.git", from: "2.5.0"),
        .package(url: "https://github.com/apple/swift-async-algorithms.git", from: "1.1.4"),
        .package(url: "https://github.com/hummingbird-project/hummingbird-websocket.git", from: "2.8.1"),
        // Streaming multipart/form-data parsing for storage uploads.
        .package(url: "https://github.com/vapor/multipart-kit.git", from: "4.7.1"),
        // Auth mail: templates (swift-mustache) and SMTP's line framing (NIOExtras, already built for Hummingbird).
        .package(url: "https://github.com/hummingbird-project/swift-mustache.git", from: "2.1.1"),
        .package(url: "https://github.com/apple/swift-nio-extras.git", from: "1.35.2"),
        // Prometheus /metrics: swift-metrics is the API every module records through (Hummingbird's
        // MetricsMiddleware already does), swift-prometheus the registry that /metrics renders.
        .package(url: "https://github.com/apple/swift-metrics.git", from: "2.13.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus.git", from: "2.4.1"),
        // The S3 blob store's HTTP client (already built for HummingbirdTesting); the console test talks WebDriver with it.
        .package(url: "https://github.com/swift-server/async-http-client.git", from: "1.37.0"),
        // Tests only: validates the generated /openapi.json.
        .package(url: "https://github.com/mattpolzin/OpenAPIKit.git", from: "6.4.0"),
    ],
    targets: [
        // The process's metrics: one Prometheus registry behind swift-metrics, and Strive's own instruments.
        .target(
            name: "StriveMetrics",
            dependencies: [
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus"),
            ]
        ),
        // Backups and restores: a consistent pg_dump plus the object bytes it references, in a checked archive.
        .target(
            name: "StriveBackup",
            dependencies: [
                "StriveCore",
                "StriveDatabase",
                "StriveBlobs",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "PostgresNIO", package: "postgres-nio"),
                .product(name: "Subprocess", package: "swift-subprocess"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ]
        ),
        // Where object bytes live: blob ids, the two-phase store protocol, the local and S3 stores and their layouts,
        // one factory from the settings. Storage, backups, the server and the CLI all go through it.
        .target(
            name: "StriveBlobs",
            dependencies: [
                "StriveCore",
                "StriveS3",
                .product(name: "AsyncAlgorithms", package: "swift-async-algorithms"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "_NIOFileSystem", package: "swift-nio"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ]
        ),
        // An S3 client: SigV4 signing and the object calls a blob store makes, over AsyncHTTPClient.
        .target(
            name: "StriveS3",
            dependencies: [
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOFoundationCompat", package: "swift-nio"),
            ]
        ),
        // libvips for image transformations, opened at run time (dlopen): the server builds and starts without it.
        .target(name: "CStriveVips", linkerSettings: [.linkedLibrary("dl")]),
        // WebAuthn's relying-party checks (passkeys, security-key MFA): CBOR, COSE keys, both ceremonies. No I/O.
        .target(
            name: "StriveWebAuthn",
            dependencies: [
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "CryptoExtras", package: "swift-crypto"),
            ]
        ),
        // Configuration, API keys, shared error vocabulary. No network or database I/O.
        .target(
            name: "StriveCore",
            dependencies: [
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "JWTKit", package: "jwt-kit"),
            ]
        ),
        // Connection pools, request-scoped transactions, the migrator and the self-managed cluster.
        .target(
            name: "StriveDatabase",
            dependencies: [
                "StriveCore",
                "StriveMetrics",
                .product(name: "PostgresNIO", package: "postgres-nio"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "Subprocess", package: "swift-subprocess"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            resources: [.copy("Migrations")]
        ),
        // Who is calling: API keys and access tokens verified, the caller's role and claims, request body limits.
        // Every surface needs it; only StriveAuth needs accounts, passwords and sessions.
        .target(
            name: "StriveIdentity",
            dependencies: [
                "StriveCore",
                "StriveDatabase",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "JWTKit", package: "jwt-kit"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "CryptoExtras", package: "swift-crypto"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOFoundationCompat", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        // Accounts, passwords, sessions, refresh-token rotation; the /auth/v1 routes.
        .target(
            name: "StriveAuth",
            dependencies: [
                "StriveCore",
                "StriveWebAuthn",
                "StriveMetrics",
                "StriveDatabase",
                "StriveIdentity",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HummingbirdBcrypt", package: "hummingbird-auth"),
                .product(name: "JWTKit", package: "jwt-kit"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "PostgresNIO", package: "postgres-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOFoundationCompat", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
                .product(name: "Logging", package: "swift-log"),
                // External sign-in providers: discovery, keys, code exchange and profiles.
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
            ]
        ),
        // The PostgREST grammar at /rest/v1: schema cache, parsing, parameterised SQL, JSON built by PostgreSQL.
        .target(
            name: "StriveRest",
            dependencies: [
                "StriveCore",
                "StriveDatabase",
                "StriveIdentity",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
                .product(name: "PostgresNIO", package: "postgres-nio"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOFoundationCompat", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        // Buckets, objects, signed URLs at /storage/v1; the blob store (two-phase writes so bytes and metadata agree).
        .target(
            name: "StriveStorage",
            dependencies: [
                "StriveCore",
                "CStriveVips",
                .product(name: "NIOPosix", package: "swift-nio"),
                "StriveMetrics",
                "StriveDatabase",
                "StriveIdentity",
                "StriveBlobs",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
                .product(name: "PostgresNIO", package: "postgres-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOFoundationCompat", package: "swift-nio"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "JWTKit", package: "jwt-kit"),
                .product(name: "MultipartKit", package: "multipart-kit"),
                .product(name: "AsyncAlgorithms", package: "swift-async-algorithms"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ]
        ),
        // Change feeds, broadcast and presence over Supabase Realtime's Phoenix protocol at /realtime/v1.
        .target(
            name: "StriveRealtime",
            dependencies: [
                "StriveCore",
                "StriveMetrics",
                "StriveDatabase",
                "StriveIdentity",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HummingbirdWebSocket", package: "hummingbird-websocket"),
                // `PhoenixClient`: the client `strive check`, `strive bench realtime` and the tests share.
                .product(name: "HummingbirdWSClient", package: "hummingbird-websocket"),
                .product(name: "PostgresNIO", package: "postgres-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
            ]
        ),
        // Auth mail: SMTP delivery (STARTTLS, AUTH) from the database outbox, Mustache templates, MIME messages.
        .target(
            name: "StriveMail",
            dependencies: [
                "StriveCore",
                "StriveDatabase",
                .product(name: "Mustache", package: "swift-mustache"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "NIOExtras", package: "swift-nio-extras"),
                .product(name: "PostgresNIO", package: "postgres-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ]
        ),
        // HTTP requests from SQL (pg_net's net.http_*, Database Webhooks): the outbox every instance delivers, with
        // retries, Standard Webhooks signatures and the refusal of private addresses.
        .target(
            name: "StriveOutbound",
            dependencies: [
                "StriveCore",
                "StriveDatabase",
                "StriveMetrics",
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "PostgresNIO", package: "postgres-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ]
        ),
        // Scheduled jobs (pg_cron's cron.schedule): the scheduler every instance runs, each tick's run once.
        .target(
            name: "StriveCron",
            dependencies: [
                "StriveCore",
                "StriveDatabase",
                "StriveMetrics",
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "PostgresNIO", package: "postgres-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ]
        ),
        // Client types (TypeScript for supabase-js, Swift Codable structs) generated from the data API's schema cache.
        .target(
            name: "StriveTypeGen",
            dependencies: [
                "StriveDatabase",
                "StriveRest",
                .product(name: "PostgresNIO", package: "postgres-nio"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        // The Hummingbird application: routes, middleware, error mapping, service assembly.
        .target(
            name: "StriveServer",
            dependencies: [
                "StriveCore",
                "StriveBlobs",
                "StriveBackup",
                "StriveMetrics",
                "StriveDatabase",
                "StriveAuth",
                "StriveIdentity",
                "StriveRest",
                "StriveStorage",
                "StriveRealtime",
                "StriveMail",
                "StriveOutbound",
                "StriveCron",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HummingbirdWebSocket", package: "hummingbird-websocket"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "UnixSignals", package: "swift-service-lifecycle"),
                .product(name: "NIOHTTPTypes", package: "swift-nio-extras"),
            ]
        ),
        .executableTarget(
            name: "strive",
            dependencies: [
                "StriveCore",
                "StriveDatabase",
                "StriveAuth",
                "StriveIdentity",
                "StriveServer",
                "StriveTypeGen",
                "StriveBackup",
                "StriveBlobs",
                "StriveRealtime",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "PostgresNIO", package: "postgres-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                // The bench compares HS256, ES256 and RS256 signature checks.
                .product(name: "JWTKit", package: "jwt-kit"),
                .product(name: "CryptoExtras", package: "swift-crypto"),
            ]
        ),
        // Throwaway PostgreSQL clusters and databases for tests. Test-only.
        .target(
            name: "StriveTestSupport",
            dependencies: [
                "StriveCore",
                "StriveDatabase",
                "StriveAuth",
                "StriveIdentity",
                "StriveServer",
                "StriveRealtime",
                "StriveS3",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HummingbirdTesting", package: "hummingbird"),
                .product(name: "PostgresNIO", package: "postgres-nio"),
                .product(name: "Logging", package: "swift-log"),
                // The tests' browser: follows no redirect on its own, so each hop can be checked.
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
            ]
        ),
        .testTarget(name: "StriveCoreTests", dependencies: ["StriveCore"]),
        .testTarget(
            name: "StriveDatabaseTests",
            dependencies: ["StriveDatabase", "StriveTestSupport", .product(name: "PostgresNIO", package: "postgres-nio")]
        ),
        .testTarget(
            name: "StriveServerTests",
            dependencies: [
                "StriveServer", "StriveTestSupport", "StriveBackup", "StriveBlobs",
                .product(name: "HummingbirdTesting", package: "hummingbird"),
            ]
        ),
        // Runs the built `strive` binary as a user would; depends on it so `swift test` builds it.
        .testTarget(
            name: "StriveAuthTests",
            dependencies: [
                "StriveAuth", "StriveIdentity", "StriveServer", "StriveTestSupport", "StriveMail", "StriveCore",
                .product(name: "HummingbirdTesting", package: "hummingbird"),
                .product(name: "JWTKit", package: "jwt-kit"),
            ]
        ),
        .testTarget(
            name: "StriveRestTests",
            dependencies: [
                "StriveRest", "StriveAuth", "StriveIdentity", "StriveServer", "StriveTestSupport",
                .product(name: "HummingbirdTesting", package: "hummingbird"),
                .product(name: "OpenAPIKit", package: "OpenAPIKit"),
            ]
        ),
        .testTarget(
            name: "StriveStorageTests",
            dependencies: [
                "StriveStorage", "StriveCore", "StriveServer", "StriveTestSupport", "StriveAuth", "StriveIdentity", "StriveDatabase",
                "StriveS3", "StriveBlobs",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "PostgresNIO", package: "postgres-nio"),
                .product(name: "HummingbirdTesting", package: "hummingbird"),
            ]
        ),
        .testTarget(
            name: "StriveRealtimeTests",
            dependencies: [
                "StriveRealtime", "StriveCore", "StriveServer", "StriveTestSupport", "StriveAuth", "StriveIdentity", "StriveDatabase",
                .product(name: "HummingbirdTesting", package: "hummingbird"),
                .product(name: "PostgresNIO", package: "postgres-nio"),
            ]
        ),
        .testTarget(
            name: "StriveCLITests",
            dependencies: [
                "strive", "StriveDatabase", "StriveRealtime", "StriveTestSupport",
                // Drives chromedriver (FoundationNetworking's client failed its requests: "Failed writing header").
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
            ]
        ),
        .testTarget(
            name: "StriveTypeGenTests",
            dependencies: [
                "StriveTypeGen", "StriveCore", "StriveDatabase", "StriveTestSupport",
                .product(name: "HummingbirdTesting", package: "hummingbird"),
                .product(name: "PostgresNIO", package: "postgres-nio"),
            ]
        ),
    ],
    swiftLanguageModes: [.v6]
)

// A warning in Strive's own code is a defect: every target of this package fails its build on one (the
// settings of dependencies are their own; SwiftPM ignores warning controls of remote packages).
for target in package.targets {
    target.swiftSettings = (target.swiftSettings ?? []) + [.treatAllWarnings(as: .error)]
}
