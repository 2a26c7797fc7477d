import Crypto
import CryptoExtras
import Foundation

/// Why a WebAuthn ceremony was refused: what a relying party must check (W3C WebAuthn Level 2, §7.1
/// registration and §7.2 authentication), each named.
public enum WebAuthnError: Error, Sendable, Equatable {
    case malformed(String)
    case wrongType
    case challengeMismatch
    case originNotAllowed(String)
    case rpIDMismatch
    case userNotPresent
    case userNotVerified
    case unsupportedAlgorithm(Int)
    case badSignature
    /// The authenticator's counter did not move past the stored one: the credential may have been cloned.
    case counterRegressed

    public var message: String {
        switch self {
        case .malformed(let reason): "The credential is malformed: \(reason)"
        case .wrongType: "The client data is for another ceremony"
        case .challengeMismatch: "The credential answers another challenge"
        case .originNotAllowed(let origin): "Origin \(origin.prefix(100)) is not an allowed origin"
        case .rpIDMismatch: "The credential is for another relying party"
        case .userNotPresent: "The authenticator did not confirm the user's presence"
        case .userNotVerified: "The authenticator did not verify the user"
        case .unsupportedAlgorithm(let algorithm): "COSE algorithm \(algorithm) is not supported (ES256, RS256 or EdDSA)"
        case .badSignature: "The signature does not verify"
        case .counterRegressed: "The authenticator's signature counter went backwards: the credential may be cloned"
        }
    }
}

/// A credential's public key as COSE (RFC 9053) gives it: ES256 (P-256), RS256, or EdDSA (Ed25519).
public enum COSEKey: Sendable, Equatable {
    case es256(P256.Signing.PublicKey)
    case rs256(_RSA.Signing.PublicKey)
    case ed25519(Curve25519.Signing.PublicKey)

    public static func == (lhs: COSEKey, rhs: COSEKey) -> Bool {
        switch (lhs, rhs) {
        case (.es256(let a), .es256(let b)): a.rawRepresentation == b.rawRepresentation
        case (.rs256(let a), .rs256(let b)): a.derRepresentation == b.derRepresentation
        case (.ed25519(let a), .ed25519(let b)): a.rawRepresentation == b.rawRepresentation
        default: false
        }
    }

    /// Reads a stored COSE_Key.
    public init(coseBytes: [UInt8]) throws(WebAuthnError) {
        do {
            try self.init(try CBOR.decode(coseBytes).value)
        } catch let error as WebAuthnError {
            throw error
        } catch {
            throw .malformed("the stored public key is not CBOR")
        }
    }

    public var algorithm: Int {
        switch self {
        case .es256: -7
        case .rs256: -257
        case .ed25519: -8
        }
    }

    /// The COSE_Key map (`1` kty, `3` alg, `-1`… the key's parameters).
    public init(_ cose: CBOR) throws(WebAuthnError) {
        guard let kty = cose[int: 1]?.intValue, let alg = cose[int: 3]?.intValue else {
            throw .malformed("the public key lacks kty or alg")
        }
        do {
            switch (kty, alg) {
            case (2, -7):
                guard cose[int: -1]?.intValue == 1, let x = cose[int: -2]?.bytesValue, let y = cose[int: -3]?.bytesValue,
                    x.count == 32, y.count == 32
                else { throw WebAuthnError.malformed("an ES256 key must be a P-256 point") }
                self = .es256(try P256.Signing.PublicKey(x963Representation: [0x04] + x + y))
            case (3, -257):
                guard let n = cose[int: -1]?.bytesValue, let e = cose[int: -2]?.bytesValue else {
                    throw WebAuthnError.malformed("an RS256 key needs n and e")
                }
                let key = try _RSA.Signing.PublicKey(n: n, e: e)
                guard key.keySizeInBits >= 2048 else { throw WebAuthnError.malformed("an RSA key must have at least 2048 bits") }
                self = .rs256(key)
            case (1, -8):
                guard cose[int: -1]?.intValue == 6, let x = cose[int: -2]?.bytesValue, x.count == 32 else {
                    throw WebAuthnError.malformed("an EdDSA key must be Ed25519")
                }
                self = .ed25519(try Curve25519.Signing.PublicKey(rawRepresentation: x))
            default:
                throw WebAuthnError.unsupportedAlgorithm(alg)
            }
        } catch let error as WebAuthnError {
            throw error
        } catch {
            throw .malformed("the public key is not a valid key")
        }
    }

