import Hummingbird
import Logging
import StriveDatabase

/// `/health`: the process answers. `/ready`: the database answers and its migrations match this build.
struct HealthRoutes: Sendable {
    let database: Database
    let migrator: Migrator
    /// A readiness probe must answer promptly even when the database does not.
    let readinessTimeout: Duration

    struct Health: ResponseEncodable {
        let status: String
        let version: String
    }

    struct Readiness: ResponseEncodable {
        let status: String
        let database: String
        let migrations: Migrations?
        let reason: String?

        struct Migrations: Codable {
            let applied: Int
            let expected: Int
            let pending: [String]
        }
    }

    func register(on router: some RouterMethods<StriveRequestContext>) {
        router.get("/health") { _, _ in Health(status: "ok", version: StriveVersion.current) }
        router.head("/health") { _, _ in HTTPResponse.Status.ok }
        router.get("/ready") { _, context in try await readiness(context) }
    }

    func readiness(_ context: StriveRequestContext) async throws -> EditedResponse<Readiness> {
        if case .unavailable(let reason) = database.availability.current {
            return .init(
                status: .serviceUnavailable, headers: [.retryAfter: String(DatabaseUnavailable.retryAfterSeconds)],
                response: .init(status: "not_ready", database: "down", migrations: nil, reason: "database unavailable: \(reason)"))
        }
        let outcome: Result<Migrator.Status, any Error> = await withDeadline(readinessTimeout) {
            try await database.withAdminConnection { connection in
                try await migrator.status(on: connection, logger: context.logger)
            }
        }
        switch outcome {
        case .success(let status):
            let migrations = Readiness.Migrations(
                applied: status.applied.count + status.projectApplied.count, expected: migrator.fileCount,
                pending: status.pendingFileNames
            )
            if status.isCurrent {
                return .init(status: .ok, response: .init(status: "ready", database: "up", migrations: migrations, reason: nil))
            }
            let reason = status.problems.first.map(String.init(describing:)) ?? "migrations pending"
            return .init(
                status: .serviceUnavailable,
                response: .init(status: "not_ready", database: "up", migrations: migrations, reason: reason)
            )
        case .failure(let error):
            context.logger.warning("readiness check failed", metadata: ["error": "\(error)"])
            let reason = error is DeadlineExceeded ? "database did not answer in time" : "database unreachable"
            return .init(
                status: .serviceUnavailable,
                response: .init(status: "not_ready", database: "down", migrations: nil, reason: reason)
            )
        }
    }
}

struct DeadlineExceeded: Error {}

/// Runs `body`, giving up after `timeout`; the loser of the race is cancelled.
func withDeadline<T: Sendable>(_ timeout: Duration, _ body: @escaping @Sendable () async throws -> T) async -> Result<T, any Error> {
    await withTaskGroup(of: Result<T, any Error>.self) { group in
        group.addTask {
            do { return .success(try await body()) } catch { return .failure(error) }
        }
        group.addTask {
            try? await Task.sleep(for: timeout)
            return .failure(DeadlineExceeded())
        }
        let first = await group.next() ?? .failure(DeadlineExceeded())
        group.cancelAll()
        return first
    }
}
