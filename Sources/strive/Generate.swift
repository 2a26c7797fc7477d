import ArgumentParser
import Foundation
import StriveDatabase
import StriveServer
import StriveTypeGen

/// `strive gen types`: client types from the live schema, as `supabase gen types` makes them.
struct Generate: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "gen", abstract: "Generate code from the live schema.", subcommands: [Types.self])

    struct Types: AsyncParsableCommand {
        enum Language: String, ExpressibleByArgument, CaseIterable {
            case typescript, swift
        }

        static let configuration = CommandConfiguration(
            abstract: "Print the exposed schemas' types for a client: TypeScript for supabase-js, or Swift Codable structs.",
            discussion: """
                Reads the same catalog the data API serves (tables, views, functions, enums of each exposed schema)
                from DATABASE_URL, or the self-managed cluster in the data directory. The TypeScript file has the
                shape of `supabase gen types typescript`: `createClient<Database>(…)` takes its `Database`.
                """
        )

        @Option(help: "typescript or swift.") var lang: Language
        @Option(
            name: .customLong("schema"),
            help: "A schema to describe (repeat for several; the first is the default). Default: STRIVE_DB_SCHEMAS, else public.")
        var schemas: [String] = []
        @Option(name: .shortAndLong, help: "Write to this file instead of standard output.") var output: String?
        @OptionGroup var database: DatabaseOptions

        /// `--schema`, else the data API's exposed schemas (`STRIVE_DB_SCHEMAS`), else `public`.
        var exposedSchemas: [String] {
            if !schemas.isEmpty { return schemas }
            let configured = (ProcessInfo.processInfo.environment["STRIVE_DB_SCHEMAS"] ?? "").split(separator: ",")
                .map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
            return configured.isEmpty ? ["public"] : configured
        }

        func run() async throws {
            let logger = makeLogger(level: try commandLogLevel())
            var source: String?
            try await reportingFailure { () async throws(StartupError) in
                source = try await database.withOwnerConnection(logger: logger) { connection, _ throws(StartupError) in
                    var catalogs: [TypeCatalog] = []
                    do {
                        for schema in exposedSchemas {
                            catalogs.append(try await TypeCatalog.load(on: connection, schema: schema, logger: logger))
                        }
                    } catch {
                        throw .database(
                            .statementFailed(
                                sqlState: DatabaseError.serverError(in: error)?.sqlState,
                                message: DatabaseError.serverError(in: error)?.message ?? "reading the schema failed"))
                    }
                    switch lang {
                    case .typescript: return TypeScriptTypes.render(catalogs)
                    case .swift: return SwiftTypes.render(catalogs)
                    }
                }
            }
            guard let source else { return }
            if let output {
                do {
                    try source.write(toFile: output, atomically: true, encoding: .utf8)
                } catch {
                    throw ValidationError("could not write \(output): \(error.localizedDescription)")
                }
            } else {
                print(source, terminator: "")
            }
        }
    }
}
