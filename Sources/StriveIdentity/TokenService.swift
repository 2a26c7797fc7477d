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
    /// The OAuth client holding the session, and the scopes it was granted (Strive as an OAuth server).
    public var client_id: String?
    public var scope: String?

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
        is_anonymous: Bool? = nil, client_id: String? = nil, scope: String? = nil
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
        self.client_id = client_id
        self.scope = scope
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

/// Signs and verifies the project's tokens: HS256 with the JWT secret, and, once `strive keys rotate`
/// made one, ES256/RS256 with the current asymmetric key (`kid` in the header), every non-revoked key
/// verifying by its `kid`. A refusal says what was wrong: expired, bad signature, unknown key id,
/// algorithm not allowed, no role.
public struct TokenService: Sendable {
    let keys: JWTKeyCollection
    let ring: KeyRing?
    /// Tokens already verified, until they expire. Every request carries the same API key and, per user,
    /// the same access token for up to an hour: verifying each once saves the decoding and HMAC that
    /// otherwise dominate a small request's CPU time.
    private let verified = VerifiedTokenCache(capacity: 10_000)
    public let issuer: String
    public let accessTokenLifetime: Duration

    /// `signingKeys`: where asymmetric keys live (nil: HS256 only); `keyRefresh`: how old this instance's
    /// copy of them may grow before it reloads them.
    public init(
        secret: Secret, issuer: String, accessTokenLifetime: Duration, signingKeys: SigningKeyStore? = nil,
        keyRefresh: Duration = .seconds(30)
    ) async throws {
        // jwt-kit traps on short HMAC keys in debug builds; the configuration has already refused them.
        guard secret.value.utf8.count >= SecretStrength.minimumLength else {
            throw AuthError.badJWT("the JWT secret is too short to sign with")
        }
        let keys = JWTKeyCollection()
        await keys.add(hmac: HMACKey(from: secret.value), digestAlgorithm: .sha256)
        self.keys = keys
        self.ring = signingKeys.map { KeyRing(store: $0, maximumAge: keyRefresh) }
        self.issuer = issuer
        self.accessTokenLifetime = accessTokenLifetime
    }

    public func sign(_ claims: AccessClaims) async throws -> String {
        try await signed(claims)
    }

    /// Signs claims an access token hook returned: any JSON object (the hook kept the required claims).
    public func sign(payload: [String: JSONValue]) async throws -> String {
        try await signed(FreeformClaims(claims: payload))
    }

    /// Signed with the current asymmetric key, which anyone can check against the JWKS; nil when there is
    /// none (HS256 only): an ID token for another application must not need the project's secret.
    public func signWithPublishedKey(payload: [String: JSONValue]) async throws -> String? {
        guard let (collection, kid) = try await ring?.signer() else { return nil }
        return try await collection.sign(FreeformClaims(claims: payload), kid: kid)
    }

    /// Whether there is a current asymmetric key to sign ID tokens with.
    public func canSignWithPublishedKey() async throws -> Bool {
        try await ring?.signer() != nil
    }

    /// With the current asymmetric key and its `kid` when there is one, else HS256 with the secret.
    private func signed(_ payload: some JWTPayload) async throws -> String {
        if let (collection, kid) = try await ring?.signer() { return try await collection.sign(payload, kid: kid) }
        return try await keys.sign(payload)
    }

    /// The public halves of the keys that verify, as `GET /.well-known/jwks.json` publishes them (HS256's
    /// secret never appears).
    public func publicKeys() async throws -> [JSONValue] {
        try await ring?.publicKeys() ?? []
    }

