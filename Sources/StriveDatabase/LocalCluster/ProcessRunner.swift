import Foundation
import Subprocess

#if canImport(System)
    import System
#else
    import SystemPackage
#endif

/// Runs a command to completion and returns its exit status and combined output. When `user` is set
/// (the process is root), the command runs as that OS user through `runuser`.
///
/// Subprocess rather than Foundation's Process: `pg_ctl start` leaves a server running, and Foundation
/// lets it inherit the descriptor it watches for the child's exit, so the wait would never end.
public struct ProcessRunner: Sendable {
    var user: String?
    /// The server user may not be able to enter the caller's working directory; run from one it can.
    var workingDirectory: String?

    struct Result: Sendable {
        let status: Int32
        let output: String
        var succeeded: Bool { status == 0 }
    }

    func run(_ executable: String, _ arguments: [String]) async throws -> Result {
        let (launchPath, launchArguments) = command(executable, arguments)
        let result = try await Subprocess.run(
            .path(FilePath(launchPath)),
            arguments: Arguments(launchArguments),
            environment: .inherit,
            workingDirectory: workingDirectory.map { FilePath($0) },
            output: .string(limit: 1 << 20),
            error: .combinedWithOutput
        )
        let status: Int32
        switch result.terminationStatus {
        case .exited(let code): status = Int32(code)
        case .signaled(let signal): status = 128 + Int32(signal)
        }
        return Result(status: status, output: result.standardOutput)
    }

    func command(_ executable: String, _ arguments: [String]) -> (String, [String]) {
        guard let user else { return (executable, arguments) }
        return (Self.runuser, ["-u", user, "--", executable] + arguments)
    }

    public static let runuser =
        ["/usr/sbin/runuser", "/sbin/runuser", "/usr/bin/runuser"]
        .first { FileManager.default.isExecutableFile(atPath: $0) } ?? "/usr/sbin/runuser"
}
