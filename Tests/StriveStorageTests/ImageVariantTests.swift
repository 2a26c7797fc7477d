import Foundation
import StriveCore
import StriveStorage
import StriveTestSupport
import Testing

/// The variant cache on the local store and on S3 (moto): a transformed image is kept once per object
/// version, in the blob store, and its row and bytes go when the object is replaced or deleted.
@Suite("Image variants")
struct ImageVariantTests {
    /// 64×48 and 32×32 PNGs (made with Pillow).
    static let gradient = Array(
        Data(
            base64Encoded:
                "iVBORw0KGgoAAAANSUhEUgAAAEAAAAAwCAIAAAAuKetIAAAARElEQVR42u3PAQkAIBDAwAna2+i2EB5urMCtursmfxodAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAwL8eh1MDJaQl6H4AAAAASUVORK5CYII="
        ) ?? Data())
    static let square = Array(
        Data(
            base64Encoded:
                "iVBORw0KGgoAAAANSUhEUgAAACAAAAAgCAIAAAD8GO2jAAAAKUlEQVR4nO3NMQEAAAjDMMC/MGRhgn2pgKa3sk34DwAAAAAAAAAAAN46CP0BCMDA+XQAAAAASUVORK5CYII="
        ) ?? Data())

    @Test(arguments: StorageBackendKind.allCases)
    func aVariantIsKeptPerVersionAndGoesWithIt(backend: StorageBackendKind) async throws {
        try #require(ImageTransformer.unavailableReason == nil, "libvips42 is needed (Scripts/test installs it)")
        try await StorageHarness.run(backend: backend) { harness in
            let name = "brand/variant-\(UUID().uuidString.prefix(8)).png"
            let variants = "select count(*)::int from storage.image_variants"
            // A variant is kept after its answer has gone out: wait for it a moment.
            func keptVariants(_ expected: Int) async throws -> Bool {
                for _ in 0..<100 {
                    if try await harness.ownerValue(variants, as: Int.self) == expected { return true }
                    try await Task.sleep(for: .milliseconds(50))
                }
                return false
            }
            func render() async throws -> StorageHarness.Reply {
                try await harness.send(.get, "render/image/authenticated/public-assets/\(name)?width=16", as: .service)
            }
            let uploaded = try await harness.upload("public-assets", name, Self.gradient, type: "image/png", as: .service)
            #expect(uploaded.status == .ok, "\(uploaded.text)")
            let objectBlobs = try await harness.files(in: "blobs").count

            let first = try await render()
            #expect(first.status == .ok && first["Content-Type"] == "image/png", "\(first.text)")
            #expect(try await keptVariants(1))
            #expect(try await harness.files(in: "blobs").count == objectBlobs + 1, "the variant's bytes are a blob")
            let second = try await render()
            #expect(Array(second.body) == Array(first.body) && second["ETag"] == first["ETag"])
            #expect(try await harness.ownerValue(variants, as: Int.self) == 1, "served from the kept variant")

            // Replaced: the old version's variant is dropped with it, row and bytes.
            #expect(
                try await harness.upload("public-assets", name, Self.square, type: "image/png", as: .service, upsert: true)
                    .status == .ok)
            #expect(try await harness.ownerValue(variants, as: Int.self) == 0)
            let afterReplacement = try await harness.files(in: "blobs")
            #expect(afterReplacement.count == objectBlobs, "\(afterReplacement)")
            let replaced = try await render()
            #expect(replaced.status == .ok && Array(replaced.body) != Array(first.body) && replaced["ETag"] != first["ETag"])
            #expect(try await keptVariants(1))

            // Deleted: likewise.
            #expect(try await harness.send(.delete, "object/public-assets/\(name)", as: .service).status == .ok)
            #expect(try await harness.ownerValue(variants, as: Int.self) == 0)
            #expect(try await harness.files(in: "blobs").count == objectBlobs - 1)
        }
    }
}
