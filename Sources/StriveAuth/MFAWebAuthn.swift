import Foundation
import PostgresNIO
import StriveCore
import StriveIdentity
import StriveWebAuthn

/// GoTrue's WebAuthn factors: a security key or platform authenticator as the second factor. Enrolling
/// makes an unverified factor; its first challenge asks the authenticator to create a credential
/// (`webauthn.type: "create"`), later ones to sign (`"request"`); a verified answer raises the session to
/// aal2 with amr `mfa/webauthn`.
extension AuthService {
    public struct WebAuthnFactorJSON: Codable, Sendable {
        public var id: String
        public var type: String
        public var friendly_name: String?
    }

    public func enrollWebAuthnFactor(_ token: VerifiedToken, friendlyName: String?, client: Client) async throws -> WebAuthnFactorJSON {
        guard settings.mfaWebAuthnEnabled else {
            throw AuthError(
                status: .unprocessableContent, code: "mfa_webauthn_enroll_not_enabled", message: "MFA enroll is disabled for WebAuthn")
        }
        let user = try await currentUser(token)
        try await limit(.mfa, client: client)
        let name = friendlyName.flatMap { $0.isEmpty ? nil : $0 }
        if let name, name.count > 100 { throw AuthError.validation("friendly_name must be 1 to 100 characters") }
        let factor = try Self.enrolled(
            try await store.enrollFactor(
                user: user.id, friendlyName: name, type: "webauthn", sealedSecret: nil, maximum: Self.maximumFactors),
            friendlyName: name)
        return WebAuthnFactorJSON(id: factor.id, type: "webauthn", friendly_name: factor.friendly_name)
    }

    var relyingParty: RelyingParty {
        RelyingParty(id: settings.webauthnRPID, name: settings.webauthnRPName, origins: settings.webauthnOrigins)
    }

    /// A challenge of a WebAuthn factor, with the options `navigator.credentials.create()` or `.get()` takes.
    func challengeWebAuthnFactor(_ factor: AuthStore.WebAuthnFactor, user: UserRecord, client: Client) async throws -> JSONValue {
        guard settings.mfaWebAuthnEnabled else {
            throw AuthError(
                status: .unprocessableContent, code: "mfa_webauthn_verify_not_enabled", message: "MFA verification is disabled for WebAuthn"
            )
        }
        let bytes = RelyingParty.newChallenge()
        let kind = factor.credentialID == nil ? "create" : "request"
        guard let challenge = try await store.createChallenge(user: user.id, factor: factor.id, ip: client.ip, webAuthn: (bytes, kind))
        else {
            throw Self.factorNotFound
        }
        let publicKey: [String: JSONValue]
        if let credential = factor.credentialID {
            publicKey = [
                "challenge": RelyingParty.json(bytes), "timeout": 300_000, "rpId": .string(relyingParty.id),
                "allowCredentials": [["type": "public-key", "id": RelyingParty.json(credential), "transports": ["usb", "nfc"]]],
            ]
        } else {
            let name = user.email ?? user.id.uuidString.lowercased()
            publicKey = [
                "challenge": RelyingParty.json(bytes), "rp": ["name": .string(relyingParty.name), "id": .string(relyingParty.id)],
                "user": [
                    "name": .string(name), "displayName": .string(name),
                    "id": RelyingParty.json(Array(user.id.uuidString.lowercased().utf8)),
                ],
                "pubKeyCredParams": RelyingParty.credentialParameters,
                "timeout": 300_000, "authenticatorSelection": [:],
            ]
        }
        return .object([
            "id": .string(challenge.id.uuidString.lowercased()), "type": "webauthn",
            "expires_at": .number(Double(Int(challenge.createdAt.timeIntervalSince1970 + Self.challengeLifetime))),
            "webauthn": ["type": .string(kind), "credential_options": ["publicKey": .object(publicKey)]],
        ])
    }

    /// What the browser answered: the credential's fields, base64url.
    public struct WebAuthnAnswer: Sendable {
        public var type: String
        public var clientDataJSON: [UInt8]
        public var attestationObject: [UInt8]?
        public var authenticatorData: [UInt8]?
        public var signature: [UInt8]?
        public var credentialID: [UInt8]?
    }

    func verifyWebAuthnFactor(
        _ token: VerifiedToken, user: UserRecord, factor: UUID, challenge: UUID, answer: WebAuthnAnswer, client: Client
    )
        async throws -> TokenResponse
    {
        guard let session = token.sessionID else { throw AuthError.noAuthorization }
        let refreshToken = codec.random()
        let party = relyingParty
        let outcome = try await store.verifyWebAuthnChallenge(
            user: user.id, factor: factor, challenge: challenge, session: session, lifetime: Self.challengeLifetime,
            refreshTokenHash: RefreshTokenCodec.hash(refreshToken)
        ) { stored, kind, bytes throws(WebAuthnError) -> AuthStore.WebAuthnUpdate in
            guard kind == answer.type else { throw .wrongType }
            if kind == "create" {
                guard let attestation = answer.attestationObject else { throw .malformed("attestationObject is required") }
                let registered = try party.register(
                    clientDataJSON: answer.clientDataJSON, attestationObject: attestation, challenge: bytes, requireUserVerification: false)
                return .registered(registered)
            }
            guard let keyBytes = stored.publicKey, let data = answer.authenticatorData, let signature = answer.signature else {
                throw .malformed("authenticatorData and signature are required")
            }
            if let presented = answer.credentialID, presented != stored.credentialID { throw .malformed("another credential answered") }
            let count = try party.authenticate(
                clientDataJSON: answer.clientDataJSON, authenticatorData: data, signature: signature, challenge: bytes,
                key: try COSEKey(coseBytes: keyBytes), storedSignCount: stored.signCount, requireUserVerification: false)
            return .counted(count)
        }
        switch outcome {
        case .factorNotFound: throw Self.factorNotFound
        case .challengeExpired:
            throw AuthError(
                status: .unprocessableContent, code: "mfa_challenge_expired", message: "MFA challenge has expired or does not exist")
        case .refused(let error):
            throw AuthError(
                status: .unprocessableContent, code: "mfa_verification_failed", message: "WebAuthn verification failed: \(error.message)")
        case .verified:
            let now = Int(Date().timeIntervalSince1970)
            let earlier = (token.claims.amr ?? []).filter { $0.method != "mfa/webauthn" }
            return try await tokenResponse(
                user: user, session: session, refreshToken: refreshToken, aal: "aal2",
                amr: [.init(method: "mfa/webauthn", timestamp: now)] + earlier)
        }
    }
}

