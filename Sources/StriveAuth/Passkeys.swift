import Foundation
import Hummingbird
import Logging
import PostgresNIO
import StriveCore
import StriveDatabase
import StriveIdentity
import StriveWebAuthn

/// A registered passkey as GoTrue lists it.
struct PasskeyJSON: Encodable, Sendable {
    let id: String
    let friendly_name: String?
    let created_at: Date
    let last_used_at: Date?
}

/// `auth.webauthn_credentials` and `auth.webauthn_challenges`, through the service role.
struct PasskeyStore: Sendable {
    let database: Database
    let logger: Logger
    /// As GoTrue: a user's passkeys are bounded.
    static let maximumPerUser = 10
    static let challengeLifetime: Duration = .seconds(300)

    private func service<T: Sendable>(_ path: String, _ body: (PostgresConnection) async throws -> T) async throws -> T {
        try await database.withServiceRoleTransaction(method: "AUTH", path: path, logger: logger, body)
    }

    func list(user: UUID) async throws -> [PasskeyJSON] {
        try await service("/passkeys") { connection in
            try await connection.rows(
                """
                select id, friendly_name, created_at, last_used_at from auth.webauthn_credentials
                where user_id = \(user) order by created_at, id
                """, logger: logger
            ).map(Self.passkey)
        }
    }

    static func passkey(_ row: PostgresRow) throws -> PasskeyJSON {
        let (id, name, created, used) = try row.decode((UUID, String, Date, Date?).self)
        return PasskeyJSON(
            id: id.uuidString.lowercased(), friendly_name: name.isEmpty ? nil : name, created_at: created, last_used_at: used)
    }

    func credentialIDs(user: UUID) async throws -> [[UInt8]] {
        try await service("/passkeys") { connection in
            try await connection.rows("select credential_id from auth.webauthn_credentials where user_id = \(user)", logger: logger)
                .map { Array(try $0.decode(ByteBuffer.self).readableBytesView) }
        }
    }

    func newChallenge(user: UUID?, type: String) async throws -> (id: UUID, challenge: [UInt8], expiresAt: Date) {
        let challenge = RelyingParty.newChallenge()
        let seconds = Int(Self.challengeLifetime.components.seconds)
        return try await service("/passkeys") { connection in
            try await connection.run("delete from auth.webauthn_challenges where expires_at < now() - interval '1 hour'", logger: logger)
            guard
                let row = try await connection.rows(
                    """
                    insert into auth.webauthn_challenges (user_id, challenge_type, challenge, expires_at)
                    values (\(user), \(type), \(ByteBuffer(bytes: challenge)), now() + make_interval(secs => \(seconds)))
                    returning id, expires_at
                    """, logger: logger
                ).first
            else { throw AuthStore.StoreError.noRow("auth.webauthn_challenges") }
            let (id, expires) = try row.decode((UUID, Date).self)
            return (id, challenge, expires)
        }
    }

    /// The challenge `id` of `type` (for `user`, when it was made for one), used up.
    func takeChallenge(_ id: UUID, type: String, user: UUID?) async throws -> (challenge: [UInt8], fresh: Bool)? {
        try await service("/passkeys") { connection in
            guard
                let row = try await connection.rows(
                    """
                    delete from auth.webauthn_challenges
                    where id = \(id) and challenge_type = \(type) and user_id is not distinct from \(user)
                    returning challenge, expires_at > now()
                    """, logger: logger
                ).first
            else { return nil }
            let (challenge, fresh) = try row.decode((ByteBuffer, Bool).self)
            return (Array(challenge.readableBytesView), fresh)
        }
    }

    enum Saved {
        case saved(PasskeyJSON)
        case exists, tooMany
    }

