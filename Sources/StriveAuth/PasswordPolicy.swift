import StriveCore
import StriveIdentity

/// GoTrue's rules for a new password: a least length and, optionally, character sets it must each draw
/// from. A refusal names every broken rule, as GoTrue's `weak_password` does.
public struct PasswordPolicy: Sendable, Equatable {
    /// In characters (Unicode scalars, as JSON Schema's `minLength` counts them).
    public let minimumLength: Int
    public let requiredCharacters: [String]
    /// Longer passwords are hashed first (see `PasswordHasher`); this bounds the work, not the strength.
    public static let maximumLength = 72

    public init(minimumLength: Int, requiredCharacters: [String] = []) {
        self.minimumLength = minimumLength
        self.requiredCharacters = requiredCharacters
    }

    public init(_ settings: AuthSettings) {
        self.init(minimumLength: settings.passwordMinLength, requiredCharacters: settings.passwordRequiredCharacters)
    }

    public func check(_ password: String) throws(AuthError) {
        let length = password.unicodeScalars.count
        if length > Self.maximumLength { throw .validation("Password cannot be longer than \(Self.maximumLength) characters") }
        var reasons: [String] = []
        var sentences: [String] = []
        if length < minimumLength {
            reasons.append("length")
            sentences.append("Password should be at least \(minimumLength) characters.")
        }
        if requiredCharacters.contains(where: { set in !password.contains(where: { set.contains($0) }) }) {
            reasons.append("characters")
            sentences.append("Password should contain at least one character of each: \(requiredCharacters.joined(separator: ", ")).")
        }
        if !reasons.isEmpty { throw .weakPassword(message: sentences.joined(separator: " "), reasons: reasons) }
    }
}
