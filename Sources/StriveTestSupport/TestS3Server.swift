import Foundation
import NIOConcurrencyHelpers
import StriveDatabase
import StriveS3

/// A real S3-compatible server for tests: moto's (`Scripts/test-s3-server.py`, from the repository's
/// `.build-venv`), on loopback, path-style, accepting any credentials. One per test process; tests keep
/// apart by using buckets of their own.
public final class TestS3Server: Sendable {
    public let port: Int
    private let process: NIOLockedValueBox<Process>
    public static let accessKeyID = "strive-test-key"
    public static let secretAccessKey = "strive-test-secret-key"

    public struct NotStarted: Error, CustomStringConvertible {
        public let description: String
    }

    public static func shared() async throws -> TestS3Server {
        try await sharedServer.server()
    }

    private static let sharedServer = SharedTestServer { try await TestS3Server.start() }

    /// Starts a server of the caller's own (a test that stops it to see S3 go away).
    public static func start() async throws -> TestS3Server {
        guard let port = LoopbackPort.free() else { throw NotStarted(description: "no free port") }
        let process = try ScriptServer.launch("test-s3-server.py", ["--port", String(port)], installs: "moto")
        let server = TestS3Server(port: port, process: process)
        try await ScriptServer.waitUntilReady(process, "moto on port \(port)", answers: { await server.answers() }, stop: server.stop)
        return server
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
            // Until it is gone its port still answers (a test stopping S3 means it). `waitUntilExit` can
            // wait on a run loop nobody runs here, so poll.
            var deadline = Date(timeIntervalSinceNow: 5)
            while process.isRunning && Date() < deadline { Thread.sleep(forTimeInterval: 0.02) }
            guard process.isRunning else { return }
            kill(process.processIdentifier, SIGKILL)
            deadline = Date(timeIntervalSinceNow: 5)
            while process.isRunning && Date() < deadline { Thread.sleep(forTimeInterval: 0.02) }
        }
    }

    public var isRunning: Bool { process.withLockedValue { $0.isRunning } }

    public var endpoint: String { "http://127.0.0.1:\(port)" }

    /// The `STRIVE_*` variables of a Strive that keeps its objects in `bucket` here.
    public func environment(bucket: String, partSizeMiB: Int = 5) -> [String: String] {
        [
            "STRIVE_STORAGE_BACKEND": "s3", "STRIVE_S3_ENDPOINT": endpoint, "STRIVE_S3_REGION": "us-east-1", "STRIVE_S3_BUCKET": bucket,
            "STRIVE_S3_ACCESS_KEY_ID": Self.accessKeyID, "STRIVE_S3_SECRET_ACCESS_KEY": Self.secretAccessKey,
            "STRIVE_S3_FORCE_PATH_STYLE": "true", "STRIVE_S3_PART_SIZE_MB": String(partSizeMiB),
        ]
    }

    /// A fresh bucket name (S3's rules: lowercase letters, digits, hyphens).
    public static func bucketName(_ prefix: String = "strive") -> String {
        prefix + "-" + UUID().uuidString.lowercased().prefix(12)
    }

    /// A client for `bucket` here; the caller shuts it down.
    public func client(bucket: String) -> S3Client {
        S3Client(
            configuration: S3Configuration(
                endpoint: URL(string: endpoint) ?? URL(fileURLWithPath: "/"), region: "us-east-1", bucket: bucket,
                accessKeyID: Self.accessKeyID, secretAccessKey: Self.secretAccessKey, forcePathStyle: true))
    }

    /// Creates `bucket` here.
    public func createBucket(_ bucket: String) async throws {
        let client = client(bucket: bucket)
        do {
            try await client.createBucket()
        } catch {
            try? await client.shutdown()
            throw error
        }
        try await client.shutdown()
    }

    /// True once the server answers anything at all.
    private func answers() async -> Bool {
        let client = client(bucket: "probe")
        let answered: Bool
        do {
            try await client.headBucket()
            answered = true
        } catch S3Error.unreachable {
            answered = false
        } catch {
            answered = true
        }
        try? await client.shutdown()
        return answered
    }
}
