import Foundation

/// A server from `Scripts/` (moto, the identity providers, the webhook receiver) run with the tests'
/// virtualenv. It exits when its standard input closes: when the test process ends, however it ends.
enum ScriptServer {
    struct NotStarted: Error, CustomStringConvertible {
        let description: String
    }

    /// Starts `script` with `arguments`; `installs` names what `Scripts/test` puts into the virtualenv for it.
    static func launch(_ script: String, _ arguments: [String], installs: String) throws -> Process {
        let python = Repository.python
        guard FileManager.default.isExecutableFile(atPath: python) else {
            throw NotStarted(description: "no \(python): run `Scripts/test` once (it installs \(installs) into .build-venv)")
        }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: python)
        process.arguments = [Repository.root.appendingPathComponent("Scripts/" + script).path] + arguments
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        process.standardInput = Pipe()
        try process.run()
        return process
    }

    /// Waits up to 30 s until `answers`; otherwise `stop` and fails saying `what` did not start.
    static func waitUntilReady(
        _ process: Process, _ what: String, answers: () async -> Bool, stop: () -> Void
    ) async throws {
        let deadline = ContinuousClock.now + .seconds(30)
        while !(await answers()) {
            guard process.isRunning, ContinuousClock.now < deadline else {
                stop()
                throw NotStarted(description: "\(what) did not start")
            }
            try await Task.sleep(for: .milliseconds(100))
        }
    }
}
