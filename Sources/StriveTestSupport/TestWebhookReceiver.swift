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
        let python = Repository.python
        guard FileManager.default.isExecutableFile(atPath: python) else {
            throw NotStarted(description: "no \(python): run `Scripts/test` once (it installs standardwebhooks into .build-venv)")
        }
        guard let port = LoopbackPort.free() else { throw NotStarted(description: "no free port") }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: python)
        process.arguments = [
            Repository.root.appendingPathComponent("Scripts/webhook-receiver.py").path, "--port", String(port), "--secret", secret,
        ]
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        // The script exits when this pipe closes: when the test process ends, however it ends.
        process.standardInput = Pipe()
        try process.run()
        let receiver = TestWebhookReceiver(port: port, process: process)
        let deadline = ContinuousClock.now + .seconds(30)
        while (try? await receiver.received()) == nil {
            guard process.isRunning, ContinuousClock.now < deadline else {
                receiver.stop()
                throw NotStarted(description: "the webhook receiver did not start on port \(port)")
            }
            try await Task.sleep(for: .milliseconds(100))
        }
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
