import Crypto
import Foundation
import HTTPTypes
import Hummingbird
import Logging
import NIOCore
import PostgresNIO
import StriveCore
import StriveDatabase
import StriveIdentity

/// An error of the OAuth protocol itself, answered as RFC 6749 §5.2 says: `{error, error_description}`,
/// which the applications signing in with Strive (any OAuth library) read.
public struct OAuthProtocolError: Error, Sendable, Equatable, HTTPResponseError {
    public let status: HTTPResponse.Status
    public let error: String
    public let description: String

    public static func invalidRequest(_ description: String) -> Self {
        Self(status: .badRequest, error: "invalid_request", description: description)
    }
    public static func invalidGrant(_ description: String) -> Self {
        Self(status: .badRequest, error: "invalid_grant", description: description)
    }
    public static func invalidClient(_ description: String) -> Self {
        Self(status: .unauthorized, error: "invalid_client", description: description)
    }
    public static func unsupportedGrantType(_ description: String) -> Self {
        Self(status: .badRequest, error: "unsupported_grant_type", description: description)
    }

    public func response(from request: Request, context: some RequestContext) throws -> Response {
        let body = try JSONEncoder().encode(["error": error, "error_description": description])
        var headers: HTTPFields = [.contentType: "application/json", .cacheControl: "no-store"]
        if status == .unauthorized { headers[.wwwAuthenticate] = #"Basic realm="oauth""# }
        return Response(status: status, headers: headers, body: .init(byteBuffer: ByteBuffer(bytes: body)))
    }
}

/// A registered client as the OAuth server needs it.
struct RegisteredClient: Sendable {
    let id: UUID
    let name: String
    let uri: String?
    let logoURI: String?
    let authMethod: String
    let secretHash: String?
    let redirectURIs: [String]
    let grantTypes: [String]

    var json: [String: JSONValue] {
        var object: [String: JSONValue] = ["id": .string(id.uuidString.lowercased()), "name": .string(name)]
        if let uri, !uri.isEmpty { object["uri"] = .string(uri) }
        if let logoURI, !logoURI.isEmpty { object["logo_uri"] = .string(logoURI) }
        return object
    }
}

/// A client's request to sign a user in, from `/oauth/authorize` on.
struct PendingAuthorization: Sendable {
    let id: String
    let client: UUID
    let user: UUID?
    let redirectURI: String
    let scope: String
    let state: String?
    let nonce: String?
    let challenge: PKCEChallenge
    let status: String
    let expired: Bool

    var scopes: [String] { scope.split(separator: " ").map(String.init) }
}

/// The OAuth server's tables, through the service role (they have no grants for anyone else).
struct OAuthServerStore: Sendable {
    let database: Database
    let logger: Logger

    private func service<T: Sendable>(_ path: String, _ body: (PostgresConnection) async throws -> T) async throws -> T {
        try await database.withServiceRoleTransaction(method: "AUTH", path: path, logger: logger, body)
    }

    func client(_ id: UUID) async throws -> RegisteredClient? {
        try await service("/oauth") { connection in
            guard
                let row = try await connection.rows(
                    """
                    select id, client_name, client_uri, logo_uri, token_endpoint_auth_method, client_secret_hash, redirect_uris, grant_types
                    from auth.oauth_clients where id = \(id)
                    """, logger: logger
                ).first
            else { return nil }
            let (id, name, uri, logo, method, hash, redirects, grants) = try row.decode(
                (UUID, String, String?, String?, String, String?, [String], [String]).self)
            return RegisteredClient(
                id: id, name: name, uri: uri, logoURI: logo, authMethod: method, secretHash: hash, redirectURIs: redirects,
                grantTypes: grants)
        }
    }

    func create(
        id: String, client: UUID, redirectURI: String, scope: String, state: String?, nonce: String?, resource: String?,
        challenge: PKCEChallenge, lifetime: Duration
    ) async throws {
        let seconds = Int(lifetime.components.seconds)
        try await service("/oauth/authorize") { connection in
            // Requests nobody finished go as new ones come: no sweeper needed.
            try await connection.run(
                "delete from auth.oauth_authorizations where expires_at < now() - interval '1 day'", logger: logger)
            try await connection.run(
                """
                insert into auth.oauth_authorizations
                    (id, client_id, redirect_uri, scope, state, nonce, resource, code_challenge, code_challenge_method, expires_at)
                values (\(id), \(client), \(redirectURI), \(scope), \(state), \(nonce), \(resource), \(challenge.challenge),
                        \(challenge.method.rawValue), now() + make_interval(secs => \(seconds)))
                """, logger: logger)
        }
    }

    private static let authorizationColumns = """
        id, client_id, user_id, redirect_uri, scope, state, nonce, code_challenge, code_challenge_method, status, expires_at <= now()
        """

