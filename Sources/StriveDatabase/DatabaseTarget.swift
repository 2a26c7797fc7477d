import Crypto
import Foundation
import Logging
import NIOSSL
import PostgresNIO
import StriveCore

/// A user name and password to log in with.
public struct DatabaseCredentials: Sendable {
    public var username: String
    public var password: Secret?

    public init(username: String, password: Secret?) {
        self.username = username
        self.password = password
    }

    /// The login the request pool uses. Its password is derived from the JWT secret so every Strive
    /// instance sharing a database (and a secret) agrees on it without another setting to manage.
    public static func authenticator(derivedFrom jwtSecret: Secret) -> DatabaseCredentials {
        derived(username: DatabaseRole.authenticatorLogin, from: jwtSecret)
    }

    /// The login for a team's own server-side code (`strive db url --role service|app`), derived the same way.
    public static func serverLogin(_ login: ServerLogin, derivedFrom jwtSecret: Secret) -> DatabaseCredentials {
        derived(username: login.rawValue, from: jwtSecret)
    }

    /// Hex, so it can be spelled as a literal in ALTER ROLE (which takes no bind parameters) and in a URL.
    private static func derived(username: String, from jwtSecret: Secret) -> DatabaseCredentials {
        let mac = HMAC<SHA256>.authenticationCode(
            for: Data("strive:\(username)-password:v1".utf8),
            using: SymmetricKey(data: Data(jwtSecret.value.utf8))
        )
        let hex = mac.map { String(format: "%02x", $0) }.joined()
        return DatabaseCredentials(username: username, password: Secret(hex))
    }
}

/// Logins for server-side code that is not the schema owner (migration 0018): each session runs as one
/// request role, so what the code may do is what a data-API request of that role may do.
public enum ServerLogin: String, Sendable, CaseIterable {
    /// Runs as `service_role`: every row, no DDL.
    case service = "strive_service"
    /// Runs as `authenticated` under row-level security, as the user its claims name.
    case app = "strive_app"

    /// The request role every session of this login runs as.
    public var role: DatabaseRole {
        switch self {
        case .service: .serviceRole
        case .app: .authenticated
        }
    }
}

/// Where a database is and who owns it: enough to open owner connections and the authenticator pool.
public struct DatabaseTarget: Sendable {
    public enum Endpoint: Sendable, Equatable {
        case tcp(host: String, port: Int, sslMode: DatabaseURL.SSLMode)
        /// The socket file itself (`<dir>/.s.PGSQL.<port>`), as PostgresNIO wants it.
        case unixSocket(path: String)
    }

    public var endpoint: Endpoint
    public var database: String
    /// The role that owns the schema and runs migrations.
    public var owner: DatabaseCredentials

    public init(endpoint: Endpoint, database: String, owner: DatabaseCredentials) {
        self.endpoint = endpoint
        self.database = database
        self.owner = owner
    }

    public init(url: DatabaseURL) {
        switch url.endpoint {
        case .tcp(let host, let port):
            endpoint = .tcp(host: host, port: port, sslMode: url.sslMode)
        case .unixSocket(let directory, let port):
            endpoint = .unixSocket(path: "\(directory)/.s.PGSQL.\(port)")
        }
        database = url.database
        owner = DatabaseCredentials(username: url.username, password: url.password)
    }

    /// The same server, another database (the test harness clones databases this way).
    public func with(database: String) -> DatabaseTarget {
        var copy = self
        copy.database = database
        return copy
    }

    /// A libpq connection URL for this database as `credentials` (it holds their password).
    public func url(as credentials: DatabaseCredentials) -> String {
        let allowed = CharacterSet.alphanumerics.union(CharacterSet(charactersIn: "-._~"))
        let user = credentials.username.addingPercentEncoding(withAllowedCharacters: allowed) ?? credentials.username
        let password = credentials.password.map { ":" + ($0.value.addingPercentEncoding(withAllowedCharacters: allowed) ?? "") } ?? ""
        let name = database.addingPercentEncoding(withAllowedCharacters: allowed) ?? database
        switch endpoint {
        case .tcp(let host, let port, let sslMode):
            let bracketed = host.contains(":") ? "[\(host)]" : host
            return "postgres://\(user)\(password)@\(bracketed):\(port)/\(name)?sslmode=\(sslMode.rawValue)"
        case .unixSocket(let path):
            // `<dir>/.s.PGSQL.<port>`: libpq wants the directory and the port apart.
            let directory = (path as NSString).deletingLastPathComponent
            let port = (path as NSString).lastPathComponent.split(separator: ".").last.map(String.init) ?? "5432"
            let host = directory.addingPercentEncoding(withAllowedCharacters: allowed) ?? directory
            return "postgres://\(user)\(password)@/\(name)?host=\(host)&port=\(port)"
        }
    }

