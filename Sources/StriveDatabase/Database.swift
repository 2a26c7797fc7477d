import Logging
import PostgresNIO
import ServiceLifecycle
import StriveCore
import StriveMetrics

/// The server's two ways into Postgres: the request pool, which logs in as `authenticator` and switches
/// to the caller's role inside every transaction, and a small admin pool that logs in as the owner for
/// maintenance (readiness, migrations status). Run it as a service; both pools and the availability
/// monitor stop with it.
///
/// While the database is unreachable, every path in fails at once with `DatabaseUnavailable` (the
/// monitor or the cluster supervisor says so within a quarter second of a refused connection), and no
/// request waits for a connection longer than `acquireTimeout`; connection failures surface as
/// `DatabaseUnavailable` too, so callers answer 503.
public final class Database: Service, Sendable {
    public let target: DatabaseTarget
    public let availability: DatabaseAvailability
    private let acquireTimeout: Duration
    /// Longest a request transaction may hold its connection: the statement timeout, plus a margin for
    /// the round trips around it.
    private let requestDeadline: Duration
    private let requestPool: PostgresClient
    private let adminPool: PostgresClient
    private let authenticator: DatabaseCredentials
    private let logger: Logger
    /// Milliseconds, as text for `set_config`: every request statement is cancelled after this long.
    private let statementTimeout: String

    public init(
        target: DatabaseTarget,
        authenticator: DatabaseCredentials,
        requestPoolSize: Int,
        statementTimeout: Duration,
        acquireTimeout: Duration,
        deadlineMargin: Duration = .seconds(2),
        logger: Logger
    ) throws {
        self.target = target
        self.availability = DatabaseAvailability()
        self.acquireTimeout = acquireTimeout
        self.requestDeadline = statementTimeout + deadlineMargin
        self.logger = logger
        self.authenticator = authenticator
        let milliseconds = statementTimeout.components.seconds * 1000 + statementTimeout.components.attoseconds / 1_000_000_000_000_000
        self.statementTimeout = String(max(1, milliseconds))
        var requestConfiguration = try target.clientConfiguration(as: authenticator)
        requestConfiguration.options.maximumConnections = requestPoolSize
        // For the session, not per transaction: a single-statement request has no statement before its
        // own to set it in.
        requestConfiguration.options.additionalStartupParameters.append(("statement_timeout", self.statementTimeout))
        var adminConfiguration = try target.clientConfiguration(as: target.owner)
        adminConfiguration.options.maximumConnections = 2
        // Connection ids restart at 0 in every pool: the purpose tells their log lines apart.
        requestPool = PostgresClient(configuration: requestConfiguration, backgroundLogger: logger.with(connectionPurpose: "request"))
        adminPool = PostgresClient(configuration: adminConfiguration, backgroundLogger: logger.with(connectionPurpose: "admin"))
    }

    public func run() async throws {
        let monitor = DatabaseMonitor(
            target: target, credentials: authenticator, availability: availability, logger: logger.with(connectionPurpose: "monitor"))
        await withDiscardingTaskGroup { group in
            group.addTask { await self.requestPool.run() }
            group.addTask { await self.adminPool.run() }
            group.addTask { await monitor.run() }
        }
    }

    /// Runs `body` in a transaction as `identity`: one statement switches the role and sets the claims,
    /// method and path transaction-locally, so they vanish at COMMIT or ROLLBACK and can never reach
    /// the next user of the pooled connection. Row-level security applies to everything `body` does.
    ///
    /// `readOnly` makes any write inside fail (SQLSTATE 25006); `rollback` ends the transaction with
    /// ROLLBACK even when `body` succeeds (PostgREST's `Prefer: tx=rollback`).
    public func withRequestTransaction<Result: Sendable>(
        _ identity: RequestIdentity,
        readOnly: Bool = false,
        rollback: Bool = false,
        logger: Logger? = nil,
        _ body: (PostgresConnection) async throws -> Result
    ) async throws -> Result {
        let logger = logger ?? self.logger
        return try await withRequestConnection { connection in
            try await connection.inTransaction(logger: logger, commit: !rollback) { connection in
                try await connection.run(Self.contextStatement(identity, statementTimeout: statementTimeout), logger: logger)
                if readOnly { try await connection.run("set transaction read only", logger: logger) }
                return try await body(connection)
            }
        }
    }

