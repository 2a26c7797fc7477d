import Foundation
import PostgresNIO

extension PostgresError.Code {
    /// Raised by `app.require_active_session` when a token's session has been revoked or has expired.
    public static let sessionNotFound: PostgresError.Code = "ST401"
}
/// The database roles a request can act as. Their privileges come from the migrations.
public enum DatabaseRole: String, Sendable, CaseIterable {
    case anon
    case authenticated
    case serviceRole = "service_role"

    /// The login role of the request pool: no privileges of its own, member of the three above.
    public static let authenticatorLogin = "authenticator"
}

/// Who a request acts as inside the database: the role to switch to and the JWT claims that
/// `auth.uid()`, `auth.role()` and `auth.jwt()` read, plus the request line for policies and logs.
public struct RequestIdentity: Sendable, Equatable {
    public var role: DatabaseRole
    /// The verified JWT claims as a JSON object text.
    public var claimsJSON: String
    public var method: String
    public var path: String
    /// The auth session a user's access token belongs to: the transaction fails (SQLSTATE `ST401`) when it
    /// has been revoked or has expired.
    public var sessionID: UUID?

    public init(role: DatabaseRole, claimsJSON: String, method: String = "", path: String = "", sessionID: UUID? = nil) {
        self.role = role
        self.claimsJSON = claimsJSON
        self.method = method
        self.path = path
        self.sessionID = sessionID
    }

    /// SQLSTATE raised when `sessionID` names no active session.
    public static let sessionNotFoundState = PostgresError.Code.sessionNotFound.raw

    /// The identity of server-side work that must bypass row-level security. Only code paths named
    /// for it (admin endpoints, seeding, the realtime authoriser) use it.
    public static func serviceRole(method: String = "", path: String = "") -> RequestIdentity {
        RequestIdentity(role: .serviceRole, claimsJSON: #"{"role":"service_role"}"#, method: method, path: path)
    }
}
