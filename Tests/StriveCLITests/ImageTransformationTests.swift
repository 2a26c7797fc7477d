import Foundation
import StriveCore
import StriveDatabase
import StriveTestSupport
import Testing

#if canImport(Glibc)
    import Glibc
#endif

/// Image transformations (`/storage/v1/render/image`, libvips) against `strive serve`, checked with Pillow
/// (`Scripts/image-transform-flow.py`): dimensions per resize mode, format, quality, EXIF orientation,
/// alpha, an animated GIF, a decompression bomb and a non-image refused, conditional requests, a replaced
/// object never answering with its old variant, the variant cache's hits and evictions, signed URLs that
/// carry a transformation; and a server whose libvips cannot be loaded answering 501, never the original.
@Suite("Image transformations", .capacityBound, .serialized)
struct ImageTransformationTests {
    @Test func transformationsAreWhatPillowSeesAndBombsAreRefused() async throws {
        let python = try #require(await WalkthroughTests.supabasePython(), "no Python with Pillow (Scripts/test prepares .build-venv)")
        let dataDirectory = temporaryPath("strive-images")
        defer { try? FileManager.default.removeItem(atPath: dataDirectory) }
        let port = try #require(LoopbackPort.free())
        let server = try StriveProcess.start(
            ["serve", "--data-dir", dataDirectory, "--port", String(port)], environment: ["STRIVE_STORAGE_IMAGE_CACHE_MB": "1"])
        let base = try await server.waitUntilReady()
        let serviceKey = try server.serviceKey()
        let script = Repository.root.appendingPathComponent("Scripts/image-transform-flow.py").path
        let ran = try await ToolProcess.run(python, [script, base, serviceKey])
        server.signal(SIGTERM)
        #expect(try await server.wait().status == 0)

        #expect(ran.status == 0, "\(ran.output)")
        for step in [
            "dimensions per resize mode", "format and quality", "EXIF orientation honoured", "a PNG keeps its alpha", "an animated GIF",
            "a bomb, a non-image and bad options refused", "conditional requests and the public route",
            "a variant is transformed once, then served from the cache", "the variant cache evicts beyond its bound",
            "signed URLs carry their transformation", "a replaced object never serves its old variant",
        ] {
            #expect(ran.stdout.contains("ok \(step)\n"), "\(step): \(ran.output)")
        }
    }

    @Test func withoutLibvipsTheServerRunsAndSaysWhatIsMissing() async throws {
        let python = try #require(await WalkthroughTests.supabasePython(), "no Python with Pillow (Scripts/test prepares .build-venv)")
        let dataDirectory = temporaryPath("strive-novips")
        defer { try? FileManager.default.removeItem(atPath: dataDirectory) }
        let port = try #require(LoopbackPort.free())
        let server = try StriveProcess.start(
            ["serve", "--data-dir", dataDirectory, "--port", String(port)],
            environment: ["STRIVE_STORAGE_IMAGE_LIBRARY": "/nonexistent/libvips.so.42"])
        let base = try await server.waitUntilReady()
        let script = Repository.root.appendingPathComponent("Scripts/image-transform-flow.py").path
        let ran = try await ToolProcess.run(python, [script, base, try server.serviceKey(), "--without-libvips"])
        server.signal(SIGTERM)
        #expect(try await server.wait().status == 0)
        #expect(ran.status == 0 && ran.stdout.contains("ok without libvips: 501 naming it, downloads unaffected\n"), "\(ran.output)")
    }
}