    /// Where the server is, for messages. Never includes credentials.
    public var displayLocation: String {
        switch endpoint {
        case .tcp(let host, let port, _): "\(host):\(port)/\(database)"
        case .unixSocket(let path): "\(path) (database \(database))"
        }
    }

    public func clientConfiguration(as credentials: DatabaseCredentials) throws -> PostgresClient.Configuration {
        var configuration: PostgresClient.Configuration
        switch endpoint {
        case .tcp(let host, let port, let sslMode):
            configuration = .init(
                host: host, port: port, username: credentials.username,
                password: credentials.password?.value, database: database, tls: Self.clientTLS(sslMode)
            )
        case .unixSocket(let path):
            configuration = .init(
                unixSocketPath: path, username: credentials.username,
                password: credentials.password?.value, database: database
            )
        }
        configuration.options.connectTimeout = .seconds(10)
        return configuration
    }

    public func connectionConfiguration(as credentials: DatabaseCredentials) throws -> PostgresConnection.Configuration {
        var configuration: PostgresConnection.Configuration
        switch endpoint {
        case .tcp(let host, let port, let sslMode):
            configuration = .init(
                host: host, port: port, username: credentials.username,
                password: credentials.password?.value, database: database, tls: try Self.connectionTLS(sslMode)
            )
        case .unixSocket(let path):
            configuration = .init(
                unixSocketPath: path, username: credentials.username,
                password: credentials.password?.value, database: database
            )
        }
        configuration.options.connectTimeout = .seconds(10)
        return configuration
    }

    /// One connection as the owner for `body`, closed afterwards whatever happens: for one-shot work
    /// outside the pools (migrating at start-up, backups, restores).
    public func withOwnerConnection<T: Sendable>(
        logger: Logger, _ body: (PostgresConnection) async throws -> T
    ) async throws -> T {
        let connection = try await PostgresConnection.connect(configuration: try connectionConfiguration(as: owner), id: 0, logger: logger)
        do {
            let result = try await body(connection)
            try? await connection.close()
            return result
        } catch {
            try? await connection.close()
            throw error
        }
    }

    private static func tlsConfiguration(_ mode: DatabaseURL.SSLMode) -> TLSConfiguration {
        var tls = TLSConfiguration.makeClientConfiguration()
        switch mode {
        case .verifyFull: tls.certificateVerification = .fullVerification
        case .verifyCA: tls.certificateVerification = .noHostnameVerification
        // libpq's require/prefer/allow encrypt without checking the certificate.
        case .disable, .allow, .prefer, .require: tls.certificateVerification = .none
        }
        return tls
    }

    private static func clientTLS(_ mode: DatabaseURL.SSLMode) -> PostgresClient.Configuration.TLS {
        switch mode {
        case .disable: .disable
        case .allow, .prefer: .prefer(tlsConfiguration(mode))
        case .require, .verifyCA, .verifyFull: .require(tlsConfiguration(mode))
        }
    }

    private static func connectionTLS(_ mode: DatabaseURL.SSLMode) throws -> PostgresConnection.Configuration.TLS {
        switch mode {
        case .disable: .disable
        case .allow, .prefer: .prefer(try NIOSSLContext(configuration: tlsConfiguration(mode)))
        case .require, .verifyCA, .verifyFull: .require(try NIOSSLContext(configuration: tlsConfiguration(mode)))
        }
    }
}

extension DatabaseTarget {
    /// Opens one connection as `credentials`, outside any pool, runs `body` on it and closes it whether
    /// `body` returns or throws.
    public func withConnection<Result: Sendable>(
        as credentials: DatabaseCredentials, logger: Logger, _ body: (PostgresConnection) async throws -> Result
    ) async throws -> Result {
        let connection = try await PostgresConnection.connect(
            configuration: connectionConfiguration(as: credentials), id: 1, logger: logger)
        do {
            let result = try await body(connection)
            try await connection.close()
            return result
        } catch {
            try? await connection.close()
            throw error
        }
    }
}
