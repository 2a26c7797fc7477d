import Foundation
import Logging
import PostgresNIO
import StriveDatabase
import StriveTestSupport
import Testing

#if canImport(Glibc)
    import Glibc
#endif

/// Each test owns a fresh data directory and its own cluster: these are the embedded default's lifecycle.
@Suite("Self-managed cluster")
struct LocalClusterTests {
    let logger = Logger(label: "test.cluster")

    func withDataDirectory(_ body: (String) async throws -> Void) async throws {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("strive-lc-\(UUID().uuidString.prefix(8))").path
        defer { try? FileManager.default.removeItem(atPath: path) }
        try await body(path)
    }

    func scalar(_ cluster: LocalCluster, _ running: LocalCluster.Running, _ sql: String) async throws -> String? {
        try await TestCluster.withConnection(try cluster.target(running), logger: logger) { connection in
            try await connection.query(PostgresQuery(unsafeSQL: sql), logger: logger).collect().first?.decode(String?.self)
        }
    }

    func execute(_ cluster: LocalCluster, _ running: LocalCluster.Running, _ sql: String) async throws {
        try await TestCluster.withConnection(try cluster.target(running), logger: logger) { connection in
            try await connection.run(PostgresQuery(unsafeSQL: sql), logger: logger)
        }
    }

    @Test func keepsDataAcrossRestartsAndRecoversFromKillNine() async throws {
        try await withDataDirectory { path in
            let cluster = try TestCluster.localCluster(at: path)
            try await cluster.prepareDataDirectory()
            #expect(try await cluster.status() == .uninitialized)
            #expect(try await cluster.initializeIfNeeded(logger: logger))
            #expect(try await cluster.initializeIfNeeded(logger: logger) == false)

            let first = try await cluster.start(logger: logger)
            #expect(first.startedNow)
            try await execute(cluster, first, "create table kept(v text)")
            try await execute(cluster, first, "insert into kept values ('survives')")
            try await cluster.stop(logger: logger)
            #expect(try await cluster.status() == .stopped)

            let second = try await cluster.start(logger: logger)
            #expect(second.port == first.port)
            #expect(try await scalar(cluster, second, "select v from kept") == "survives")

            // kill -9 the postmaster: the pid file stays behind, the next start must cope.
            let pidText = try String(contentsOfFile: cluster.clusterDirectory + "/postmaster.pid", encoding: .utf8)
            let pid = try #require(pidText.split(separator: "\n").first.flatMap { Int32($0) })
            #expect(kill(pid, SIGKILL) == 0)
            for _ in 0..<50 where kill(pid, 0) == 0 { try await Task.sleep(for: .milliseconds(100)) }
            #expect(FileManager.default.fileExists(atPath: cluster.clusterDirectory + "/postmaster.pid"))

            let third = try await cluster.start(logger: logger)
            #expect(third.startedNow)
            #expect(try await scalar(cluster, third, "select v from kept") == "survives")
            try await cluster.stop(logger: logger)
        }
    }

    @Test func adoptsAClusterLeftRunning() async throws {
        try await withDataDirectory { path in
            let cluster = try TestCluster.localCluster(at: path)
            try await cluster.prepareDataDirectory()
            try await cluster.initializeIfNeeded(logger: logger)
            let first = try await cluster.start(logger: logger)
            // As if the Strive that started it died without stopping it.
            let again = try await cluster.start(logger: logger)
            #expect(again.startedNow == false)
            #expect(again.port == first.port)
            #expect(try await scalar(cluster, again, "select current_database()::text") == "strive")
            try await cluster.stop(logger: logger)
        }
    }

    @Test func secondHolderOfTheDataDirectoryIsRefused() async throws {
        try await withDataDirectory { path in
            try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
            let lock = try DataDirectoryLock(dataDirectory: path)
            #expect(throws: LocalClusterError.alreadyInUse(dataDirectory: path, pid: getpid())) {
                _ = try DataDirectoryLock(dataDirectory: path)
            }
            withExtendedLifetime(lock) {}
        }
    }

    @Test func dataDirectoryThatIsAFileIsRefusedUntouched() async throws {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("strive-file-\(UUID().uuidString.prefix(8))").path
        defer { try? FileManager.default.removeItem(atPath: path) }
        #expect(FileManager.default.createFile(atPath: path, contents: Data("keep me".utf8)))
        let cluster = try TestCluster.localCluster(at: path)
        await #expect(throws: LocalClusterError.dataDirectoryIsNotADirectory(path)) {
            try await cluster.prepareDataDirectory()
        }
        #expect(try String(contentsOfFile: path, encoding: .utf8) == "keep me")
    }

    @Test func missingServerProgramsExplainHowToInstall() throws {
        let empty = FileManager.default.temporaryDirectory.appendingPathComponent("strive-nobin-\(UUID().uuidString.prefix(8))").path
        let error = #expect(throws: LocalClusterError.self) {
            try PostgresBinaries.locate(in: nil, searchPath: empty, versionedRoots: [empty])
        }
        #expect(error?.description.contains("apt-get install postgresql") == true)
        #expect(throws: LocalClusterError.self) {
            try PostgresBinaries.locate(in: empty, searchPath: "/usr/bin")
        }
    }

    @Test func locatesServerProgramsOnThisMachine() throws {
        let binaries = try PostgresBinaries.locate(in: nil)
        #expect(FileManager.default.isExecutableFile(atPath: binaries.initdb))
        #expect(FileManager.default.isExecutableFile(atPath: binaries.postgres))
    }
}