extension AuthStore {
    struct WebAuthnFactor: Sendable {
        let id: UUID
        let credentialID: [UInt8]?
        let publicKey: [UInt8]?
        let signCount: UInt32
    }

    enum WebAuthnUpdate: Sendable {
        case registered(RelyingParty.Registered)
        case counted(UInt32)
    }

    enum WebAuthnOutcome: Sendable {
        case verified
        case factorNotFound
        case challengeExpired
        case refused(WebAuthnError)
    }

    /// The user's factor `id` when it is a WebAuthn one.
    func webAuthnFactor(user: UUID, id: UUID) async throws -> WebAuthnFactor? {
        try await database.withServiceRoleTransaction(method: "AUTH", path: "/factors", logger: logger) { connection in
            guard
                let row = try await connection.rows(
                    """
                    select web_authn_credential_id, web_authn_public_key, coalesce(web_authn_sign_count, 0) from auth.mfa_factors
                    where id = \(id) and user_id = \(user) and factor_type = 'webauthn'
                    """, logger: logger
                ).first
            else { return nil }
            let (credential, key, count) = try row.decode((ByteBuffer?, ByteBuffer?, Int64).self)
            return WebAuthnFactor(
                id: id, credentialID: credential.map { Array($0.readableBytesView) }, publicKey: key.map { Array($0.readableBytesView) },
                signCount: UInt32(clamping: count))
        }
    }

    /// The stored factor and the challenge's kind and bytes go to `check`; what it returns is saved, the
    /// factor verified, the challenge used and the session aal2 — one transaction. A refused answer uses
    /// the challenge up (a WebAuthn answer cannot be typed again).
    func verifyWebAuthnChallenge(
        user: UUID, factor: UUID, challenge: UUID, session: UUID, lifetime: TimeInterval, refreshTokenHash: String,
        check: (WebAuthnFactor, String, [UInt8]) throws(WebAuthnError) -> WebAuthnUpdate
    ) async throws -> WebAuthnOutcome {
        try await database.withServiceRoleTransaction(method: "AUTH", path: "/factors", logger: logger) { connection in
            guard
                let factorRow = try await connection.rows(
                    """
                    select web_authn_credential_id, web_authn_public_key, coalesce(web_authn_sign_count, 0) from auth.mfa_factors
                    where id = \(factor) and user_id = \(user) and factor_type = 'webauthn' for update
                    """, logger: logger
                ).first
            else { return .factorNotFound }
            let (credential, key, count) = try factorRow.decode((ByteBuffer?, ByteBuffer?, Int64).self)
            let stored = WebAuthnFactor(
                id: factor, credentialID: credential.map { Array($0.readableBytesView) },
                publicKey: key.map { Array($0.readableBytesView) },
                signCount: UInt32(clamping: count))
            guard
                let challengeRow = try await connection.rows(
                    """
                    update auth.mfa_challenges set verified_at = now()
                    where id = \(challenge) and factor_id = \(factor) and verified_at is null and web_authn_challenge is not null
                      and created_at > now() - make_interval(secs => \(lifetime))
                    returning web_authn_type, web_authn_challenge
                    """, logger: logger
                ).first
            else { return .challengeExpired }
            let (kind, bytes) = try challengeRow.decode((String, ByteBuffer).self)
            let update: WebAuthnUpdate
            do throws(WebAuthnError) {
                update = try check(stored, kind, Array(bytes.readableBytesView))
            } catch {
                return .refused(error)
            }
            switch update {
            case .registered(let registered):
                try await connection.run(
                    """
                    update auth.mfa_factors set status = 'verified', web_authn_credential_id = \(ByteBuffer(bytes: registered.credentialID)),
                        web_authn_public_key = \(ByteBuffer(bytes: registered.publicKeyBytes)),
                        web_authn_sign_count = \(Int64(registered.signCount)),
                        web_authn_aaguid = \(UUID(uuid: PasskeyStore.uuidBytes(registered.aaguid))), updated_at = now()
                    where id = \(factor)
                    """, logger: logger)
            case .counted(let signCount):
                try await connection.run(
                    "update auth.mfa_factors set web_authn_sign_count = \(Int64(signCount)), updated_at = now() where id = \(factor)",
                    logger: logger)
            }
            try await raiseToAAL2(session: session, user: user, refreshTokenHash: refreshTokenHash, on: connection)
            return .verified
        }
    }
}