    private static func authorization(_ row: PostgresRow) throws -> PendingAuthorization {
        let (id, client, user, redirect, scope, state, nonce, challenge, method, status, expired) = try row.decode(
            (String, UUID, UUID?, String, String, String?, String?, String, String, String, Bool).self)
        return PendingAuthorization(
            id: id, client: client, user: user, redirectURI: redirect, scope: scope, state: state, nonce: nonce,
            challenge: PKCEChallenge(challenge: challenge, method: PKCEChallenge.Method(rawValue: method) ?? .s256), status: status,
            expired: expired)
    }

    /// The request `id` bound to `user` (the first signed-in user to look at it takes it).
    func bind(_ id: String, to user: UUID) async throws -> PendingAuthorization? {
        try await service("/oauth/authorizations") { connection in
            try await connection.rows(
                """
                update auth.oauth_authorizations set user_id = coalesce(user_id, \(user))
                where id = \(id) returning \(unescaped: Self.authorizationColumns)
                """, logger: logger
            ).first.map(Self.authorization)
        }
    }

    /// The scopes `user` has granted `client` and not revoked.
    func consent(user: UUID, client: UUID) async throws -> [String]? {
        try await service("/oauth/authorizations") { connection in
            try await connection.rows(
                "select scopes from auth.oauth_consents where user_id = \(user) and client_id = \(client) and revoked_at is null",
                logger: logger
            ).first?.decode([String].self)
        }
    }

    /// Approves a pending request: its code (kept as a hash) and the user's consent, together.
    func approve(_ authorization: PendingAuthorization, user: UUID, codeHash: String) async throws -> Bool {
        try await service("/oauth/authorizations") { connection in
            let updated = try await connection.rows(
                """
                update auth.oauth_authorizations set status = 'approved', code_hash = \(codeHash)
                where id = \(authorization.id) and user_id = \(user) and status = 'pending' and expires_at > now()
                returning 1
                """, logger: logger)
            guard !updated.isEmpty else { return false }
            try await connection.run(
                """
                insert into auth.oauth_consents (user_id, client_id, scopes) values (\(user), \(authorization.client), \(authorization.scopes))
                on conflict (user_id, client_id) do update set scopes = excluded.scopes, granted_at = now(), revoked_at = null
                """, logger: logger)
            return true
        }
    }

    func deny(_ id: String, user: UUID) async throws -> Bool {
        try await service("/oauth/authorizations") { connection in
            try await !connection.rows(
                """
                update auth.oauth_authorizations set status = 'denied'
                where id = \(id) and user_id = \(user) and status = 'pending' returning 1
                """, logger: logger
            ).isEmpty
        }
    }

    /// The approved request behind a code, used up whatever happens next: a code is good once.
    func redeem(codeHash: String) async throws -> PendingAuthorization? {
        try await service("/oauth/token") { connection in
            try await connection.rows(
                """
                delete from auth.oauth_authorizations where code_hash = \(codeHash) and status = 'approved'
                returning \(unescaped: Self.authorizationColumns)
                """, logger: logger
            ).first.map(Self.authorization)
        }
    }

    struct Grant: Sendable {
        let client: RegisteredClient
        let scopes: [String]
        let grantedAt: Date
    }

    func grants(of user: UUID) async throws -> [Grant] {
        try await service("/user/oauth/grants") { connection in
            try await connection.rows(
                """
                select c.id, c.client_name, c.client_uri, c.logo_uri, g.scopes, g.granted_at
                from auth.oauth_consents g join auth.oauth_clients c on c.id = g.client_id
                where g.user_id = \(user) and g.revoked_at is null order by g.granted_at desc
                """, logger: logger
            ).map { row in
                let (id, name, uri, logo, scopes, granted) = try row.decode((UUID, String, String?, String?, [String], Date).self)
                return Grant(
                    client: RegisteredClient(
                        id: id, name: name, uri: uri, logoURI: logo, authMethod: "", secretHash: nil, redirectURIs: [], grantTypes: []),
                    scopes: scopes, grantedAt: granted)
            }
        }
    }

    /// Revokes `user`'s grant to `client` and ends the client's sessions (their refresh tokens with them).
    func revoke(user: UUID, client: UUID) async throws -> Bool {
        try await service("/user/oauth/grants") { connection in
            let revoked = try await connection.rows(
                """
                update auth.oauth_consents set revoked_at = now()
                where user_id = \(user) and client_id = \(client) and revoked_at is null returning 1
                """, logger: logger)
            guard !revoked.isEmpty else { return false }
            try await connection.run(
                "delete from auth.sessions where user_id = \(user) and oauth_client_id = \(client)", logger: logger)
            return true
        }
    }
}
