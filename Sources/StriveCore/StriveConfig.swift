import Foundation

/// Where the database lives: a cluster Strive manages itself, or a server it is pointed at.
public enum DatabaseLocation: Sendable, Equatable {
    case managed
    case external(DatabaseURL)
}

/// The validated configuration of `strive serve`. Build it with `StriveConfig.load`.
public struct StriveConfig: Sendable {
    public var environment: RuntimeEnvironment
    public var host: String
    /// 0 asks the OS for a free port (tests use this).
    public var port: Int
    public var publicURL: String
    /// Where the database lives and how a self-managed one is run.
    public var databaseSettings: DatabaseSettings
    public var dataDirectory: String { databaseSettings.dataDirectory }
    public var database: DatabaseLocation { databaseSettings.location }
    public var storageDirectory: String
    public var logLevel: LogLevel
    public var jwtSecret: Secret
    public var apiKeys: APIKeys
    /// True when the JWT secret was generated for development rather than configured.
    public var jwtSecretWasGenerated: Bool
    public var auth: AuthSettings
    /// Most rows one data API response returns (`STRIVE_DB_MAX_ROWS`, PostgREST's `db-max-rows`).
    public var maxRows: Int
    /// Largest data API request body in bytes (`STRIVE_REST_MAX_BODY_BYTES`).
    public var restMaxBodyBytes: Int
    /// Whether callers may ask for their statement's plan (`STRIVE_DB_PLAN_ENABLED`).
    public var dbPlanEnabled = false
    /// The schemas the data API exposes, the default first (`STRIVE_DB_SCHEMAS`).
    public var dbSchemas = ["public"]
    /// Whether `select` may aggregate (`STRIVE_DB_AGGREGATES_ENABLED`).
    public var dbAggregatesEnabled = false
    /// How data API transactions end (`STRIVE_DB_TX_END`).
    public var dbTxEnd = TransactionEnd.commit
    /// Request statements are cancelled after this long (`STRIVE_STATEMENT_TIMEOUT_MS`).
    public var statementTimeout: Duration
    /// Connections of the request pool (`STRIVE_DB_POOL_SIZE`).
    public var poolSize: Int
    /// Longest a request waits for a pooled connection before it is answered 503
    /// (`STRIVE_DB_ACQUIRE_TIMEOUT_MS`).
    public var acquireTimeout: Duration
    /// This server's name among instances sharing one database (`STRIVE_INSTANCE_ID`): its realtime
    /// cursor is kept under it, so a restart under the same name resumes where it stopped.
    public var instanceID: String
    /// After a restart, how long realtime waits for clients to rejoin before it delivers the changes
    /// committed while it was down (`STRIVE_REALTIME_REPLAY_SECONDS`).
    public var realtimeReplayWindow: Duration
    /// The mail server and sender (`STRIVE_SMTP_*`).
    public var mail: MailSettings
    /// A bearer token for `/metrics` besides the service role key (`STRIVE_METRICS_TOKEN`).
    public var metricsToken: Secret? = nil
    /// Scheduled backups (`STRIVE_BACKUP_*`).
    public var backup = BackupSettings(interval: nil, retention: 7, directory: "")
    /// Where object bytes live (`STRIVE_STORAGE_BACKEND`, `STRIVE_S3_*`).
    public var storageBackend: StorageBackend = .local
    /// Image transformation limits (`STRIVE_STORAGE_IMAGE_*`).
    public var imageSettings = ImageSettings.default
    /// Longest a scheduled job may run (`STRIVE_CRON_JOB_TIMEOUT`).
    public var cronJobTimeout: Duration = .seconds(600)
    /// HTTP requests from SQL (net.http_*, Database Webhooks).
    public var outbound = OutboundSettings(allowPrivate: [], maxAttempts: 5, signingSecret: nil)
}

/// `STRIVE_DB_TX_END`'s values, PostgREST's `db-tx-end`.
public enum TransactionEnd: String, CaseIterable, Sendable {
    case commit
    case commitAllowOverride = "commit-allow-override"
    case rollback
    case rollbackAllowOverride = "rollback-allow-override"

    /// Whether a request ends in ROLLBACK given its `Prefer: tx=` (nil: none), and the preference applied.
    public func resolve(requested: String?) -> (rollback: Bool, applied: String?) {
        let allowsOverride = self == .commitAllowOverride || self == .rollbackAllowOverride
        let defaultRollback = self == .rollback || self == .rollbackAllowOverride
        guard allowsOverride, let requested, ["commit", "rollback"].contains(requested) else { return (defaultRollback, nil) }
        return (requested == "rollback", requested)
    }
}

