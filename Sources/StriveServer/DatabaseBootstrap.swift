import Logging
import PostgresNIO
import StriveCore
import StriveDatabase

/// Start-up work that needs the schema owner: migrating and enabling the authenticator login.
public enum DatabaseBootstrap {
    /// Opens one owner connection (failing fast when the server is unreachable), runs `body`, closes it.
    public static func withOwnerConnection<T: Sendable>(
        _ target: DatabaseTarget,
        logger: Logger,
        _ body: (PostgresConnection) async throws(StartupError) -> T
    ) async throws(StartupError) -> T {
        let connection: PostgresConnection
        do {
            let configuration = try target.connectionConfiguration(as: target.owner)
            connection = try await PostgresConnection.connect(configuration: configuration, id: 0, logger: logger)
        } catch {
            throw .database(.connecting(to: target.displayLocation, username: target.owner.username, error: error))
        }
        do {
            let result = try await body(connection)
            try? await connection.close()
            return result
        } catch {
            try? await connection.close()
            throw error
        }
    }

    /// Applies pending migrations, then gives `authenticator` the password the request pool uses.
    public static func prepare(
        _ target: DatabaseTarget,
        migrator: Migrator,
        authenticator: DatabaseCredentials,
        logger: Logger
    ) async throws(StartupError) {
        try await withOwnerConnection(target, logger: logger) { connection throws(StartupError) in
            let applied: [String]
            do throws(MigrationError) {
                applied = try await migrator.migrate(on: connection, logger: logger)
            } catch {
                throw .migration(error)
            }
            logger.info("database schema is current", metadata: ["applied_now": "\(applied.count)"])
            try await enableLogin(authenticator, on: connection, logger: logger)
        }
    }

    /// Gives one of Strive's own logins (the request pool's `authenticator`, or a `ServerLogin`) LOGIN and
    /// its derived password. The password is hex derived from the JWT secret, so it can be spelled as a
    /// literal safely (ALTER ROLE takes no bind parameters); anything else is refused rather than spliced.
    public static func enableLogin(_ credentials: DatabaseCredentials, on connection: PostgresConnection, logger: Logger)
        async throws(StartupError)
    {
        let logins = [DatabaseRole.authenticatorLogin] + ServerLogin.allCases.map(\.rawValue)
        guard let password = credentials.password?.value, !password.isEmpty, password.allSatisfy(\.isHexDigit),
            logins.contains(credentials.username)
        else {
            throw .server("refusing to set a password that Strive did not derive, or for a role that is not its own login")
        }
        do {
            // Instances starting together set the same password: one after the other (two ALTER ROLEs of one
            // role at once fail with "tuple concurrently updated").
            try await connection.inTransaction(logger: logger) { connection in
                try await connection.run(
                    "select pg_advisory_xact_lock(hashtext('strive login ' || \(credentials.username)))", logger: logger)
                try await connection.run(
                    PostgresQuery(unsafeSQL: "alter role \(credentials.username) with login password '\(password)'"), logger: logger)
            }
        } catch {
            let message = DatabaseError.serverError(in: error)?.message ?? "\(error)"
            throw .database(
                .statementFailed(sqlState: nil, message: "cannot enable the \(credentials.username) login: \(message)"))
        }
    }
}
