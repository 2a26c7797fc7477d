import Foundation
import Logging
import PostgresNIO
import StriveBlobs
import StriveDatabase
import StriveTestSupport
import Testing

@testable import StriveBackup

/// What a restore refuses before it touches anything, and what a backup refuses to call complete.
@Suite("Backup archives")
struct BackupArchiveTests {
    let logger: Logger = {
        var logger = Logger(label: "test.backup")
        logger.logLevel = .critical
        return logger
    }()

    static func temporary(_ name: String) -> String {
        NSTemporaryDirectory() + "strive-\(name)-" + UUID().uuidString.prefix(8)
    }

    /// A tar archive of `files` (path → contents); `manifest` replaces `manifest.json` when given, with
    /// `{digest:PATH}` standing for that file's size and SHA-256 as the manifest spells them.
    static func archive(_ files: [String: String]) async throws -> String {
        let directory = temporary("archive-src")
        defer { try? FileManager.default.removeItem(atPath: directory) }
        for (path, text) in files {
            let url = URL(fileURLWithPath: directory + "/" + path)
            try FileManager.default.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
            try Data(text.utf8).write(to: url)
        }
        let archive = temporary("archive") + ".tar"
        try await ExternalTool.tar.run(["-cf", archive, "-C", directory, "."])
        return archive
    }