    func save(user: UUID, _ credential: RelyingParty.Registered, name: String) async throws -> Saved {
        try await service("/passkeys") { connection in
            // The user's row serialises concurrent registrations against the limit.
            _ = try await connection.rows("select 1 from auth.users where id = \(user) for update", logger: logger)
            let count =
                try await connection.rows(
                    "select count(*)::int from auth.webauthn_credentials where user_id = \(user)", logger: logger
                ).first?.decode(Int.self) ?? 0
            guard count < Self.maximumPerUser else { return .tooMany }
            let aaguid = UUID(uuid: Self.uuidBytes(credential.aaguid))
            let row = try await connection.rows(
                """
                insert into auth.webauthn_credentials (user_id, credential_id, public_key, aaguid, sign_count, backup_eligible, friendly_name)
                values (\(user), \(ByteBuffer(bytes: credential.credentialID)), \(ByteBuffer(bytes: credential.publicKeyBytes)), \(aaguid),
                        \(Int64(credential.signCount)), \(credential.backupEligible), \(name))
                on conflict (credential_id) do nothing
                returning id, friendly_name, created_at, last_used_at
                """, logger: logger
            ).first
            return try row.map { .saved(try Self.passkey($0)) } ?? .exists
        }
    }

    static func uuidBytes(_ bytes: [UInt8]) -> uuid_t {
        let b = bytes.count == 16 ? bytes : [UInt8](repeating: 0, count: 16)
        return (b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11], b[12], b[13], b[14], b[15])
    }

    struct StoredCredential: Sendable {
        let id: UUID
        let user: UUID
        let publicKey: [UInt8]
        let signCount: UInt32
    }

    func credential(id credentialID: [UInt8]) async throws -> StoredCredential? {
        try await service("/passkeys") { connection in
            guard
                let row = try await connection.rows(
                    """
                    select id, user_id, public_key, sign_count from auth.webauthn_credentials
                    where credential_id = \(ByteBuffer(bytes: credentialID))
                    """, logger: logger
                ).first
            else { return nil }
            let (id, user, key, count) = try row.decode((UUID, UUID, ByteBuffer, Int64).self)
            return StoredCredential(id: id, user: user, publicKey: Array(key.readableBytesView), signCount: UInt32(clamping: count))
        }
    }

    /// Records a sign-in's counter, only forward: of two concurrent uses of one counter value, one wins.
    func used(_ credential: StoredCredential, signCount: UInt32) async throws -> Bool {
        try await service("/passkeys") { connection in
            try await !connection.rows(
                """
                update auth.webauthn_credentials set sign_count = \(Int64(signCount)), last_used_at = now(), updated_at = now()
                where id = \(credential.id) and (sign_count < \(Int64(signCount)) or (sign_count = 0 and \(Int64(signCount)) = 0))
                returning 1
                """, logger: logger
            ).isEmpty
        }
    }

    func rename(user: UUID, passkey: UUID, to name: String) async throws -> PasskeyJSON? {
        try await service("/passkeys") { connection in
            try await connection.rows(
                """
                update auth.webauthn_credentials set friendly_name = \(name), updated_at = now()
                where id = \(passkey) and user_id = \(user) returning id, friendly_name, created_at, last_used_at
                """, logger: logger
            ).first.map(Self.passkey)
        }
    }

    func delete(user: UUID, passkey: UUID) async throws -> Bool {
        try await service("/passkeys") { connection in
            try await !connection.rows(
                "delete from auth.webauthn_credentials where id = \(passkey) and user_id = \(user) returning 1", logger: logger
            ).isEmpty
        }
    }
}

