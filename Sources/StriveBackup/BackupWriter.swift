import Foundation
import Logging
import NIOCore
import PostgresNIO
import StriveBlobs
import StriveCore
import StriveDatabase

/// Where a backup reads from: the database (as its owner), the PostgreSQL client programs, the blob
/// store the objects' bytes are in, and a development data directory's generated JWT secret.
public struct BackupSource: Sendable {
    public let target: DatabaseTarget
    public let binaryDirectory: String
    public let blobs: any BlobStore
    public let secretFile: String?
    /// Recorded in the manifest.
    public let striveVersion: String

    public init(target: DatabaseTarget, binaryDirectory: String, blobs: any BlobStore, secretFile: String?, striveVersion: String) {
        self.striveVersion = striveVersion
        self.target = target
        self.binaryDirectory = binaryDirectory
        self.blobs = blobs
        self.secretFile = secretFile
    }

    var pgDump: ExternalTool { ExternalTool(path: binaryDirectory + "/pg_dump") }
    var pgDumpAll: ExternalTool { ExternalTool(path: binaryDirectory + "/pg_dumpall") }
    /// libpq's URL for the owner, without the password (that goes in the environment).
    var url: String { target.url(as: DatabaseCredentials(username: target.owner.username, password: nil)) }
}

/// A consistent backup while the server keeps serving: one REPEATABLE READ snapshot is exported to
/// pg_dump (`--snapshot`) and read for the list of objects, so the dump and the object bytes describe the
/// same moment; writes go on meanwhile, and blob deletion waits for the backup (`BackupLock`).
public enum BackupWriter {
    /// Writes the archive to `archive` (through a temporary file renamed at the end: a reader never sees
    /// half an archive) and returns its manifest.
    public static func create(from source: BackupSource, to archive: String, logger: Logger) async throws(BackupError) -> BackupManifest {
        let staging = archive + ".staging-\(UUID().uuidString.prefix(8))"
        let partial = archive + ".partial"
        defer { try? FileManager.default.removeItem(atPath: staging) }
        do {
            try FileManager.default.createDirectory(atPath: staging + "/objects", withIntermediateDirectories: true)
        } catch {
            throw .files("cannot create \(staging): \(error.localizedDescription)")
        }
        let manifest = try await withSnapshot(source, logger: logger) { snapshot, state throws(BackupError) in
            try await source.pgDumpAll.run(
                ["--roles-only", "--no-role-passwords", "--dbname=\(source.url)", "--file=\(staging)/\(BackupManifest.rolesFile)"],
                password: source.target.owner.password?.value)
            try await source.pgDump.run(
                ["--snapshot=\(snapshot)", "--format=custom", "--file=\(staging)/\(BackupManifest.databaseFile)", source.url],
                password: source.target.owner.password?.value)
            var objects: [BackupManifest.Object] = []
            for row in state.objects {
                let copied = try await copyObject(row, from: source, to: staging + "/objects/\(row.version)")
                objects.append(.init(bucket: row.bucket, name: row.name, version: row.version, bytes: copied.bytes, sha256: copied.sha256))
            }
            return (state, objects)
        }
        var names = [BackupManifest.databaseFile, BackupManifest.rolesFile]
        if let secret = source.secretFile, FileManager.default.fileExists(atPath: secret) {
            _ = try FileDigest.copy(secret, to: staging + "/" + BackupManifest.secretFile)
            names.append(BackupManifest.secretFile)
        }
        var files: [BackupManifest.File] = []
        for name in names {
            guard let digest = FileDigest.digest(staging + "/" + name) else { throw .files("cannot read \(staging)/\(name)") }
            files.append(.init(path: name, bytes: digest.bytes, sha256: digest.sha256))
        }
        let result = BackupManifest(
            createdAt: Date(), striveVersion: source.striveVersion, postgresVersion: manifest.0.postgresVersion, owner: manifest.0.owner,
            migrationVersion: manifest.0.migrationVersion, files: files, objects: manifest.1)
        do {
            try BackupManifest.encoder.encode(result).write(to: URL(fileURLWithPath: staging + "/" + BackupManifest.manifestFile))
        } catch {
            throw .files("cannot write the manifest: \(error.localizedDescription)")
        }
        // The manifest first, so a reader (and `tar -t | head`) finds it before the bulk.
        do {
            try await ExternalTool.tar.run(["-cf", partial, "-C", staging, BackupManifest.manifestFile] + names + ["objects"])
        } catch {
            try? FileManager.default.removeItem(atPath: partial)
            throw error
        }
        guard rename(partial, archive) == 0 else {
            try? FileManager.default.removeItem(atPath: partial)
            throw .files("cannot move the archive into place at \(archive)")
        }
        logger.info("backup written", metadata: ["archive": "\(archive)", "objects": "\(result.objects.count)"])
        return result
    }

