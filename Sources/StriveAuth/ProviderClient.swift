import AsyncHTTPClient
import Foundation
import JWTKit
import Logging
import NIOCore
import NIOFoundationCompat
import NIOHTTP1
import StriveCore

/// Why talking to an external provider failed. Each case says what went wrong without echoing the
/// provider's tokens; the sign-in flow turns it into GoTrue's redirect error.
public enum ProviderError: Error, Sendable, Equatable {
    /// The provider could not be reached, timed out, or answered something unusable.
    case unreachable(String)
    /// The provider refused the code exchange (its `error`, `error_description`).
    case exchangeRefused(String)
    /// An ID token that does not prove what it claims: bad signature, unknown key, wrong issuer or
    /// audience, expired, nonce mismatch.
    case badIDToken(String)
    /// The provider's profile has no stable subject id.
    case noSubject
}

/// What a provider says about the user, as GoTrue keeps it in `identity_data`.
public struct ProviderProfile: Sendable {
    /// The provider's id for the user (`sub`, GitHub's numeric `id`).
    public let subject: String
    public let email: String?
    public let emailVerified: Bool
    /// GoTrue's identity_data: the claims or profile fields, plus `sub`, `provider_id`, `email_verified`.
    public let identityData: [String: JSONValue]
    public let accessToken: String?
    public let refreshToken: String?
}

