import Crypto
import Foundation
import StriveCore

/// One SQL migration file: `NNNN_snake_case_name.sql`, applied in version order, never edited once landed.
public struct Migration: Sendable, Equatable {
    public let version: Int
    public let name: String
    public let fileName: String
    public let sql: String
    /// SHA-256 of the file's bytes, hex; a landed file whose checksum changes is refused.
    public let checksum: String

    public init(fileName: String, sql: String) throws(MigrationError) {
        let stem = fileName.hasSuffix(".sql") ? String(fileName.dropLast(4)) : ""
        let parts = stem.split(separator: "_", maxSplits: 1)
        guard parts.count == 2, parts[0].count == 4, let version = Int(parts[0]), version > 0,
            parts[1].allSatisfy({ $0.isLowercase || $0.isNumber || $0 == "_" }), parts[1].first?.isLetter == true
        else {
            throw .invalidFileName(fileName)
        }
        self.version = version
        self.name = String(parts[1])
        self.fileName = fileName
        self.sql = sql
        self.checksum = Self.checksum(of: sql)
    }

    /// SHA-256 of a migration's text, hex: what the migrator records and compares.
    static func checksum(of sql: String) -> String {
        SHA256.hash(data: Data(sql.utf8)).map { String(format: "%02x", $0) }.joined()
    }

    /// The names and texts of the `.sql` files of `directory`, in name order.
    static func sqlFiles(in directory: String) throws(MigrationError) -> [(name: String, sql: String)] {
        let names: [String]
        do {
            names = try FileManager.default.contentsOfDirectory(atPath: directory)
        } catch {
            throw .unreadable(directory, "\(error)")
        }
        var files: [(name: String, sql: String)] = []
        for name in names.sorted() where name.hasSuffix(".sql") {
            guard let sql = try? String(contentsOfFile: directory + "/" + name, encoding: .utf8) else {
                throw .unreadable(name, "not valid UTF-8 text")
            }
            files.append((name, sql))
        }
        return files
    }

    /// The migrations shipped with this build for `product`, in version order. `Migrations/` is the
    /// platform's history (0001-0026 carry the Strive product too, as they landed), `Migrations/Product/`
    /// the Strive product's own files, and `Migrations/Baseline/` the platform alone up to 0026, which a
    /// product-less database starts from instead of 0001-0026.
    public static func bundled(product: ProductSchema = .strive) throws(MigrationError) -> [Migration] {
        guard let directory = Bundle.module.url(forResource: "Migrations", withExtension: nil) else {
            throw .missingResources
        }
        let platform = try load(directory: directory)
        switch product {
        case .strive:
            return try ordered(platform + load(directory: directory.appendingPathComponent("Product")))
        case .none:
            let baseline = try baseline(in: directory)
            return try ordered([baseline] + platform.filter { $0.version > baseline.version })
        }
    }

    /// The name of the product-less baseline, as `strive_meta.schema_migrations` records it: a database
    /// that has it was created with `STRIVE_PRODUCT_SCHEMA=none`.
    public static let baselineName = "platform_baseline"
    static let baselineManifest = "Baseline/platform_baseline.manifest"

    /// The platform statements of 0001-0026 as one migration, `0026_platform_baseline`, assembled from the
    /// line ranges `Baseline/platform_baseline.manifest` names (landed files never change, so the ranges
    /// and the checksum stay true; the manifest and its own files are landed too).
    static func baseline(in directory: URL) throws(MigrationError) -> Migration {
        func text(_ name: String) throws(MigrationError) -> String {
            guard let text = try? String(contentsOfFile: directory.path + "/" + name, encoding: .utf8) else {
                throw .unreadable(name, "the baseline manifest names it, but it is missing or not UTF-8 text")
            }
            return text
        }
        var parts: [String] = []
        for entry in try text(baselineManifest).split(separator: "\n") {
            let line = entry.trimmingCharacters(in: .whitespaces)
            if line.isEmpty || line.hasPrefix("#") { continue }
            let fields = line.split(separator: " ")
            var lines = try text(String(fields[0])).split(separator: "\n", omittingEmptySubsequences: false)
            if lines.last == "" { lines.removeLast() }
            if fields.count == 2 {
                let bounds = fields[1].split(separator: "-").compactMap { Int($0) }
                guard bounds.count == 2, 1 <= bounds[0], bounds[0] <= bounds[1], bounds[1] <= lines.count else {
                    throw .unreadable(baselineManifest, "\"\(line)\" is not a line range of that file")
                }
                lines = Array(lines[(bounds[0] - 1)..<bounds[1]])
            }
            parts.append("-- \(line)\n" + lines.joined(separator: "\n"))
        }
        return try Migration(
            fileName: "0026_\(baselineName).sql", sql: "-- Assembled from \(baselineManifest).\n\n" + parts.joined(separator: "\n\n") + "\n"
        )
    }