/// `STRIVE_PRODUCT_SCHEMA`'s values: which product's schema the platform carries.
public enum ProductSchema: String, CaseIterable, Sendable {
    /// The Strive CRM: its tables, policies, buckets and realtime publications in `public`.
    case strive
    /// No product: an empty `public` schema for the team's own migrations.
    case none
}

/// `STRIVE_STORAGE_BACKEND`'s values.
public enum StorageBackendKind: String, CaseIterable, Sendable {
    case local
    case s3
}

/// Where object bytes live.
public enum StorageBackend: Sendable, Equatable {
    /// Files under `STRIVE_STORAGE_DIR`.
    case local
    /// An S3-compatible bucket.
    case s3(S3Settings)
}

/// `STRIVE_S3_*`.
public struct S3Settings: Sendable, Equatable {
    public var endpoint: String
    public var region: String
    public var bucket: String
    public var accessKeyID: String
    public var secretAccessKey: Secret
    public var forcePathStyle: Bool
    /// Bytes per multipart part; bodies up to this size are one PUT.
    public var partSize: Int

    public init(
        endpoint: String, region: String, bucket: String, accessKeyID: String, secretAccessKey: Secret, forcePathStyle: Bool, partSize: Int
    ) {
        self.endpoint = endpoint
        self.region = region
        self.bucket = bucket
        self.accessKeyID = accessKeyID
        self.secretAccessKey = secretAccessKey
        self.forcePathStyle = forcePathStyle
        self.partSize = partSize
    }
}

/// `STRIVE_BACKUP_SCHEDULE`, `STRIVE_BACKUP_RETENTION`, `STRIVE_BACKUP_DIR`.
public struct BackupSettings: Sendable, Equatable {
    /// nil: no scheduled backups.
    public var interval: Duration?
    public var retention: Int
    public var directory: String

    public init(interval: Duration?, retention: Int, directory: String) {
        self.interval = interval
        self.retention = retention
        self.directory = directory
    }

    /// `off`, `hourly`, `daily`, or `<N>s|m|h` (at least 2 s).
    public static func interval(parsing text: String) -> Duration?? {
        switch text.lowercased() {
        case "off": return .some(nil)
        case "hourly": return .some(.seconds(3600))
        case "daily": return .some(.seconds(86400))
        default:
            guard let unit = text.last, let count = Int(text.dropLast()), count > 0 else { return nil }
            let seconds: Int
            switch unit {
            case "s": seconds = count
            case "m": seconds = count * 60
            case "h": seconds = count * 3600
            default: return nil
            }
            return seconds >= 2 ? .some(.seconds(seconds)) : nil
        }
    }
}

/// Image transformations: what they may cost (the original's bytes and pixels, the output's width or
/// height, the blob-store space their kept results take) and the libvips they load.
public struct ImageSettings: Sendable, Equatable {
    public var sourceBytes: Int
    public var sourcePixels: Int
    public var dimension: Int
    public var cacheBytes: Int64
    /// A name the dynamic loader finds, or a path.
    public var library: String

    public init(sourceBytes: Int, sourcePixels: Int, dimension: Int, cacheBytes: Int64, library: String) {
        self.sourceBytes = sourceBytes
        self.sourcePixels = sourcePixels
        self.dimension = dimension
        self.cacheBytes = cacheBytes
        self.library = library
    }

    /// The declared defaults of `STRIVE_STORAGE_IMAGE_*`.
    public static var `default`: ImageSettings {
        func declared(_ variable: ConfigVariable) -> Int { variable.setting.defaultInteger ?? 0 }
        return ImageSettings(
            sourceBytes: declared(.imageMaxSourceMB) * 1024 * 1024, sourcePixels: declared(.imageMaxMegapixels) * 1_000_000,
            dimension: declared(.imageMaxDimension), cacheBytes: Int64(declared(.imageCacheMB)) << 20,
            library: ConfigVariable.imageLibrary.setting.defaultText)
    }
}

