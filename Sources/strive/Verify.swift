import ArgumentParser
import Foundation
import StriveDatabase
import StriveServer

struct Verify: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Audit a database's security setup and print a health score out of 100.",
        discussion: """
            Checks row-level security (enabled, forced, policies present, UPDATE policies with WITH CHECK),
            SECURITY DEFINER functions' search_path, policies that call functions per row, unindexed
            foreign keys and policy columns, storage buckets and their policies, required helper
            functions, and the privileges of the request roles. Each finding costs points by severity
            (critical 25, high 10, medium 5, low 2). Exits 1 when the score is below --min-score.
            """
    )

    @Flag(help: "Print the report as JSON.") var json = false
    @Flag(help: "List the lints (id, severity, what each finds) without connecting to a database.") var list = false
    @Option(name: .customLong("min-score"), help: "Lowest passing score (default 100).") var minScore = 100
    @OptionGroup var database: DatabaseOptions

    func validate() throws {
        guard (0...100).contains(minScore) else { throw ValidationError("--min-score must be between 0 and 100") }
    }

    func run() async throws {
        if list {
            let lints = SchemaAudit.lints(for: (try? database.settings())?.productSchema ?? .strive)
            let width = lints.map(\.id.count).max() ?? 0
            for lint in lints {
                let severity = lint.severity.rawValue.padding(toLength: 8, withPad: " ", startingAt: 0)
                print("\(lint.id.padding(toLength: width, withPad: " ", startingAt: 0))  \(severity)  \(lint.summary)")
            }
            return
        }
        let logger = makeLogger(level: try commandLogLevel())
        var outcome: (report: SchemaAudit.Report, location: String)?
        try await reportingFailure { () async throws(StartupError) in
            outcome = try await database.withOwnerConnection(logger: logger) { connection, target throws(StartupError) in
                do {
                    return (try await SchemaAudit.run(on: connection, logger: logger), target.displayLocation)
                } catch {
                    throw .database(
                        .statementFailed(
                            sqlState: DatabaseError.serverError(in: error)?.sqlState,
                            message: DatabaseError.serverError(in: error)?.message ?? "the audit queries failed"))
                }
            }
        }
        guard let (report, location) = outcome else { return }
        if json {
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
            print(String(decoding: try encoder.encode(report), as: UTF8.self))
        } else {
            print(Self.render(report, location: location))
        }
        if report.score < minScore { throw ExitCode(1) }
    }

    static func render(_ report: SchemaAudit.Report, location: String) -> String {
        var lines = ["Strive verify: \(location)", ""]
        if report.findings.isEmpty {
            lines.append("No findings.")
        } else {
            let headers = ["SEVERITY", "LINT", "OBJECT", "DETAIL"]
            let rows = report.findings.map { [$0.severity.rawValue, $0.lint, $0.object, $0.detail] }
            let widths = (0..<3).map { column in ([headers] + rows).map { $0[column].count }.max() ?? 0 }
            for row in [headers] + rows {
                let padded = (0..<3).map { row[$0].padding(toLength: widths[$0], withPad: " ", startingAt: 0) }
                lines.append((padded + [row[3]]).joined(separator: "  "))
            }
        }
        lines.append("")
        lines.append("\(report.lintsRun.count) lints, \(report.findings.count) findings. Health score: \(report.score)/100")
        return lines.joined(separator: "\n")
    }
}