    /// Verifies `signature` over `data` as WebAuthn signs: ES256 signatures are DER, RS256 PKCS#1 v1.5.
    public func verify(_ signature: [UInt8], over data: [UInt8]) -> Bool {
        switch self {
        case .es256(let key):
            guard let parsed = try? P256.Signing.ECDSASignature(derRepresentation: signature) else { return false }
            return key.isValidSignature(parsed, for: data)
        case .rs256(let key):
            return key.isValidSignature(_RSA.Signing.RSASignature(rawRepresentation: signature), for: data, padding: .insecurePKCS1v1_5)
        case .ed25519(let key):
            return key.isValidSignature(signature, for: data)
        }
    }
}

/// What an authenticator signs over: the RP id hash, flags, counter, and at registration the credential.
public struct AuthenticatorData: Sendable {
    public let rpIDHash: [UInt8]
    public let flags: UInt8
    public let signCount: UInt32
    public let credentialID: [UInt8]?
    public let publicKey: COSEKey?
    /// The COSE_Key exactly as the authenticator sent it: what is stored, and read again at each sign-in.
    public let publicKeyBytes: [UInt8]?
    public let aaguid: [UInt8]?

    public var userPresent: Bool { flags & 0x01 != 0 }
    public var userVerified: Bool { flags & 0x04 != 0 }
    public var backupEligible: Bool { flags & 0x08 != 0 }

    public init(_ bytes: [UInt8]) throws(WebAuthnError) {
        guard bytes.count >= 37 else { throw .malformed("authenticator data is shorter than 37 bytes") }
        rpIDHash = Array(bytes[0..<32])
        flags = bytes[32]
        signCount = bytes[33..<37].reduce(0) { $0 << 8 | UInt32($1) }
        guard flags & 0x40 != 0 else {
            credentialID = nil
            publicKey = nil
            publicKeyBytes = nil
            aaguid = nil
            return
        }
        guard bytes.count >= 55 else { throw .malformed("attested credential data is truncated") }
        aaguid = Array(bytes[37..<53])
        let idLength = Int(bytes[53]) << 8 | Int(bytes[54])
        guard idLength > 0, idLength <= 1023, bytes.count >= 55 + idLength else { throw .malformed("the credential id is truncated") }
        credentialID = Array(bytes[55..<55 + idLength])
        let rest = Array(bytes[(55 + idLength)...])
        do {
            let (cose, consumed) = try CBOR.decode(rest)
            publicKey = try COSEKey(cose)
            publicKeyBytes = Array(rest[..<consumed])
        } catch let error as WebAuthnError {
            throw error
        } catch {
            throw .malformed("the credential public key is not CBOR")
        }
    }
}

/// A relying party's checks of both WebAuthn ceremonies.
public struct RelyingParty: Sendable {
    public let id: String
    public let name: String
    public let origins: [String]

    public init(id: String, name: String, origins: [String]) {
        self.id = id
        self.name = name
        self.origins = origins
    }

    /// A credential that passed registration: what to keep.
    public struct Registered: Sendable {
        public let credentialID: [UInt8]
        public let publicKey: COSEKey
        public let publicKeyBytes: [UInt8]
        public let signCount: UInt32
        public let aaguid: [UInt8]
        public let backupEligible: Bool
    }

