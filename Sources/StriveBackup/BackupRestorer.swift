import Foundation
import Logging
import PostgresNIO
import StriveCore
import StriveDatabase
import StriveS3

/// Where a restore writes: an empty database (as its owner), the client programs, an empty object store
/// (the local store's root, or the S3 bucket when `bucket` is set), and where a development secret goes (a
/// data directory's `jwt-secret`; nil for `DATABASE_URL`).
public struct RestoreDestination: Sendable {
    public let target: DatabaseTarget
    public let binaryDirectory: String
    public let storageRoot: String
    public let bucket: S3Client?
    public let secretFile: String?

    public init(target: DatabaseTarget, binaryDirectory: String, storageRoot: String, bucket: S3Client? = nil, secretFile: String?) {
        self.target = target
        self.binaryDirectory = binaryDirectory
        self.storageRoot = storageRoot
        self.bucket = bucket
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
        if let bucket = destination.bucket {
            let listed: [S3Client.ListedObject]
            do {
                listed = try await bucket.listObjects(prefix: BackupWriter.bucketKey("")).objects
            } catch {
                throw .files("cannot list bucket \(bucket.configuration.bucket): \(error)")
            }
            if !listed.isEmpty { throw .targetNotEmpty("bucket \(bucket.configuration.bucket) already holds objects") }
        } else {
            let blobs = destination.storageRoot + "/blobs"
            if let entries = try? FileManager.default.contentsOfDirectory(atPath: blobs), !entries.isEmpty {
                throw .targetNotEmpty("\(blobs) already holds objects")
            }
        }
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

    /// Puts each object's blob into the store's layout (local: `blobs/<first two>/<version>`, moved when the
    /// work directory is on the same file system; a bucket: `blobs/<version>`); returns what it wrote.
    private static func placeObjects(_ archive: VerifiedArchive, into destination: RestoreDestination) async throws(BackupError) -> [String]
    {
        var placed: [String] = []
        do {
            for object in archive.manifest.objects {
                let source = archive.directory + "/" + object.path
                if let bucket = destination.bucket {
                    let key = BackupWriter.bucketKey(object.version)
                    try await bucket.upload(fileAt: source, to: key)
                    placed.append(key)
                    continue
                }
                let directory = destination.storageRoot + "/blobs/\(object.version.prefix(2))"
                try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
                let target = directory + "/" + object.version
                if rename(source, target) != 0 { _ = try FileDigest.copy(source, to: target) }
                placed.append(target)
            }
        } catch {
            await remove(placed, from: destination)
            throw .files(
                "placing the objects in \(destination.bucket.map { "bucket " + $0.configuration.bucket } ?? destination.storageRoot): \(error)"
            )
        }
        return placed
    }

    /// Takes back what `placeObjects` wrote.
    private static func remove(_ placed: [String], from destination: RestoreDestination) async {
        for item in placed {
            if let bucket = destination.bucket {
                try? await bucket.deleteObject(item)
            } else {
                try? FileManager.default.removeItem(atPath: item)
            }
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
