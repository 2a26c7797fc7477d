import Crypto
import Foundation
import StriveCore

/// Standard Webhooks signatures (standardwebhooks.com): `webhook-signature: v1,<base64 HMAC-SHA256 of
/// "<webhook-id>.<webhook-timestamp>.<body>">`, keyed with the secret's bytes (`whsec_` + base64).
public struct WebhookSigner: Sendable {
    let key: SymmetricKey

    /// `secret` is the base64 after `whsec_`, as `OutboundSettings` keeps it; nil when it does not decode.
    public init?(secret: Secret) {
        guard let bytes = Data(base64Encoded: secret.value) else { return nil }
        key = SymmetricKey(data: bytes)
    }

    public func signature(id: String, timestamp: Int, body: [UInt8]) -> String {
        var content = Data("\(id).\(timestamp).".utf8)
        content.append(contentsOf: body)
        let mac = HMAC<SHA256>.authenticationCode(for: content, using: key)
        return "v1," + Data(mac).base64EncodedString()
    }
}
