import Foundation
import NIOCore
import NIOPosix
import PostgresNIO

/// What went wrong talking to Postgres, in words a person can act on.
public enum DatabaseError: Error, Sendable, CustomStringConvertible {
    /// The server could not be reached (refused, timed out, DNS, TLS).
    case unreachable(location: String, reason: String)
    /// The server answered but refused the login.
    case loginRefused(location: String, username: String, reason: String)
    /// A statement failed; `sqlState` is Postgres's five-character code.
    case statementFailed(sqlState: String?, message: String)

    public var description: String {
        switch self {
        case .unreachable(let location, let reason):
            "cannot reach the database at \(location): \(reason)"
        case .loginRefused(let location, let username, let reason):
            "the database at \(location) refused the login of '\(username)': \(reason)"
        case .statementFailed(let state, let message):
            state.map { "database error \($0): \(message)" } ?? "database error: \(message)"
        }
    }

    /// The SQLSTATE and message of a failed statement (see `serverFields`).
    public static func serverError(in error: any Error) -> (sqlState: String, message: String)? {
        serverFields(in: error).map { ($0.sqlState, $0.message) }
    }

    /// All of Postgres's fields a client may see about a failed statement.
    public struct ServerFields: Sendable, Equatable {
        public let sqlState: String
        public let message: String
        public let detail: String?
        public let hint: String?
        public let constraint: String?
        /// 1-based character offset of the error in the statement, or in the SQL a function ran (EXECUTE).
        public var position: Int? = nil

        /// `sqlState` as PostgresNIO names it, for `switch` over `.uniqueViolation` and friends.
        public var code: PostgresError.Code { PostgresError.Code(raw: sqlState) }
    }

    /// Postgres's own error fields, looking through PostgresNIO's transaction wrapper and its legacy
    /// (EventLoopFuture) query API's error type.
    public static func serverFields(in error: any Error) -> ServerFields? {
        if let transaction = error as? PostgresTransactionError {
            for inner in [transaction.closureError, transaction.beginError, transaction.commitError] {
                if let inner, let found = serverFields(in: inner) { return found }
            }
            return nil
        }
        if case .server(let legacy) = error as? PostgresError, let state = legacy.fields[.sqlState], let message = legacy.fields[.message] {
            return ServerFields(
                sqlState: state, message: message, detail: legacy.fields[.detail], hint: legacy.fields[.hint],
                constraint: legacy.fields[.constraintName])
        }
        guard let psql = error as? PSQLError, let info = psql.serverInfo, let state = info[.sqlState], let message = info[.message] else {
            return nil
        }
        var fields = ServerFields(
            sqlState: state, message: message, detail: info[.detail], hint: info[.hint], constraint: info[.constraintName])
        fields.position = (info[.internalPosition] ?? info[.position]).flatMap { Int($0) }
        return fields
    }

    /// Maps a failure to open a connection to `unreachable` or `loginRefused`.
    public static func connecting(to location: String, username: String, error: any Error) -> DatabaseError {
        if let (state, message) = serverError(in: error) {
            // 28xxx: invalid authorization; 3D000: no such database.
            if state.hasPrefix("28") || state == "3D000" {
                return .loginRefused(location: location, username: username, reason: message)
            }
            return .statementFailed(sqlState: state, message: message)
        }
        return .unreachable(location: location, reason: describeConnectionFailure(error))
    }

    /// PSQLError's own description is deliberately generic; the transport error under it says what happened.
    private static func describeConnectionFailure(_ error: any Error) -> String {
        let text = (error as? PSQLError)?.underlying.map { String(describing: $0) } ?? String(describing: error)
        let lowered = text.lowercased()
        if lowered.contains("connection refused") || lowered.contains("connectionrefused") { return "connection refused" }
        if lowered.contains("timeout") || lowered.contains("timed out") { return "timed out" }
        if lowered.contains("no such file") { return "no server socket at that path" }
        if lowered.contains("name resolution") || lowered.contains("unknown host") || lowered.contains("getaddrinfo") {
            return "host name could not be resolved"
        }
        return text
    }
}

extension DatabaseError {
    /// Whether `error` means the database could not be reached or dropped the connection — an outage
    /// (503), not a statement the database refused and not a bug: no connection could be made, the
    /// connection closed under the request, or the server is shutting down, starting or recovering.
    public static func isConnectionFailure(_ error: any Error) -> Bool {
        if error is DatabaseUnavailable || error is PoolAcquireTimeout || error is ConnectionClosed { return true }
        if let transaction = error as? PostgresTransactionError {
            return [transaction.closureError, transaction.beginError, transaction.commitError].contains {
                $0.map(isConnectionFailure) ?? false
            }
        }
        if let fields = serverFields(in: error) {
            // 08: connection exception; 57P01–57P05: shutdown, crash, cannot connect now (recovery), idle timeouts.
            return fields.sqlState.hasPrefix("08") || (fields.sqlState.hasPrefix("57P") && fields.sqlState != "57P04")
        }
        if let psql = error as? PSQLError {
            // clientClosedConnection: closed by this side, e.g. by a request's deadline.
            return [.serverClosedConnection, .clientClosedConnection, .connectionError, .uncleanShutdown, .poolClosed].contains(psql.code)
        }
        // PostgresClient's pool reports "could not connect for too long" with a type of its internal module.
        return String(reflecting: type(of: error)).hasSuffix("ConnectionPoolError") || error is NIOConnectionError
            || error is ChannelError
    }

    /// A short reason for logs and 503 bodies.
    public static func connectionFailureReason(_ error: any Error) -> String {
        if let unavailable = error as? DatabaseUnavailable { return unavailable.reason }
        if let timeout = error as? PoolAcquireTimeout { return timeout.description }
        if let closed = error as? ConnectionClosed { return closed.description }
        if let fields = serverFields(in: error) { return fields.message }
        let text = ((error as? PSQLError)?.underlying).map { String(describing: $0) } ?? String(describing: error)
        let lowered = text.lowercased()
        if lowered.contains("refused") { return "connection refused" }
        if lowered.contains("no such file") { return "no server socket" }
        if lowered.contains("timeout") || lowered.contains("timed out") { return "timed out" }
        if let psql = error as? PSQLError { return "connection lost (\(psql.code))" }
        return String(text.prefix(120))
    }
}