    /// Runs one statement as `identity` in one round trip and returns its rows: the role, claims and
    /// session check travel with it (`app.run_request`, migration 0010), and the statement's implicit
    /// transaction ends with it, so nothing of the identity outlives it. `statement` reads its values as
    /// `$1[n]` from `values`; `columns` is its result's column definition list (`body text, total int`),
    /// which a function returning records needs. Row-level security applies as in
    /// `withRequestTransaction`.
    public func requestStatement(
        _ identity: RequestIdentity, statement: String, values: [String], columns: String, writes: Bool, logger: Logger? = nil
    ) async throws -> [PostgresRow] {
        let logger = logger ?? self.logger
        return try await withRequestConnection { connection in
            let rows = try await connection.rows(
                """
                select * from app.run_request(\(identity.role.rawValue), \(identity.claimsJSON), \(identity.method), \(identity.path),
                    \(identity.sessionID), \(statement), \(values)) as "r"(\(unescaped: columns))
                """, logger: logger)
            if writes { try await Self.confirmCommitted(connection, logger: logger) }
            return rows
        }
    }

    /// Runs writes as `identity` in one round trip (`app.run_request_write`) and returns how many rows they
    /// changed, counted without RETURNING. All of them or none.
    public func requestWrite(_ identity: RequestIdentity, statements: [String], values: [String], logger: Logger? = nil) async throws -> Int
    {
        let logger = logger ?? self.logger
        return try await withRequestConnection { connection in
            let rows = try await connection.rows(
                """
                select app.run_request_write(\(identity.role.rawValue), \(identity.claimsJSON), \(identity.method), \(identity.path),
                    \(identity.sessionID), \(statements), \(values))
                """, logger: logger)
            try await Self.confirmCommitted(connection, logger: logger)
            return try rows.first?.decode(Int.self) ?? 0
        }
    }

    /// Waits until a single statement's implicit transaction has committed.
    ///
    /// PostgresNIO 1.33.2 reports a statement's success at its CommandComplete, but PostgreSQL commits a
    /// single statement's transaction only afterwards, when it processes the Sync: an error at commit (a
    /// deferred constraint or trigger, the server shutting down between the two) then closes the connection
    /// instead of failing the statement. A write would be acknowledged that was never stored (seen under
    /// `pg_ctl stop -m immediate`). The connection answers the next statement only after the previous one's
    /// ReadyForQuery, and fails it if the commit failed: one more round trip, for writes only.
    private static func confirmCommitted(_ connection: PostgresConnection, logger: Logger) async throws {
        try await connection.run("select 1", logger: logger)
    }

    /// A request-pool connection for one request, bounded on this side too: a connection the server
    /// dropped without a word (seen after pg_terminate_backend and with backends orphaned by a dead
    /// postmaster) would otherwise hold the request, and the shutdown that waits for it, forever. Closing
    /// the socket at the deadline fails the statement.
    private func withRequestConnection<Result>(_ body: (PostgresConnection) async throws -> Result) async throws -> Result {
        try await leased(requestPool, .request) { connection in
            let watchdog = connection.eventLoop.scheduleTask(in: TimeAmount(requestDeadline)) { connection.closeNow() }
            defer { watchdog.cancel() }
            return try await body(connection)
        }
    }

    /// A connection of `pool` for `body`: refused at once while the database is known to be down,
    /// bounded by the acquire timeout, with a lost connection reported as `DatabaseUnavailable`.
    private func leased<Result>(
        _ pool: PostgresClient, _ kind: StriveMetrics.Pool, _ body: (PostgresConnection) async throws -> Result
    ) async throws -> Result {
        try availability.check()
        let requested = ContinuousClock.now
        do {
            let measured: (PostgresConnection) async throws -> Result = { connection in
                StriveMetrics.connectionAcquired(kind, wait: .now - requested)
                defer { StriveMetrics.connectionReleased(kind) }
                return try await body(connection)
            }
            return try await pool.withConnection(
                acquireTimeout: acquireTimeout, giveUpWhen: { !self.availability.isAvailable }, measured)
        } catch {
            guard DatabaseError.isConnectionFailure(error) else { throw error }
            if error is DatabaseUnavailable { throw error }
            throw DatabaseUnavailable(reason: DatabaseError.connectionFailureReason(error))
        }
    }

