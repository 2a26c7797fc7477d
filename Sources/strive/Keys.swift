import ArgumentParser
import Foundation
import StriveCore
import StriveDatabase
import StriveIdentity
import StriveServer

/// `strive keys list|rotate|revoke`: the asymmetric JWT signing keys every instance shares.
struct KeysCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "keys",
        abstract: "List, rotate and revoke the asymmetric JWT signing keys (ES256/RS256, published as JWKS).",
        discussion: """
            Without a key, tokens are HS256 with STRIVE_JWT_SECRET. `rotate` makes a new key the one that signs;
            the key it replaces keeps verifying until `revoke`, so no token in flight fails. Running servers
            start signing with the new key within 30 seconds and learn an unknown key id at once. Private keys
            are stored sealed under a key derived from STRIVE_JWT_SECRET: changing the secret makes them
            unusable (rotate again afterwards). API keys (anon, service role) stay HS256.
            """,
        subcommands: [List.self, Rotate.self, Revoke.self])

    /// Runs `body` with the key store on an owner connection, the JWT secret loaded as `serve` loads it,
    /// and returns what it returned (nil when it failed and the failure was reported).
    @discardableResult
    static func withStore<T: Sendable>(_ database: DatabaseOptions, _ body: @escaping @Sendable (SigningKeyStore) async throws -> T)
        async throws -> T?
    {
        let logger = makeLogger(level: try commandLogLevel())
        var result: T?
        try await reportingFailure { () async throws(StartupError) in
            let config = try await loadConfiguration(database.overrides)
            result = try await database.withOwnerConnection(logger: logger) { connection, _ throws(StartupError) in
                do {
                    return try await body(SigningKeyStore(connection: connection, secret: config.jwtSecret, logger: logger))
                } catch {
                    let server = DatabaseError.serverError(in: error)
                    throw .database(.statementFailed(sqlState: server?.sqlState, message: server?.message ?? "\(error)"))
                }
            }
        }
        return result
    }

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List the signing keys, newest first.")
        @OptionGroup var database: DatabaseOptions

        func run() async throws {
            try await KeysCommand.withStore(database) { store in
                let keys = try await store.list()
                if keys.isEmpty { print("No signing keys: tokens are HS256 (strive keys rotate makes one).") }
                for key in keys {
                    print("\(key.kid)  \(key.algorithm.rawValue)  \(key.status.rawValue)  \(key.createdAt.formatted(.iso8601))")
                }
            }
        }
    }

    struct Rotate: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Make a new key the signing key; the old one keeps verifying.")
        @Option(help: "ES256 or RS256.") var algorithm = "ES256"
        @OptionGroup var database: DatabaseOptions

        func validate() throws {
            guard SigningKey.Algorithm(rawValue: algorithm.uppercased()) != nil else {
                throw ValidationError("--algorithm must be ES256 or RS256")
            }
        }

        func run() async throws {
            let algorithm = SigningKey.Algorithm(rawValue: algorithm.uppercased()) ?? .es256
            try await KeysCommand.withStore(database) { store in
                let key = try await store.rotate(to: algorithm)
                print("\(key.kid)  \(key.algorithm.rawValue)  current")
            }
        }
    }

    struct Revoke: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Stop a previous key from verifying tokens.")
        @Argument(help: "The key id (kid).") var kid: String
        @OptionGroup var database: DatabaseOptions

        func run() async throws {
            let kid = self.kid
            let refusal: String
            switch try await KeysCommand.withStore(database, { store in try await store.revoke(kid: kid) }) {
            case nil: return
            case .revoked?:
                print("\(kid)  revoked")
                return
            case .notFound?: refusal = "no signing key \(kid) (strive keys list shows them)"
            case .isCurrent?: refusal = "\(kid) signs today's tokens: rotate to a new key before revoking it"
            }
            FileHandle.standardError.write(Data("strive: \(refusal)\n".utf8))
            throw ExitCode(1)
        }
    }
}
