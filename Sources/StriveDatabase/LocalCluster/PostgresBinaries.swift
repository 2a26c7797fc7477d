import Foundation

/// The PostgreSQL server programs a self-managed cluster needs.
public struct PostgresBinaries: Sendable, Equatable {
    public let directory: String
    public var initdb: String { directory + "/initdb" }
    public var pgCtl: String { directory + "/pg_ctl" }
    public var postgres: String { directory + "/postgres" }
    public var psql: String { directory + "/psql" }

    static let required = ["initdb", "pg_ctl", "postgres"]

    /// Searches, in order: `directory` if given (and only it), every `PATH` entry, the directory
    /// `pg_config --bindir` names, then `/usr/lib/postgresql/<version>/bin` newest first.
    public static func locate(
        in directory: String?,
        searchPath: String = ProcessInfo.processInfo.environment["PATH"] ?? "",
        versionedRoots: [String] = ["/usr/lib/postgresql", "/usr/local/lib/postgresql"]
    ) throws(LocalClusterError) -> PostgresBinaries {
        if let explicit = directory {
            guard hasServerPrograms(explicit) else { throw .binariesNotFound(searched: [explicit]) }
            return PostgresBinaries(directory: explicit)
        }
        var candidates = searchPath.split(separator: ":").map(String.init)
        if let bindir = pgConfigBindir(searchPath: candidates) { candidates.append(bindir) }
        for root in versionedRoots {
            let versions = (try? FileManager.default.contentsOfDirectory(atPath: root)) ?? []
            let newestFirst = versions.compactMap { name in Int(name).map { ($0, name) } }.sorted { $0.0 > $1.0 }
            candidates += newestFirst.map { "\(root)/\($0.1)/bin" }
        }
        for directory in candidates where hasServerPrograms(directory) {
            // PATH often holds symlinks (Debian's /usr/local/bin/initdb); the real directory keeps the set together.
            let resolved = URL(fileURLWithPath: directory + "/initdb").resolvingSymlinksInPath().deletingLastPathComponent().path
            return PostgresBinaries(directory: hasServerPrograms(resolved) ? resolved : directory)
        }
        throw .binariesNotFound(searched: candidates)
    }

    static func hasServerPrograms(_ directory: String) -> Bool {
        required.allSatisfy { FileManager.default.isExecutableFile(atPath: "\(directory)/\($0)") }
    }

    private static func pgConfigBindir(searchPath: [String]) -> String? {
        guard let pgConfig = searchPath.map({ $0 + "/pg_config" }).first(where: FileManager.default.isExecutableFile)
        else { return nil }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: pgConfig)
        process.arguments = ["--bindir"]
        let pipe = Pipe()
        process.standardOutput = pipe
        process.standardError = FileHandle.nullDevice
        guard (try? process.run()) != nil else { return nil }
        let data = pipe.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        let text = String(decoding: data, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
        return process.terminationStatus == 0 && !text.isEmpty ? text : nil
    }
}
