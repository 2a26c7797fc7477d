import Crypto
import CryptoExtras
import Foundation
import JWTKit
import Logging
import PostgresNIO
import StriveCore
import StriveDatabase

/// An asymmetric signing key as `auth.signing_keys` keeps it.
public struct SigningKey: Sendable, Equatable {
    public enum Algorithm: String, Sendable, CaseIterable {
        case es256 = "ES256"
        case rs256 = "RS256"
    }

    public enum Status: String, Sendable {
        /// Signs new tokens (at most one key).
        case current
        /// Replaced by a newer key; still verifies the tokens it signed.
        case previous
        /// Neither signs nor verifies.
        case revoked
    }

    public let kid: String
    public let algorithm: Algorithm
    public let status: Status
    /// The public half as a JWK (`kty`, `kid`, `alg`, `use`, `key_ops` and `crv`/`x`/`y` or `n`/`e`).
    public let publicJWK: JSONValue
    public let createdAt: Date
    /// PEM; nil when listed without it.
    let privatePEM: String?
}

/// Why a key was not revoked.
public enum RevokeOutcome: Sendable, Equatable {
    case revoked
    case notFound
    /// The key signs today's tokens: rotate to a new one first.
    case isCurrent
}

/// `auth.signing_keys` through the service role: generating, rotating, revoking, and loading the keys
/// that verify. Private keys are sealed with AES-GCM under a key derived from the JWT secret.
public struct SigningKeyStore: Sendable {
    /// How the table is reached: a running server's pool (as the service role), or the owner connection
    /// of a `strive keys` command.
    enum Access: Sendable {
        case pool(Database)
        case connection(PostgresConnection)
    }

    let access: Access
    let sealingKey: SymmetricKey
    let logger: Logger

    public init(database: Database, secret: Secret, logger: Logger) {
        self.init(access: .pool(database), secret: secret, logger: logger)
    }

    public init(connection: PostgresConnection, secret: Secret, logger: Logger) {
        self.init(access: .connection(connection), secret: secret, logger: logger)
    }

    init(access: Access, secret: Secret, logger: Logger) {
        self.access = access
        sealingKey = SymmetricKey(data: SHA256.hash(data: Data("strive signing-keys|\(secret.value)".utf8)))
        self.logger = logger
    }

    /// Every key that is not revoked, with its private half.
    public func usable() async throws -> [SigningKey] {
        try await keys(where: "status <> 'revoked'", withPrivate: true)
    }

    /// Every key, newest first, without private halves.
    public func list() async throws -> [SigningKey] {
        try await keys(where: "true", withPrivate: false)
    }

    /// Makes a new key the current one; the current key becomes `previous` and keeps verifying.
    @discardableResult
    public func rotate(to algorithm: SigningKey.Algorithm) async throws -> SigningKey {
        let kid = UUID().uuidString.lowercased()
        let (pem, jwk) = try Self.generate(algorithm, kid: kid)
        // `combined` is nil only for a nonce of another size than the default this uses; never store an empty box.
        guard let sealed = try AES.GCM.seal(Data(pem.utf8), using: sealingKey).combined else {
            throw JWTError.generic(identifier: "SigningKey", reason: "the sealed key has no combined form")
        }
        try await service { connection in
            try await connection.run(
                "update auth.signing_keys set status = 'previous', retired_at = now() where status = 'current'", logger: logger)
            try await connection.run(
                """
                insert into auth.signing_keys (id, algorithm, status, private_key, public_jwk)
                values (\(kid), \(algorithm.rawValue), 'current', \(ByteBuffer(bytes: sealed)), \(jwk.jsonText)::jsonb)
                """, logger: logger)
        }
        return SigningKey(kid: kid, algorithm: algorithm, status: .current, publicJWK: jwk, createdAt: Date(), privatePEM: pem)
    }

    public func revoke(kid: String) async throws -> RevokeOutcome {
        try await service { connection in
            let status = try await connection.rows("select status from auth.signing_keys where id = \(kid) for update", logger: logger)
                .first?.decode(String.self)
            switch status {
            case nil: return .notFound
            case "current": return .isCurrent
            default:
                try await connection.run(
                    "update auth.signing_keys set status = 'revoked', revoked_at = coalesce(revoked_at, now()) where id = \(kid)",
                    logger: logger)
                return .revoked
            }
        }
    }

    private func keys(where condition: String, withPrivate: Bool) async throws -> [SigningKey] {
        let rows = try await service { connection in
            try await connection.rows(
                PostgresQuery(
                    unsafeSQL: """
                        select id, algorithm, status, public_jwk::text, created_at, private_key from auth.signing_keys
                        where \(condition) order by created_at desc
                        """), logger: logger)
        }
        return try rows.compactMap { row in
            let (kid, algorithm, status, jwk, created, sealed) = try row.decode((String, String, String, String, Date, ByteBuffer).self)
            guard let algorithm = SigningKey.Algorithm(rawValue: algorithm), let status = SigningKey.Status(rawValue: status) else {
                return nil
            }
            var pem: String?
            if withPrivate {
                do {
                    let box = try AES.GCM.SealedBox(combined: Data(buffer: sealed))
                    pem = String(decoding: try AES.GCM.open(box, using: sealingKey), as: UTF8.self)
                } catch {
                    // Sealed under another JWT secret: it cannot sign here, and says so once per load.
                    logger.error("a signing key cannot be opened with this JWT secret; it is skipped", metadata: ["kid": "\(kid)"])
                    return nil
                }
            }
            return SigningKey(
                kid: kid, algorithm: algorithm, status: status, publicJWK: JSONValue(jsonText: jwk) ?? .object([:]), createdAt: created,
                privatePEM: pem)
        }
    }

    private func service<T: Sendable>(_ body: (PostgresConnection) async throws -> T) async throws -> T {
        switch access {
        case .pool(let database):
            return try await database.withServiceRoleTransaction(method: "AUTH", path: "signing-keys", logger: logger, body)
        case .connection(let connection):
            try await connection.run("begin", logger: logger)
            do {
                let result = try await body(connection)
                try await connection.run("commit", logger: logger)
                return result
            } catch {
                try? await connection.run("rollback", logger: logger)
                throw error
            }
        }
    }

    /// A fresh key pair: the private half as PEM, the public half as a JWK.
    static func generate(_ algorithm: SigningKey.Algorithm, kid: String) throws -> (pem: String, jwk: JSONValue) {
        var jwk: [String: JSONValue] = [
            "kid": .string(kid), "alg": .string(algorithm.rawValue), "use": "sig", "key_ops": ["verify"],
        ]
        switch algorithm {
        case .es256:
            let key = ES256PrivateKey()
            guard let (x, y) = key.parameters else { throw JWTError.generic(identifier: "ES256", reason: "no public parameters") }
            jwk["kty"] = "EC"
            jwk["crv"] = "P-256"
            jwk["x"] = .string(x)
            jwk["y"] = .string(y)
            return (key.pemRepresentation, .object(jwk))
        case .rs256:
            let backing = try _RSA.Signing.PrivateKey(keySize: .bits2048)
            let key = try Insecure.RSA.PrivateKey(backing: backing)
            let (modulus, exponent) = try Insecure.RSA.PublicKey(backing: backing.publicKey).getKeyPrimitives()
            jwk["kty"] = "RSA"
            jwk["n"] = .string(modulus.base64URLEncodedString)
            jwk["e"] = .string(exponent.base64URLEncodedString)
            return (key.pemRepresentation, .object(jwk))
        }
    }
}