/// HTTP requests from SQL: which otherwise refused addresses they may reach, how often a failing one is
/// tried, and the Standard Webhooks secret that signs them.
public struct OutboundSettings: Sendable, Equatable {
    /// Hosts, addresses or CIDR networks, as written in `STRIVE_NET_ALLOW_PRIVATE`.
    public var allowPrivate: [String]
    public var maxAttempts: Int
    /// The key bytes (the secret's base64 after `whsec_`).
    public var signingSecret: Secret?

    public init(allowPrivate: [String], maxAttempts: Int, signingSecret: Secret?) {
        self.allowPrivate = allowPrivate
        self.maxAttempts = maxAttempts
        self.signingSecret = signingSecret
    }
}

/// The part of the configuration every command that reaches the database needs.
public struct DatabaseSettings: Sendable, Equatable {
    /// Absolute path of the data directory (`STRIVE_DATA_DIR`).
    public var dataDirectory: String
    /// The self-managed cluster, or `DATABASE_URL`.
    public var location: DatabaseLocation
    /// OS user that runs the self-managed cluster when Strive runs as root (`STRIVE_PG_USER`).
    public var postgresUser: String
    /// Where initdb, pg_ctl and postgres are (`STRIVE_PG_BIN_DIR`); nil to search for them.
    public var postgresBinDirectory: String?
    /// Absolute path of the project's migrations folder (`STRIVE_MIGRATIONS_DIR`).
    public var migrationsDirectory: String
    /// The product schema the built-in migrations create (`STRIVE_PRODUCT_SCHEMA`).
    public var productSchema: ProductSchema

    public init(
        dataDirectory: String, location: DatabaseLocation, postgresUser: String, postgresBinDirectory: String?, migrationsDirectory: String,
        productSchema: ProductSchema = .strive
    ) {
        self.dataDirectory = dataDirectory
        self.location = location
        self.postgresUser = postgresUser
        self.postgresBinDirectory = postgresBinDirectory
        self.migrationsDirectory = migrationsDirectory
        self.productSchema = productSchema
    }
}

/// How accounts and tokens behave (Supabase Auth's settings under Strive's names).
public struct AuthSettings: Sendable, Equatable {
    /// Access-token lifetime (`expires_in`).
    public var accessTokenLifetime: Duration
    /// How long a just-rotated refresh token may be presented again (concurrent tabs, retries) and get
    /// the same successor instead of revoking the session.
    public var refreshReuseInterval: Duration
    /// Sign-in and sign-up attempts per 5 minutes from one IP address, all instances together.
    public var signInsPerIP: Int
    /// Sign-in, sign-up and mail requests per minute for one email address, all instances together.
    public var attemptsPerMinutePerEmail: Int
    /// Token refreshes per 5 minutes from one IP address.
    public var refreshesPerIP: Int = 150
    /// Link and code verifications per 5 minutes from one IP address.
    public var verificationsPerIP: Int = 30
    /// Recovery, magic-link and resend requests per 5 minutes from one IP address.
    public var mailRequestsPerIP: Int = 30
    /// MFA enrollments, challenges and verifications per minute from one IP address.
    public var mfaAttemptsPerIP: Int = 15
    /// `POST /signup` without credentials makes an anonymous user (`STRIVE_AUTH_ANONYMOUS`).
    public var anonymousSignIns: Bool = false
    /// An email change needs both the current and the new address to confirm (`STRIVE_AUTH_SECURE_EMAIL_CHANGE`).
    public var secureEmailChange: Bool = true
    /// Anonymous sign-ins per hour from one IP address.
    public var anonymousSignInsPerIP: Int = 30
    /// The proxies whose `X-Forwarded-For` is believed (`STRIVE_TRUSTED_PROXIES`).
    public var trustedProxies: [IPNetwork] = []
    /// bcrypt cost factor of new password hashes.
    public var bcryptCost: Int
    /// Sign-ups are confirmed at once (no confirmation mail) — `STRIVE_AUTH_AUTOCONFIRM`.
    public var autoconfirm: Bool = true
    /// Where links in mail lead by default (`STRIVE_SITE_URL`); always an allowed redirect.
    public var siteURL: String = "http://localhost:3000"
    /// Further allowed redirect targets (`STRIVE_AUTH_REDIRECT_URLS`): URLs, `*` matching within one
    /// path segment or host label and `**` matching anything.
    public var redirectURLs: [String] = []
    /// How long a link or code sent by mail stays valid (`STRIVE_AUTH_OTP_EXPIRY`).
    public var otpLifetime: Duration = .seconds(3600)
    /// Mails auth may send per hour, all instances together (`STRIVE_AUTH_EMAIL_RATE_LIMIT`).
    public var emailsPerHour: Int = 30
    /// Least time between two mails of one kind to one address (`STRIVE_AUTH_EMAIL_INTERVAL`).
    public var emailInterval: Duration = .seconds(60)
    /// Shortest new password, in characters (`STRIVE_AUTH_PASSWORD_MIN_LENGTH`).
    public var passwordMinLength: Int = 8
    /// Character sets a new password must each draw from (`STRIVE_AUTH_PASSWORD_REQUIRED_CHARACTERS`).
    public var passwordRequiredCharacters: [String] = []
    /// `/signup` and `/otp` create no accounts (`STRIVE_AUTH_DISABLE_SIGNUP`).
    public var signupDisabled: Bool = false
    /// A password change needs proof beyond the session (`STRIVE_AUTH_SECURE_PASSWORD_CHANGE`).
    public var securePasswordChange: Bool = true
    /// The function that customizes access tokens (`STRIVE_AUTH_HOOK_CUSTOM_ACCESS_TOKEN`).
    public var accessTokenHook: HookFunction?
    /// Strive signs users in to other applications as an OAuth 2.1 server (`STRIVE_AUTH_OAUTH_SERVER_ENABLED`).
    public var oauthServerEnabled = false
    /// The consent page's path on the site (`STRIVE_AUTH_OAUTH_SERVER_AUTHORIZATION_PATH`).
    public var oauthAuthorizationPath = "/oauth/consent"
    /// Passkeys as a first factor (`STRIVE_AUTH_PASSKEYS_ENABLED`).
    public var passkeysEnabled = false
    /// WebAuthn factors for MFA (`STRIVE_AUTH_MFA_WEBAUTHN_ENABLED`).
    public var mfaWebAuthnEnabled = false
    /// The WebAuthn relying party: id (a domain), name, and the origins allowed to use it.
    public var webauthnRPID = "localhost"
    public var webauthnRPName = "Strive"
    public var webauthnOrigins = ["http://localhost:3000"]
    /// The external sign-in providers (`STRIVE_AUTH_EXTERNAL_<NAME>_*`), sorted by name.
    public var externalProviders: [ExternalProvider] = []

