import Foundation
import NIOConcurrencyHelpers
import StriveDatabase

/// A real HTTP receiver on loopback (`Scripts/webhook-receiver.py`) that records every request, checks
/// its Standard Webhooks signature, and answers by path: `/ok`, `/flaky` (503 twice), `/limited` (429
/// once), `/slow` (the first attempt hangs).
public final class TestWebhookReceiver: Sendable {
    public struct Received: Decodable, Sendable {
        public let path: String
        public let query: String
        public let method: String
        /// `webhook-id`: the same on every attempt of one request.
        public let id: String
        public let attempt: Int
        public let verified: Bool
        public let body: String
        public let userAgent: String

        enum CodingKeys: String, CodingKey {
            case path, query, method, id, attempt, verified, body
            case userAgent = "user_agent"
        }
    }

    public struct NotStarted: Error, CustomStringConvertible {
        public let description: String
    }

    public let port: Int
    private let process: NIOLockedValueBox<Process>

    /// Starts a receiver that verifies signatures with `secret` (`whsec_…`).
    public static func start(secret: String) async throws -> TestWebhookReceiver {
        guard let port = LoopbackPort.free() else { throw NotStarted(description: "no free port") }
        let process = try ScriptServer.launch(
            "webhook-receiver.py", ["--port", String(port), "--secret", secret], installs: "standardwebhooks")
        let receiver = TestWebhookReceiver(port: port, process: process)
        try await ScriptServer.waitUntilReady(
            process, "the webhook receiver on port \(port)", answers: { (try? await receiver.received()) != nil }, stop: receiver.stop)
        return receiver
    }

    private init(port: Int, process: Process) {
        self.port = port
        self.process = NIOLockedValueBox(process)
    }

    deinit { stop() }

    public func stop() {
        process.withLockedValue { process in
            guard process.isRunning else { return }
            process.terminate()
        }
    }

    public func url(_ path: String) -> String { "http://127.0.0.1:\(port)\(path)" }

    /// Everything received so far, in order.
    public func received() async throws -> [Received] {
        let reply = try await TestBrowser().get(url("/_log"))
        guard reply.status == 200 else { throw NotStarted(description: "the receiver answered \(reply.status)") }
        return try JSONDecoder().decode([Received].self, from: Data(reply.body.utf8))
    }
}
