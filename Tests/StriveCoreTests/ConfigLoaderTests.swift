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

    @Test func authSettingsHaveSupabaseDefaultsAndAreValidated() async throws {
        let defaults = try await load([:]).auth
        #expect(defaults == .default)
        #expect(defaults.accessTokenLifetime == .seconds(3600))
        #expect(defaults.refreshReuseInterval == .seconds(10))
        #expect(defaults.bcryptCost >= 10)

        let tuned = try await load(["STRIVE_JWT_EXPIRY": "300", "STRIVE_REFRESH_REUSE_INTERVAL": "0", "STRIVE_AUTH_RATE_LIMIT_IP": "5"])
            .auth
        #expect(tuned.accessTokenLifetime == .seconds(300))
        #expect(tuned.refreshReuseInterval == .zero)
        #expect(tuned.attemptsPerMinutePerIP == 5)

        let error = await #expect(throws: ConfigurationError.self) {
            try await load(["STRIVE_JWT_EXPIRY": "forever", "STRIVE_BCRYPT_COST": "4", "STRIVE_AUTH_RATE_LIMIT_EMAIL": "0"])
        }
        #expect(
            Set(try #require(error).problems.map(\.variable)) == [
                "STRIVE_JWT_EXPIRY", "STRIVE_BCRYPT_COST", "STRIVE_AUTH_RATE_LIMIT_EMAIL",
            ])
        // Cheap hashes are for the test suite only.
        #expect(try await load(["STRIVE_ENV": "test", "STRIVE_BCRYPT_COST": "4"]).auth.bcryptCost == 4)
    }

    @Test func productionRequiresSecretsAndNeverGenerates() async throws {
        let loader = ConfigLoader(environment: ["STRIVE_ENV": "production"])
        let error = await #expect(throws: ConfigurationError.self) {
            try await loader.load(developmentSecret: noSecretStore)
        }
        #expect(Set(try #require(error).problems.map(\.variable)) == ["STRIVE_JWT_SECRET", "STRIVE_ANON_KEY", "STRIVE_SERVICE_ROLE_KEY"])
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

    @Test func productionAcceptsStrongSecretAndMatchingKeys() async throws {
        let secret = Secret(Self.strongSecret)
        let anon = try await APIKeys.derive(role: .anon, secret: secret)
        let service = try await APIKeys.derive(role: .serviceRole, secret: secret)
        let loader = ConfigLoader(environment: [
            "STRIVE_ENV": "production", "STRIVE_JWT_SECRET": Self.strongSecret,
            "STRIVE_ANON_KEY": anon, "STRIVE_SERVICE_ROLE_KEY": service,
            "DATABASE_URL": "postgres://owner:p%40ss@db.internal:6543/strive?sslmode=require",
        ])
        let config = try await loader.load(developmentSecret: noSecretStore)
        #expect(!config.jwtSecretWasGenerated)
        let expected = DatabaseURL(
            endpoint: .tcp(host: "db.internal", port: 6543), username: "owner", password: Secret("p@ss"),
            database: "strive", sslMode: .require
        )
        #expect(config.database == .external(expected))
    }

    @Test func keysMustMatchTheirRoleAndSecret() async throws {
        let secret = Secret(Self.strongSecret)
        let anon = try await APIKeys.derive(role: .anon, secret: secret)
        let foreign = try await APIKeys.derive(role: .serviceRole, secret: Secret("another-secret-Q1w2E3r4T5y6U7i8O9p0-zz"))
        let loader = ConfigLoader(environment: [
            "STRIVE_ENV": "production", "STRIVE_JWT_SECRET": Self.strongSecret,
            "STRIVE_ANON_KEY": foreign, "STRIVE_SERVICE_ROLE_KEY": anon,
        ])
        let error = await #expect(throws: ConfigurationError.self) {
            try await loader.load(developmentSecret: noSecretStore)
        }
        let problems = try #require(error).problems
        #expect(problems.count == 2)
        #expect(problems.contains { $0.variable == "STRIVE_SERVICE_ROLE_KEY" && $0.observed == "a key for role anon" })
    }

    @Test func flagsOverrideVariablesAndAreNamedInProblems() async throws {
        let loader = ConfigLoader(
            environment: ["STRIVE_PORT": "8080"], overrides: [.port: ("--port", "eighty")], workingDirectory: "/srv"
        )
        let error = await #expect(throws: ConfigurationError.self) {
            try await loader.load(developmentSecret: { _ in Self.strongSecret })
        }
        #expect(error?.problems.map(\.variable) == ["--port (STRIVE_PORT)"])
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
