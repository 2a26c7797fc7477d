import Foundation
import PostgresNIO
import StriveCore
import StriveIdentity

/// An `auth.users` row.
public struct UserRecord: Sendable, Equatable {
    public var id: UUID
    public var aud: String
    public var role: String
    public var email: String?
    public var encryptedPassword: String?
    public var emailConfirmedAt: Date?
    public var lastSignInAt: Date?
    public var appMetadata: [String: JSONValue]
    public var userMetadata: [String: JSONValue]
    public var isAnonymous: Bool
    public var bannedUntil: Date?
    /// The address an email change waits to confirm.
    public var emailChange: String?
    public var emailChangeSentAt: Date?
    public var invitedAt: Date?
    /// `auth.identities` rows as GoTrue lists them (`GET /user`, the admin API).
    public var identities: [JSONValue]
    public var createdAt: Date
    public var updatedAt: Date

    /// The select list `init(row:)` reads.
    static let columns = """
        id, aud, role, email, encrypted_password, email_confirmed_at, last_sign_in_at,
        raw_app_meta_data::text as app_metadata, raw_user_meta_data::text as user_metadata, is_anonymous,
        banned_until, email_change, email_change_sent_at, invited_at, auth.user_identities(id)::text as identities,
        created_at, updated_at
        """

    init(row: PostgresRow) throws {
        let cells = row.makeRandomAccess()
        id = try cells["id"].decode(UUID.self)
        aud = try cells["aud"].decode(String.self)
        role = try cells["role"].decode(String.self)
        email = try cells["email"].decode(String?.self)
        encryptedPassword = try cells["encrypted_password"].decode(String?.self)
        emailConfirmedAt = try cells["email_confirmed_at"].decode(Date?.self)
        lastSignInAt = try cells["last_sign_in_at"].decode(Date?.self)
        appMetadata = JSONValue(jsonText: try cells["app_metadata"].decode(String.self))?.objectValue ?? [:]
        userMetadata = JSONValue(jsonText: try cells["user_metadata"].decode(String.self))?.objectValue ?? [:]
        isAnonymous = try cells["is_anonymous"].decode(Bool.self)
        bannedUntil = try cells["banned_until"].decode(Date?.self)
        emailChange = try cells["email_change"].decode(String?.self)
        emailChangeSentAt = try cells["email_change_sent_at"].decode(Date?.self)
        invitedAt = try cells["invited_at"].decode(Date?.self)
        if case .array(let rows) = JSONValue(jsonText: try cells["identities"].decode(String.self)) ?? .null {
            identities = rows
        } else {
            identities = []
        }
        createdAt = try cells["created_at"].decode(Date.self)
        updatedAt = try cells["updated_at"].decode(Date.self)
    }

    public func isBanned(at now: Date = Date()) -> Bool {
        bannedUntil.map { $0 > now } ?? false
    }

    /// Supabase Auth's user object.
    public var json: UserJSON {
        UserJSON(
            id: id.uuidString.lowercased(), aud: aud, role: role, email: email ?? "",
            email_confirmed_at: emailConfirmedAt, phone: "", confirmed_at: emailConfirmedAt,
            last_sign_in_at: lastSignInAt, app_metadata: .object(appMetadata), user_metadata: .object(userMetadata),
            identities: identities, created_at: createdAt, updated_at: updatedAt, is_anonymous: isAnonymous,
            banned_until: bannedUntil, new_email: emailChange, email_change_sent_at: emailChangeSentAt,
            invited_at: invitedAt
        )
    }
}

public struct UserJSON: Codable, Sendable, Equatable {
    public var id: String
    public var aud: String
    public var role: String
    public var email: String
    public var email_confirmed_at: Date?
    public var phone: String
    public var confirmed_at: Date?
    public var last_sign_in_at: Date?
    public var app_metadata: JSONValue
    public var user_metadata: JSONValue
    public var identities: [JSONValue]
    public var created_at: Date
    public var updated_at: Date
    public var is_anonymous: Bool
    public var banned_until: Date?
    /// The address an email change waits to confirm (absent when none is pending).
    public var new_email: String? = nil
    public var email_change_sent_at: Date? = nil
    public var invited_at: Date? = nil
    /// The user's MFA factors (`GET /user`; absent elsewhere).
    public var factors: [AuthService.FactorJSON]? = nil
}

/// Supabase Auth's session (token) response.
public struct TokenResponse: Codable, Sendable {
    public var access_token: String
    public var token_type: String
    public var expires_in: Int
    public var expires_at: Int
    public var refresh_token: String
    public var user: UserJSON
    /// The provider's tokens, when the session comes from an external provider's sign-in.
    public var provider_token: String? = nil
    public var provider_refresh_token: String? = nil
}

public struct UserListResponse: Codable, Sendable {
    public var users: [UserJSON]
    public var aud: String
}
