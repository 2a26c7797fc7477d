import Crypto
import Foundation
import HummingbirdBcrypt
import NIOPosix
import StriveIdentity

/// bcrypt, always off the event loops. A missing account is checked against a stand-in hash of the
/// same cost, so "no such user" takes as long as "wrong password".
public struct PasswordHasher: Sendable {
    /// bcrypt reads at most 72 bytes and would silently drop the rest: a longer password (72 characters
    /// can be 288 bytes) is hashed with SHA-256 first, so every one of its characters counts.
    static let bcryptBytes = 72

    public let cost: Int
    private let standIn: String

    public init(cost: Int) async throws {
        self.cost = cost
        let cost = UInt8(clamping: cost)
        standIn = try await NIOThreadPool.singleton.runIfActive { Bcrypt.hash("strive stand-in password", cost: cost) }
    }

    /// What bcrypt is given for `password`.
    static func bcryptInput(_ password: String) -> String {
        guard password.utf8.count > bcryptBytes else { return password }
        return "sha256:" + Data(SHA256.hash(data: Data(password.utf8))).base64EncodedString()
    }

    public func hash(_ password: String) async throws -> String {
        let cost = UInt8(clamping: cost)
        let input = Self.bcryptInput(password)
        return try await NIOThreadPool.singleton.runIfActive { Bcrypt.hash(input, cost: cost) }
    }

    /// False for a nil hash too, after the same work as a real comparison.
    public func verify(_ password: String, against hash: String?) async throws -> Bool {
        let target = hash ?? standIn
        let input = Self.bcryptInput(password)
        let matches = try await NIOThreadPool.singleton.runIfActive { Bcrypt.verify(input, hash: target) }
        return matches && hash != nil
    }
}
