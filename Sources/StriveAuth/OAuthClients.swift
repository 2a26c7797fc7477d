import Crypto
import Foundation
import Hummingbird
import Logging
import PostgresNIO
import StriveCore
import StriveDatabase
import StriveIdentity

/// An application registered to sign users in with Strive (Supabase Auth's OAuth 2.1 server), as its
/// admin API answers it. `client_secret` appears only when a secret was just made.
public struct OAuthClientJSON: Encodable, Sendable {
    let client_id: String
    let client_name: String
    var client_secret: String?
    let client_type: String
    let token_endpoint_auth_method: String
    let registration_type: String
    let client_uri: String?
    let logo_uri: String?
    let redirect_uris: [String]
    let grant_types: [String]
    let response_types: [String]
    let scope: String?
    let created_at: Date
    let updated_at: Date

    enum CodingKeys: String, CodingKey {
        case client_id, client_name, client_secret, client_type, token_endpoint_auth_method, registration_type, client_uri, logo_uri
        case redirect_uris, grant_types, response_types, scope, created_at, updated_at
    }

    /// Optional fields are null, not left out (the clients' models name every key); the secret is left
    /// out unless it was just made.
    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(client_id, forKey: .client_id)
        try container.encode(client_name, forKey: .client_name)
        try container.encodeIfPresent(client_secret, forKey: .client_secret)
        try container.encode(client_type, forKey: .client_type)
        try container.encode(token_endpoint_auth_method, forKey: .token_endpoint_auth_method)
        try container.encode(registration_type, forKey: .registration_type)
        try container.encode(client_uri, forKey: .client_uri)
        try container.encode(logo_uri, forKey: .logo_uri)
        try container.encode(redirect_uris, forKey: .redirect_uris)
        try container.encode(grant_types, forKey: .grant_types)
        try container.encode(response_types, forKey: .response_types)
        try container.encode(scope, forKey: .scope)
        try container.encode(created_at, forKey: .created_at)
        try container.encode(updated_at, forKey: .updated_at)
    }
}

/// `auth.oauth_clients` through the service role, with the checks GoTrue makes on a registration.
public struct OAuthClientStore: Sendable {
    let database: Database
    let logger: Logger

    /// A registration or a change, as the admin API's body carries it (nil: not sent).
    struct Registration: Decodable {
        var client_name: String?
        var client_uri: String?
        var logo_uri: String?
        var redirect_uris: [String]?
        var grant_types: [String]?
        var response_types: [String]?
        var scope: String?
        var token_endpoint_auth_method: String?
    }

    static let grantTypes: Set<String> = ["authorization_code", "refresh_token"]
    static let authMethods: Set<String> = ["none", "client_secret_basic", "client_secret_post"]

    static let notFound = AuthError(status: .notFound, code: "oauth_client_not_found", message: "OAuth client not found")

    /// Refuses what no client may register: a redirect URI that is not absolute http(s) (plain http only
    /// for loopback) or carries a fragment, an unknown grant, response type or authentication method.
    static func check(_ registration: Registration, creating: Bool) throws(AuthError) {
        if creating {
            guard let name = registration.client_name, !name.trimmingCharacters(in: .whitespaces).isEmpty else {
                throw .validation("client_name is required")
            }
            guard !(registration.redirect_uris ?? []).isEmpty else { throw .validation("redirect_uris must list at least one URI") }
        }
        if let name = registration.client_name, name.isEmpty || name.count > 1024 {
            throw .validation("client_name must be 1 to 1024 characters")
        }
        for uri in registration.redirect_uris ?? [] {
            guard let url = URLComponents(string: uri), let host = url.host, !host.isEmpty, url.fragment == nil,
                url.scheme == "https" || (url.scheme == "http" && ["localhost", "127.0.0.1", "[::1]", "::1"].contains(host))
            else {
                throw .validation("redirect_uris must be absolute https URIs without a fragment (http only for localhost): \(uri)")
            }
        }
        if let redirects = registration.redirect_uris, redirects.count > 100 { throw .validation("at most 100 redirect_uris") }
        if let grants = registration.grant_types, grants.isEmpty || !Set(grants).isSubset(of: grantTypes) {
            throw .validation("grant_types must be authorization_code and/or refresh_token")
        }
        if let types = registration.response_types, types != ["code"] { throw .validation("response_types must be [\"code\"]") }
        if let method = registration.token_endpoint_auth_method, !authMethods.contains(method) {
            throw .validation("token_endpoint_auth_method must be none, client_secret_basic or client_secret_post")
        }
        for uri in [registration.client_uri, registration.logo_uri].compactMap({ $0 }) where URLComponents(string: uri)?.host == nil {
            throw .validation("client_uri and logo_uri must be absolute URIs: \(uri)")
        }
    }

