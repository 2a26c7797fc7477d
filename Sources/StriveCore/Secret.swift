import Foundation

/// A string that must never reach a log line, an error message or `print`.
public struct Secret: Sendable, Equatable, CustomStringConvertible, CustomDebugStringConvertible {
    public let value: String

    public init(_ value: String) {
        self.value = value
    }

    public var description: String { "<redacted>" }
    public var debugDescription: String { "<redacted>" }
}

/// Rules for secrets that sign tokens: long enough and not a value published in some example.
public enum SecretStrength {
    public static let minimumLength = 32
    /// A random secret of 32+ characters has far more distinct characters than this.
    static let minimumDistinctCharacters = 10

    /// Defaults that circulate in docs and templates; anyone can forge tokens signed with them.
    static let publishedDefaults: Set<String> = [
        "super-secret-jwt-token-with-at-least-32-characters-long",
        "your-super-secret-jwt-token-with-at-least-32-characters-long",
        "changeme-changeme-changeme-changeme",
        "0123456789abcdef0123456789abcdef",
    ]

    /// The rule a secret breaks, or nil when it is acceptable.
    public static func weakness(of secret: String) -> String? {
        if secret.count < minimumLength {
            return "must be at least \(minimumLength) characters"
        }
        if publishedDefaults.contains(secret.lowercased()) {
            return "must not be a published example value"
        }
        if Set(secret).count < minimumDistinctCharacters {
            return "must be random (at least \(minimumDistinctCharacters) distinct characters)"
        }
        return nil
    }

    /// 48 random bytes, base64url-encoded: 64 characters, well over the minimum.
    public static func generate() -> String {
        var generator = SystemRandomNumberGenerator()
        let bytes = (0..<48).map { _ in UInt8.random(in: .min ... .max, using: &generator) }
        return Base64URL.encode(bytes)
    }
}

enum Base64URL {
    static func encode(_ bytes: [UInt8]) -> String {
        var text = Data(bytes).base64EncodedString()
        text = text.replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_")
        while text.hasSuffix("=") { text.removeLast() }
        return text
    }
}
