import Foundation
import HTTPTypes
import StriveDatabase

/// Who is calling, from the `apikey` header and `Authorization: Bearer` token, both verified JWTs.
/// The bearer token decides the role when present (a user's access token, or a key sent as bearer, as
/// the Supabase clients do); a present `apikey` must itself be a valid key.
public struct Caller: Sendable {
    public let role: DatabaseRole
    public let token: VerifiedToken

    public init(role: DatabaseRole, token: VerifiedToken) {
        self.role = role
        self.token = token
    }

    public var userID: UUID? { token.userID }
    public var sessionID: UUID? { token.sessionID }

    /// The identity the request's database transaction runs as.
    public func identity(method: String, path: String) -> RequestIdentity {
        RequestIdentity(
            role: role, claimsJSON: token.payloadJSON, method: method, path: path,
            sessionID: role == .authenticated ? sessionID : nil
        )
    }

    /// Whether the caller may use the administrative endpoints: the service role, or a user whose platform role
    /// makes `app.is_admin()` true — asked of the database under the caller's own identity, never read from the token.
    public func isAdministrator(on database: Database, method: String, path: String) async throws -> Bool {
        if role == .serviceRole { return true }
        return try await database.isPlatformAdmin(identity(method: method, path: path))
    }

    public static func resolve(headers: HTTPFields, tokens: TokenService) async throws(AuthError) -> Caller {
        let apikey = headers[.apikey].flatMap { $0.isEmpty ? nil : $0 }
        let bearer = headers[.authorization].flatMap(bearerToken)
        guard apikey != nil || bearer != nil else { throw .noAPIKey }

        var keyToken: VerifiedToken?
        if let apikey {
            let verified = try await tokens.verify(apikey)
            guard ["anon", "service_role"].contains(verified.claims.role), verified.claims.sub == nil else {
                throw .badJWT("the apikey header must carry the anon or service role key")
            }
            keyToken = verified
        }
        let token: VerifiedToken
        if let bearer {
            token = try await tokens.verify(bearer)
        } else if let keyToken {
            token = keyToken
        } else {
            throw .noAPIKey
        }
        guard let role = DatabaseRole(rawValue: token.claims.role) else {
            throw .badJWT("role \"\(token.claims.role)\" is not anon, authenticated or service_role")
        }
        if role == .authenticated && (token.userID == nil || token.sessionID == nil) {
            throw .badJWT("an authenticated token needs sub and session_id claims")
        }
        return Caller(role: role, token: token)
    }

    /// `Bearer <token>` → the token. Byte-level: this runs on every request.
    public static func bearerToken(_ header: String) -> String? {
        let bytes = Array(header.utf8)
        guard bytes.count > 7, bytes[6] == UInt8(ascii: " "),
            String(decoding: bytes[0..<6], as: UTF8.self).lowercased() == "bearer"
        else { return nil }
        var start = 7
        var end = bytes.count
        while start < end && bytes[start] == UInt8(ascii: " ") { start += 1 }
        while end > start && bytes[end - 1] == UInt8(ascii: " ") { end -= 1 }
        return start < end ? String(decoding: bytes[start..<end], as: UTF8.self) : nil
    }
}