/// GoTrue's passkey API: registration by a signed-in user, sign-in by anyone holding one, management.
extension AuthRoutes {
    func registerPasskeys(in scopes: Scopes) {
        let store = PasskeyStore(database: service.store.database, logger: service.store.logger)
        scopes.users.post("passkeys/registration/options") { _, context in try await registrationOptions(context, store) }
        scopes.users.post("passkeys/registration/verify") { request, context in try await registrationVerify(request, context, store) }
        scopes.keyed.post("passkeys/authentication/options") { request, context in
            try requirePasskeys()
            try await service.limit(.signIn, client: client(request, context))
            return try await authenticationOptions(store)
        }
        scopes.keyed.post("passkeys/authentication/verify") { request, context in
            try await authenticationVerify(request, context, store)
        }
        scopes.users.get("passkeys") { _, context in
            try requirePasskeys()
            return try json(try await store.list(user: try await service.currentUser(try userToken(context)).id))
        }
        scopes.users.patch("passkeys/:passkey") { request, context in try await renamePasskey(request, context, store) }
        scopes.users.delete("passkeys/:passkey") { _, context in
            try requirePasskeys()
            let user = try await passkeyManager(context, store)
            guard try await store.delete(user: user.id, passkey: try passkeyID(context)) else { throw Self.passkeyNotFound }
            return Response(status: .noContent)
        }
        scopes.administrators.get("admin/users/:id/passkeys") { _, context in
            try json(try await store.list(user: try userID(context)))
        }
        scopes.administrators.delete("admin/users/:id/passkeys/:passkey") { _, context in
            guard try await store.delete(user: try userID(context), passkey: try passkeyID(context)) else { throw Self.passkeyNotFound }
            return Response(status: .noContent)
        }
    }

    static var passkeyNotFound: AuthError { AuthError(status: .notFound, code: "validation_failed", message: "Passkey not found") }

    func requirePasskeys() throws(AuthError) {
        guard service.settings.passkeysEnabled else {
            throw AuthError(status: .notFound, code: "passkey_disabled", message: "Passkeys are disabled")
        }
    }

    func passkeyID(_ context: Context) throws(AuthError) -> UUID {
        guard let text = context.parameters.get("passkey"), let id = UUID(uuidString: text) else { throw Self.passkeyNotFound }
        return id
    }

    /// The signed-in, non-anonymous user managing their passkeys; with a verified MFA factor, only from an
    /// aal2 session (a stolen first factor must not add a way in).
    func passkeyManager(_ context: Context, _ store: PasskeyStore) async throws -> UserRecord {
        let token = try userToken(context)
        let user = try await service.currentUser(token)
        if user.isAnonymous {
            throw AuthError(status: .forbidden, code: "no_authorization", message: "Anonymous users cannot register passkeys")
        }
        let verified = try await service.factors(of: user.id).contains { $0.status == "verified" }
        if verified && token.claims.aal != "aal2" {
            throw AuthError(
                status: .forbidden, code: "insufficient_aal", message: "AAL2 session is required to manage passkeys when MFA is enabled")
        }
        return user
    }

    func registrationOptions(_ context: Context, _ store: PasskeyStore) async throws -> Response {
        try requirePasskeys()
        let user = try await passkeyManager(context, store)
        let existing = try await store.credentialIDs(user: user.id)
        guard existing.count < PasskeyStore.maximumPerUser else {
            throw AuthError(status: .unprocessableContent, code: "too_many_passkeys", message: "Maximum number of passkeys reached")
        }
        let (id, challenge, expires) = try await store.newChallenge(user: user.id, type: "registration")
        let name = user.email ?? user.id.uuidString.lowercased()
        let display = user.userMetadata["name"]?.stringValue ?? name
        let options: [String: JSONValue] = [
            "challenge": RelyingParty.json(challenge),
            "rp": ["name": .string(service.relyingParty.name), "id": .string(service.relyingParty.id)],
            // GoTrue's user handle: the user's id as text, so a sign-in's userHandle names the user.
            "user": [
                "name": .string(name), "displayName": .string(display),
                "id": RelyingParty.json(Array(user.id.uuidString.lowercased().utf8)),
            ],
            "pubKeyCredParams": RelyingParty.credentialParameters, "timeout": 300_000, "attestation": "none",
            "authenticatorSelection": ["residentKey": "required", "userVerification": "preferred"],
            "excludeCredentials": .array(existing.map { ["type": "public-key", "id": RelyingParty.json($0)] }),
        ]
        return try json(
            JSONValue.object([
                "challenge_id": .string(id.uuidString.lowercased()), "options": .object(options),
                "expires_at": .number(Double(Int(expires.timeIntervalSince1970))),
            ]))
    }