    static func manifest(files: [(String, String)], objects: [(String, String)] = [], format: String = "strive-backup") -> String {
        func digest(_ text: String) -> (Int, String) {
            let path = temporary("digest")
            defer { try? FileManager.default.removeItem(atPath: path) }
            _ = FileManager.default.createFile(atPath: path, contents: Data(text.utf8))
            let digest = FileDigest.digest(path)
            return (Int(digest?.bytes ?? -1), digest?.sha256 ?? "")
        }
        let fileEntries = files.map { path, text in
            let (bytes, sha) = digest(text)
            return #"{"path":"\#(path)","bytes":\#(bytes),"sha256":"\#(sha)"}"#
        }
        let objectEntries = objects.map { version, text in
            let (bytes, sha) = digest(text)
            return #"{"bucket":"b","name":"n","version":"\#(version)","bytes":\#(bytes),"sha256":"\#(sha)"}"#
        }
        return #"""
            {"format":"\#(format)","format_version":1,"created_at":"2026-12-07T00:00:00Z","strive_version":"test",
             "postgres_version":"16","owner":"postgres","migration_version":26,
             "files":[\#(fileEntries.joined(separator: ","))],"objects":[\#(objectEntries.joined(separator: ","))]}
            """#
    }

    static let corruptions: [(String, [String: String], String)] = [
        ("no manifest", ["database.dump": "dump"], "it has no manifest.json"),
        ("not a manifest", ["manifest.json": "nope", "database.dump": "dump"], "is not a Strive backup manifest"),
        (
            "another format", ["manifest.json": manifest(files: [("database.dump", "dump")], format: "other"), "database.dump": "dump"],
            "is not one this build reads"
        ),
        ("no dump listed", ["manifest.json": manifest(files: [("roles.sql", "r")]), "roles.sql": "r"], "lists no database.dump"),
        ("a changed file", ["manifest.json": manifest(files: [("database.dump", "dump")]), "database.dump": "pump"], "checksum"),
        ("a missing file", ["manifest.json": manifest(files: [("database.dump", "dump")])], "database.dump is missing"),
        (
            "a path outside", ["manifest.json": manifest(files: [("database.dump", "dump"), ("../x", "x")]), "database.dump": "dump"],
            "a path outside it"
        ),
    ]

    @Test(arguments: Self.corruptions)
    func aCorruptArchiveIsRefusedBeforeAnythingIsWritten(_ name: String, files: [String: String], reason: String) async throws {
        let archive = try await Self.archive(files)
        defer { try? FileManager.default.removeItem(atPath: archive) }
        let work = Self.temporary("work")
        await #expect {
            _ = try await BackupRestorer.unpack(archive, into: work)
        } throws: { error in
            guard case .corruptArchive(let why) = error as? BackupError else { return false }
            return why.contains(reason)
        }
        #expect(!FileManager.default.fileExists(atPath: work), "\(name): the work directory is removed")
    }

    @Test func aRestoreRefusesAStoreThatHoldsObjects() async throws {
        let root = Self.temporary("store")
        defer { try? FileManager.default.removeItem(atPath: root) }
        let store = try await LocalBlobStore(root: root)
        _ = FileManager.default.createFile(atPath: root + "/blob", contents: Data("x".utf8))
        try await store.place(fileAt: root + "/blob", as: BlobID())
        let database = try await TestCluster.shared.makeDatabase(migrated: false)
        let destination = RestoreDestination(target: database.target, binaryDirectory: "", blobs: store, secretFile: nil)
        await #expect {
            try await BackupRestorer.checkEmpty(destination, logger: logger)
        } throws: { error in
            guard case .targetNotEmpty(let why) = error as? BackupError else { return false }
            return why == "the blob store already holds objects"
        }
    }

    @Test func aRestoreRefusesADatabaseThatHasStrivesSchema() async throws {
        let root = Self.temporary("store")
        defer { try? FileManager.default.removeItem(atPath: root) }
        let database = try await TestCluster.shared.makeDatabase()
        let destination = RestoreDestination(
            target: database.target, binaryDirectory: "", blobs: try await LocalBlobStore(root: root), secretFile: nil)
        await #expect {
            try await BackupRestorer.checkEmpty(destination, logger: logger)
        } throws: { error in
            guard case .targetNotEmpty(let why) = error as? BackupError else { return false }
            return why.contains("already has Strive's schema")
        }
    }

    @Test func anArchiveNamingABlobThatIsNoIDIsRefused() async throws {
        let archive = try await Self.archive([
            "manifest.json": Self.manifest(files: [("database.dump", "dump")], objects: [("not-a-blob", "bytes")]),
            "database.dump": "dump", "objects/not-a-blob": "bytes",
        ])
        defer { try? FileManager.default.removeItem(atPath: archive) }
        let unpacked = try await BackupRestorer.unpack(archive, into: Self.temporary("work"))
        defer { unpacked.discard() }
        let root = Self.temporary("store")
        defer { try? FileManager.default.removeItem(atPath: root) }
        let database = try await TestCluster.shared.makeDatabase(migrated: false)
        let destination = RestoreDestination(
            target: database.target, binaryDirectory: "", blobs: try await LocalBlobStore(root: root), secretFile: nil)
        await #expect {
            try await BackupRestorer.restore(unpacked, into: destination, logger: logger)
        } throws: { error in
            guard case .corruptArchive(let why) = error as? BackupError else { return false }
            return why.contains("which is not a blob id")
        }
    }

    @Test func aBackupWhoseObjectHasNoBytesFailsAndLeavesNoArchive() async throws {
        let database = try await TestCluster.shared.makeDatabase()
        try await database.withOwnerConnection { connection in
            try await connection.run(
                "insert into storage.objects (bucket_id, name, version) values ('attachments', 'org/lost.pdf', \(UUID().uuidString.lowercased()))",
                logger: logger)
        }
        let root = Self.temporary("store")
        defer { try? FileManager.default.removeItem(atPath: root) }
        let archive = Self.temporary("backup") + ".tar"
        let source = BackupSource(
            target: database.target, binaryDirectory: database.started.cluster.binaries.directory,
            blobs: try await LocalBlobStore(root: root), secretFile: nil, striveVersion: "test")
        await #expect {
            _ = try await BackupWriter.create(from: source, to: archive, logger: logger)
        } throws: { error in
            guard case .files(let why) = error as? BackupError else { return false }
            return why.contains("attachments/org/lost.pdf has no bytes")
        }
        #expect(!FileManager.default.fileExists(atPath: archive))
    }

    @Test func aFailedBackupIsListedWithItsReason() async throws {
        let database = try await TestCluster.shared.makeDatabase()
        let entries = try await database.withOwnerConnection { connection in
            try await BackupCatalog.record(
                file: "/nowhere/strive.tar", instance: "test", scheduled: true, startedAt: Date(),
                outcome: .failure(.files("the disk is full")), on: connection, logger: logger)
            return try await BackupCatalog.list(on: connection, logger: logger)
        }
        let entry = try #require(entries.first)
        #expect(entry.file == "/nowhere/strive.tar" && entry.scheduled && entry.finishedAt == nil)
        #expect(entry.error?.contains("the disk is full") == true)
    }
}
