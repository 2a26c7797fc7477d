import Foundation
import NIOPosix

/// Runs a command to completion off the event loops and returns its exit status and combined output.
/// When `user` is set (the process is root), the command runs as that OS user through `runuser`.
struct ProcessRunner: Sendable {
    var user: String?
    /// The server user may not be able to enter the caller's working directory; run from one it can.
    var workingDirectory: String?

    struct Result: Sendable {
        let status: Int32
        let output: String
        var succeeded: Bool { status == 0 }
    }

    func run(_ executable: String, _ arguments: [String], environment: [String: String] = [:]) async throws -> Result {
        let (launchPath, launchArguments) = command(executable, arguments)
        let workingDirectory = self.workingDirectory
        return try await NIOThreadPool.singleton.runIfActive {
            let process = Process()
            process.executableURL = URL(fileURLWithPath: launchPath)
            process.arguments = launchArguments
            process.environment = ProcessInfo.processInfo.environment.merging(environment) { _, new in new }
            process.standardInput = FileHandle.nullDevice
            if let directory = workingDirectory { process.currentDirectoryURL = URL(fileURLWithPath: directory) }
            let pipe = Pipe()
            process.standardOutput = pipe
            process.standardError = pipe
            try process.run()
            // Read before waiting: a full pipe would otherwise block the child forever.
            let data = pipe.fileHandleForReading.readDataToEndOfFile()
            process.waitUntilExit()
            return Result(status: process.terminationStatus, output: String(decoding: data, as: UTF8.self))
        }
    }

    func command(_ executable: String, _ arguments: [String]) -> (String, [String]) {
        guard let user else { return (executable, arguments) }
        return (Self.runuser, ["-u", user, "--", executable] + arguments)
    }

    static let runuser = ["/usr/sbin/runuser", "/sbin/runuser", "/usr/bin/runuser"]
        .first { FileManager.default.isExecutableFile(atPath: $0) } ?? "/usr/sbin/runuser"
}
