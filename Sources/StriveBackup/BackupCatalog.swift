import Foundation
import Logging
import PostgresNIO
import StriveDatabase

/// `strive_meta.backups`: the record of every archive written, and the retention of scheduled ones.
public enum BackupCatalog {
    /// `DIRECTORY/strive-<UTC yyyyMMdd-HHmmss.SSS>-<random>.tar`: names sort by time, and two backups
    /// started in the same millisecond (a manual one beside a scheduled one) still get files of their own.
    public static func archivePath(in directory: String, at date: Date = Date()) -> String {
        let formatter = DateFormatter()
        formatter.locale = Locale(identifier: "en_US_POSIX")
        formatter.timeZone = TimeZone(identifier: "UTC")
        formatter.dateFormat = "yyyyMMdd-HHmmss.SSS"
        let suffix = UUID().uuidString.prefix(6).lowercased()
        return directory + "/strive-\(formatter.string(from: date))-\(suffix).tar"
    }

    public struct Entry: Sendable, Codable, Equatable {
        public let id: Int64
        public let file: String
        public let instance: String
        public let scheduled: Bool
        public let startedAt: Date
        public let finishedAt: Date?
        public let bytes: Int64?
        public let objects: Int?
        public let error: String?
    }

    /// Records a finished (or failed) backup.
    public static func record(
        file: String, instance: String, scheduled: Bool, startedAt: Date, outcome: Result<BackupManifest, BackupError>,
        on connection: PostgresConnection, logger: Logger
    ) async throws {
        let bytes = (try? FileManager.default.attributesOfItem(atPath: file)[.size] as? Int64) ?? nil
        switch outcome {
        case .success(let manifest):
            try await connection.run(
                """
                insert into strive_meta.backups (file, instance, scheduled, started_at, finished_at, bytes, objects)
                values (\(file), \(instance), \(scheduled), \(startedAt), now(), \(bytes), \(manifest.objects.count))
                """, logger: logger)
        case .failure(let error):
            try await connection.run(
                """
                insert into strive_meta.backups (file, instance, scheduled, started_at, error)
                values (\(file), \(instance), \(scheduled), \(startedAt), \(error.description))
                """, logger: logger)
        }
    }

    /// The newest backups first.
    public static func list(limit: Int = 100, on connection: PostgresConnection, logger: Logger) async throws -> [Entry] {
        try await connection.rows(
            """
            select id, file, instance, scheduled, started_at, finished_at, bytes, objects, error
            from strive_meta.backups order by started_at desc limit \(limit)
            """, logger: logger
        ).map { row in
            let (id, file, instance, scheduled, started, finished, bytes, objects, error) = try row.decode(
                (Int64, String, String, Bool, Date, Date?, Int64?, Int?, String?).self)
            return Entry(
                id: id, file: file, instance: instance, scheduled: scheduled, startedAt: started, finishedAt: finished, bytes: bytes,
                objects: objects, error: error)
        }
    }

    /// Deletes scheduled archives beyond the newest `keep` (files and rows); manual ones are the operator's.
    static func prune(keep: Int, on connection: PostgresConnection, logger: Logger) async throws -> [String] {
        let stale = try await connection.rows(
            """
            delete from strive_meta.backups where id in (
                select id from strive_meta.backups where scheduled and error is null
                order by started_at desc offset \(keep))
            returning file
            """, logger: logger
        ).map { try $0.decode(String.self) }
        for file in stale { try? FileManager.default.removeItem(atPath: file) }
        return stale
    }
}
