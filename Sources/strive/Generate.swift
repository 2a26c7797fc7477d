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
            abstract: "Print the public schema's types for a client: TypeScript for supabase-js, or Swift Codable structs.",
            discussion: """
                Reads the same catalog the data API serves (tables, views, functions, enums of the public schema)
                from DATABASE_URL, or the self-managed cluster in the data directory. The TypeScript file has the
                shape of `supabase gen types typescript`: `createClient<Database>(…)` takes its `Database`.
                """
        )

        @Option(help: "typescript or swift.") var lang: Language
        @Option(name: .shortAndLong, help: "Write to this file instead of standard output.") var output: String?
        @OptionGroup var database: DatabaseOptions

        func run() async throws {
            let logger = makeLogger(level: try commandLogLevel())
            var source: String?
            try await reportingFailure { () async throws(StartupError) in
                source = try await database.withOwnerConnection(logger: logger) { connection, _ throws(StartupError) in
                    let catalog: TypeCatalog
                    do {
                        catalog = try await TypeCatalog.load(on: connection, logger: logger)
                    } catch {
                        throw .database(
                            .statementFailed(
                                sqlState: DatabaseError.serverError(in: error)?.sqlState,
                                message: DatabaseError.serverError(in: error)?.message ?? "reading the schema failed"))
                    }
                    switch lang {
                    case .typescript: return TypeScriptTypes.render(catalog)
                    case .swift: return SwiftTypes.render(catalog)
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
