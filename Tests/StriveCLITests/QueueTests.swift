import Foundation
import StriveDatabase
import StriveTestSupport
import Testing

#if canImport(Glibc)
    import Glibc
#endif

/// Queues with pgmq's SQL interface (migration 0038) against `strive serve`, driven by pgmq's own Python
/// client over a worker's login (`strive db url --role service`) and by the data API's pgmq_public rpc
/// (`Scripts/queues-flow.py`): a round trip, two consumers that never share a message, the wrappers for
/// the roles granted them and refused to the rest.
@Suite("Queues (pgmq)", .capacityBound)
struct QueueTests {
    @Test func pgmqsClientAndTheDataAPIUseTheBuiltInQueues() async throws {
        let python = try #require(await WalkthroughTests.supabasePython(), "no Python with pgmq (Scripts/test prepares .build-venv)")
        let dataDirectory = temporaryPath("strive-queues")
        defer { try? FileManager.default.removeItem(atPath: dataDirectory) }
        let port = try #require(LoopbackPort.free())
        let server = try StriveProcess.start(
            ["serve", "--data-dir", dataDirectory, "--port", String(port)], environment: ["STRIVE_DB_SCHEMAS": "public,pgmq_public"])
        let base = try await server.waitUntilReady()
        let worker = try await StriveProcess.run(["db", "url", "--role", "service", "--data-dir", dataDirectory])
        #expect(worker.status == 0, "\(worker.stderr)")
        let script = Repository.root.appendingPathComponent("Scripts/queues-flow.py").path
        let ran = try await ToolProcess.run(
            python,
            [script, base, try server.serviceKey(), try server.anonKey(), worker.stdout.trimmingCharacters(in: .whitespacesAndNewlines)])
        server.signal(SIGTERM)
        #expect(try await server.wait().status == 0)

        #expect(ran.status == 0, "\(ran.output)")
        for step in [
            "send, read, archive, delete, pop", "two consumers never share a message",
            "pgmq_public through the data API, for the roles granted it", "purge and drop",
        ] {
            #expect(ran.stdout.contains("ok \(step)\n"), "\(step): \(ran.output)")
        }
    }
}
