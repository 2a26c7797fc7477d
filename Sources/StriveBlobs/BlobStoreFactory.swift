import Foundation
import Logging
import StriveCore
import StriveS3

/// Why the configured blob store cannot be used; `reason` names the setting to fix, never a secret.
public struct BlobStoreSetupError: Error, Sendable, CustomStringConvertible {
    public let reason: String
    public var description: String { reason }
}

/// The one place a blob store is made from the settings: the server, storage and the backup commands
/// all open theirs here, so they agree on where bytes live.
public enum BlobStoreFactory {
    /// The store `STRIVE_STORAGE_BACKEND` names: files under `localRoot`, or the bucket of `STRIVE_S3_*`.
    /// A bucket that refuses the credentials or does not exist is an error; one that does not answer only
    /// warns (its calls fail as `unavailable` until it does). Whoever opens a store closes it.
    public static func open(_ backend: StorageBackend, localRoot: String, logger: Logger) async throws(BlobStoreSetupError)
        -> any BlobStore
    {
        guard case .s3(let settings) = backend else {
            do {
                return try await LocalBlobStore(root: localRoot)
            } catch {
                throw BlobStoreSetupError(reason: "cannot create the storage directory \(localRoot): \(error)")
            }
        }
        let client = try s3Client(settings)
        let store = S3BlobStore(client: client, partSize: settings.partSize, logger: logger)
        do {
            try await store.checkBucket()
        } catch S3Error.unreachable(let reason) {
            logger.warning(
                "the S3 endpoint does not answer; storage requests fail with 503 until it does",
                metadata: ["endpoint": "\(settings.endpoint)", "reason": "\(reason)"])
        } catch {
            await store.close()
            let place = "bucket \(settings.bucket) at \(settings.endpoint)"
            switch error {
            case .service(status: 404, _, _): throw BlobStoreSetupError(reason: "\(place) does not exist (create it first)")
            case .service(status: 403, _, _):
                throw BlobStoreSetupError(
                    reason: "\(place) refuses these credentials (STRIVE_S3_ACCESS_KEY_ID, STRIVE_S3_SECRET_ACCESS_KEY)")
            case .service(status: 301, _, _), .service(status: 400, _, _):
                throw BlobStoreSetupError(reason: "\(place) answered \(error); is STRIVE_S3_REGION the bucket's region?")
            default: throw BlobStoreSetupError(reason: "\(place): \(error)")
            }
        }
        return store
    }

    /// A client for the bucket of `STRIVE_S3_*`; whoever makes it shuts it down.
    public static func s3Client(_ settings: S3Settings) throws(BlobStoreSetupError) -> S3Client {
        guard let endpoint = URL(string: settings.endpoint) else { throw BlobStoreSetupError(reason: "STRIVE_S3_ENDPOINT is not a URL") }
        return S3Client(
            configuration: S3Configuration(
                endpoint: endpoint, region: settings.region, bucket: settings.bucket, accessKeyID: settings.accessKeyID,
                secretAccessKey: settings.secretAccessKey.value, forcePathStyle: settings.forcePathStyle))
    }
}
