import Foundation
import Logging
import StriveCore
import StriveDatabase
import StriveTestSupport
import Testing

#if canImport(Glibc)
    import Glibc
#endif

/// A 100 MiB TUS upload with the real client (`Scripts/tus-flow.py`, PyPI tuspy) through two `strive serve`
/// instances on one database and one storage directory: resumed after an interruption, one instance killed
/// with SIGKILL in the middle of a PATCH, the upload finished on the other, the object checked byte for byte.
@Suite("Resumable uploads across instances", .capacityBound, .serialized)
struct ResumableUploadServerTests {
    @Test func aHundredMebibyteUploadSurvivesAKilledInstanceAndFinishesOnAnother() async throws {
        let python = try #require(await WalkthroughTests.supabasePython(), "no Python with tuspy (Scripts/test prepares .build-venv)")
        let dataDirectory = temporaryPath("strive-tus")
        defer { try? FileManager.default.removeItem(atPath: dataDirectory) }
        let logger = Logger(label: "tus")
        let (cluster, databaseURL) = try await DatabaseFaultTests.startExternalCluster(dataDirectory, logger: logger)
        let shared = ["STRIVE_STORAGE_DIR": dataDirectory + "/objects"]
        func instance(_ name: String) throws -> StriveProcess.Running {
            try DatabaseFaultTests.serve(
                on: databaseURL, dataDirectory: dataDirectory + "/" + name, environment: shared.merging(["STRIVE_INSTANCE_ID": name]) { $1 }
            )
        }
        let doomed = try instance("a")
        let doomedBase = try await doomed.waitUntilReady()
        let survivor = try instance("b")
        let survivorBase = try await survivor.waitUntilReady()
        let serviceKey = try await APIKeys.derive(role: .serviceRole, secret: TestCluster.jwtSecret)
        let script = Repository.root.appendingPathComponent("Scripts/tus-flow.py").path
        let ran = try await ToolProcess.run(
            python, [script, doomedBase, String(doomed.process.processIdentifier), survivorBase, serviceKey])
        survivor.signal(SIGTERM)
        #expect(try await survivor.wait(timeout: .seconds(30)).status == 0)
        _ = try? await doomed.wait(timeout: .seconds(30))
        try await cluster.stop(mode: .fast, logger: logger)

        #expect(ran.status == 0, "\(ran.output)")
        for step in [
            "36 MiB in 6 MiB chunks", "interrupted and resumed from the server's offset", "instance A killed mid-PATCH",
            "resumed and finished on instance B", "100 MiB object matches",
        ] {
            #expect(ran.stdout.contains("ok \(step)\n"), "\(step): \(ran.output)")
        }
    }
}
