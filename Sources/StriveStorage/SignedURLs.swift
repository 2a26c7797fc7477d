import Crypto
import Foundation
import JWTKit
import StriveCore

/// Tokens that stand in for credentials on one URL: a download of one object, or an upload to one key.
/// They are HS256 JWTs like Supabase's, but signed with a key derived from the JWT secret for this one
/// purpose, so a signed URL's token can never pass as an access token, nor an access token as a URL's.
public struct SignedURLSigner: Sendable {
    public enum Purpose: String, Codable, Sendable {
        case download
        case upload
    }

    struct Claims: JWTPayload {
        var url: String
        var purpose: Purpose
        var iat: Int
        var exp: Int
        /// Uploads: the user the object will belong to, and whether it may replace one.
        var owner: String?
        var upsert: Bool?
        /// Downloads: the image transformation the URL renders (`/render/image/sign`), as a query string.
        var transformations: String?

        func verify(using algorithm: some JWTAlgorithm) async throws {
            guard exp > Int(Date().timeIntervalSince1970) else {
                throw JWTError.claimVerificationFailure(
                    failedClaim: ExpirationClaim(value: Date(timeIntervalSince1970: TimeInterval(exp))), reason: "expired")
            }
        }
    }

    /// What a valid upload token allows.
    public struct UploadGrant: Sendable, Equatable {
        public let owner: UUID?
        public let upsert: Bool
    }

    /// Supabase caps a signed URL's lifetime at a year; longer is almost always a bug in the caller.
    public static let maximumLifetime = 365 * 24 * 3600
    /// Signed upload URLs live two hours, as Supabase's do.
    public static let uploadLifetime = 2 * 3600

    private let keys: JWTKeyCollection

    public init(secret: Secret) async {
        let derived = HMAC<SHA256>.authenticationCode(
            for: Data("strive storage signed urls v1".utf8), using: SymmetricKey(data: Data(secret.value.utf8)))
        let keys = JWTKeyCollection()
        await keys.add(hmac: HMACKey(key: SymmetricKey(data: Data(derived))), digestAlgorithm: .sha256)
        self.keys = keys
    }

    /// A download token; with `transformations` (an image transformation's options), for
    /// `/render/image/sign` with exactly those options.
    public func signDownload(bucket: String, key: ObjectKey, expiresIn seconds: Int, transformations: [String: String] = [:])
        async throws -> String
    {
        let now = Int(Date().timeIntervalSince1970)
        var components = URLComponents()
        components.queryItems = transformations.sorted { $0.key < $1.key }.map { URLQueryItem(name: $0.key, value: $0.value) }
        return try await keys.sign(
            Claims(
                url: bucket + "/" + key.value, purpose: .download, iat: now, exp: now + seconds,
                transformations: transformations.isEmpty ? nil : components.percentEncodedQuery))
    }

    public func signUpload(bucket: String, key: ObjectKey, owner: UUID?, upsert: Bool) async throws -> String {
        let now = Int(Date().timeIntervalSince1970)
        return try await keys.sign(
            Claims(
                url: bucket + "/" + key.value, purpose: .upload, iat: now, exp: now + Self.uploadLifetime,
                owner: owner?.uuidString.lowercased(), upsert: upsert))
    }

    /// Checks signature, expiry, purpose and that the token names exactly this object; returns the image
    /// transformation it was signed with (empty for none).
    @discardableResult
    public func verifyDownload(_ token: String, bucket: String, key: ObjectKey) async throws(StorageError) -> [String: String] {
        let claims = try await verify(token, purpose: .download, bucket: bucket, key: key)
        var components = URLComponents()
        components.percentEncodedQuery = claims.transformations
        var transformations: [String: String] = [:]
        for item in components.queryItems ?? [] { transformations[item.name] = item.value ?? "" }
        return transformations
    }

    public func verifyUpload(_ token: String, bucket: String, key: ObjectKey) async throws(StorageError) -> UploadGrant {
        let claims = try await verify(token, purpose: .upload, bucket: bucket, key: key)
        return UploadGrant(owner: claims.owner.flatMap(UUID.init(uuidString:)), upsert: claims.upsert ?? false)
    }

    private func verify(_ token: String, purpose: Purpose, bucket: String, key: ObjectKey) async throws(StorageError) -> Claims {
        let claims: Claims
        do {
            claims = try await keys.verify(token, as: Claims.self)
        } catch let error as JWTError where error.errorType == .claimVerificationFailure {
            throw StorageError(.badRequest, "InvalidJWT", "the signed URL has expired")
        } catch {
            throw StorageError(.badRequest, "InvalidJWT", "the signed URL's token is not valid")
        }
        guard claims.purpose == purpose else {
            throw StorageError.invalidSignature("the token was signed for \(claims.purpose.rawValue), not \(purpose.rawValue)")
        }
        guard claims.url == bucket + "/" + key.value else {
            throw StorageError.invalidSignature("the token was signed for another object")
        }
        return claims
    }
}
