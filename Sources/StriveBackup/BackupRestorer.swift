import Foundation
import Logging
import PostgresNIO
import StriveBlobs
import StriveCore
import StriveDatabase

/// Where a restore writes: an empty database (as its owner), the client programs, an empty blob store,
/// and where a development secret goes (a data directory's `jwt-secret`; nil for `DATABASE_URL`).
public struct RestoreDestination: Sendable {
    public let target: DatabaseTarget
    public let binaryDirectory: String
    public let blobs: any BlobStore
    public let secretFile: String?

    public init(target: DatabaseTarget, binaryDirectory: String, blobs: any BlobStore, secretFile: String?) {
        self.target = target
        self.binaryDirectory = binaryDirectory
        self.blobs = blobs
        self.secretFile = secretFile
    }

    var url: String { target.url(as: DatabaseCredentials(username: target.owner.username, password: nil)) }
    var password: String? { target.owner.password?.value }
}

/// An archive unpacked and checked against its manifest: every file present with its size and SHA-256.
public struct VerifiedArchive: Sendable {
    public let directory: String
    public let manifest: BackupManifest

    public func discard() {
        try? FileManager.default.removeItem(atPath: directory)
    }
}

/// Restores an archive in an order that leaves nothing behind on failure: the archive is unpacked and
/// verified before the destination is touched; the object bytes go in next (into a store that was
/// empty, so they can be taken out again); the database last, in one transaction.
public enum BackupRestorer {
    /// Unpacks `archive` into `workDirectory` (created; the same file system as the store lets blobs be
    /// moved rather than copied) and checks it. Throws `corruptArchive` naming what is wrong.
    public static func unpack(_ archive: String, into workDirectory: String) async throws(BackupError) -> VerifiedArchive {
        guard FileManager.default.isReadableFile(atPath: archive) else { throw .corruptArchive("\(archive) cannot be read") }
        do {
            try FileManager.default.createDirectory(atPath: workDirectory, withIntermediateDirectories: true)
        } catch {
            throw .files("cannot create \(workDirectory): \(error.localizedDescription)")
        }
        let verified: VerifiedArchive
        do throws(BackupError) {
            do {
                try await ExternalTool.tar.run(["-xf", archive, "-C", workDirectory, "--no-same-owner"])
            } catch .toolFailed(_, _, let output) {
                throw BackupError.corruptArchive("tar cannot read it (\(output.trimmingCharacters(in: .whitespacesAndNewlines)))")
            }
            verified = VerifiedArchive(directory: workDirectory, manifest: try check(workDirectory))
        } catch {
            try? FileManager.default.removeItem(atPath: workDirectory)
            throw error
        }
        return verified
    }

    private static func check(_ directory: String) throws(BackupError) -> BackupManifest {
        guard let data = FileManager.default.contents(atPath: directory + "/" + BackupManifest.manifestFile) else {
            throw .corruptArchive("it has no \(BackupManifest.manifestFile)")
        }
        let manifest: BackupManifest
        do {
            manifest = try BackupManifest.decoder.decode(BackupManifest.self, from: data)
        } catch {
            throw .corruptArchive("\(BackupManifest.manifestFile) is not a Strive backup manifest")
        }
        guard manifest.format == BackupManifest.formatName, manifest.formatVersion <= BackupManifest.currentVersion else {
            throw .corruptArchive("format \(manifest.format) \(manifest.formatVersion) is not one this build reads")
        }
        guard manifest.files.contains(where: { $0.path == BackupManifest.databaseFile }) else {
            throw .corruptArchive("the manifest lists no \(BackupManifest.databaseFile)")
        }
        let expected = manifest.files.map { ($0.path, $0.bytes, $0.sha256) } + manifest.objects.map { ($0.path, $0.bytes, $0.sha256) }
        for (path, bytes, sha256) in expected {
            guard !path.contains(".."), !path.hasPrefix("/") else { throw .corruptArchive("the manifest names a path outside it: \(path)") }
            guard let actual = FileDigest.digest(directory + "/" + path) else { throw .corruptArchive("\(path) is missing") }
            guard actual.bytes == bytes else { throw .corruptArchive("\(path) has \(actual.bytes) bytes, the manifest says \(bytes)") }
            guard actual.sha256 == sha256 else { throw .corruptArchive("\(path) does not match its checksum") }
        }
        return manifest
    }