    func authenticationOptions(_ store: PasskeyStore) async throws -> Response {
        let (id, challenge, expires) = try await store.newChallenge(user: nil, type: "authentication")
        let options: [String: JSONValue] = [
            "challenge": RelyingParty.json(challenge), "timeout": 300_000, "rpId": .string(service.relyingParty.id),
            "userVerification": "preferred",
        ]
        return try json(
            JSONValue.object([
                "challenge_id": .string(id.uuidString.lowercased()), "options": .object(options),
                "expires_at": .number(Double(Int(expires.timeIntervalSince1970))),
            ]))
    }

    /// A `PublicKeyCredential` as browsers serialise it (`toJSON()`): base64url fields.
    struct CredentialJSON: Decodable {
        struct Response: Decodable {
            var clientDataJSON: String
            var attestationObject: String?
            var authenticatorData: String?
            var signature: String?
            var userHandle: String?
        }
        var id: String
        var rawId: String?
        var type: String?
        var response: Response
    }

    struct CeremonyBody: Decodable {
        var challenge_id: String?
        var credential: CredentialJSON?
    }

    static func bytes(_ text: String?, _ field: String) throws(AuthError) -> [UInt8] {
        guard let text, let bytes = RelyingParty.base64URLDecode(text) else {
            throw AuthError(status: .badRequest, code: "webauthn_verification_failed", message: "Invalid credential response: \(field)")
        }
        return bytes
    }

    func ceremony(_ request: Request, _ context: Context) async throws -> (UUID, CredentialJSON) {
        let body = try await decode(CeremonyBody.self, from: request, context)
        guard let text = body.challenge_id, !text.isEmpty else { throw AuthError.validation("challenge_id is required") }
        guard let credential = body.credential else { throw AuthError.validation("credential is required") }
        guard let id = UUID(uuidString: text) else { throw AuthError.validation("challenge_id must be a valid UUID") }
        return (id, credential)
    }

    static var challengeNotFound: AuthError {
        AuthError(status: .badRequest, code: "webauthn_challenge_not_found", message: "Challenge not found or already used")
    }
    static var challengeExpired: AuthError {
        AuthError(status: .badRequest, code: "webauthn_challenge_expired", message: "Challenge has expired")
    }

    static func verificationFailed(_ error: WebAuthnError) -> AuthError {
        AuthError(status: .badRequest, code: "webauthn_verification_failed", message: "Credential verification failed: \(error.message)")
    }

    func registrationVerify(_ request: Request, _ context: Context, _ store: PasskeyStore) async throws -> Response {
        try requirePasskeys()
        let user = try await passkeyManager(context, store)
        let (challengeID, credential) = try await ceremony(request, context)
        guard let (challenge, fresh) = try await store.takeChallenge(challengeID, type: "registration", user: user.id) else {
            throw Self.challengeNotFound
        }
        guard fresh else { throw Self.challengeExpired }
        let registered: RelyingParty.Registered
        do {
            registered = try service.relyingParty.register(
                clientDataJSON: try Self.bytes(credential.response.clientDataJSON, "clientDataJSON"),
                attestationObject: try Self.bytes(credential.response.attestationObject, "attestationObject"), challenge: challenge,
                requireUserVerification: false)
        } catch let error as WebAuthnError {
            throw Self.verificationFailed(error)
        }
        switch try await store.save(user: user.id, registered, name: "Passkey") {
        case .saved(let passkey): return try json(passkey)
        case .exists:
            throw AuthError(
                status: .unprocessableContent, code: "webauthn_credential_exists", message: "This credential is already registered")
        case .tooMany:
            throw AuthError(status: .unprocessableContent, code: "too_many_passkeys", message: "Maximum number of passkeys reached")
        }
    }

