import Foundation

/// A parsed `postgres://user:password@host:port/database?sslmode=…` URL.
///
/// Parsing failures describe the URL's shape, never its text: it usually contains a password.
public struct DatabaseURL: Sendable, Equatable {
    public enum SSLMode: String, Sendable, CaseIterable {
        case disable, allow, prefer, require
        case verifyCA = "verify-ca"
        case verifyFull = "verify-full"
    }

    public enum Endpoint: Sendable, Equatable {
        case tcp(host: String, port: Int)
        /// libpq's `?host=/dir` form: the server's socket directory.
        case unixSocket(directory: String, port: Int)
    }

    public var endpoint: Endpoint
    public var username: String
    public var password: Secret?
    public var database: String
    public var sslMode: SSLMode

    public init(endpoint: Endpoint, username: String, password: Secret?, database: String, sslMode: SSLMode) {
        self.endpoint = endpoint
        self.username = username
        self.password = password
        self.database = database
        self.sslMode = sslMode
    }

    public struct ParseError: Error, Sendable, Equatable {
        public let rule: String
        public let observed: String?
    }

    public init(parsing text: String) throws(ParseError) {
        guard let components = URLComponents(string: text) else {
            throw ParseError(
                rule: "must be a URL of the form postgres://user:password@host:port/database", observed: "text that is not a URL")
        }
        guard let scheme = components.scheme?.lowercased(), scheme == "postgres" || scheme == "postgresql" else {
            let seen = components.scheme.map { "scheme '\($0)'" } ?? "no scheme"
            throw ParseError(rule: "must start with postgres:// or postgresql://", observed: seen)
        }
        let query = Dictionary(
            (components.queryItems ?? []).map { ($0.name, $0.value ?? "") },
            uniquingKeysWith: { _, last in last }
        )
        let port: Int
        if let explicit = components.port {
            guard (1...65535).contains(explicit) else {
                throw ParseError(rule: "port must be between 1 and 65535", observed: "port \(explicit)")
            }
            port = explicit
        } else {
            port = 5432
        }
        if let socketDirectory = query["host"], socketDirectory.hasPrefix("/") {
            endpoint = .unixSocket(directory: socketDirectory, port: port)
        } else if let host = components.host, !host.isEmpty {
            endpoint = .tcp(host: host, port: port)
        } else {
            throw ParseError(rule: "must name a host (postgres://user@host/database)", observed: "no host")
        }
        guard let user = components.user, !user.isEmpty else {
            throw ParseError(rule: "must name a user (postgres://user@host/database)", observed: "no user")
        }
        username = user.removingPercentEncoding ?? user
        password = components.password.map { Secret($0.removingPercentEncoding ?? $0) }
        let path = components.path.hasPrefix("/") ? String(components.path.dropFirst()) : components.path
        database = path.isEmpty ? username : (path.removingPercentEncoding ?? path)
        if let mode = query["sslmode"] {
            guard let parsed = SSLMode(rawValue: mode) else {
                let allowed = SSLMode.allCases.map(\.rawValue).joined(separator: ", ")
                throw ParseError(rule: "sslmode must be one of \(allowed)", observed: "sslmode '\(mode)'")
            }
            sslMode = parsed
        } else {
            sslMode = .prefer
        }
    }

    /// Host and port for messages; carries no credentials.
    public var displayLocation: String {
        switch endpoint {
        case .tcp(let host, let port): "\(host):\(port)/\(database)"
        case .unixSocket(let directory, let port): "\(directory)/.s.PGSQL.\(port) (database \(database))"
        }
    }
}
