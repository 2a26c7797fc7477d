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

    var isSecret: Bool {
        switch self {
        case .jwtSecret, .serviceRoleKey, .databaseURL: true
        default: false
        }
    }
}
