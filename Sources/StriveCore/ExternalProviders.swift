import Foundation

/// One field of an external sign-in provider's settings: `STRIVE_AUTH_EXTERNAL_<NAME>_<FIELD>`. Declared
/// once here, like `ConfigVariable`: the loader, `--help` and the README's table come from these.
public enum ProviderField: String, CaseIterable, Sendable {
    case enabled = "ENABLED"
    case clientID = "CLIENT_ID"
    case secret = "SECRET"
    case redirectURI = "REDIRECT_URI"
    case scopes = "SCOPES"
    case issuer = "ISSUER"
    case authorizeURL = "AUTHORIZE_URL"
    case tokenURL = "TOKEN_URL"
    case userinfoURL = "USERINFO_URL"
    case emailsURL = "EMAILS_URL"

    public static let prefix = "STRIVE_AUTH_EXTERNAL_"

    /// The variable for provider `name` (lowercase, as the API names it).
    public func variable(for name: String) -> String { Self.prefix + name.uppercased() + "_" + rawValue }

    public var setting: Setting {
        switch self {
        case .enabled:
            Setting(
                .choice(["true", "false"], default: "true"),
                "offer the provider (false keeps its settings but refuses its sign-ins and its tokens)")
        case .clientID:
            Setting(
                .text, "the client id the provider issued; turns the provider on",
                details: "the client id the provider issued to this project; setting it turns the provider on. Several, "
                    + "comma-separated: the first is used in the browser flow, each is an accepted audience of ID tokens "
                    + "(`grant_type=id_token`: an iOS app's bundle id beside the web's services id).")
        case .secret:
            Setting(
                .text, "the client secret (for Apple: the client-secret JWT); never printed",
                details: "the client secret the provider issued (for Apple, the ES256 client-secret JWT). Never printed, "
                    + "never logged. Required for the browser flow; providers used only with ID tokens may leave it unset.")
        case .redirectURI:
            Setting(
                .text, described: "`STRIVE_PUBLIC_URL/auth/v1/callback`",
                "the callback URL registered with the provider")
        case .scopes:
            Setting(
                .text, described: "the provider's own (`openid email profile` for OpenID Connect)",
                "scopes always asked for, space- or comma-separated, besides those a request adds")
        case .issuer:
            Setting(
                .text, described: "known for google, apple, gitlab, azure",
                "an OpenID Connect issuer: endpoints and keys come from its discovery document",
                details: "an OpenID Connect issuer URL (`https://sso.example.com/realms/main`): the authorization, token and "
                    + "userinfo endpoints and the signing keys come from `<issuer>/.well-known/openid-configuration`, and ID "
                    + "tokens must name it as `iss`. Required for keycloak and for any provider of another name that does not "
                    + "set the three URLs below.")
        case .authorizeURL:
            Setting(.text, described: "known for github", "a plain OAuth 2.0 provider's authorization endpoint")
        case .tokenURL:
            Setting(.text, described: "known for github", "a plain OAuth 2.0 provider's token endpoint")
        case .userinfoURL:
            Setting(
                .text, described: "known for github",
                "a plain OAuth 2.0 provider's profile endpoint (JSON with id, email, name…)")
        case .emailsURL:
            Setting(
                .text, described: "known for github",
                "GitHub's shape: the endpoint listing the user's addresses with primary and verified")
        }
    }
}

/// An external identity provider users sign in with, as configured.
public struct ExternalProvider: Sendable, Equatable {
    /// How the provider says who the user is.
    public enum Kind: Sendable, Equatable {
        /// OpenID Connect: endpoints and keys from `<issuer>/.well-known/openid-configuration`, the user from
        /// the ID token's claims.
        case openIDConnect(issuer: String)
        /// Plain OAuth 2.0: the user from a profile endpoint; with `emails`, GitHub's list of addresses
        /// decides the email and whether it is verified.
        case oauth2(authorize: String, token: String, userinfo: String, emails: String?)
    }

    /// Lowercase, as `?provider=` names it.
    public let name: String
    public var kind: Kind
    public var enabled: Bool
    /// The first one is used in the browser flow; all are accepted as ID tokens' audience.
    public var clientIDs: [String]
    public var secret: Secret?
    /// nil: `<public URL>/auth/v1/callback`.
    public var redirectURI: String?
    public var scopes: [String]

    public init(
        name: String, kind: Kind, enabled: Bool = true, clientIDs: [String], secret: Secret?, redirectURI: String? = nil,
        scopes: [String]
    ) {
        self.name = name
        self.kind = kind
        self.enabled = enabled
        self.clientIDs = clientIDs
        self.secret = secret
        self.redirectURI = redirectURI
        self.scopes = scopes
    }

    /// Names that are not external providers in GoTrue's API.
    static let reservedNames: Set<String> = ["email", "phone", "anonymous", "sso", "saml", "web3", "passkey"]

    /// The providers GoTrue knows by name, with what each needs beyond a client id.
    struct Preset {
        let kind: Kind?
        let scopes: [String]
    }

    static let openIDScopes = ["openid", "email", "profile"]