    /// A new secret: what the client is told once, and what is kept.
    static func newSecret() -> (secret: String, hash: String) {
        let secret = Data(SymmetricKey(size: .bits256).withUnsafeBytes { Array($0) }).base64URLEncodedString
        return (secret, hash(secret))
    }

    static func hash(_ secret: String) -> String {
        SHA256.hash(data: Data(secret.utf8)).map { String(format: "%02x", $0) }.joined()
    }

    static let columns = """
        id, client_name, client_type, token_endpoint_auth_method, registration_type, client_uri, logo_uri, redirect_uris,
        grant_types, response_types, scope, created_at, updated_at
        """

    static func client(_ row: PostgresRow) throws -> OAuthClientJSON {
        let cells = row.makeRandomAccess()
        return OAuthClientJSON(
            client_id: try cells["id"].decode(UUID.self).uuidString.lowercased(), client_name: try cells["client_name"].decode(String.self),
            client_secret: nil, client_type: try cells["client_type"].decode(String.self),
            token_endpoint_auth_method: try cells["token_endpoint_auth_method"].decode(String.self),
            registration_type: try cells["registration_type"].decode(String.self), client_uri: try cells["client_uri"].decode(String?.self),
            logo_uri: try cells["logo_uri"].decode(String?.self), redirect_uris: try cells["redirect_uris"].decode([String].self),
            grant_types: try cells["grant_types"].decode([String].self), response_types: try cells["response_types"].decode([String].self),
            scope: try cells["scope"].decode(String?.self), created_at: try cells["created_at"].decode(Date.self),
            updated_at: try cells["updated_at"].decode(Date.self))
    }

    func create(_ registration: Registration) async throws -> OAuthClientJSON {
        try Self.check(registration, creating: true)
        let method = registration.token_endpoint_auth_method ?? "client_secret_basic"
        let secret = method == "none" ? nil : Self.newSecret()
        let grants = registration.grant_types ?? ["authorization_code", "refresh_token"]
        let created = try await service { connection in
            try await connection.rows(
                """
                insert into auth.oauth_clients (client_name, client_secret_hash, client_type, token_endpoint_auth_method, client_uri,
                                                logo_uri, redirect_uris, grant_types, scope)
                values (\(registration.client_name ?? ""), \(secret?.hash), \(secret == nil ? "public" : "confidential"), \(method),
                        \(registration.client_uri), \(registration.logo_uri), \(registration.redirect_uris ?? []), \(grants),
                        \(registration.scope))
                returning \(unescaped: Self.columns)
                """, logger: logger
            ).first.map(Self.client)
        }
        guard var client = created else { throw Self.notFound }
        client.client_secret = secret?.secret
        return client
    }

    func list(page: Int, perPage: Int) async throws -> (clients: [OAuthClientJSON], total: Int) {
        try await service { connection in
            let total =
                try await connection.rows("select count(*)::int from auth.oauth_clients", logger: logger).first?.decode(Int.self) ?? 0
            let clients = try await connection.rows(
                """
                select \(unescaped: Self.columns) from auth.oauth_clients order by created_at desc, id
                limit \(perPage) offset \((page - 1) * perPage)
                """, logger: logger
            ).map(Self.client)
            return (clients, total)
        }
    }