    /// The declared defaults of the settings behind each field.
    public static var `default`: AuthSettings {
        func declared(_ variable: ConfigVariable) -> Int { variable.setting.defaultInteger ?? 0 }
        return AuthSettings(
            accessTokenLifetime: .seconds(declared(.jwtExpiry)), refreshReuseInterval: .seconds(declared(.refreshReuseInterval)),
            signInsPerIP: declared(.authRateLimitPerIP), attemptsPerMinutePerEmail: declared(.authRateLimitPerEmail),
            bcryptCost: declared(.bcryptCost)
        )
    }

    public init(
        accessTokenLifetime: Duration, refreshReuseInterval: Duration, signInsPerIP: Int,
        attemptsPerMinutePerEmail: Int, bcryptCost: Int
    ) {
        self.accessTokenLifetime = accessTokenLifetime
        self.refreshReuseInterval = refreshReuseInterval
        self.signInsPerIP = signInsPerIP
        self.attemptsPerMinutePerEmail = attemptsPerMinutePerEmail
        self.bcryptCost = bcryptCost
    }
}

/// A PostgreSQL function named by a `pg-functions://<database>/<schema>/<function>` URI (Supabase's
/// notation for auth hooks); both names are plain identifiers, so they can be quoted into SQL safely.
public struct HookFunction: Sendable, Equatable {
    /// As configured: what errors name.
    public let uri: String
    public let schema: String
    public let function: String

    public init?(uri: String) {
        guard uri.hasPrefix("pg-functions://") else { return nil }
        let parts = uri.dropFirst("pg-functions://".count).split(separator: "/", omittingEmptySubsequences: false)
        let identifier = "^[A-Za-z_][A-Za-z0-9_]{0,62}$"
        guard parts.count == 3, !parts[0].isEmpty,
            parts[1].range(of: identifier, options: .regularExpression) != nil,
            parts[2].range(of: identifier, options: .regularExpression) != nil
        else { return nil }
        self.uri = uri
        schema = String(parts[1])
        function = String(parts[2])
    }

    /// `"schema"."function"`.
    public var qualifiedName: String { "\"\(schema)\".\"\(function)\"" }
}