    /// A sign-in with a discoverable credential: the credential names its user; the signature, challenge,
    /// origin and counter decide.
    func authenticationVerify(_ request: Request, _ context: Context, _ store: PasskeyStore) async throws -> Response {
        try requirePasskeys()
        let client = client(request, context)
        try await service.limit(.signIn, client: client)
        let (challengeID, credential) = try await ceremony(request, context)
        guard let (challenge, fresh) = try await store.takeChallenge(challengeID, type: "authentication", user: nil) else {
            throw Self.challengeNotFound
        }
        guard fresh else { throw Self.challengeExpired }
        let rawID = try Self.bytes(credential.rawId ?? credential.id, "rawId")
        guard let stored = try await store.credential(id: rawID) else {
            throw AuthError(status: .badRequest, code: "webauthn_verification_failed", message: "Credential verification failed")
        }
        if let handle = credential.response.userHandle, !handle.isEmpty,
            String(decoding: try Self.bytes(handle, "userHandle"), as: UTF8.self).lowercased() != stored.user.uuidString.lowercased()
        {
            throw AuthError(status: .badRequest, code: "webauthn_verification_failed", message: "Credential verification failed")
        }
        let count: UInt32
        do {
            count = try service.relyingParty.authenticate(
                clientDataJSON: try Self.bytes(credential.response.clientDataJSON, "clientDataJSON"),
                authenticatorData: try Self.bytes(credential.response.authenticatorData, "authenticatorData"),
                signature: try Self.bytes(credential.response.signature, "signature"), challenge: challenge,
                key: try COSEKey(coseBytes: stored.publicKey), storedSignCount: stored.signCount, requireUserVerification: false)
        } catch let error as WebAuthnError {
            throw Self.verificationFailed(error)
        }
        guard try await store.used(stored, signCount: count) else { throw Self.verificationFailed(.counterRegressed) }
        guard let user = try await service.store.user(id: stored.user) else { throw AuthError.userNotFound }
        if user.isBanned() { throw AuthError(status: .forbidden, code: "user_banned", message: "User is banned") }
        if user.email != nil && user.emailConfirmedAt == nil {
            throw AuthError(status: .forbidden, code: "email_not_confirmed", message: "Email not confirmed")
        }
        return try json(try await service.startSession(for: user, method: "passkey", client: client))
    }

    struct RenameBody: Decodable {
        var friendly_name: String?
    }

    func renamePasskey(_ request: Request, _ context: Context, _ store: PasskeyStore) async throws -> Response {
        try requirePasskeys()
        let user = try await service.currentUser(try userToken(context))
        let passkey = try passkeyID(context)
        let body = try await decode(RenameBody.self, from: request, context)
        guard let name = body.friendly_name?.trimmingCharacters(in: .whitespaces), !name.isEmpty else {
            throw AuthError.validation("friendly_name is required")
        }
        guard name.count <= 120 else { throw AuthError.validation("friendly_name must be 120 characters or less") }
        guard let renamed = try await store.rename(user: user.id, passkey: passkey, to: name) else { throw Self.passkeyNotFound }
        return try json(renamed)
    }
}

/// The pieces of WebAuthn's options JSON that passkeys and WebAuthn factors share.
extension RelyingParty {
    /// Binary values as the browser's `PublicKeyCredential*OptionsJSON` takes them: base64url.
    static func json(_ bytes: [UInt8]) -> JSONValue { .string(base64URLEncode(bytes)) }

    /// `pubKeyCredParams`: the COSE algorithms `COSEKey` verifies — ES256, RS256, EdDSA.
    static var credentialParameters: JSONValue {
        .array([-7, -257, -8].map { JSONValue.object(["type": "public-key", "alg": .number(Double($0))]) })
    }
}
