import Foundation
import Hummingbird
import Logging
import PostgresNIO
import StriveCore
import StriveDatabase
import StriveIdentity

/// A domain's single sign-on provider: a configured OpenID Connect (or OAuth 2.0) provider that signs in
/// everyone of the listed domains. GoTrue's `/admin/sso/providers` shape, with `type: "oidc"` and
/// `oidc.provider` naming the provider (SAML stays out: `saml_provider_disabled`).
struct SSOProviderJSON: Encodable, Sendable {
    struct Domain: Encodable, Sendable {
        let id: String
        let domain: String
        let created_at: Date
        let updated_at: Date
    }

    let id: String
    let type = "oidc"
    let oidc: [String: String]
    let resource_id: String?
    let disabled: Bool
    let domains: [Domain]
    let created_at: Date
    let updated_at: Date
}

struct SSOProviderStore: Sendable {
    let database: Database
    let logger: Logger

    /// A registration or a change, as the admin API's body carries it (nil: not sent).
    struct Registration: Decodable {
        var type: String?
        var provider: String?
        var domains: [String]?
        var resource_id: String?
        var disabled: Bool?
    }

    static let notFound = AuthError(status: .notFound, code: "sso_provider_not_found", message: "No such SSO provider")

    private func service<T: Sendable>(_ body: (PostgresConnection) async throws -> T) async throws -> T {
        try await database.withServiceRoleTransaction(method: "AUTH", path: "/admin/sso/providers", logger: logger, body)
    }

    /// Providers (all, or the one `id` names) with their domains.
    private func providers(id: UUID?, on connection: PostgresConnection) async throws -> [SSOProviderJSON] {
        let domains = try await connection.rows(
            """
            select d.sso_provider_id, d.id, d.domain, d.created_at, d.updated_at from auth.sso_domains d
            where \(id)::uuid is null or d.sso_provider_id = \(id) order by d.domain
            """, logger: logger
        ).map { row in
            let (provider, id, domain, created, updated) = try row.decode((UUID, UUID, String, Date, Date).self)
            return (
                provider, SSOProviderJSON.Domain(id: id.uuidString.lowercased(), domain: domain, created_at: created, updated_at: updated)
            )
        }
        let byProvider = Dictionary(grouping: domains, by: \.0).mapValues { $0.map(\.1) }
        return try await connection.rows(
            """
            select id, provider, resource_id, disabled, created_at, updated_at from auth.sso_providers
            where \(id)::uuid is null or id = \(id) order by created_at, id
            """, logger: logger
        ).map { row in
            let (id, provider, resource, disabled, created, updated) = try row.decode((UUID, String, String?, Bool, Date, Date).self)
            return SSOProviderJSON(
                id: id.uuidString.lowercased(), oidc: ["provider": provider], resource_id: resource, disabled: disabled,
                domains: byProvider[id] ?? [], created_at: created, updated_at: updated)
        }
    }

    func list() async throws -> [SSOProviderJSON] {
        try await service { connection in try await providers(id: nil, on: connection) }
    }

    func provider(id: UUID) async throws -> SSOProviderJSON {
        try await service { connection in
            guard let found = try await providers(id: id, on: connection).first else { throw Self.notFound }
            return found
        }
    }

    /// The provider `domain` (an email's domain) or `id` names, when it is on.
    func resolve(domain: String?, id: UUID?) async throws -> String? {
        try await service { connection in
            try await connection.rows(
                """
                select p.provider from auth.sso_providers p
                where not p.disabled and (p.id = \(id) or exists (select 1 from auth.sso_domains d
                                                                  where d.sso_provider_id = p.id and d.domain = lower(\(domain))))
                """, logger: logger
            ).first?.decode(String.self)
        }
    }

    func count() async throws -> Int {
        try await service { connection in
            try await connection.rows("select count(*)::int from auth.sso_providers", logger: logger).first?.decode(Int.self) ?? 0
        }
    }

    func create(_ registration: Registration) async throws -> SSOProviderJSON {
        guard let provider = registration.provider else {
            throw AuthError.validation("oidc providers need provider (a configured provider's name)")
        }
        let id = try await service { connection in
            let created = try await connection.rows(
                """
                insert into auth.sso_providers (provider, resource_id, disabled)
                values (\(provider), \(registration.resource_id), \(registration.disabled ?? false)) returning id
                """, logger: logger
            ).first?.decode(UUID.self)
            guard let created else { throw AuthStore.StoreError.noRow("auth.sso_providers") }
            try await replaceDomains(of: created, with: registration.domains ?? [], on: connection)
            return created
        }
        return try await self.provider(id: id)
    }

    func update(id: UUID, _ registration: Registration) async throws -> SSOProviderJSON {
        try await service { connection in
            let updated = try await connection.rows(
                """
                update auth.sso_providers set provider = coalesce(\(registration.provider), provider),
                    resource_id = coalesce(\(registration.resource_id), resource_id),
                    disabled = coalesce(\(registration.disabled), disabled), updated_at = now()
                where id = \(id) returning id
                """, logger: logger)
            guard !updated.isEmpty else { throw Self.notFound }
            if let domains = registration.domains { try await replaceDomains(of: id, with: domains, on: connection) }
        }
        return try await provider(id: id)
    }

