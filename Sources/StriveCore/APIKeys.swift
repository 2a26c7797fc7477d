import Foundation
import JWTKit

/// The two project API keys: long-lived JWTs signed with the project's JWT secret whose `role` claim
/// selects the database role, as Supabase's anon and service_role keys do.
public struct APIKeys: Sendable {
    public enum Role: String, Sendable, Codable {
        case anon
        case serviceRole = "service_role"
    }

    public let anon: String
    public let serviceRole: Secret

    public init(anon: String, serviceRole: Secret) {
        self.anon = anon
        self.serviceRole = serviceRole
    }

    struct Payload: JWTPayload {
        var iss: IssuerClaim
        var role: Role
        var iat: IssuedAtClaim
        var exp: ExpirationClaim

        func verify(using algorithm: some JWTAlgorithm) async throws {
            try exp.verifyNotExpired()
        }
    }

    /// Fixed claims make the derived keys stable: the same secret always yields the same keys,
    /// so a development server prints the same keys on every start.
    static let issuedAt = Date(timeIntervalSince1970: 1_767_225_600) // 2026-01-01
    static let expiresAt = Date(timeIntervalSince1970: 4_102_444_800) // 2100-01-01

    /// The key for `role`, signed with `secret` (HS256). The secret must already satisfy `SecretStrength`.
    public static func derive(role: Role, secret: Secret) async throws -> String {
        let keys = try await collection(for: secret)
        let payload = Payload(
            iss: "strive", role: role, iat: .init(value: issuedAt), exp: .init(value: expiresAt)
        )
        return try await keys.sign(payload)
    }

    /// The role a key grants when it is a valid, unexpired key signed with `secret`; nil otherwise.
    public static func role(of key: String, secret: Secret) async -> Role? {
        guard let keys = try? await collection(for: secret) else { return nil }
        return try? await keys.verify(key, as: Payload.self).role
    }

    private static func collection(for secret: Secret) async throws -> JWTKeyCollection {
        // jwt-kit traps on short HMAC keys in debug builds; refuse them as a normal error instead.
        guard secret.value.utf8.count >= SecretStrength.minimumLength else {
            throw ConfigurationError(problems: [
                .init(variable: "STRIVE_JWT_SECRET", rule: "must be at least \(SecretStrength.minimumLength) characters")
            ])
        }
        // Sorted keys: the header is a dictionary, whose order otherwise varies between two encodings in
        // one process, so the same secret would not always print the same keys.
        let encoder = JSONEncoder()
        encoder.dateEncodingStrategy = .secondsSince1970
        encoder.outputFormatting = .sortedKeys
        let keys = JWTKeyCollection()
        await keys.add(hmac: HMACKey(from: secret.value), digestAlgorithm: .sha256, serializer: DefaultJWTSerializer(jsonEncoder: encoder))
        return keys
    }
}
