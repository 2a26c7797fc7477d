import Foundation
import HTTPTypes
import Hummingbird
import NIOCore
import PostgresNIO
import StriveBlobs
import StriveCore
import StriveDatabase
import StriveIdentity

/// A storage failure in Supabase Storage's shape: `{statusCode, error, message}` (statusCode a string).
public struct StorageError: Error, Sendable, Equatable, HTTPResponseError {
    public let status: HTTPResponse.Status
    public let error: String
    public let message: String

    public init(_ status: HTTPResponse.Status, _ error: String, _ message: String) {
        self.status = status
        self.error = error
        self.message = message
    }

    public static let bucketNotFound = StorageError(.notFound, "Bucket not found", "Bucket not found")
    public static let objectNotFound = StorageError(.notFound, "not_found", "Object not found")
    public static let notServiceRole = StorageError(.forbidden, "Unauthorized", "Managing buckets needs the service role key")
    public static let duplicate = StorageError(.conflict, "Duplicate", "The resource already exists")
    public static let forbidden = StorageError(.forbidden, "Unauthorized", "new row violates row-level security policy")

    public static func invalidKey(_ problem: ObjectKey.Problem) -> StorageError {
        StorageError(.badRequest, "InvalidKey", "Invalid key: \(problem)")
    }

    public static func invalidInput(_ message: String) -> StorageError {
        StorageError(.badRequest, "Invalid Input", message)
    }

    public static func invalidSignature(_ message: String) -> StorageError {
        StorageError(.badRequest, "InvalidSignature", message)
    }

    /// The object store cannot be used right now; nothing was written. The reason goes to the log only.
    public static let unavailable = StorageError(
        .serviceUnavailable, "ServiceUnavailable", "The object store is unavailable; nothing was changed. Try again later.")

    /// Supabase Storage's text exactly (clients match on it); the limit is in the bucket's settings.
    public static func tooLarge(limit: Int64) -> StorageError {
        StorageError(.contentTooLarge, "Payload too large", "The object exceeded the maximum allowed size")
    }

    public static func mimeTypeNotAllowed(_ type: String) -> StorageError {
        StorageError(.unsupportedMediaType, "invalid_mime_type", "mime type \(type) is not supported")
    }

    /// The caller's credentials, as this surface reports them.
    static func unauthorized(_ error: AuthError) -> StorageError {
        StorageError(.unauthorized, "Unauthorized", error.message)
    }

    /// What a failure means for the client; anything unexpected stays nil (a 500, logged).
    static func from(_ error: any Error) -> StorageError? {
        if let storage = error as? StorageError { return storage }
        if let auth = error as? AuthError { return unauthorized(auth) }
        if let blob = error as? BlobStoreError {
            switch blob {
            case .tooLarge(let limit): return tooLarge(limit: limit)
            case .notFound: return objectNotFound
            case .unavailable: return unavailable
            case .incompleteUpload(let received, let expected):
                return StorageError(.conflict, "InvalidUpload", "the upload's parts hold \(received) of \(expected) bytes")
            }
        }
        guard let fields = DatabaseError.serverFields(in: error) else { return nil }
        switch fields.code {
        case .insufficientPrivilege: return forbidden
        case .uniqueViolation: return duplicate
        case .foreignKeyViolation: return StorageError(.conflict, "InvalidRequest", fields.detail ?? fields.message)
        case .checkViolation, .invalidTextRepresentation, .stringDataRightTruncationException:
            return StorageError(.badRequest, "InvalidRequest", fields.message)
        case .sessionNotFound: return StorageError(.unauthorized, "Unauthorized", AuthError.sessionNotFound.message)
        case .queryCanceled: return StorageError(.gatewayTimeout, "Timeout", "the statement took too long and was cancelled")
        default: return nil
        }
    }

    public func response(from request: Request, context: some RequestContext) throws -> Response {
        let body = ["statusCode": String(status.code), "error": error, "message": message]
        return Response(
            status: status, headers: [.contentType: "application/json"],
            body: .init(byteBuffer: ByteBuffer(bytes: try SupabaseJSON.encoder.encode(body))))
    }
}

/// What `/storage/v1` answers for an error its handlers throw, in Supabase Storage's shape: its own
/// refusals, a caller without valid credentials, the blob store's and the database's refusals.
public struct StorageErrorTranslator: ErrorTranslator {
    public init() {}

    public func translate(_ error: any Error, caller: Caller?) -> (any HTTPResponseError)? {
        if let error = error as? StorageErrorWithHeaders { return error }
        return StorageError.from(error)
    }
}

extension Response {
    /// A 200 answer with `value` as JSON, encoded as the Supabase services encode it.
    static func storageJSON(_ value: some Encodable) throws -> Response {
        storageJSON(text: String(decoding: try SupabaseJSON.encoder.encode(value), as: UTF8.self))
    }

    /// A 200 answer with JSON text PostgreSQL already built.
    static func storageJSON(text: String) -> Response {
        Response(status: .ok, headers: [.contentType: "application/json"], body: .init(byteBuffer: ByteBuffer(string: text)))
    }
}