    func delete(id: UUID) async throws -> SSOProviderJSON {
        let existing = try await provider(id: id)
        try await service { connection in
            try await connection.run("delete from auth.sso_providers where id = \(id)", logger: logger)
        }
        return existing
    }

    private func replaceDomains(of provider: UUID, with domains: [String], on connection: PostgresConnection) async throws {
        let normalised = domains.map { $0.trimmingCharacters(in: .whitespaces).lowercased() }
        guard Set(normalised).count == normalised.count else { throw AuthError.validation("a domain is listed twice") }
        try await connection.run("delete from auth.sso_domains where sso_provider_id = \(provider)", logger: logger)
        for domain in normalised {
            let taken = try await connection.rows(
                "select 1 from auth.sso_domains where domain = \(domain)", logger: logger)
            guard taken.isEmpty else {
                throw AuthError.validation("SSO domain \(domain.prefix(100)) is already assigned to an SSO identity provider")
            }
            try await connection.run(
                "insert into auth.sso_domains (sso_provider_id, domain) values (\(provider), \(domain))", logger: logger)
        }
    }
}

extension AuthRoutes {
    func registerSingleSignOn(in scopes: Scopes) {
        let store = SSOProviderStore(database: service.store.database, logger: service.store.logger)
        scopes.keyed.post("sso") { request, context in try await singleSignOn(request, context, store) }
        scopes.administrators.get("admin/sso/providers") { _, _ in try json(["items": try await store.list()]) }
        scopes.administrators.post("admin/sso/providers") { request, context in
            let registration = try await decode(SSOProviderStore.Registration.self, from: request, context)
            try checkRegistration(registration, creating: true)
            var response = try json(try await store.create(registration))
            response.status = .created
            return response
        }
        scopes.administrators.get("admin/sso/providers/:id") { _, context in
            try json(try await store.provider(id: try ssoProviderID(context)))
        }
        scopes.administrators.put("admin/sso/providers/:id") { request, context in
            let registration = try await decode(SSOProviderStore.Registration.self, from: request, context)
            try checkRegistration(registration, creating: false)
            return try json(try await store.update(id: try ssoProviderID(context), registration))
        }
        scopes.administrators.delete("admin/sso/providers/:id") { _, context in
            try json(try await store.delete(id: try ssoProviderID(context)))
        }
    }

    func ssoProviderID(_ context: Context) throws(AuthError) -> UUID {
        guard let text = context.parameters.get("id"), let id = UUID(uuidString: text) else { throw SSOProviderStore.notFound }
        return id
    }

    /// SAML is not offered; an OpenID provider must be one this project configured.
    func checkRegistration(_ registration: SSOProviderStore.Registration, creating: Bool) throws(AuthError) {
        switch registration.type {
        case "saml": throw AuthError.samlDisabled
        case "oidc": break
        case nil where !creating: break
        default: throw AuthError.validation("type must be oidc (SAML 2.0 is disabled)")
        }
        if let name = registration.provider, service.external.providers[name] == nil {
            throw AuthError.validation(
                "provider \(name.prefix(40)) is not a configured external provider (STRIVE_AUTH_EXTERNAL_\(name.uppercased().prefix(40))_*)"
            )
        }
        if creating && (registration.domains ?? []).isEmpty && registration.resource_id == nil {
            throw AuthError.validation("an SSO provider needs at least one domain or a resource_id")
        }
    }

    struct SingleSignOnBody: Decodable {
        var provider_id: String?
        var domain: String?
        var redirect_to: String?
        var skip_http_redirect: Bool?
        var code_challenge: String?
        var code_challenge_method: String?
    }

    /// `POST /sso` with a `domain` or `provider_id`: the browser flow of the provider registered for it.
    func singleSignOn(_ request: Request, _ context: Context, _ store: SSOProviderStore) async throws -> Response {
        let body = try await decode(SingleSignOnBody.self, from: request, context)
        // As GoTrue with SSO off: a project that registered no provider answers that SAML is disabled.
        guard try await store.count() > 0 else { throw AuthError.samlDisabled }
        switch (body.provider_id, body.domain) {
        case (.some, .some): throw AuthError.validation("Only one of provider_id or domain supported")
        case (nil, nil): throw AuthError.validation("A provider_id or domain needs to be provided")
        default: break
        }
        let id = try body.provider_id.map { text throws(AuthError) -> UUID in
            guard let id = UUID(uuidString: text) else { throw AuthError.validation("provider_id must be an UUID") }
            return id
        }
        guard let provider = try await store.resolve(domain: body.domain, id: id) else {
            throw AuthError(
                status: .notFound, code: "sso_provider_not_found",
                message: body.domain == nil ? "No such SSO provider" : "No SSO provider assigned for this domain")
        }
        let location = try await service.startExternalSignIn(
            provider: provider, redirectTo: body.redirect_to, scopes: nil,
            pkce: try Self.pkce(challenge: body.code_challenge, method: body.code_challenge_method))
        if body.skip_http_redirect == true { return try json(["url": location]) }
        return Response(status: .seeOther, headers: [.location: location, .cacheControl: "no-store"])
    }
}
