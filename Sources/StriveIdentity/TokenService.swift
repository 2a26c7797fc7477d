import Foundation
import JWTKit
import NIOConcurrencyHelpers
import StriveCore

/// The claims of every JWT Strive accepts: user access tokens (Supabase Auth's claim set) and the
/// project's API keys (only `role`, `iss`, `iat`, `exp`). `exp` is optional, as PostgREST and GoTrue read
/// it: a token that carries none does not expire (its signature and role still decide).
public struct AccessClaims: JWTPayload, Equatable {
    public var sub: String?
    public var aud: String?
    public var role: String
    public var email: String?
    public var phone: String?
    public var exp: Int?
    public var iat: Int?
    public var iss: String?
    public var session_id: String?
    public var aal: String?
    public var amr: [AuthenticationMethod]?
    public var app_metadata: JSONValue?
    public var user_metadata: JSONValue?
    public var is_anonymous: Bool?

    public struct AuthenticationMethod: Codable, Sendable, Equatable {
        public var method: String
        public var timestamp: Int

        public init(method: String, timestamp: Int) {
            self.method = method
            self.timestamp = timestamp
        }
    }

    public init(
        sub: String? = nil, aud: String? = nil, role: String, email: String? = nil, phone: String? = nil, exp: Int?,
        iat: Int? = nil, iss: String? = nil, session_id: String? = nil, aal: String? = nil,
        amr: [AuthenticationMethod]? = nil, app_metadata: JSONValue? = nil, user_metadata: JSONValue? = nil,
        is_anonymous: Bool? = nil
    ) {
        self.sub = sub
        self.aud = aud
        self.role = role
        self.email = email
        self.phone = phone
        self.exp = exp
        self.iat = iat
        self.iss = iss
        self.session_id = session_id
        self.aal = aal
        self.amr = amr
        self.app_metadata = app_metadata
        self.user_metadata = user_metadata
        self.is_anonymous = is_anonymous
    }

    public func verify(using algorithm: some JWTAlgorithm) async throws {
        // Dates are integer seconds since 1970, as every Supabase client and PostgREST read them.
        guard let exp else { return }
        guard Date(timeIntervalSince1970: TimeInterval(exp)) > Date() else {
            throw JWTError.claimVerificationFailure(
                failedClaim: ExpirationClaim(value: Date(timeIntervalSince1970: TimeInterval(exp))), reason: "expired")
        }
    }
}

/// Claims as a hook shaped them; only ever signed here (verification reads `AccessClaims`).
struct FreeformClaims: JWTPayload {
    let claims: [String: JSONValue]

    init(claims: [String: JSONValue]) {
        self.claims = claims
    }

    init(from decoder: any Decoder) throws {
        claims = try [String: JSONValue](from: decoder)
    }

    func encode(to encoder: any Encoder) throws {
        try claims.encode(to: encoder)
    }

    func verify(using algorithm: some JWTAlgorithm) async throws {}
}

/// A token whose signature and expiry have been checked.
public struct VerifiedToken: Sendable {
    /// When the token stops being valid; nil for a token without `exp`.
    public var expiresAt: Date? { claims.exp.map { Date(timeIntervalSince1970: TimeInterval($0)) } }
    public let claims: AccessClaims
    /// The payload exactly as signed: what `request.jwt.claims` is set to for the database.
    public let payloadJSON: String

    public var userID: UUID? { claims.sub.flatMap(UUID.init(uuidString:)) }
    public var sessionID: UUID? { claims.session_id.flatMap(UUID.init(uuidString:)) }
}

/// Signs and verifies HS256 tokens with the project's JWT secret.
public struct TokenService: Sendable {
    let keys: JWTKeyCollection
    /// Tokens already verified, until they expire. Every request carries the same API key and, per user,
    /// the same access token for up to an hour: verifying each once saves the decoding and HMAC that
    /// otherwise dominate a small request's CPU time.
    private let verified = VerifiedTokenCache(capacity: 10_000)
    public let issuer: String
    public let accessTokenLifetime: Duration

    public init(secret: Secret, issuer: String, accessTokenLifetime: Duration) async throws {
        // jwt-kit traps on short HMAC keys in debug builds; the configuration has already refused them.
        guard secret.value.utf8.count >= SecretStrength.minimumLength else {
            throw AuthError.badJWT("the JWT secret is too short to sign with")
        }
        let keys = JWTKeyCollection()
        await keys.add(hmac: HMACKey(from: secret.value), digestAlgorithm: .sha256)
        self.keys = keys
        self.issuer = issuer
        self.accessTokenLifetime = accessTokenLifetime
    }

    public func sign(_ claims: AccessClaims) async throws -> String {
        try await keys.sign(claims)
    }

    /// Signs claims an access token hook returned: any JSON object (the hook kept the required claims).
    public func sign(payload: [String: JSONValue]) async throws -> String {
        try await keys.sign(FreeformClaims(claims: payload))
    }

    /// Checks signature, algorithm and expiry; any failure is `bad_jwt` with a reason a developer can act on.
    public func verify(_ token: String) async throws(AuthError) -> VerifiedToken {
        if let known = verified.lookup(token) { return known }
        let claims: AccessClaims
        do {
            claims = try await keys.verify(token, as: AccessClaims.self)
        } catch let error as JWTError where error.errorType == .claimVerificationFailure {
            throw .badJWT("token has expired")
        } catch {
            throw .badJWT("signature, format or algorithm is not valid")
        }
        let parts = token.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 3, let payload = Data(base64URLEncoded: String(parts[1])) else {
            throw .badJWT("malformed payload")
        }
        let result = VerifiedToken(claims: claims, payloadJSON: String(decoding: payload, as: UTF8.self))
        verified.store(token, result)
        return result
    }
}

/// A bounded map of verified tokens; an entry is served only while its `exp` (if any) lies ahead.
final class VerifiedTokenCache: Sendable {
    private let entries = NIOLockedValueBox<[String: VerifiedToken]>([:])
    private let capacity: Int

    init(capacity: Int) {
        self.capacity = capacity
    }

    func lookup(_ token: String) -> VerifiedToken? {
        let now = Int(Date().timeIntervalSince1970)
        return entries.withLockedValue { entries in
            guard let entry = entries[token] else { return nil }
            guard (entry.claims.exp ?? .max) > now else {
                entries[token] = nil
                return nil
            }
            return entry
        }
    }

    func store(_ token: String, _ value: VerifiedToken) {
        entries.withLockedValue { entries in
            if entries.count >= capacity {
                // Rare and cheap: start over rather than track recency on every hit.
                entries.removeAll(keepingCapacity: true)
            }
            entries[token] = value
        }
    }
}

extension Data {
    public init?(base64URLEncoded text: String) {
        var base64 = text.replacingOccurrences(of: "-", with: "+").replacingOccurrences(of: "_", with: "/")
        base64 += String(repeating: "=", count: (4 - base64.count % 4) % 4)
        self.init(base64Encoded: base64)
    }

    public var base64URLEncodedString: String {
        base64EncodedString().replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_")
            .replacingOccurrences(of: "=", with: "")
    }
}