/// Talks to external providers over HTTPS: OpenID discovery documents and signing keys (cached, keys
/// refetched when a token names one not seen yet), the code exchange, profiles.
public actor ProviderClient {
    private let http: HTTPClient
    private let logger: Logger
    private static let timeout = TimeAmount.seconds(10)
    private static let maximumBody = 1024 * 1024
    /// Discovery documents and keys rarely change; a day-old copy is refreshed.
    private static let cacheLifetime: Duration = .seconds(3600)
    /// Someone sending tokens with made-up key ids must not make Strive fetch keys on every request.
    private static let unknownKeyRefetchInterval: Duration = .seconds(10)

    private var discoveries: [String: (document: Discovery, fetched: ContinuousClock.Instant)] = [:]
    private var keySets: [String: KeySet] = [:]

    struct KeySet {
        let keys: JWTKeyCollection
        let ids: Set<String>
        let fetched: ContinuousClock.Instant
    }

    /// The fields of an OpenID Provider's `.well-known/openid-configuration` Strive uses.
    public struct Discovery: Decodable, Sendable {
        public let issuer: String
        public let authorization_endpoint: String
        public let token_endpoint: String
        public let userinfo_endpoint: String?
        public let jwks_uri: String
        public let token_endpoint_auth_methods_supported: [String]?
    }

    public init(logger: Logger) {
        http = HTTPClient.shared
        self.logger = logger
    }

    // MARK: OpenID Connect

    public func discovery(issuer: String) async throws(ProviderError) -> Discovery {
        if let cached = discoveries[issuer], cached.fetched.duration(to: .now) < Self.cacheLifetime { return cached.document }
        let url = issuer + "/.well-known/openid-configuration"
        let data = try await get(url, headers: [:])
        let document: Discovery
        do {
            document = try JSONDecoder().decode(Discovery.self, from: data)
        } catch {
            throw .unreachable("the discovery document at \(url) is not one: \(error)")
        }
        // A document for another issuer would let that issuer's tokens through (OpenID Connect Discovery §4.3).
        guard document.issuer.trimmingSuffix("/") == issuer.trimmingSuffix("/") || Self.isTenantTemplate(document.issuer) else {
            throw .unreachable("the discovery document at \(url) names issuer \(document.issuer)")
        }
        discoveries[issuer] = (document, .now)
        return document
    }

    /// Microsoft's multi-tenant issuer is a template (`…/{tenantid}/v2.0`): a token names its tenant.
    static func isTenantTemplate(_ issuer: String) -> Bool { issuer.contains("{tenantid}") }

    /// The ID token's claims once its signature, issuer, audience, lifetime and nonce are checked.
    public func verifyIDToken(
        _ token: String, issuer: String, audiences: [String], nonce: NonceCheck
    ) async throws(ProviderError) -> [String: JSONValue] {
        let document = try await discovery(issuer: issuer)
        let header = try Self.header(of: token)
        var keySet = try await keys(at: document.jwks_uri, refreshing: false)
        if let kid = header.kid, !keySet.ids.contains(kid) {
            keySet = try await keys(at: document.jwks_uri, refreshing: true)
            guard keySet.ids.contains(kid) else { throw .badIDToken("it is signed by a key the provider does not publish") }
        }
        let claims: IDTokenClaims
        do {
            claims = try await keySet.keys.verify(token, as: IDTokenClaims.self)
        } catch let error as JWTError where error.errorType == .claimVerificationFailure {
            throw .badIDToken("it has expired")
        } catch {
            throw .badIDToken("its signature does not verify")
        }
        let all = try Self.payload(of: token)
        let expectedIssuer =
            Self.isTenantTemplate(document.issuer)
            ? document.issuer.replacingOccurrences(of: "{tenantid}", with: all["tid"]?.stringValue ?? "") : document.issuer
        guard claims.iss.value.trimmingSuffix("/") == expectedIssuer.trimmingSuffix("/") else {
            throw .badIDToken("it was issued by \(claims.iss.value), not \(expectedIssuer)")
        }
        guard claims.aud.value.contains(where: audiences.contains) else {
            throw .badIDToken("it was issued for another application (aud)")
        }
        try nonce.check(claims.nonce)
        return all
    }

    /// What the ID token's `nonce` must be.
    public enum NonceCheck: Sendable {
        /// The browser flow: exactly the nonce Strive sent.
        case exact(String)
        /// A native sign-in: the app sent the provider SHA-256(nonce) in hex (Apple, Google), or the nonce itself.
        case hashedOrExact(String)
        /// No nonce was given; a token that carries one cannot be checked and is refused.
        case none

        func check(_ claimed: String?) throws(ProviderError) {
            switch self {
            case .exact(let expected):
                guard claimed == expected else { throw .badIDToken("its nonce is not the one this sign-in sent") }
            case .hashedOrExact(let raw):
                let hashed = RefreshTokenCodec.hash(raw)
                guard let claimed, claimed == hashed || claimed == raw else {
                    throw .badIDToken("Nonces mismatch")
                }
            case .none:
                if claimed != nil { throw .badIDToken("Passed nonce and nonce in id_token should either both exist or not.") }
            }
        }
    }

    struct IDTokenClaims: JWTPayload {
        let iss: IssuerClaim
        let sub: SubjectClaim
        let aud: AudienceClaim
        let exp: ExpirationClaim
        let nonce: String?

        func verify(using algorithm: some JWTAlgorithm) async throws {
            try exp.verifyNotExpired(currentDate: Date().addingTimeInterval(-60))
        }
    }

    struct Header: Decodable {
        let alg: String?
        let kid: String?
    }

    static func header(of token: String) throws(ProviderError) -> Header {
        guard let first = token.split(separator: ".", omittingEmptySubsequences: false).first,
            let data = Data(base64URLEncoded: String(first)), let header = try? JSONDecoder().decode(Header.self, from: data)
        else { throw .badIDToken("it is not a JWT") }
        return header
    }

    static func payload(of token: String) throws(ProviderError) -> [String: JSONValue] {
        let parts = token.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 3, let data = Data(base64URLEncoded: String(parts[1])),
            let claims = (try? JSONDecoder().decode(JSONValue.self, from: data))?.objectValue
        else { throw .badIDToken("it is not a JWT") }
        return claims
    }

    private func keys(at url: String, refreshing: Bool) async throws(ProviderError) -> KeySet {
        if let cached = keySets[url] {
            let age = cached.fetched.duration(to: .now)
            let fresh = age < Self.cacheLifetime
            if fresh && (!refreshing || age < Self.unknownKeyRefetchInterval) { return cached }
        }
        let data = try await get(url, headers: [:])
        let collection = JWTKeyCollection()
        var ids: Set<String> = []
        do {
            let jwks = try JSONDecoder().decode(JWKS.self, from: data)
            for key in jwks.keys {
                // A key of a kind JWTKit cannot verify with signs none of the tokens Strive accepts.
                do {
                    try await collection.add(jwk: key)
                    if let kid = key.keyIdentifier?.string { ids.insert(kid) }
                } catch {
                    logger.debug("skipping a provider key Strive cannot verify with", metadata: ["jwks": "\(url)"])
                }
            }
        } catch {
            throw .unreachable("the key set at \(url) is not a JWKS")
        }
        let keySet = KeySet(keys: collection, ids: ids, fetched: .now)
        keySets[url] = keySet
        return keySet
    }

    // MARK: OAuth 2.0

    public struct Tokens: Decodable, Sendable {
        public let access_token: String?
        public let refresh_token: String?
        public let id_token: String?
        let error: String?
        let error_description: String?
    }

    /// Exchanges an authorization code at `tokenURL` (RFC 6749 §4.1.3 with PKCE's verifier). The client
    /// authenticates with HTTP Basic where the provider supports it, else in the body.
    public func exchange(
        code: String, tokenURL: String, redirectURI: String, clientID: String, secret: Secret?, verifier: String, basic: Bool
    ) async throws(ProviderError) -> Tokens {
        var form: [(String, String)] = [
            ("grant_type", "authorization_code"), ("code", code), ("redirect_uri", redirectURI), ("code_verifier", verifier),
        ]
        var headers: HTTPHeaders = ["Content-Type": "application/x-www-form-urlencoded", "Accept": "application/json"]
        if basic, let secret {
            let credentials = AuthService.formComponent(clientID) + ":" + AuthService.formComponent(secret.value)
            headers.add(name: "Authorization", value: "Basic " + Data(credentials.utf8).base64EncodedString())
        } else {
            form.append(("client_id", clientID))
            if let secret { form.append(("client_secret", secret.value)) }
        }
        let body = AuthService.formEncoded(form)
        let (status, data) = try await send(tokenURL, method: .POST, headers: headers, body: Data(body.utf8))
        guard let tokens = try? JSONDecoder().decode(Tokens.self, from: data) else {
            throw .unreachable("the token endpoint answered \(status) without JSON")
        }
        if let error = tokens.error {
            throw .exchangeRefused(tokens.error_description.map { "\(error): \($0)" } ?? error)
        }
        guard (200..<300).contains(status), tokens.access_token != nil else {
            throw .exchangeRefused("the token endpoint answered \(status) without an access token")
        }
        return tokens
    }

    /// A JSON document from a protected resource (a userinfo or profile endpoint).
    public func resource(_ url: String, accessToken: String) async throws(ProviderError) -> JSONValue {
        let data = try await get(url, headers: ["Authorization": "Bearer \(accessToken)", "Accept": "application/json"])
        guard let value = try? JSONDecoder().decode(JSONValue.self, from: data) else { throw .unreachable("\(url) did not answer JSON") }
        return value
    }

    // MARK: HTTP

    private func get(_ url: String, headers: HTTPHeaders) async throws(ProviderError) -> Data {
        let (status, data) = try await send(url, method: .GET, headers: headers, body: nil)
        guard (200..<300).contains(status) else { throw .unreachable("\(url) answered \(status)") }
        return data
    }

    private func send(_ url: String, method: HTTPMethod, headers: HTTPHeaders, body: Data?) async throws(ProviderError) -> (
        Int, Data
    ) {
        var request = HTTPClientRequest(url: url)
        request.method = method
        request.headers = headers
        request.headers.replaceOrAdd(name: "User-Agent", value: "Strive")
        if let body { request.body = .bytes(ByteBuffer(data: body)) }
        do {
            let response = try await http.execute(request, timeout: Self.timeout)
            let buffer = try await response.body.collect(upTo: Self.maximumBody)
            return (Int(response.status.code), Data(buffer: buffer))
        } catch {
            logger.warning("external provider request failed", metadata: ["url": "\(url)", "error": "\(error)"])
            throw .unreachable("\(url) could not be reached")
        }
    }
}

extension String {
    fileprivate func trimmingSuffix(_ suffix: String) -> String {
        hasSuffix(suffix) ? String(dropLast(suffix.count)) : self
    }
}
