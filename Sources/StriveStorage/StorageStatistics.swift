import Foundation
import PostgresNIO
import StriveDatabase

/// What an operator reads about storage's background state (`/admin/v1/storage`, the console's storage
/// page): resumable uploads under way, the image-variant cache against its bound, and whether image
/// transformations can run here.
public struct StorageStatistics: Encodable, Sendable {
    public let resumableUploads: Int64
    public let resumableBytesReceived: Int64
    public let resumableBytesExpected: Int64
    public let imageVariants: Int64
    public let imageVariantBytes: Int64
    public let imageVariantBound: Int64
    public let imageTransformations: Bool
    /// Why transformations cannot run (libvips missing); nil when they can.
    public let imageTransformationsUnavailable: String?
}

extension StorageService {
    public func statistics() async throws -> StorageStatistics {
        let (uploads, received, expected, variants, variantBytes) = try await database.withServiceRoleTransaction(
            method: "STORAGE", path: "statistics", logger: logger
        ) { connection in
            guard
                let row = try await connection.rows(
                    """
                    select (select count(*) from storage.resumable_uploads where expires_at > now()),
                           (select coalesce(sum(upload_offset), 0)::bigint from storage.resumable_uploads where expires_at > now()),
                           (select coalesce(sum(upload_length), 0)::bigint from storage.resumable_uploads where expires_at > now()),
                           (select count(*) from storage.image_variants),
                           (select coalesce(sum(size), 0)::bigint from storage.image_variants)
                    """, logger: logger
                ).first
            else { throw StorageError.unavailable }
            return try row.decode((Int64, Int64, Int64, Int64, Int64).self)
        }
        let unavailable = ImageTransformer.unavailableReason
        return StorageStatistics(
            resumableUploads: uploads, resumableBytesReceived: received, resumableBytesExpected: expected, imageVariants: variants,
            imageVariantBytes: variantBytes, imageVariantBound: imageSettings.cacheBytes, imageTransformations: unavailable == nil,
            imageTransformationsUnavailable: unavailable)
    }
}
