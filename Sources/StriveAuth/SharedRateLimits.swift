import Foundation
import Logging
import PostgresNIO
import StriveDatabase
import StriveIdentity

/// Auth's rate limits, counted in `auth.rate_limits` (migrations 0021, 0023) so every instance on the
/// database shares them: a client cannot multiply its allowance by reaching several instances.
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
        /// Enrolling, challenging and verifying second factors, per client IP (per minute).
        case mfa
        /// Anonymous sign-ins, per client IP (per hour).
        case anonymous
    }

    /// One allowance to count an attempt against.
    public struct Check: Sendable {
        public let category: Category
        public let key: String
        public let maximum: Int
        public let window: Duration

        public init(_ category: Category, key: String, maximum: Int, window: Duration) {
            self.category = category
            self.key = key
            self.maximum = maximum
            self.window = window
        }
    }

    let database: Database
    let logger: Logger

    /// Counts one attempt against every allowance in `checks`, in one round trip; throws
    /// `over_request_rate_limit` with the longest wait when any is exhausted.
    public func take(_ checks: [Check]) async throws {
        guard !checks.isEmpty else { return }
        let calls = checks.indices.map { index in
            "auth.take_rate_limit($1[\(index * 3 + 1)], $1[\(index * 3 + 2)]::int, $1[\(index * 3 + 3)]::int)"
        }
        let values = checks.flatMap { check in
            ["\(check.category.rawValue):\(check.key)", String(check.window.components.seconds), String(check.maximum)]
        }
        let rows = try await database.requestStatement(
            .serviceRole(method: "AUTH", path: "rate-limit"), statement: "select greatest(\(calls.joined(separator: ", ")))",
            values: values, columns: "wait int", writes: true, logger: logger)
        let wait = try rows.first?.decode(Int.self) ?? 0
        if wait > 0 { throw AuthError.rateLimited(retryAfter: wait) }
    }
}