    /// §7.1: the client data names this ceremony, the challenge and an allowed origin; the attestation
    /// object's authenticator data is for this RP, with the user present (and verified when required) and
    /// a credential. Attestation statements are not checked ("none" is asked for), as GoTrue does.
    public func register(clientDataJSON: [UInt8], attestationObject: [UInt8], challenge: [UInt8], requireUserVerification: Bool)
        throws(WebAuthnError) -> Registered
    {
        try checkClientData(clientDataJSON, type: "webauthn.create", challenge: challenge)
        let attestation: CBOR
        do {
            let (value, consumed) = try CBOR.decode(attestationObject)
            guard consumed == attestationObject.count else { throw WebAuthnError.malformed("bytes follow the attestation object") }
            attestation = value
        } catch let error as WebAuthnError {
            throw error
        } catch {
            throw .malformed("the attestation object is not CBOR")
        }
        guard let authData = attestation[text: "authData"]?.bytesValue else { throw .malformed("the attestation object has no authData") }
        let data = try AuthenticatorData(authData)
        try checkFlags(data, requireUserVerification: requireUserVerification)
        guard let id = data.credentialID, let key = data.publicKey, let keyBytes = data.publicKeyBytes, let aaguid = data.aaguid else {
            throw .malformed("the authenticator data carries no credential")
        }
        return Registered(
            credentialID: id, publicKey: key, publicKeyBytes: keyBytes, signCount: data.signCount, aaguid: aaguid,
            backupEligible: data.backupEligible)
    }

    /// §7.2: the client data and authenticator data as above, and the signature over authenticator data
    /// and the client data's hash by the stored key; the counter must move forward when either side counts.
    /// Returns the new counter.
    public func authenticate(
        clientDataJSON: [UInt8], authenticatorData: [UInt8], signature: [UInt8], challenge: [UInt8], key: COSEKey,
        storedSignCount: UInt32, requireUserVerification: Bool
    ) throws(WebAuthnError) -> UInt32 {
        try checkClientData(clientDataJSON, type: "webauthn.get", challenge: challenge)
        let data = try AuthenticatorData(authenticatorData)
        try checkFlags(data, requireUserVerification: requireUserVerification)
        let signed = authenticatorData + Array(SHA256.hash(data: clientDataJSON))
        guard key.verify(signature, over: signed) else { throw .badSignature }
        if data.signCount != 0 || storedSignCount != 0, data.signCount <= storedSignCount { throw .counterRegressed }
        return data.signCount
    }

    struct ClientData: Decodable {
        let type: String
        let challenge: String
        let origin: String
        let crossOrigin: Bool?
    }

    func checkClientData(_ json: [UInt8], type: String, challenge: [UInt8]) throws(WebAuthnError) {
        guard let client = try? JSONDecoder().decode(ClientData.self, from: Data(json)) else {
            throw .malformed("clientDataJSON is not the client's JSON")
        }
        guard client.type == type else { throw .wrongType }
        guard let sent = Self.base64URLDecode(client.challenge), sent == challenge else { throw .challengeMismatch }
        guard origins.contains(client.origin) else { throw .originNotAllowed(client.origin) }
        if client.crossOrigin == true { throw .originNotAllowed(client.origin + " (cross-origin)") }
    }

    func checkFlags(_ data: AuthenticatorData, requireUserVerification: Bool) throws(WebAuthnError) {
        guard data.rpIDHash == Array(SHA256.hash(data: Data(id.utf8))) else { throw .rpIDMismatch }
        guard data.userPresent else { throw .userNotPresent }
        if requireUserVerification && !data.userVerified { throw .userNotVerified }
    }

    /// A ceremony's challenge: 32 random bytes (WebAuthn asks for at least 16).
    public static func newChallenge() -> [UInt8] {
        Array(SymmetricKey(size: .bits256).withUnsafeBytes { Data($0) })
    }

    public static func base64URLDecode(_ text: String) -> [UInt8]? {
        var base64 = text.replacingOccurrences(of: "-", with: "+").replacingOccurrences(of: "_", with: "/")
        while base64.count % 4 != 0 { base64 += "=" }
        return Data(base64Encoded: base64).map(Array.init)
    }

    public static func base64URLEncode(_ bytes: [UInt8]) -> String {
        Data(bytes).base64EncodedString().replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_")
            .replacingOccurrences(of: "=", with: "")
    }
}
