import Foundation
import Logging
import PostgresNIO
import ServiceLifecycle
import StriveCore
import StriveDatabase

/// `STRIVE_BACKUP_SCHEDULE`: `strive serve` writes a backup whenever the newest finished one is older
/// than the interval, then keeps the newest `retention` scheduled archives. With several instances on one
/// database, whichever holds the schedule's advisory lock at the time takes the backup; the others see
/// the new row and wait for the next turn.
public struct BackupScheduleService: Service {
    static let scheduleLock: Int64 = 0x5374_7269_7665_5343

    let source: BackupSource
    let settings: BackupSettings
    let interval: Duration
    let instance: String
    let logger: Logger

    public init?(source: BackupSource, settings: BackupSettings, instance: String, logger: Logger) {
        guard let interval = settings.interval else { return nil }
        self.source = source
        self.settings = settings
        self.interval = interval
        self.instance = instance
        self.logger = logger
    }

    /// How often it looks whether a backup is due: often enough to keep a short interval, at most a minute.
    var checkEvery: Duration { min(.seconds(60), interval / 4) }

    public func run() async {
        await cancelWhenGracefulShutdown {
            while !Task.isCancelled {
                await backUpIfDue()
                try? await Task.sleep(for: checkEvery)
            }
        }
    }

    /// One turn: nothing unless this instance gets the lock and the newest backup is older than the interval.
    func backUpIfDue() async {
        do {
            try await source.target.withOwnerConnection(logger: logger) { connection in try await turn(on: connection) }
        } catch {
            logger.warning("scheduled backup check failed; trying again later", metadata: ["error": "\(error)"])
        }
    }

    private func turn(on connection: PostgresConnection) async throws {
        let locked =
            try await connection.rows("select pg_try_advisory_lock(\(Self.scheduleLock))", logger: logger)
            .first?.decode(Bool.self) ?? false
        guard locked else { return }
        let seconds = Int(interval.components.seconds)
        let due =
            try await connection.rows(
                """
                select coalesce(max(finished_at), '-infinity') < now() - make_interval(secs => \(seconds))
                from strive_meta.backups where scheduled and error is null
                """, logger: logger
            ).first?.decode(Bool.self) ?? false
        if due { try await backUp(recordingOn: connection) }
        try await connection.run("select pg_advisory_unlock(\(Self.scheduleLock))", logger: logger)
    }

    private func backUp(recordingOn connection: PostgresConnection) async throws {
        try FileManager.default.createDirectory(atPath: settings.directory, withIntermediateDirectories: true)
        let file = BackupCatalog.archivePath(in: settings.directory)
        let started = Date()
        let outcome: Result<BackupManifest, BackupError>
        do {
            outcome = .success(try await BackupWriter.create(from: source, to: file, logger: logger))
        } catch {
            outcome = .failure(error)
            logger.error("scheduled backup failed", metadata: ["error": "\(error)"])
        }
        try await BackupCatalog.record(
            file: file, instance: instance, scheduled: true, startedAt: started, outcome: outcome, on: connection, logger: logger)
        if case .success = outcome {
            let removed = try await BackupCatalog.prune(keep: settings.retention, on: connection, logger: logger)
            logger.info("scheduled backup written", metadata: ["file": "\(file)", "pruned": "\(removed.count)"])
        }
    }
}
