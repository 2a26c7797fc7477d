import Foundation
import StriveCore
import Testing

@Suite("Configuration")
struct ConfigLoaderTests {
    static let strongSecret = "Zq8#kP2v!Lm9@xR4$tW7^bN1&cF6*hJ3"
    let noSecretStore: (String) throws -> String = { _ in
        Issue.record("must not generate a secret")
        return ""
    }

    func load(_ environment: [String: String], store: ((String) throws -> String)? = nil) async throws(ConfigurationError) -> StriveConfig {
        let loader = ConfigLoader(environment: environment, workingDirectory: "/srv/app")
        return try await loader.load(developmentSecret: store ?? { _ in Self.strongSecret })
    }

    @Test func developmentDefaults() async throws {
        let config = try await load([:])
        #expect(config.environment == .development)
        #expect(config.host == "127.0.0.1")
        #expect(config.port == 54321)
        #expect(config.dataDirectory == "/srv/app/.strive")
        #expect(config.storageDirectory == "/srv/app/.strive/storage")
        #expect(config.publicURL == "http://127.0.0.1:54321")
        #expect(config.database == .managed)
        #expect(config.jwtSecretWasGenerated)
        #expect(await APIKeys.role(of: config.apiKeys.anon, secret: config.jwtSecret) == .anon)
        #expect(await APIKeys.role(of: config.apiKeys.serviceRole.value, secret: config.jwtSecret) == .serviceRole)
    }