    struct SnapshotState: Sendable {
        let postgresVersion: String
        let owner: String
        let migrationVersion: Int
        let objects: [(bucket: String, name: String, version: String)]
    }

    /// Opens an owner connection holding `BackupLock` shared and an exported snapshot for `body`.
    private static func withSnapshot<T: Sendable>(
        _ source: BackupSource, logger: Logger,
        _ body: (String, SnapshotState) async throws(BackupError) -> T
    ) async throws(BackupError) -> T {
        let outcome: Result<T, BackupError>
        do {
            outcome = try await source.target.withOwnerConnection(logger: logger) { connection in
                do throws(BackupError) {
                    let (snapshot, state) = try await openSnapshot(on: connection, logger: logger)
                    let result = try await body(snapshot, state)
                    try? await connection.run("commit", logger: logger)
                    return .success(result)
                } catch {
                    return .failure(error)
                }
            }
        } catch {
            throw .database("cannot connect to \(source.target.displayLocation): \(String(reflecting: error))")
        }
        return try outcome.get()
    }

    private static func openSnapshot(on connection: PostgresConnection, logger: Logger) async throws(BackupError)
        -> (String, SnapshotState)
    {
        do {
            try await connection.run("select pg_advisory_lock(\(BackupLock.key))", logger: logger)
            try await connection.run("begin isolation level repeatable read, read only", logger: logger)
            let snapshot = try await connection.rows("select pg_export_snapshot()", logger: logger).first?.decode(String.self) ?? ""
            let info = try await connection.rows(
                """
                select current_setting('server_version'), current_user::text,
                       coalesce((select max(version) from strive_meta.schema_migrations), 0)::int
                """, logger: logger
            ).first
            let (version, owner, migration) = try info?.decode((String, String, Int).self) ?? ("", "", 0)
            let objects = try await connection.rows(
                "select bucket_id, name, version from storage.objects where version is not null order by bucket_id, name",
                logger: logger
            ).map { try $0.decode((String, String, String).self) }
            return (
                snapshot,
                SnapshotState(
                    postgresVersion: version, owner: owner, migrationVersion: migration,
                    objects: objects.map { (bucket: $0.0, name: $0.1, version: $0.2) })
            )
        } catch {
            throw .database("cannot open a snapshot: \(DatabaseError.serverError(in: error)?.message ?? "\(error)")")
        }
    }
}

extension BackupWriter {
    /// Copies one object's bytes from the store into the archive's staging folder; returns their size and SHA-256.
    static func copyObject(
        _ row: (bucket: String, name: String, version: String), from source: BackupSource, to destination: String
    ) async throws(BackupError) -> (bytes: Int64, sha256: String) {
        guard let id = BlobID(row.version) else {
            throw .files("object \(row.bucket)/\(row.name) names blob \(row.version), which is not a blob id")
        }
        let file = try DigestingFile(creating: destination)
        do {
            try await source.blobs.read(id, range: nil) { chunk in try file.append(chunk) }
            return try file.finish()
        } catch {
            file.abandon()
            switch error {
            case let error as BackupError: throw error
            case BlobStoreError.notFound:
                throw .files("object \(row.bucket)/\(row.name) has no bytes (the store is missing blob \(id), which its row names)")
            default: throw .files("copying \(row.bucket)/\(row.name) from the store: \(error)")
            }
        }
    }
}
