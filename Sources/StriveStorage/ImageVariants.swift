import Foundation
import Logging
import NIOCore
import PostgresNIO
import StriveBlobs
import StriveDatabase
import StriveMetrics

/// Transformed images kept in the blob store (`storage.image_variants`), so a thumbnail is computed once
/// per object version, on whichever instance asks first. A variant is named by the version it was made
/// from and the transformation's options: replacing or deleting the object releases its version and the
/// database drops its variants in the same transaction, so an old variant is never served. Beyond
/// `STRIVE_STORAGE_IMAGE_CACHE_MB` the least recently used go. The cache only saves work: when it
/// fails, the image is transformed again, never refused.
struct ImageVariants: Sendable {
    let storage: StorageService
    var logger: Logger { storage.logger }
    var bound: Int64 { storage.imageSettings.cacheBytes }

    struct Variant: Sendable {
        let bytes: ByteBuffer
        let contentType: String
    }

    private func service<T: Sendable>(_ body: (PostgresConnection) async throws -> T) async throws -> T {
        try await storage.database.withServiceRoleTransaction(method: "STORAGE", path: "image-variants", logger: logger, body)
    }

    /// The kept variant, or nil. Its last use is recorded at most once a minute (a hit costs no write
    /// most of the time).
    func cached(version: BlobID, options: String) async -> Variant? {
        guard bound > 0 else { return nil }
        do {
            let row = try await service { connection in
                try await connection.rows(
                    """
                    with touched as (
                        update storage.image_variants set used_at = now()
                        where object_version = \(version.description) and options = \(options) and used_at < now() - interval '1 minute')
                    select blob, content_type from storage.image_variants
                    where object_version = \(version.description) and options = \(options)
                    """, logger: logger
                ).first?.decode((String, String).self)
            }
            guard let (blobText, contentType) = row, let blob = BlobID(blobText) else { return nil }
            var bytes = ByteBuffer()
            try await storage.blobs.read(blob, range: nil) { buffer in
                var buffer = buffer
                bytes.writeBuffer(&buffer)
            }
            return Variant(bytes: bytes, contentType: contentType)
        } catch {
            // A restored database names variants whose bytes a backup does not carry: they are made again.
            logger.warning("a kept image variant could not be read; transforming again", metadata: ["error": "\(error)"])
            await forget(version: version, options: options)
            return nil
        }
    }

    /// Keeps `output` as the variant of `version` with `options`, then evicts beyond the bound.
    func keep(_ output: ImageTransformer.Output, version: BlobID, options: String) async {
        guard bound > 0 else { return }
        let bytes = output.bytes
        do {
            let staged = try await storage.blobs.stage(
                AsyncStream { continuation in
                    continuation.yield(bytes)
                    continuation.finish()
                }, limit: nil)
            do {
                try await service { connection in
                    // Only while the version is an object's: one replaced meanwhile gets no variant.
                    let inserted = try await connection.rows(
                        """
                        insert into storage.image_variants (object_version, options, blob, size, content_type)
                        select \(version.description), \(options), \(staged.id.description), \(staged.size), \(output.contentType)
                        where exists (select 1 from storage.objects where version = \(version.description))
                        on conflict do nothing
                        returning 1
                        """, logger: logger
                    ).count
                    guard inserted == 1 else { throw NotKept() }
                    try await storage.blobs.publish(staged)
                }
            } catch {
                await storage.blobs.discard(staged)
                try? await storage.blobs.delete(staged.id)
                if !(error is NotKept) { throw error }
                return
            }
            try await evict()
        } catch {
            logger.warning("an image variant could not be kept", metadata: ["error": "\(error)"])
        }
    }

    private struct NotKept: Error {}

    /// Deletes the least recently used variants beyond the bound; their blobs are queued as released.
    func evict() async throws {
        let evicted = try await service { connection in
            try await connection.rows(
                """
                with ranked as (
                    select object_version, options, sum(size) over (order by used_at desc, blob) as running
                    from storage.image_variants),
                gone as (
                    delete from storage.image_variants v using ranked r
                    where v.object_version = r.object_version and v.options = r.options and r.running > \(bound)
                    returning v.blob)
                insert into storage.blob_garbage (version) select blob from gone on conflict do nothing
                returning version
                """, logger: logger
            ).count
        }
        guard evicted > 0 else { return }
        StriveMetrics.imageVariantsEvicted(evicted)
        await storage.collectGarbage()
    }

    private func forget(version: BlobID, options: String) async {
        _ = try? await service { connection in
            try await connection.run(
                """
                with gone as (
                    delete from storage.image_variants where object_version = \(version.description) and options = \(options)
                    returning blob)
                insert into storage.blob_garbage (version) select blob from gone on conflict do nothing
                """, logger: logger)
        }
    }

    /// Variants of versions no object holds any more (kept by a transformation that raced the object's
    /// replacement): removed with the storage sweep, and the cache trimmed to its bound (a lowered
    /// setting takes effect without waiting for the next variant).
    @discardableResult
    func sweep() async throws -> Int {
        let removed = try await service { connection in
            try await connection.rows(
                """
                with gone as (
                    delete from storage.image_variants v
                    where created_at < now() - interval '1 minute'
                      and (\(bound) = 0 or not exists (select 1 from storage.objects o where o.version = v.object_version))
                    returning blob)
                insert into storage.blob_garbage (version) select blob from gone on conflict do nothing
                returning version
                """, logger: logger
            ).count
        }
        if bound > 0 { try await evict() }
        return removed
    }
}
