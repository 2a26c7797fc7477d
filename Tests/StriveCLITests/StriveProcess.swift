import Foundation
import Testing

#if canImport(FoundationNetworking)
    import FoundationNetworking
#endif

/// The built `strive` binary, run as a user would run it.
struct StriveProcess {
    static let executable: URL = {
        if let explicit = ProcessInfo.processInfo.environment["STRIVE_BINARY"] { return URL(fileURLWithPath: explicit) }
        // Tests run from the build products directory, where SwiftPM also puts the `strive` executable.
        return URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath()
            .deletingLastPathComponent().appendingPathComponent("strive")
    }()

    struct Output {
        let status: Int32
        let stdout: String
        let stderr: String
    }

    /// Runs `strive` with `arguments` and a clean environment plus `environment`; waits for it to exit.
    static func run(_ arguments: [String], environment: [String: String] = [:], timeout: Duration = .seconds(60)) async throws -> Output {
        let running = try start(arguments, environment: environment)
        return try await running.wait(timeout: timeout)
    }

    static func start(_ arguments: [String], environment: [String: String] = [:]) throws -> Running {
        let process = Process()
        process.executableURL = executable
        process.arguments = arguments
        var base = [
            "PATH": ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin",
            "STRIVE_LOG_LEVEL": ProcessInfo.processInfo.environment["STRIVE_TEST_SERVER_LOG_LEVEL"] ?? "warning",
        ]
        base["HOME"] = ProcessInfo.processInfo.environment["HOME"]
        // Under `swift test --enable-code-coverage` the server's profile joins the test binary's.
        base["LLVM_PROFILE_FILE"] = ProcessInfo.processInfo.environment["LLVM_PROFILE_FILE"]
        process.environment = base.merging(environment) { _, new in new }
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("strive-cli-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        let stdout = directory.appendingPathComponent("stdout")
        let stderr = directory.appendingPathComponent("stderr")
        _ = FileManager.default.createFile(atPath: stdout.path, contents: nil)
        _ = FileManager.default.createFile(atPath: stderr.path, contents: nil)
        process.standardOutput = try FileHandle(forWritingTo: stdout)
        process.standardError = try FileHandle(forWritingTo: stderr)
        process.standardInput = FileHandle.nullDevice
        try process.run()
        return Running(process: process, stdoutURL: stdout, stderrURL: stderr, directory: directory)
    }

    final class Running: @unchecked Sendable {
        let process: Process
        let stdoutURL: URL
        let stderrURL: URL
        let directory: URL

        init(process: Process, stdoutURL: URL, stderrURL: URL, directory: URL) {
            self.process = process
            self.stdoutURL = stdoutURL
            self.stderrURL = stderrURL
            self.directory = directory
        }

        var stdout: String { (try? String(contentsOf: stdoutURL, encoding: .utf8)) ?? "" }
        var stderr: String { (try? String(contentsOf: stderrURL, encoding: .utf8)) ?? "" }

        /// Polls stdout for the "ready" line and returns the base URL it announces.
        func waitUntilReady(timeout: Duration = .seconds(60)) async throws -> String {
            let deadline = ContinuousClock.now + timeout
            while ContinuousClock.now < deadline {
                if let line = stdout.split(separator: "\n").first(where: { $0.hasPrefix("Strive is ready on ") }) {
                    return String(line.dropFirst("Strive is ready on ".count))
                }
                guard process.isRunning else {
                    throw Failure("strive exited (\(process.terminationStatus)) before it was ready: \(stderr)")
                }
                try await Task.sleep(for: .milliseconds(50))
            }
            throw Failure("strive was not ready within \(timeout): \(stderr)")
        }

        /// The service-role key `strive serve` prints for its development secret.
        func serviceKey() throws -> String { try printedKey("service role key:") }

        /// The anon key `strive serve` prints for its development secret.
        func anonKey() throws -> String { try printedKey("anon key:") }

        private func printedKey(_ label: String) throws -> String {
            guard let line = stdout.split(separator: "\n").first(where: { $0.contains(label) }),
                let key = line.split(separator: " ").first(where: { $0.hasPrefix("ey") })
            else { throw Failure("strive printed no \(label.dropLast())") }
            return String(key)
        }

        func signal(_ signal: Int32) {
            kill(process.processIdentifier, signal)
        }

        func wait(timeout: Duration = .seconds(60)) async throws -> Output {
            let deadline = ContinuousClock.now + timeout
            while process.isRunning {
                guard ContinuousClock.now < deadline else {
                    process.terminate()
                    throw Failure("strive did not exit within \(timeout)")
                }
                try await Task.sleep(for: .milliseconds(50))
            }
            defer { try? FileManager.default.removeItem(at: directory) }
            if process.terminationReason == .uncaughtSignal { print("strive was killed by signal \(process.terminationStatus)") }
            return Output(status: process.terminationStatus, stdout: stdout, stderr: stderr)
        }
    }

    struct Failure: Error, CustomStringConvertible {
        let description: String
        init(_ description: String) { self.description = description }
    }
}

/// A GET over real HTTP; returns status and body.
func httpGet(_ url: String, headers: [String: String] = [:]) async throws -> (Int, String) {
    var request = URLRequest(url: try #require(URL(string: url)))
    for (name, value) in headers { request.setValue(value, forHTTPHeaderField: name) }
    let (data, response) = try await URLSession.shared.data(for: request)
    return ((response as? HTTPURLResponse)?.statusCode ?? 0, String(decoding: data, as: UTF8.self))
}

func temporaryPath(_ prefix: String) -> String {
    FileManager.default.temporaryDirectory.appendingPathComponent("\(prefix)-\(UUID().uuidString.prefix(8))").path
}
