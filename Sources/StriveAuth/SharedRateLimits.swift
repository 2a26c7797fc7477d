import Foundation
import Logging
import PostgresNIO
import StriveDatabase
import StriveIdentity

/// Auth's rate limits, counted in `auth.rate_limits` (migration 0021) so every instance on the database
/// shares them: a client cannot multiply its allowance by reaching several instances.
public struct SharedRateLimits: Sendable {
    public enum Category: String, Sendable {
        /// Sign-in and sign-up, per client IP.
        case signIn = "sign_in"
        case tokenRefresh = "token_refresh"
        case verify
        /// Recovery, magic-link and resend requests, per client IP.
        case mail
        /// Anything per email address.
        case address
    }

    let database: Database
    let logger: Logger

    /// Counts one attempt; throws `over_request_rate_limit` with the seconds to wait when over `maximum`.
    public func take(_ category: Category, key: String, maximum: Int, window: Duration) async throws {
        let bucket = "\(category.rawValue):\(key)"
        let seconds = Int(window.components.seconds)
        let wait = try await database.withServiceRoleTransaction(method: "AUTH", path: "rate-limit", logger: logger) { connection in
            try await connection.rows("select auth.take_rate_limit(\(bucket), \(seconds)::int, \(maximum)::int)", logger: logger).first?
                .decode(Int.self) ?? 0
        }
        if wait > 0 { throw AuthError.rateLimited(retryAfter: wait) }
    }
}
