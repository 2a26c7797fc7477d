import ArgumentParser
import Foundation
import StriveCore
import StriveDatabase
import StriveServer

struct Seed: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Load the demo dataset (migrating first) and print its logins.",
        discussion: """
            Creates 2 organizations (Acme Corp, Globex), each with an OWNER, an ADMIN, two MEMBERs and a
            VIEWER, 25 customers, 5 projects of 20 tasks and some notifications, plus a platform admin.
            Every account's password is printed. Running it again adds nothing; --scale N seeds 2×N
            organizations (benchmarks use it). Refused when STRIVE_ENV=production.
            """
    )

    @Option(help: "Multiply the dataset: 2×N organizations, 100×N tasks per organization pair.") var scale = 1
    @OptionGroup var database: DatabaseOptions

    func validate() throws {
        guard (1...10_000).contains(scale) else { throw ValidationError("--scale must be between 1 and 10000") }
        let environment = ProcessInfo.processInfo.environment
        if environment[ConfigVariable.environment.rawValue]?.lowercased() == RuntimeEnvironment.production.rawValue {
            throw ValidationError("strive seed creates accounts with a published password; it refuses STRIVE_ENV=production")
        }
        if environment[ConfigVariable.productSchema.rawValue]?.lowercased() == ProductSchema.none.rawValue {
            throw ValidationError("strive seed loads the Strive CRM's demo data; there is no such schema with STRIVE_PRODUCT_SCHEMA=none")
        }
    }

    func run() async throws {
        let logger = makeLogger(level: try commandLogLevel())
        var seeded: DemoSeed.Summary?
        let started = ContinuousClock.now
        try await reportingFailure { () async throws(StartupError) in
            let settings = try database.settings()
            seeded = try await database.withOwnerConnection(logger: logger) { connection, _ throws(StartupError) in
                do {
                    let migrator = try Migrator.standard(projectDirectory: settings.migrationsDirectory, product: settings.productSchema)
                    _ = try await migrator.migrate(on: connection, logger: logger)
                } catch let error as MigrationError {
                    throw .migration(error)
                } catch {
                    throw .database(.statementFailed(sqlState: nil, message: "\(error)"))
                }
                do {
                    return try await DemoSeed.run(scale: scale, on: connection, logger: logger)
                } catch {
                    let server = DatabaseError.serverError(in: error)
                    throw .database(.statementFailed(sqlState: server?.sqlState, message: server?.message ?? "seeding failed"))
                }
            }
        }
        guard let summary = seeded else { return }
        let elapsed = ContinuousClock.now - started
        print(
            """
            Seeded in \(elapsed.formatted(.units(allowed: [.seconds, .milliseconds], width: .narrow))): \
            \(summary.organizations) organizations, \(summary.users) members, \(summary.customers) customers, \
            \(summary.projects) projects, \(summary.tasks) tasks, \(summary.notifications) notifications.

            Sign in with any of these (password: \(DemoSeed.password)):
            """)
        for login in summary.logins {
            print(
                "  \(login.email.padding(toLength: 26, withPad: " ", startingAt: 0))  \(login.role.padding(toLength: 14, withPad: " ", startingAt: 0))  \(login.organization)"
            )
        }
    }
}