    /// Every `.sql` file of `directory`, validated and ordered. Other files are ignored.
    public static func load(directory: URL) throws(MigrationError) -> [Migration] {
        var migrations: [Migration] = []
        for file in try sqlFiles(in: directory.path) {
            migrations.append(try Migration(fileName: file.name, sql: file.sql))
        }
        return try ordered(migrations)
    }

    /// Sorts by version and refuses two files with one version.
    public static func ordered(_ migrations: [Migration]) throws(MigrationError) -> [Migration] {
        let sorted = migrations.sorted { $0.version < $1.version }
        for (previous, next) in zip(sorted, sorted.dropFirst()) where previous.version == next.version {
            throw .duplicateVersion(previous.fileName, next.fileName)
        }
        return sorted
    }
}

public enum MigrationError: Error, Sendable, Equatable, CustomStringConvertible {
    case missingResources
    case unreadable(String, String)
    case invalidFileName(String)
    case duplicateVersion(String, String)
    /// The file was applied with other contents: landed migrations must never be edited.
    case checksumMismatch(fileName: String)
    /// The database has a version this build does not ship: it was migrated by a newer Strive.
    case unknownAppliedVersion(version: Int, name: String)
    /// The database was created for the other `STRIVE_PRODUCT_SCHEMA`.
    case productSchemaMismatch(database: ProductSchema, configured: ProductSchema)
    /// The file's SQL failed; nothing of it was applied. `line` is where PostgreSQL placed the error, when it did.
    case failed(fileName: String, line: Int?, sqlState: String?, message: String)
    case invalidProjectFileName(String)
    /// The database has a project migration the folder no longer holds.
    case unknownAppliedProjectMigration(fileName: String)
    case connection(String)

    public var description: String {
        switch self {
        case .missingResources:
            "the migration files are missing from this build (resource bundle not found)"
        case .unreadable(let path, let reason):
            "cannot read migration \(path): \(reason)"
        case .invalidFileName(let name):
            "migration file name '\(name)' must look like 0001_snake_case_name.sql"
        case .duplicateVersion(let first, let second):
            "migrations \(first) and \(second) share a version number"
        case .checksumMismatch(let name):
            "migration \(name) was changed after it was applied (checksum differs); add a new migration instead of editing it"
        case .unknownAppliedVersion(let version, let name):
            "the database has migration \(String(format: "%04d", version))_\(name), which this build does not know: it was migrated by a newer Strive"
        case .productSchemaMismatch(let database, let configured):
            "the database was created with STRIVE_PRODUCT_SCHEMA=\(database.rawValue) and cannot become \(configured.rawValue); "
                + "set STRIVE_PRODUCT_SCHEMA=\(database.rawValue) or use another database"
        case .failed(let name, let line, let state, let message):
            "migration \(name)\(line.map { " line \($0)" } ?? "") failed and was rolled back: \(message)"
                + (state.map { " (SQLSTATE \($0))" } ?? "")
        case .invalidProjectFileName(let name):
            "project migration file name '\(name)' must look like 20261130120000_snake_case_name.sql"
        case .unknownAppliedProjectMigration(let name):
            "the database has project migration \(name), which the migrations folder does not hold (restore the file)"
        case .connection(let reason):
            "migrations could not run: \(reason)"
        }
    }
}