    static func preset(_ name: String) -> Preset? {
        switch name {
        case "google": Preset(kind: .openIDConnect(issuer: "https://accounts.google.com"), scopes: openIDScopes)
        // Apple's scopes are its own ("name email"); it posts the callback as a form when they are asked for.
        case "apple": Preset(kind: .openIDConnect(issuer: "https://appleid.apple.com"), scopes: ["name", "email"])
        case "gitlab": Preset(kind: .openIDConnect(issuer: "https://gitlab.com"), scopes: openIDScopes)
        case "azure": Preset(kind: .openIDConnect(issuer: "https://login.microsoftonline.com/common/v2.0"), scopes: openIDScopes)
        case "keycloak": Preset(kind: nil, scopes: openIDScopes)
        case "github":
            Preset(
                kind: .oauth2(
                    authorize: "https://github.com/login/oauth/authorize", token: "https://github.com/login/oauth/access_token",
                    userinfo: "https://api.github.com/user", emails: "https://api.github.com/user/emails"),
                scopes: ["read:user", "user:email"])
        default: nil
        }
    }

    /// Every provider configured in `environment`, sorted by name, with each problem reported through `problem`
    /// (variable, rule, observed) — a secret's value never among them.
    static func load(from environment: [String: String], problem: (String, String, String?) -> Void) -> [ExternalProvider] {
        // Longest field names first: `..._CLIENT_ID` must not be read as a provider named `X_CLIENT` with field `ID`.
        let fields = ProviderField.allCases.sorted { $0.rawValue.count > $1.rawValue.count }
        var values: [String: [ProviderField: String]] = [:]
        for (key, value) in environment where key.hasPrefix(ProviderField.prefix) && !value.isEmpty {
            let rest = key.dropFirst(ProviderField.prefix.count)
            guard let field = fields.first(where: { rest.hasSuffix("_" + $0.rawValue) }) else {
                problem(
                    key,
                    "is not a provider setting (STRIVE_AUTH_EXTERNAL_<NAME>_<\(ProviderField.allCases.map(\.rawValue).joined(separator: "|"))>)",
                    nil)
                continue
            }
            let name = rest.dropLast(field.rawValue.count + 1).lowercased()
            values[name, default: [:]][field] = value
        }
        var providers: [ExternalProvider] = []
        for (name, settings) in values.sorted(by: { $0.key < $1.key }) {
            if let provider = provider(
                name, settings,
                problem: { field, rule, observed in
                    problem(field.variable(for: name), rule, observed)
                })
            {
                providers.append(provider)
            }
        }
        return providers
    }

    private static func provider(
        _ name: String, _ settings: [ProviderField: String], problem: (ProviderField, String, String?) -> Void
    ) -> ExternalProvider? {
        func quoted(_ text: String) -> String { "'\(text.prefix(80))'" }
        guard name.range(of: "^[a-z][a-z0-9_]{0,39}$", options: .regularExpression) != nil, !reservedNames.contains(name) else {
            problem(
                .clientID,
                "names a provider GoTrue's API cannot offer: a name is a letter, then letters, digits or _, and not one of "
                    + reservedNames.sorted().joined(separator: ", "), nil)
            return nil
        }
        var enabled = true
        if let text = settings[.enabled] {
            switch text.lowercased() {
            case "true": enabled = true
            case "false": enabled = false
            default: problem(.enabled, "must be true or false", quoted(text))
            }
        }
        let clientIDs = (settings[.clientID] ?? "").split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }
            .filter { !$0.isEmpty }
        if clientIDs.isEmpty { problem(.clientID, "is required once any of the provider's settings is set", nil) }
        for field in [ProviderField.issuer, .authorizeURL, .tokenURL, .userinfoURL, .emailsURL, .redirectURI] {
            if let url = settings[field], !ConfigLoader.isAbsoluteWebURL(url) {
                problem(field, "must be an absolute http:// or https:// URL", quoted(url))
            }
        }
        let preset = preset(name)
        var kind: Kind?
        if let issuer = settings[.issuer] {
            kind = .openIDConnect(issuer: issuer.hasSuffix("/") ? String(issuer.dropLast()) : issuer)
        } else if case .oauth2(let authorize, let token, let userinfo, let emails)? = preset?.kind {
            kind = .oauth2(
                authorize: settings[.authorizeURL] ?? authorize, token: settings[.tokenURL] ?? token,
                userinfo: settings[.userinfoURL] ?? userinfo, emails: settings[.emailsURL] ?? emails)
        } else if let authorize = settings[.authorizeURL], let token = settings[.tokenURL], let userinfo = settings[.userinfoURL] {
            kind = .oauth2(authorize: authorize, token: token, userinfo: userinfo, emails: settings[.emailsURL])
        } else {
            kind = preset?.kind
        }
        guard let kind else {
            problem(.issuer, "is required for \(name): an OpenID Connect issuer, or AUTHORIZE_URL, TOKEN_URL and USERINFO_URL", nil)
            return nil
        }
        let scopeText = settings[.scopes]
        let scopes =
            scopeText.map { $0.split(whereSeparator: { $0 == " " || $0 == "," }).map(String.init) }
            ?? preset?.scopes ?? defaultScopes(kind)
        guard !clientIDs.isEmpty else { return nil }
        return ExternalProvider(
            name: name, kind: kind, enabled: enabled, clientIDs: clientIDs, secret: settings[.secret].map(Secret.init),
            redirectURI: settings[.redirectURI], scopes: scopes)
    }

    private static func defaultScopes(_ kind: Kind) -> [String] {
        if case .openIDConnect = kind { return openIDScopes }
        return []
    }
}
