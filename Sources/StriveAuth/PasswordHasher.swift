import HummingbirdBcrypt
import NIOPosix

/// bcrypt, always off the event loops. A missing account is checked against a stand-in hash of the
/// same cost, so "no such user" takes as long as "wrong password".
public struct PasswordHasher: Sendable {
    public static let minimumLength = 8
    /// bcrypt reads at most 72 bytes; longer passwords would be silently truncated.
    public static let maximumBytes = 72

    public let cost: Int
    private let standIn: String

    public init(cost: Int) async throws {
        self.cost = cost
        let cost = UInt8(clamping: cost)
        standIn = try await NIOThreadPool.singleton.runIfActive { Bcrypt.hash("strive stand-in password", cost: cost) }
    }

    /// The rule a new password must meet, as the error Supabase Auth answers.
    public static func check(_ password: String) throws(AuthError) {
        if password.count < minimumLength { throw .weakPassword(minimumLength: minimumLength) }
        if password.utf8.count > maximumBytes {
            throw .validation("Password must be at most \(maximumBytes) bytes")
        }
    }

    public func hash(_ password: String) async throws -> String {
        let cost = UInt8(clamping: cost)
        return try await NIOThreadPool.singleton.runIfActive { Bcrypt.hash(password, cost: cost) }
    }

    /// False for a nil hash too, after the same work as a real comparison.
    public func verify(_ password: String, against hash: String?) async throws -> Bool {
        let target = hash ?? standIn
        let matches = try await NIOThreadPool.singleton.runIfActive { Bcrypt.verify(password, hash: target) }
        return matches && hash != nil
    }
}
