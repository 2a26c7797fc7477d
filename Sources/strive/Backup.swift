import ArgumentParser
import Foundation
import Logging
import StriveBackup
import StriveBlobs
import StriveCore
import StriveDatabase
import StriveServer

/// `strive backup`: a consistent archive of the database and the object bytes it references, taken
/// while `strive serve` keeps serving.
struct BackupCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "backup",
        abstract: "Write a backup archive: a consistent database dump plus exactly the object bytes it references.",
        discussion: """
            Safe while `strive serve` runs: writes go on, and deleting object bytes waits
            until the backup has copied them. The archive is a plain tar file holding
            manifest.json (every file's size and SHA-256), database.dump (pg_dump custom
            format), roles.sql, objects/ and, for a development data directory, its
            generated JWT secret — keep it as safe as the database itself.
            Restore it with `strive restore FILE` into an empty data directory or database.
            """)

    @OptionGroup var options: DatabaseOptions
    @Option(name: .shortAndLong, help: "Archive to write (default STRIVE_BACKUP_DIR/strive-<UTC time>.tar).")
    var output: String?

    func run() async throws {
        let logger = makeLogger(level: try commandLogLevel())
        try await reportingBackupFailure {
            let settings = try options.settings()
            let archive = output.map(absolutePath) ?? BackupFiles.defaultArchive(in: settings.dataDirectory)
            try BackupFiles.createParent(of: archive)
            let started = ContinuousClock.now
            let outcome = try await BackupFiles.withBlobStore(settings, logger: logger) { blobs in
                try await options.withTarget(logger: logger) { target throws(StartupError) in
                    let source = BackupSource(
                        target: target, binaryDirectory: try BackupFiles.binaryDirectory(settings), blobs: blobs,
                        secretFile: BackupFiles.secretFile(settings), striveVersion: StriveVersion.current)
                    let started = Date()
                    let outcome: Result<BackupManifest, BackupError>
                    do throws(BackupError) {
                        outcome = .success(try await BackupWriter.create(from: source, to: archive, logger: logger))
                    } catch {
                        outcome = .failure(error)
                    }
                    try await DatabaseBootstrap.withOwnerConnection(target, logger: logger) { connection throws(StartupError) in
                        do {
                            try await BackupCatalog.record(
                                file: archive, instance: "strive backup", scheduled: false, startedAt: started, outcome: outcome,
                                on: connection, logger: logger)
                        } catch {
                            logger.warning("the backup is not listed in strive_meta.backups", metadata: ["error": "\(error)"])
                        }
                    }
                    return outcome
                }
            }
            let manifest = try outcome.get()
            let size = (try? FileManager.default.attributesOfItem(atPath: archive)[.size] as? Int64) ?? 0
            print("backup written: \(archive)")
            print(
                "  \(manifest.objects.count) objects, \(BackupFiles.size(size)) in \(BackupFiles.elapsed(since: started)); "
                    + "database at migration \(manifest.migrationVersion)")
        }
    }
}