    func client(id: UUID) async throws -> OAuthClientJSON {
        let found = try await service { connection in
            try await connection.rows("select \(unescaped: Self.columns) from auth.oauth_clients where id = \(id)", logger: logger).first
                .map(Self.client)
        }
        guard let found else { throw Self.notFound }
        return found
    }

    func update(id: UUID, _ registration: Registration) async throws -> OAuthClientJSON {
        try Self.check(registration, creating: false)
        let updated = try await service { connection in
            try await connection.rows(
                """
                update auth.oauth_clients set
                    client_name = coalesce(\(registration.client_name), client_name),
                    client_uri = coalesce(\(registration.client_uri), client_uri),
                    logo_uri = coalesce(\(registration.logo_uri), logo_uri),
                    redirect_uris = coalesce(\(registration.redirect_uris)::text[], redirect_uris),
                    grant_types = coalesce(\(registration.grant_types)::text[], grant_types),
                    scope = coalesce(\(registration.scope), scope),
                    updated_at = now()
                where id = \(id) returning \(unescaped: Self.columns)
                """, logger: logger
            ).first.map(Self.client)
        }
        guard let updated else { throw Self.notFound }
        return updated
    }

    func delete(id: UUID) async throws {
        let deleted = try await service { connection in
            try await connection.rows("delete from auth.oauth_clients where id = \(id) returning id", logger: logger).count == 1
        }
        guard deleted else { throw Self.notFound }
    }

    /// A new secret for a confidential client; the old one stops working at once.
    func regenerateSecret(id: UUID) async throws -> OAuthClientJSON {
        let secret = Self.newSecret()
        let outcome = try await service { connection -> OAuthClientJSON? in
            try await connection.rows(
                """
                update auth.oauth_clients set client_secret_hash = \(secret.hash), updated_at = now()
                where id = \(id) and client_type = 'confidential' returning \(unescaped: Self.columns)
                """, logger: logger
            ).first.map(Self.client)
        }
        guard var client = outcome else {
            _ = try await self.client(id: id)
            throw AuthError.validation("a public client has no secret to regenerate (token_endpoint_auth_method none)")
        }
        client.client_secret = secret.secret
        return client
    }

    private func service<T: Sendable>(_ body: (PostgresConnection) async throws -> T) async throws -> T {
        try await database.withServiceRoleTransaction(method: "AUTH", path: "/admin/oauth/clients", logger: logger, body)
    }
}

extension AuthRoutes {
    func registerOAuthClients(in scopes: Scopes) {
        let store = OAuthClientStore(database: service.store.database, logger: service.store.logger)
        scopes.administrators.get("admin/oauth/clients") { request, _ in
            let page = try positiveInteger(request, "page", default: 1, maximum: 1_000_000)
            let perPage = try positiveInteger(request, "per_page", default: 50, maximum: 1000)
            let (clients, total) = try await store.list(page: page, perPage: perPage)
            return try paged(json(["clients": clients]), path: "/admin/oauth/clients", page: page, perPage: perPage, total: total)
        }
        scopes.administrators.post("admin/oauth/clients") { request, context in
            var response = try json(try await store.create(try await decode(OAuthClientStore.Registration.self, from: request, context)))
            response.status = .created
            return response
        }
        scopes.administrators.get("admin/oauth/clients/:id") { _, context in try json(try await store.client(id: try clientID(context))) }
        scopes.administrators.put("admin/oauth/clients/:id") { request, context in
            try json(
                try await store.update(
                    id: try clientID(context), try await decode(OAuthClientStore.Registration.self, from: request, context)))
        }
        scopes.administrators.delete("admin/oauth/clients/:id") { _, context in
            try await store.delete(id: try clientID(context))
            return Response(status: .noContent)
        }
        scopes.administrators.post("admin/oauth/clients/:id/regenerate_secret") { _, context in
            try json(try await store.regenerateSecret(id: try clientID(context)))
        }
    }

    func clientID(_ context: Context) throws(AuthError) -> UUID {
        guard let text = context.parameters.get("id"), let id = UUID(uuidString: text) else { throw OAuthClientStore.notFound }
        return id
    }
}
