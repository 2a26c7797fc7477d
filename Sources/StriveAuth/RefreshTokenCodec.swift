import Crypto
import Foundation
import StriveCore
import StriveIdentity

/// Refresh tokens are opaque random strings; the database keeps only their SHA-256. A rotated token's
/// successor is an HMAC of it, so when the same token is presented twice within the reuse interval
/// (two tabs refreshing at once) the server can hand out the same successor again without storing
/// any token in the clear.
public struct RefreshTokenCodec: Sendable {
    private let successorKey: SymmetricKey

    public init(secret: Secret) {
        successorKey = SymmetricKey(data: SHA256.hash(data: Data("strive refresh-token successor|\(secret.value)".utf8)))
    }

    public func random() -> String {
        var generator = SystemRandomNumberGenerator()
        let bytes = (0..<32).map { _ in UInt8.random(in: .min ... .max, using: &generator) }
        return Data(bytes).base64URLEncodedString
    }

    public func successor(of token: String) -> String {
        Data(HMAC<SHA256>.authenticationCode(for: Data(token.utf8), using: successorKey)).base64URLEncodedString
    }

    public static func hash(_ token: String) -> String {
        SHA256.hash(data: Data(token.utf8)).map { String(format: "%02x", $0) }.joined()
    }
}