/// `strive restore FILE`: an archive into an empty data directory (or `--database-url` + an empty store).
struct RestoreCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "restore",
        abstract: "Restore a backup archive into an empty data directory, or an empty database with --database-url.",
        discussion: """
            The archive is unpacked and checked against its manifest before anything is
            written; a corrupt or truncated archive changes nothing. The target must be
            empty: no cluster in the data directory (or no Strive schema in the database),
            no objects in the storage directory. Start the restored instance with the JWT
            secret the backup was taken under (a development data directory's is restored).
            """)

    @OptionGroup var options: DatabaseOptions
    @Argument(help: "The archive `strive backup` wrote.") var archive: String

    func run() async throws {
        let logger = makeLogger(level: try commandLogLevel())
        try await reportingBackupFailure {
            let settings = try options.settings()
            let archive = absolutePath(self.archive)
            let started = ContinuousClock.now
            let manifest: BackupManifest
            switch settings.location {
            case .external:
                manifest = try await restoreIntoDatabase(settings, archive: archive, logger: logger)
            case .managed:
                manifest = try await restoreIntoDataDirectory(settings, archive: archive, logger: logger)
            }
            print("restored \(archive)")
            print(
                "  \(manifest.objects.count) objects, \(BackupFiles.size(manifest.totalBytes)) in \(BackupFiles.elapsed(since: started)); "
                    + "backup taken \(manifest.createdAt) by strive \(manifest.striveVersion)")
        }
    }

    private func restoreIntoDatabase(_ settings: DatabaseSettings, archive: String, logger: Logger) async throws -> BackupManifest {
        let storage = BackupFiles.storageRoot(settings)
        let unpacked = try await BackupRestorer.unpack(archive, into: BackupFiles.workDirectory(near: storage))
        defer { unpacked.discard() }
        let outcome = try await BackupFiles.withBlobStore(settings, logger: logger) { blobs in
            try await options.withTarget(logger: logger) { target throws(StartupError) -> Result<Void, BackupError> in
                let destination = RestoreDestination(
                    target: target, binaryDirectory: try BackupFiles.binaryDirectory(settings), blobs: blobs, secretFile: nil)
                do throws(BackupError) {
                    try await BackupRestorer.restore(unpacked, into: destination, logger: logger)
                } catch {
                    return .failure(error)
                }
                return .success(())
            }
        }
        try outcome.get()
        return unpacked.manifest
    }

    /// A new cluster in the data directory; on failure everything this command created there is removed.
    private func restoreIntoDataDirectory(_ settings: DatabaseSettings, archive: String, logger: Logger) async throws -> BackupManifest {
        let directory = settings.dataDirectory
        let cluster = try options.dataDirectory.cluster()
        if cluster.isInitialized {
            throw BackupError.targetNotEmpty("\(directory) already has a database cluster; restore into an empty data directory")
        }
        let existed = FileManager.default.fileExists(atPath: directory)
        let before = Set((try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? [])
        func removeWhatWeCreated() {
            if !existed {
                try? FileManager.default.removeItem(atPath: directory)
                return
            }
            let now = (try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? []
            for entry in now where !before.contains(entry) { try? FileManager.default.removeItem(atPath: directory + "/" + entry) }
        }
        let storage = BackupFiles.storageRoot(settings)
        let unpacked: VerifiedArchive
        do {
            unpacked = try await BackupRestorer.unpack(archive, into: BackupFiles.workDirectory(near: storage))
        } catch {
            removeWhatWeCreated()
            throw error
        }
        defer { unpacked.discard() }
        do {
            let managed = try await ManagedCluster.open(settings, logger: logger)
            do {
                try await BackupFiles.withBlobStore(settings, logger: logger) { blobs in
                    let destination = RestoreDestination(
                        target: try managed.target(), binaryDirectory: managed.cluster.binaries.directory, blobs: blobs,
                        secretFile: BackupFiles.secretFile(settings))
                    try await BackupRestorer.restore(unpacked, into: destination, logger: logger)
                }
                await managed.close(logger: logger)
            } catch {
                await managed.close(logger: logger)
                throw error
            }
        } catch {
            unpacked.discard()
            removeWhatWeCreated()
            throw error
        }
        return unpacked.manifest
    }
}

/// A backup failure as one line and an exit code (sysexits(3)).
struct BackupFailure: CustomStringConvertible {
    let error: any Error
    init(_ error: any Error) { self.error = error }

    var description: String {
        switch error {
        case let error as BackupError: error.description
        case let error as StartupError: error.description
        default: "\(error)"
        }
    }

    var exitCode: Int32 {
        switch error {
        case BackupError.corruptArchive: 65 // EX_DATAERR
        case BackupError.targetNotEmpty: 73 // EX_CANTCREAT
        case BackupError.files: 74 // EX_IOERR
        case BackupError.toolFailed, BackupError.database: 69 // EX_UNAVAILABLE
        case let error as StartupError: error.exitCode
        default: 70
        }
    }
}

func reportingBackupFailure(_ body: () async throws -> Void) async throws {
    do {
        try await body()
    } catch {
        let failure = BackupFailure(error)
        FileHandle.standardError.write(Data("strive: \(failure.description)\n".utf8))
        throw ExitCode(failure.exitCode)
    }
}

func absolutePath(_ path: String) -> String {
    path.hasPrefix("/") ? path : FileManager.default.currentDirectoryPath + "/" + path
}

/// Paths and numbers the backup commands share.
enum BackupFiles {
    static func defaultArchive(in dataDirectory: String) -> String {
        let directory = ConfigLoader(environment: ProcessInfo.processInfo.environment).backupDirectory(dataDirectory: dataDirectory)
        return BackupCatalog.archivePath(in: directory)
    }

    static func createParent(of path: String) throws {
        let directory = (path as NSString).deletingLastPathComponent
        do {
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        } catch {
            throw BackupError.files("cannot create \(directory): \(error.localizedDescription)")
        }
    }

    static func storageRoot(_ settings: DatabaseSettings) -> String {
        ConfigLoader(environment: ProcessInfo.processInfo.environment).storageDirectory(dataDirectory: settings.dataDirectory)
    }

    /// Runs `body` with the blob store `STRIVE_STORAGE_BACKEND` names and closes it afterwards.
    static func withBlobStore<T>(_ settings: DatabaseSettings, logger: Logger, _ body: (any BlobStore) async throws -> T) async throws
        -> T
    {
        let backend = try ConfigLoader(environment: ProcessInfo.processInfo.environment).loadStorageBackend()
        let blobs: any BlobStore
        do {
            blobs = try await BlobStoreFactory.open(backend, localRoot: storageRoot(settings), logger: logger)
        } catch {
            throw StartupError.objectStore(error.reason)
        }
        do {
            let result = try await body(blobs)
            await blobs.close()
            return result
        } catch {
            await blobs.close()
            throw error
        }
    }

    /// A development data directory's generated secret; nil with DATABASE_URL.
    static func secretFile(_ settings: DatabaseSettings) -> String? {
        if case .external = settings.location { return nil }
        return settings.dataDirectory + "/jwt-secret"
    }

    static func binaryDirectory(_ settings: DatabaseSettings) throws(StartupError) -> String {
        do { return try PostgresBinaries.locate(in: settings.postgresBinDirectory).directory } catch { throw .cluster(error) }
    }

    /// Beside the store, so unpacked blobs move into it without a copy.
    static func workDirectory(near storage: String) -> String {
        (storage as NSString).deletingLastPathComponent + "/.strive-restore-\(UUID().uuidString.prefix(8))"
    }

    static func size(_ bytes: Int64) -> String {
        ByteCountFormatter.string(fromByteCount: bytes, countStyle: .binary)
    }

    static func elapsed(since start: ContinuousClock.Instant) -> String {
        let duration = ContinuousClock.now - start
        return String(format: "%.1f s", Double(duration.components.seconds) + Double(duration.components.attoseconds) / 1e18)
    }
}
