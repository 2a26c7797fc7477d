import Foundation

/// Another program a test runs to completion (tsc, swiftc, python, zbarimg): its exit status and its
/// standard output and error together.
///
/// It waits without blocking a thread: Swift concurrency's pool has one thread per core (two here), and a
/// test blocked in `waitUntilExit` for the seconds swiftc takes stalls every other test's I/O with it.
public enum ToolProcess {
    public struct Result: Sendable {
        public let status: Int32
        public let stdout: String
        public let stderr: String
        /// Standard output, then standard error.
        public var output: String { stdout + stderr }
    }

    public static func run(
        _ executable: String, _ arguments: [String], in folder: String? = nil, environment: [String: String] = [:]
    ) async throws -> Result {
        let base = NSTemporaryDirectory() + "strive-tool-\(UUID().uuidString.prefix(8))"
        let paths = (out: base + ".out", err: base + ".err")
        for path in [paths.out, paths.err] where !FileManager.default.createFile(atPath: path, contents: nil) {
            throw CocoaError(.fileWriteUnknown, userInfo: [NSFilePathErrorKey: path])
        }
        defer { for path in [paths.out, paths.err] { try? FileManager.default.removeItem(atPath: path) } }
        let stdout = try FileHandle(forWritingTo: URL(fileURLWithPath: paths.out))
        let stderr = try FileHandle(forWritingTo: URL(fileURLWithPath: paths.err))
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        if let folder { process.currentDirectoryURL = URL(fileURLWithPath: folder) }
        process.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 }
        process.standardOutput = stdout
        process.standardError = stderr
        process.standardInput = FileHandle.nullDevice
        let status: Int32 = try await withCheckedThrowingContinuation { continuation in
            process.terminationHandler = { finished in continuation.resume(returning: finished.terminationStatus) }
            do {
                try process.run()
            } catch {
                process.terminationHandler = nil
                continuation.resume(throwing: error)
            }
        }
        try? stdout.close()
        try? stderr.close()
        return Result(
            status: status, stdout: (try? String(contentsOfFile: paths.out, encoding: .utf8)) ?? "",
            stderr: (try? String(contentsOfFile: paths.err, encoding: .utf8)) ?? "")
    }

    /// `name` on PATH (or in the usual places PATH may lack under a test runner), if it is there.
    public static func find(_ name: String) -> String? {
        let path = ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin"
        return (path.split(separator: ":").map(String.init) + ["/usr/bin", "/opt/swift/usr/bin"])
            .map { $0 + "/" + name }
            .first { FileManager.default.isExecutableFile(atPath: $0) }
    }
}

/// The repository this test build comes from: for its scripts, its README and its `.build-venv`.
public enum Repository {
    public static let root: URL = {
        var directory = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        while directory.path != "/" && !FileManager.default.fileExists(atPath: directory.appendingPathComponent("Package.swift").path) {
            directory.deleteLastPathComponent()
        }
        return directory
    }()

    /// The virtualenv's Python that `Scripts/test` prepares (supabase-py, aiosmtpd).
    public static var python: String { root.appendingPathComponent(".build-venv/bin/python").path }
}