    /// Runs `body` as `service_role`, which bypasses row-level security. For admin and service paths only:
    /// the name at the call site is the audit trail.
    public func withServiceRoleTransaction<Result: Sendable>(
        method: String = "",
        path: String = "",
        logger: Logger? = nil,
        _ body: (PostgresConnection) async throws -> Result
    ) async throws -> Result {
        try await withRequestTransaction(.serviceRole(method: method, path: path), logger: logger, body)
    }

    /// Runs `body` on a connection logged in as the schema owner. Maintenance only (readiness checks,
    /// migrations status); request handling never comes here.
    public func withAdminConnection<Result: Sendable>(
        _ body: (PostgresConnection) async throws -> Result
    ) async throws -> Result {
        try await leased(adminPool, .admin) { connection in try await body(connection) }
    }

    /// Runs a scheduled job's `body` in a transaction as `identity` (its role and claims, as for a request),
    /// on a connection of its own so a long job holds no pooled connection, cancelled after `timeout`.
    /// With `identity` nil the job is the schema owner's (scheduled by the owner, e.g. from psql): its
    /// connection logs in as the owner, the one path where a job runs with the owner's rights.
    public func withJobTransaction<Result: Sendable>(
        _ identity: RequestIdentity?, timeout: Duration, logger: Logger? = nil, _ body: (PostgresConnection) async throws -> Result
    ) async throws -> Result {
        let logger = logger ?? self.logger
        let milliseconds = String(max(1, timeout.components.seconds * 1000 + timeout.components.attoseconds / 1_000_000_000_000_000))
        try availability.check()
        return try await target.withConnection(
            as: identity == nil ? target.owner : authenticator, logger: logger.with(connectionPurpose: "job")
        ) { connection in
            try await connection.inTransaction(logger: logger) { connection in
                if let identity {
                    try await connection.run(Self.contextStatement(identity, statementTimeout: milliseconds), logger: logger)
                } else {
                    try await connection.run("select set_config('statement_timeout', \(milliseconds), true)", logger: logger)
                }
                return try await body(connection)
            }
        }
    }

    /// A connection of its own, outside the pools, as `authenticator`: for LISTEN, which must not hold a
    /// pooled connection for as long as it listens. Closed when `body` returns or throws.
    public func withDedicatedConnection<Result: Sendable>(
        _ body: (PostgresConnection) async throws -> Result
    ) async throws -> Result {
        try await target.withConnection(as: authenticator, logger: logger.with(connectionPurpose: "dedicated"), body)
    }

    /// A lease of the request pool outside any transaction: the session state the next request inherits.
    /// For tests that prove nothing leaks between requests.
    func withRequestPoolConnection<Result: Sendable>(
        _ body: (PostgresConnection) async throws -> Result
    ) async throws -> Result {
        try await requestPool.withConnection { connection in try await body(connection) }
    }

    /// A user's token is only as good as its session: a revoked one fails here (SQLSTATE ST401), in the
    /// same round trip, so every surface refuses it without a query of its own. (CASE keeps the check
    /// from running for keys, which carry no session.)
    static func contextStatement(_ identity: RequestIdentity, statementTimeout: String) -> PostgresQuery {
        """
        select set_config('role', \(identity.role.rawValue), true),
               set_config('statement_timeout', \(statementTimeout), true),
               set_config('request.jwt.claims', \(identity.claimsJSON), true),
               set_config('request.method', \(identity.method), true),
               set_config('request.path', \(identity.path), true),
               case when \(identity.sessionID)::uuid is null then true
                    else app.require_active_session(\(identity.sessionID)) end
        """
    }
}

extension Logger {
    /// This logger, tagging the lines of a database connection with what the connection is for.
    func with(connectionPurpose purpose: String) -> Logger {
        var logger = self
        logger[metadataKey: "db_connection"] = "\(purpose)"
        return logger
    }
}

extension Database {
    /// Whether the user `identity` stands for is a platform admin (`app.is_admin()`: platform role ADMIN or
    /// MODERATOR), asked under that identity itself, so the answer is the database's, not the token's.
    public func isPlatformAdmin(_ identity: RequestIdentity, logger: Logger? = nil) async throws -> Bool {
        guard identity.role == .authenticated else { return false }
        return try await withRequestTransaction(identity, logger: logger) { connection in
            try await connection.rows("select coalesce(app.is_admin(), false)", logger: logger ?? self.logger).first?.decode(Bool.self)
                ?? false
        }
    }
}
