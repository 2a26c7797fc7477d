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
    public var dataDirectory: String
    public var storageDirectory: String
    public var logLevel: LogLevel
    public var database: DatabaseLocation
    public var jwtSecret: Secret
    public var apiKeys: APIKeys
    /// True when the JWT secret was generated for development rather than configured.
    public var jwtSecretWasGenerated: Bool
    public var auth: AuthSettings
    /// Most rows one data API response returns (`STRIVE_DB_MAX_ROWS`, PostgREST's `db-max-rows`).
    public var maxRows: Int
    /// Largest data API request body in bytes (`STRIVE_REST_MAX_BODY_BYTES`).
    public var restMaxBodyBytes: Int
    /// Request statements are cancelled after this long (`STRIVE_STATEMENT_TIMEOUT_MS`).
    public var statementTimeout: Duration
    /// Connections of the request pool (`STRIVE_DB_POOL_SIZE`).
    public var poolSize: Int
    /// Longest a request waits for a pooled connection before it is answered 503
    /// (`STRIVE_DB_ACQUIRE_TIMEOUT_MS`).
    public var acquireTimeout: Duration = .seconds(10)
    /// This server's name among instances sharing one database (`STRIVE_INSTANCE_ID`): its realtime
    /// cursor is kept under it, so a restart under the same name resumes where it stopped.
    public var instanceID: String
    /// After a restart, how long realtime waits for clients to rejoin before it delivers the changes
    /// committed while it was down (`STRIVE_REALTIME_REPLAY_SECONDS`).
    public var realtimeReplayWindow: Duration

    public static let defaultHost = "127.0.0.1"
    public static let defaultPort = 54321
    public static let defaultDataDirectory = ".strive"
}

/// The variables `strive serve` reads. Flags override them under the same names.
public enum ConfigVariable: String, CaseIterable, Sendable {
    case databaseURL = "DATABASE_URL"
    case environment = "STRIVE_ENV"
    case host = "STRIVE_HOST"
    case port = "STRIVE_PORT"
    case publicURL = "STRIVE_PUBLIC_URL"
    case dataDirectory = "STRIVE_DATA_DIR"
    case storageDirectory = "STRIVE_STORAGE_DIR"
    case logLevel = "STRIVE_LOG_LEVEL"
    case jwtSecret = "STRIVE_JWT_SECRET"
    case anonKey = "STRIVE_ANON_KEY"
    case serviceRoleKey = "STRIVE_SERVICE_ROLE_KEY"
    case jwtExpiry = "STRIVE_JWT_EXPIRY"
    case refreshReuseInterval = "STRIVE_REFRESH_REUSE_INTERVAL"
    case authRateLimitPerIP = "STRIVE_AUTH_RATE_LIMIT_IP"
    case authRateLimitPerEmail = "STRIVE_AUTH_RATE_LIMIT_EMAIL"
    case bcryptCost = "STRIVE_BCRYPT_COST"
    case maxRows = "STRIVE_DB_MAX_ROWS"
    case restMaxBodyBytes = "STRIVE_REST_MAX_BODY_BYTES"
    case statementTimeout = "STRIVE_STATEMENT_TIMEOUT_MS"
    case poolSize = "STRIVE_DB_POOL_SIZE"
    case acquireTimeout = "STRIVE_DB_ACQUIRE_TIMEOUT_MS"
    case instanceID = "STRIVE_INSTANCE_ID"
    case realtimeReplaySeconds = "STRIVE_REALTIME_REPLAY_SECONDS"

    var isSecret: Bool {
        switch self {
        case .jwtSecret, .serviceRoleKey, .databaseURL: true
        default: false
        }
    }
}

/// How accounts and tokens behave (Supabase Auth's settings under Strive's names).
public struct AuthSettings: Sendable, Equatable {
    /// Access-token lifetime (`expires_in`).
    public var accessTokenLifetime: Duration
    /// How long a just-rotated refresh token may be presented again (concurrent tabs, retries) and get
    /// the same successor instead of revoking the session.
    public var refreshReuseInterval: Duration
    /// Sign-in and sign-up attempts per minute from one IP address.
    public var attemptsPerMinutePerIP: Int
    /// Sign-in and sign-up attempts per minute for one email address.
    public var attemptsPerMinutePerEmail: Int
    /// bcrypt cost factor of new password hashes.
    public var bcryptCost: Int

    public static let `default` = AuthSettings(
        accessTokenLifetime: .seconds(3600), refreshReuseInterval: .seconds(10),
        attemptsPerMinutePerIP: 30, attemptsPerMinutePerEmail: 10, bcryptCost: 10
    )

    public init(
        accessTokenLifetime: Duration, refreshReuseInterval: Duration, attemptsPerMinutePerIP: Int,
        attemptsPerMinutePerEmail: Int, bcryptCost: Int
    ) {
        self.accessTokenLifetime = accessTokenLifetime
        self.refreshReuseInterval = refreshReuseInterval
        self.attemptsPerMinutePerIP = attemptsPerMinutePerIP
        self.attemptsPerMinutePerEmail = attemptsPerMinutePerEmail
        self.bcryptCost = bcryptCost
    }
}
