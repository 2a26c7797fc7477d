import Foundation
import PostgresNIO
import StriveAuth
import StriveCore
import StriveDatabase
import StriveIdentity

extension TenantFixture {
    /// An access token for every actor, as Auth would issue it: a live session row and the claims of a
    /// signed-in user (the keys for anon and service). `lifetime` shortens them for expiry tests.
    public func accessTokens(on database: TestDatabase, lifetime: Int = 3600) async throws -> [Actor: String] {
        var tokens: [Actor: String] = [
            .anon: try await APIKeys.derive(role: .anon, secret: TestCluster.jwtSecret),
            .service: try await APIKeys.derive(role: .serviceRole, secret: TestCluster.jwtSecret),
        ]
        for actor in Actor.allCases {
            guard let user = userID(of: actor) else { continue }
            tokens[actor] = try await accessToken(for: user, on: database, lifetime: lifetime)
        }
        return tokens
    }

    /// A token for one user with a fresh session.
    public func accessToken(for user: UUID, on database: TestDatabase, lifetime: Int = 3600) async throws -> String {
        try await Self.accessToken(for: user, on: database, lifetime: lifetime)
    }

    /// A token for any user of `database` (fixture or not) with a fresh session.
    public static func accessToken(for user: UUID, on database: TestDatabase, lifetime: Int = 3600) async throws -> String {
        let session = UUID()
        try await database.withOwnerConnection { connection in
            try await connection.run("insert into auth.sessions (id, user_id) values (\(session), \(user))", logger: database.logger)
        }
        let signer = try await TokenService(secret: TestCluster.jwtSecret, issuer: "test", accessTokenLifetime: .seconds(lifetime))
        let now = Int(Date().timeIntervalSince1970)
        return try await signer.sign(
            AccessClaims(
                sub: user.uuidString.lowercased(), aud: "authenticated", role: "authenticated", exp: now + lifetime, iat: now,
                session_id: session.uuidString.lowercased()))
    }
}
