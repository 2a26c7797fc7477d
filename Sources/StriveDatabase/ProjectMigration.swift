import Foundation

/// One SQL file of the project's own migrations folder (`STRIVE_MIGRATIONS_DIR`, default `./migrations`):
/// the team's schema on top of Strive's. Applied after the built-in migrations, in file-name order, each
/// once and in its own transaction, and never edited once applied (its checksum is kept).
public struct ProjectMigration: Sendable, Equatable {
    public let fileName: String
    public let sql: String
    /// SHA-256 of the file's bytes, hex.
    public let checksum: String

    public init(fileName: String, sql: String) throws(MigrationError) {
        guard Self.isValidName(fileName) else { throw .invalidProjectFileName(fileName) }
        self.fileName = fileName
        self.sql = sql
        self.checksum = Migration.checksum(of: sql)
    }

    /// `<digits>_<snake_case>.sql`: the digits (a timestamp from `strive migration new`) order the files.
    static func isValidName(_ fileName: String) -> Bool {
        fileName.range(of: "^[0-9]+_[a-z][a-z0-9_]*\\.sql$", options: .regularExpression) != nil
    }

    /// Every `.sql` file of `directory`, in name order; none when the directory does not exist.
    public static func load(directory: String) throws(MigrationError) -> [ProjectMigration] {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: directory, isDirectory: &isDirectory) else { return [] }
        guard isDirectory.boolValue else { throw .unreadable(directory, "not a directory") }
        var migrations: [ProjectMigration] = []
        for file in try Migration.sqlFiles(in: directory) {
            migrations.append(try ProjectMigration(fileName: file.name, sql: file.sql))
        }
        return migrations
    }

    /// The file `strive migration new NAME` creates at `date`: `YYYYMMDDHHMMSS_name.sql` (UTC), after every
    /// existing file even when the clock is behind them.
    public static func newFileName(_ name: String, at date: Date, after existing: [ProjectMigration]) throws(MigrationError) -> String {
        let snake = name.lowercased().replacingOccurrences(of: "[^a-z0-9]+", with: "_", options: .regularExpression)
            .trimmingCharacters(in: CharacterSet(charactersIn: "_"))
        guard let first = snake.first, first.isLetter else { throw .invalidProjectFileName(name) }
        var formatter = Date.VerbatimFormatStyle(
            format:
                "\(year: .padded(4))\(month: .twoDigits)\(day: .twoDigits)\(hour: .twoDigits(clock: .twentyFourHour, hourCycle: .zeroBased))\(minute: .twoDigits)\(second: .twoDigits)",
            timeZone: .gmt, calendar: Calendar(identifier: .gregorian))
        formatter.locale = Locale(identifier: "en_US_POSIX")
        var stamp = Int(date.formatted(formatter)) ?? 0
        let latest = existing.compactMap { Int($0.fileName.prefix { $0.isNumber }) }.max() ?? 0
        if stamp <= latest { stamp = latest + 1 }
        return "\(stamp)_\(snake).sql"
    }

    /// The header of a new file.
    public static func template(fileName: String) -> String {
        """
        -- \(fileName)
        -- Applied once, in its own transaction, after Strive's built-in migrations and the files before it.
        -- Never edit it once applied anywhere: add a new file instead.
        -- A new table: enable row-level security and write its policies here; publish it for realtime with
        -- select realtime.publish('public.<table>');


        """
    }
}
