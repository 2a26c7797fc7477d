import Foundation
import Subprocess

#if canImport(System)
    import System
#else
    import SystemPackage
#endif

/// One run of pg_dump, pg_dumpall, pg_restore, psql or tar. The database password travels in the
/// environment (`PGPASSWORD`), never on the command line where `ps` shows it.
struct ExternalTool: Sendable {
    let path: String

    @discardableResult
    func run(_ arguments: [String], password: String? = nil, allowFailure: Bool = false) async throws(BackupError) -> String {
        let name = (path as NSString).lastPathComponent
        let environment: Environment = .inherit.updating(["PGPASSWORD": password, "PGCONNECT_TIMEOUT": "10"])
        let status: Int32
        let output: String
        do {
            let result = try await Subprocess.run(
                .path(FilePath(path)), arguments: Arguments(arguments), environment: environment,
                output: .string(limit: 4 << 20), error: .combinedWithOutput)
            switch result.terminationStatus {
            case .exited(let code): status = Int32(code)
            case .signaled(let signal): status = 128 + Int32(signal)
            }
            output = result.standardOutput
        } catch {
            throw .toolFailed(tool: name, status: -1, output: "could not run \(path): \(error)")
        }
        if status != 0 && !allowFailure { throw .toolFailed(tool: name, status: status, output: output) }
        return output
    }

    /// The system's tar (GNU tar on Debian): archives are plain POSIX tar files any tool can list.
    static var tar: ExternalTool {
        ExternalTool(path: ["/usr/bin/tar", "/bin/tar"].first { FileManager.default.isExecutableFile(atPath: $0) } ?? "/usr/bin/tar")
    }
}