    /// Checks algorithm, key, signature, expiry and role; any failure is `bad_jwt` naming what was wrong.
    public func verify(_ token: String) async throws(AuthError) -> VerifiedToken {
        if let known = verified.lookup(token) { return known }
        let parts = token.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 3, let headerData = Data(base64URLEncoded: String(parts[0])),
            let header = JSONValue(jsonText: String(decoding: headerData, as: UTF8.self))?.objectValue,
            let payload = Data(base64URLEncoded: String(parts[1]))
        else { throw .badJWT("the token is not a JWT (three base64url parts, a JSON header and payload)") }
        let algorithm = header["alg"]?.stringValue ?? ""
        let collection: JWTKeyCollection
        switch algorithm {
        case "HS256":
            collection = keys
        case "ES256", "RS256":
            guard let kid = header["kid"]?.stringValue else { throw .badJWT("an \(algorithm) token needs a kid header") }
            let found: JWTKeyCollection?
            do {
                found = try await ring?.verifier(for: kid)
            } catch {
                throw .badJWT("the signing keys could not be loaded")
            }
            guard let found else { throw .badJWT("unknown key id \(kid) for algorithm \(algorithm)") }
            collection = found
        default:
            throw .badJWT("algorithm \(algorithm.isEmpty ? "(none)" : algorithm) is not allowed (HS256, ES256 or RS256)")
        }
        let claims: AccessClaims
        do {
            claims = try await collection.verify(token, as: AccessClaims.self)
        } catch let error as JWTError where error.errorType == .claimVerificationFailure {
            throw .badJWT("token has expired")
        } catch {
            let fields = JSONValue(jsonText: String(decoding: payload, as: UTF8.self))?.objectValue
            if let fields, fields["role"]?.stringValue == nil {
                throw .badJWT("the token has no role claim")
            }
            throw .badJWT(fields == nil ? "the payload is not a JSON object" : "signature is invalid")
        }
        let result = VerifiedToken(claims: claims, payloadJSON: String(decoding: payload, as: UTF8.self))
        verified.store(token, result)
        return result
    }
}

/// The asymmetric keys of `auth.signing_keys` as this instance knows them: reloaded when a token names
/// a key id it does not know (at most once a second: a flood of made-up ids costs one query a second),
/// and whenever the last load is older than `maximumAge`, so a rotation or revocation made elsewhere
/// reaches every instance within that time while the key a rotation replaced keeps verifying.
actor KeyRing {
    let store: SigningKeyStore
    let maximumAge: Duration
    static let reloadInterval: Duration = .seconds(1)
    private var collections: [String: JWTKeyCollection] = [:]
    private var current: (collection: JWTKeyCollection, kid: String)?
    private var published: [JSONValue] = []
    private var loadedAt: ContinuousClock.Instant?

    init(store: SigningKeyStore, maximumAge: Duration) {
        self.store = store
        self.maximumAge = maximumAge
    }

    private var isStale: Bool { loadedAt.map { ContinuousClock.now - $0 >= maximumAge } ?? true }

    func signer() async throws -> (JWTKeyCollection, JWKIdentifier)? {
        if isStale { try await reload() }
        return current.map { ($0.collection, JWKIdentifier(string: $0.kid)) }
    }

    func verifier(for kid: String) async throws -> JWTKeyCollection? {
        // A revocation reaches this instance within `maximumAge` too.
        if isStale { try await reload() }
        if let known = collections[kid] { return known }
        // An unknown id: reload, but not more than once per interval. A token signed with a key made a
        // moment after the last load waits for the next one instead of failing.
        if let last = loadedAt, ContinuousClock.now - last < Self.reloadInterval {
            try await Task.sleep(for: Self.reloadInterval - (ContinuousClock.now - last))
            if loadedAt != last { return collections[kid] }
        }
        try await reload()
        return collections[kid]
    }

    /// Read afresh (at most once per reload interval): a client that meets a new key id fetches the JWKS
    /// from whichever instance it reaches, and the key is in the table before any instance signs with it.
    func publicKeys() async throws -> [JSONValue] {
        if loadedAt.map({ ContinuousClock.now - $0 >= Self.reloadInterval }) ?? true { try await reload() }
        return published
    }

    private func reload() async throws {
        let keys = try await store.usable()
        var collections: [String: JWTKeyCollection] = [:]
        var current: (JWTKeyCollection, String)?
        for key in keys {
            guard let pem = key.privatePEM else { continue }
            let collection = JWTKeyCollection()
            switch key.algorithm {
            case .es256: await collection.add(ecdsa: try ES256PrivateKey(pem: pem), kid: JWKIdentifier(string: key.kid))
            case .rs256:
                await collection.add(
                    rsa: try Insecure.RSA.PrivateKey(pem: pem), digestAlgorithm: .sha256, kid: JWKIdentifier(string: key.kid))
            }
            collections[key.kid] = collection
            if key.status == .current { current = (collection, key.kid) }
        }
        self.collections = collections
        self.current = current
        published = keys.map(\.publicJWK)
        loadedAt = .now
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