    /// Refuses a destination whose database has Strive's schema or whose store holds blobs.
    public static func checkEmpty(_ destination: RestoreDestination, logger: Logger) async throws(BackupError) {
        let empty: Bool
        do {
            empty = try await destination.blobs.isEmpty()
        } catch {
            throw .files("cannot list the blob store: \(error)")
        }
        if !empty { throw .targetNotEmpty("the blob store already holds objects") }
        let occupied = try await withConnection(destination, logger: logger) { connection in
            try await connection.rows(
                """
                select to_regclass('strive_meta.schema_migrations') is not null or to_regclass('storage.objects') is not null
                    or to_regclass('auth.users') is not null
                """, logger: logger
            ).first?.decode(Bool.self) ?? false
        }
        if occupied { throw .targetNotEmpty("database \(destination.target.displayLocation) already has Strive's schema") }
    }

    /// Puts the verified archive's objects, roles and database into `destination` (checked empty first).
    public static func restore(_ archive: VerifiedArchive, into destination: RestoreDestination, logger: Logger) async throws(BackupError) {
        try await checkEmpty(destination, logger: logger)
        let placed = try await placeObjects(archive, into: destination)
        do {
            let psql = ExternalTool(path: destination.binaryDirectory + "/psql")
            // Roles are the cluster's, not the database's: one that exists already (the owner, or roles of an
            // earlier Strive on this server) makes its CREATE fail harmlessly, so errors do not stop the script.
            try await psql.run(
                ["--no-psqlrc", "--quiet", "--dbname=\(destination.url)", "--file=\(archive.directory)/\(BackupManifest.rolesFile)"],
                password: destination.password, allowFailure: true)
            var arguments = ["--exit-on-error", "--single-transaction", "--dbname=\(destination.url)"]
            if destination.target.owner.username != archive.manifest.owner { arguments.append("--no-owner") }
            try await ExternalTool(path: destination.binaryDirectory + "/pg_restore").run(
                arguments + ["\(archive.directory)/\(BackupManifest.databaseFile)"], password: destination.password)
        } catch {
            await remove(placed, from: destination)
            throw error
        }
        if let secretFile = destination.secretFile, archive.manifest.files.contains(where: { $0.path == BackupManifest.secretFile }),
            !FileManager.default.fileExists(atPath: secretFile)
        {
            _ = try FileDigest.copy(archive.directory + "/" + BackupManifest.secretFile, to: secretFile)
        }
        logger.info("restored", metadata: ["objects": "\(archive.manifest.objects.count)"])
    }

    /// Files each object's bytes in the store under the blob id its row names; returns what it placed.
    private static func placeObjects(_ archive: VerifiedArchive, into destination: RestoreDestination) async throws(BackupError)
        -> [BlobID]
    {
        var placed: [BlobID] = []
        do {
            for object in archive.manifest.objects {
                guard let id = BlobID(object.version) else {
                    throw BackupError.corruptArchive(
                        "object \(object.bucket)/\(object.name) names blob \(object.version), which is not a blob id")
                }
                try await destination.blobs.place(fileAt: archive.directory + "/" + object.path, as: id)
                placed.append(id)
            }
        } catch {
            await remove(placed, from: destination)
            if let error = error as? BackupError { throw error }
            throw .files("placing the objects in the blob store: \(error)")
        }
        return placed
    }

    /// Takes back what `placeObjects` placed.
    private static func remove(_ placed: [BlobID], from destination: RestoreDestination) async {
        for id in placed {
            try? await destination.blobs.delete(id)
        }
    }

    private static func withConnection<T: Sendable>(
        _ destination: RestoreDestination, logger: Logger, _ body: (PostgresConnection) async throws -> T
    ) async throws(BackupError) -> T {
        do {
            return try await destination.target.withOwnerConnection(logger: logger, body)
        } catch {
            throw .database("\(destination.target.displayLocation): \(DatabaseError.serverError(in: error)?.message ?? "\(error)")")
        }
    }
}