    @Test func everyProblemIsReportedTogetherWithoutSecretValues() async throws {
        let weak = "short-secret"
        let error = await #expect(throws: ConfigurationError.self) {
            try await load([
                "STRIVE_ENV": "staging", "STRIVE_PORT": "70000", "STRIVE_LOG_LEVEL": "loud",
                "STRIVE_JWT_SECRET": weak, "DATABASE_URL": "mysql://root:hunter2@db/app",
                "STRIVE_PUBLIC_URL": "ftp://example.com",
            ])
        }
        let problems = try #require(error).problems
        #expect(
            Set(problems.map(\.variable)) == [
                "STRIVE_ENV", "STRIVE_PORT", "STRIVE_LOG_LEVEL", "STRIVE_JWT_SECRET", "DATABASE_URL", "STRIVE_PUBLIC_URL",
            ])
        let text = try #require(error).description
        #expect(!text.contains(weak))
        #expect(!text.contains("hunter2"))
        #expect(text.contains("invalid configuration (6 problems)"))
    }

    @Test func authSettingsAreReadAsGoTrueWritesThem() async throws {
        let auth = try await load([
            "STRIVE_AUTH_PASSWORD_REQUIRED_CHARACTERS": #"abc:0123456789::\:;"#,
            "STRIVE_AUTH_HOOK_CUSTOM_ACCESS_TOKEN": "pg-functions://postgres/public/customize_token",
        ]).auth
        #expect(auth.passwordRequiredCharacters == ["abc", "0123456789", ":;"], "empty sets dropped, \\: a literal colon")
        #expect(auth.accessTokenHook?.qualifiedName == #""public"."customize_token""#)
        #expect(auth.passwordMinLength == 8 && auth.securePasswordChange && !auth.signupDisabled)
    }

    @Test func badAuthSettingsAreEachReported() async throws {
        let error = await #expect(throws: ConfigurationError.self) {
            try await load([
                "STRIVE_AUTH_HOOK_CUSTOM_ACCESS_TOKEN": "pg-functions://postgres/public/drop table x",
                "STRIVE_AUTH_PASSWORD_MIN_LENGTH": "5", "STRIVE_AUTH_DISABLE_SIGNUP": "perhaps",
                "STRIVE_AUTH_SECURE_PASSWORD_CHANGE": "sometimes",
            ])
        }
        #expect(
            Set(try #require(error).problems.map(\.variable)) == [
                "STRIVE_AUTH_HOOK_CUSTOM_ACCESS_TOKEN", "STRIVE_AUTH_PASSWORD_MIN_LENGTH", "STRIVE_AUTH_DISABLE_SIGNUP",
                "STRIVE_AUTH_SECURE_PASSWORD_CHANGE",
            ])
    }

    @Test func externalProvidersAreReadByNameWithTheirPresets() async throws {
        let providers = try await load([
            "STRIVE_AUTH_EXTERNAL_GITHUB_CLIENT_ID": "gh", "STRIVE_AUTH_EXTERNAL_GITHUB_SECRET": "gh-secret",
            "STRIVE_AUTH_EXTERNAL_APPLE_CLIENT_ID": "com.example.web, com.example.ios",
            "STRIVE_AUTH_EXTERNAL_MY_IDP_CLIENT_ID": "strive", "STRIVE_AUTH_EXTERNAL_MY_IDP_ISSUER": "https://sso.example/realms/main/",
            "STRIVE_AUTH_EXTERNAL_MY_IDP_SCOPES": "openid,email groups", "STRIVE_AUTH_EXTERNAL_MY_IDP_ENABLED": "false",
        ]).auth.externalProviders
        #expect(providers.map(\.name) == ["apple", "github", "my_idp"])
        let apple = try #require(providers.first)
        #expect(apple.kind == .openIDConnect(issuer: "https://appleid.apple.com") && apple.secret == nil)
        #expect(apple.clientIDs == ["com.example.web", "com.example.ios"], "each listed id is an accepted audience")
        let github = providers[1]
        #expect(github.scopes == ["read:user", "user:email"] && github.secret?.value == "gh-secret")
        guard case .oauth2(_, _, let userinfo, let emails) = github.kind else {
            Issue.record("github is plain OAuth 2.0")
            return
        }
        #expect(userinfo == "https://api.github.com/user" && emails == "https://api.github.com/user/emails")
        let custom = providers[2]
        #expect(custom.kind == .openIDConnect(issuer: "https://sso.example/realms/main") && !custom.enabled)
        #expect(custom.scopes == ["openid", "email", "groups"])
    }

    @Test func badProviderSettingsAreEachReportedWithoutTheSecret() async throws {
        let error = await #expect(throws: ConfigurationError.self) {
            try await load([
                "STRIVE_AUTH_EXTERNAL_KEYCLOAK_CLIENT_ID": "strive", "STRIVE_AUTH_EXTERNAL_KEYCLOAK_SECRET": "very-secret-value",
                "STRIVE_AUTH_EXTERNAL_GOOGLE_SECRET": "google-secret", "STRIVE_AUTH_EXTERNAL_ACME_CLIENT_ID": "x",
                "STRIVE_AUTH_EXTERNAL_ACME_ISSUER": "ftp://sso.example", "STRIVE_AUTH_EXTERNAL_GITHUB_CLIENT_ID": "x",
                "STRIVE_AUTH_EXTERNAL_GITHUB_ENABLED": "yes", "STRIVE_AUTH_EXTERNAL_EMAIL_CLIENT_ID": "x",
                "STRIVE_AUTH_EXTERNAL_GITHUB_COLOUR": "blue",
            ])
        }
        let problems = try #require(error).problems
        #expect(
            Set(problems.map(\.variable)) == [
                "STRIVE_AUTH_EXTERNAL_KEYCLOAK_ISSUER", "STRIVE_AUTH_EXTERNAL_GOOGLE_CLIENT_ID", "STRIVE_AUTH_EXTERNAL_ACME_ISSUER",
                "STRIVE_AUTH_EXTERNAL_GITHUB_ENABLED", "STRIVE_AUTH_EXTERNAL_EMAIL_CLIENT_ID", "STRIVE_AUTH_EXTERNAL_GITHUB_COLOUR",
            ], "\(problems)")
        let printed = "\(try #require(error))"
        #expect(!printed.contains("very-secret-value") && !printed.contains("google-secret"))
    }

    @Test func theLocalStoreIsTheDefaultBackend() async throws {
        #expect(try await load([:]).storageBackend == .local)
    }

    @Test func s3SettingsFillInTheAWSDefaults() async throws {
        let s3 = try await load([
            "STRIVE_STORAGE_BACKEND": "S3", "STRIVE_S3_BUCKET": "strive-objects", "STRIVE_S3_ACCESS_KEY_ID": "key",
            "STRIVE_S3_SECRET_ACCESS_KEY": "secret", "STRIVE_S3_REGION": "eu-west-1",
        ]).storageBackend
        guard case .s3(let settings) = s3 else {
            Issue.record("expected the S3 backend, got \(s3)")
            return
        }
        #expect(settings.endpoint == "https://s3.eu-west-1.amazonaws.com")
        #expect(!settings.forcePathStyle)
        #expect(settings.partSize == 8 << 20)
        #expect(settings.secretAccessKey.description == "<redacted>")
    }

    @Test func everyBadS3SettingIsReportedWithoutTheSecret() async throws {
        let error = await #expect(throws: ConfigurationError.self) {
            try await load([
                "STRIVE_STORAGE_BACKEND": "s3", "STRIVE_S3_BUCKET": "Not_A_Bucket", "STRIVE_S3_ENDPOINT": "ftp://s3.example/path",
                "STRIVE_S3_FORCE_PATH_STYLE": "maybe", "STRIVE_S3_PART_SIZE_MB": "4",
                "STRIVE_S3_SECRET_ACCESS_KEY": "very-secret-value",
            ])
        }
        let problems = try #require(error).problems
        #expect(
            Set(problems.map(\.variable)) == [
                "STRIVE_S3_BUCKET", "STRIVE_S3_ENDPOINT", "STRIVE_S3_FORCE_PATH_STYLE", "STRIVE_S3_PART_SIZE_MB", "STRIVE_S3_ACCESS_KEY_ID",
            ])
        #expect(!String(describing: try #require(error)).contains("very-secret-value"))
    }

    @Test func anUnknownStorageBackendIsRefused() async throws {
        let unknown = await #expect(throws: ConfigurationError.self) { try await load(["STRIVE_STORAGE_BACKEND": "ftp"]) }
        #expect(try #require(unknown).problems.map(\.variable) == ["STRIVE_STORAGE_BACKEND"])
    }

    @Test func authSettingsHaveSupabasesDefaults() async throws {
        let defaults = try await load([:]).auth
        #expect(defaults == .default)
        #expect(defaults.accessTokenLifetime == .seconds(3600))
        #expect(defaults.refreshReuseInterval == .seconds(10))
        #expect(defaults.bcryptCost >= 10)
    }

    @Test func authSettingsAreReadFromTheirVariables() async throws {
        let tuned = try await load(["STRIVE_JWT_EXPIRY": "300", "STRIVE_REFRESH_REUSE_INTERVAL": "0", "STRIVE_AUTH_RATE_LIMIT_IP": "5"])
            .auth
        #expect(tuned.accessTokenLifetime == .seconds(300))
        #expect(tuned.refreshReuseInterval == .zero)
        #expect(tuned.signInsPerIP == 5)
    }

    @Test func badAuthSettingsAreAllReported() async throws {
        let error = await #expect(throws: ConfigurationError.self) {
            try await load(["STRIVE_JWT_EXPIRY": "forever", "STRIVE_BCRYPT_COST": "4", "STRIVE_AUTH_RATE_LIMIT_EMAIL": "0"])
        }
        #expect(
            Set(try #require(error).problems.map(\.variable)) == [
                "STRIVE_JWT_EXPIRY", "STRIVE_BCRYPT_COST", "STRIVE_AUTH_RATE_LIMIT_EMAIL",
            ])
    }

    @Test func cheapPasswordHashesAreForTheTestEnvironmentOnly() async throws {
        #expect(try await load(["STRIVE_ENV": "test", "STRIVE_BCRYPT_COST": "4"]).auth.bcryptCost == 4)
    }

    @Test func productionRequiresItsSecretsKeysAndMailServer() async throws {
        let loader = ConfigLoader(environment: ["STRIVE_ENV": "production"])
        let error = await #expect(throws: ConfigurationError.self) {
            try await loader.load(developmentSecret: noSecretStore)
        }
        // Confirmation mail is on by default in production, so the mail server is required too.
        #expect(
            Set(try #require(error).problems.map(\.variable)) == [
                "STRIVE_JWT_SECRET", "STRIVE_ANON_KEY", "STRIVE_SERVICE_ROLE_KEY", "STRIVE_SMTP_URL",
            ])
    }

    @Test(arguments: [
        "super-secret-jwt-token-with-at-least-32-characters-long",
        "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
        "abcabcabcabcabcabcabcabcabcabcabcabc",
    ])
    func productionRefusesWeakSecrets(secret: String) async throws {
        let loader = ConfigLoader(environment: ["STRIVE_ENV": "production", "STRIVE_JWT_SECRET": secret])
        let error = await #expect(throws: ConfigurationError.self) {
            try await loader.load(developmentSecret: noSecretStore)
        }
        let problem = try #require(error?.problems.first { $0.variable == "STRIVE_JWT_SECRET" })
        #expect(!problem.description.contains(secret))
    }

    @Test func productionStartsWithAStrongSecretAndItsKeys() async throws {
        let secret = Secret(Self.strongSecret)
        let anon = try await APIKeys.derive(role: .anon, secret: secret)
        let service = try await APIKeys.derive(role: .serviceRole, secret: secret)
        let loader = ConfigLoader(environment: [
            "STRIVE_ENV": "production", "STRIVE_JWT_SECRET": Self.strongSecret,
            "STRIVE_ANON_KEY": anon, "STRIVE_SERVICE_ROLE_KEY": service,
            "DATABASE_URL": "postgres://owner:p%40ss@db.internal:6543/strive?sslmode=require",
            "STRIVE_SMTP_URL": "smtp://mailer:s%3Acret@smtp.example.com",
        ])
        let config = try await loader.load(developmentSecret: noSecretStore)
        #expect(!config.jwtSecretWasGenerated)
        #expect(!config.auth.autoconfirm)
        #expect(
            config.mail.smtp
                == SMTPURL(host: "smtp.example.com", port: 587, username: "mailer", password: Secret("s:cret"), security: .startTLS))
        let expected = DatabaseURL(
            endpoint: .tcp(host: "db.internal", port: 6543), username: "owner", password: Secret("p@ss"),
            database: "strive", sslMode: .require
        )
        #expect(config.database == .external(expected))
    }

    @Test func aKeyForAnotherRoleOrSecretIsRefused() async throws {
        let secret = Secret(Self.strongSecret)
        let anon = try await APIKeys.derive(role: .anon, secret: secret)
        let foreign = try await APIKeys.derive(role: .serviceRole, secret: Secret("another-secret-Q1w2E3r4T5y6U7i8O9p0-zz"))
        let loader = ConfigLoader(environment: [
            "STRIVE_ENV": "production", "STRIVE_JWT_SECRET": Self.strongSecret,
            "STRIVE_ANON_KEY": foreign, "STRIVE_SERVICE_ROLE_KEY": anon, "STRIVE_AUTH_AUTOCONFIRM": "true",
        ])
        let error = await #expect(throws: ConfigurationError.self) {
            try await loader.load(developmentSecret: noSecretStore)
        }
        let problems = try #require(error).problems
        #expect(problems.count == 2)
        #expect(problems.contains { $0.variable == "STRIVE_SERVICE_ROLE_KEY" && $0.observed == "a key for role anon" })
    }

    @Test func developmentConfirmsSignUpsWithoutAMailServer() async throws {
        let development = try await load([:])
        #expect(development.auth.autoconfirm && development.mail.smtp == nil)
        #expect(development.auth.siteURL == "http://localhost:3000" && development.auth.otpLifetime == .seconds(3600))
    }

    @Test func mailAndRedirectSettingsAreReadFromTheirVariables() async throws {
        let tuned = try await load([
            "STRIVE_SMTP_URL": "smtps://relay.example.com", "STRIVE_AUTH_AUTOCONFIRM": "FALSE",
            "STRIVE_SITE_URL": "https://app.example.com",
            "STRIVE_AUTH_REDIRECT_URLS": "https://*.preview.example.com/**, http://localhost:3000/**",
            "STRIVE_AUTH_EMAIL_RATE_LIMIT": "5", "STRIVE_SMTP_SENDER_NAME": "Acme Ünited",
        ])
        #expect(tuned.mail.smtp?.security == .implicitTLS && tuned.mail.smtp?.port == 465 && tuned.mail.smtp?.username == nil)
        #expect(!tuned.auth.autoconfirm && tuned.auth.emailsPerHour == 5)
        #expect(tuned.auth.redirectURLs == ["https://*.preview.example.com/**", "http://localhost:3000/**"])
        #expect(tuned.mail.senderName == "Acme Ünited")
    }

    @Test func badMailAndRedirectSettingsAreAllReported() async throws {
        let error = await #expect(throws: ConfigurationError.self) {
            try await load([
                "STRIVE_SMTP_URL": "http://mail.example.com", "STRIVE_AUTH_AUTOCONFIRM": "maybe", "STRIVE_SITE_URL": "app.example.com",
                "STRIVE_AUTH_REDIRECT_URLS": "ftp://files.example.com", "STRIVE_SMTP_SENDER_EMAIL": "not an address",
                "STRIVE_SMTP_CA_FILE": "/no/such/ca.pem", "STRIVE_MAIL_TEMPLATES_DIR": "/no/such/templates",
            ])
        }
        #expect(
            Set(try #require(error).problems.map(\.variable)) == [
                "STRIVE_SMTP_URL", "STRIVE_AUTH_AUTOCONFIRM", "STRIVE_SITE_URL", "STRIVE_AUTH_REDIRECT_URLS", "STRIVE_SMTP_SENDER_EMAIL",
                "STRIVE_SMTP_CA_FILE", "STRIVE_MAIL_TEMPLATES_DIR",
            ])
    }

    /// Plain-text SMTP, with a password on the wire, is for a local relay in development only.
    @Test func plainTextSMTPIsRefusedInProduction() async throws {
        #expect(try await load(["STRIVE_SMTP_URL": "smtp://localhost:1025?starttls=off"]).mail.smtp?.security == SMTPURL.Security.none)
        let secret = Secret(Self.strongSecret)
        let production = ConfigLoader(environment: [
            "STRIVE_ENV": "production", "STRIVE_JWT_SECRET": Self.strongSecret,
            "STRIVE_ANON_KEY": try await APIKeys.derive(role: .anon, secret: secret),
            "STRIVE_SERVICE_ROLE_KEY": try await APIKeys.derive(role: .serviceRole, secret: secret),
            "STRIVE_SMTP_URL": "smtp://user:pw@localhost:1025?starttls=off",
        ])
        let plain = await #expect(throws: ConfigurationError.self) { try await production.load(developmentSecret: noSecretStore) }
        #expect(try #require(plain).problems.map(\.variable) == ["STRIVE_SMTP_URL"])
        #expect(try #require(plain).description.contains("STARTTLS or TLS"))
        #expect(!(try #require(plain).description.contains("pw@")), "the URL's password is never printed")
    }

    @Test func aFlagOverridesItsVariableAndIsNamedInTheProblem() async throws {
        let loader = ConfigLoader(
            environment: ["STRIVE_PORT": "8080"], overrides: [.port: ("--port", "eighty")], workingDirectory: "/srv"
        )
        let error = await #expect(throws: ConfigurationError.self) {
            try await loader.load(developmentSecret: { _ in Self.strongSecret })
        }
        #expect(error?.problems.map(\.variable) == ["--port (STRIVE_PORT)"])
    }

    @Test func theProductSchemaIsStriveUnlessNoneIsChosen() async throws {
        #expect(try ConfigLoader(environment: [:]).loadDatabaseSettings().productSchema == .strive)
        #expect(try ConfigLoader(environment: ["STRIVE_PRODUCT_SCHEMA": "None"]).loadDatabaseSettings().productSchema == .none)
        #expect(throws: ConfigurationError.self) { try ConfigLoader(environment: ["STRIVE_PRODUCT_SCHEMA": "crm"]).loadDatabaseSettings() }
    }

    @Test func developmentSecretStoreFailureIsAProblem() async throws {
        struct Unwritable: Error, CustomStringConvertible { var description: String { "/x is a file, not a directory" } }
        let error = await #expect(throws: ConfigurationError.self) {
            try await load([:], store: { _ in throw Unwritable() })
        }
        #expect(error?.problems.first?.variable == "STRIVE_DATA_DIR")
    }

    @Test(arguments: [
        ("postgresql://u@h/db", DatabaseURL.Endpoint.tcp(host: "h", port: 5432), "db"),
        ("postgres://u:pw@h:1234", .tcp(host: "h", port: 1234), "u"),
        ("postgres://u@localhost/db?host=/var/run/postgresql", .unixSocket(directory: "/var/run/postgresql", port: 5432), "db"),
    ])
    func databaseURLForms(text: String, endpoint: DatabaseURL.Endpoint, database: String) throws {
        let url = try DatabaseURL(parsing: text)
        #expect(url.endpoint == endpoint)
        #expect(url.database == database)
        #expect(url.username == "u")
    }

    @Test(arguments: ["not a url at all", "http://u@h/db", "postgres://h/db", "postgres://u@/db", "postgres://u@h/db?sslmode=sometimes"])
    func malformedDatabaseURLs(text: String) {
        #expect(throws: DatabaseURL.ParseError.self) { try DatabaseURL(parsing: text) }
    }

    @Test func derivedKeysAreStable() async throws {
        let secret = Secret(Self.strongSecret)
        let first = try await APIKeys.derive(role: .anon, secret: secret)
        // A header or payload encoded in another key order would sign differently; the order used to vary.
        for _ in 0..<20 {
            #expect(try await APIKeys.derive(role: .anon, secret: secret) == first)
        }
        #expect(first.hasPrefix("eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9."), "header {\"alg\":\"HS256\",\"typ\":\"JWT\"}: \(first)")
        #expect(await APIKeys.role(of: first + "x", secret: secret) == nil)
    }
}
