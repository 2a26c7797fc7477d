import ArgumentParser
import Foundation
import Logging
import NIOConcurrencyHelpers
import PostgresNIO
import StriveAuth
import StriveCore
import StriveDatabase
import StriveIdentity
import StriveRealtime
import StriveServer

#if canImport(FoundationNetworking)
    import FoundationNetworking
#endif

/// Commit-to-delivery latency of task updates for many subscribed sockets, against a running server.
/// Sets up ORGS organizations with SOCKETS/ORGS members each (one socket per member, subscribed to its
/// organization's project), commits task updates at each RATE for SECONDS, and reads the latency from
/// each delivery's commit_timestamp (same machine, same clock).
struct RealtimeBench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "realtime",
        abstract:
            "Realtime commit-to-delivery latency, server CPU and RSS, authorisation queries per change (needs a running strive serve)."
    )

    @Option(help: "The running server.") var url = "http://127.0.0.1:54321"
    @Option(help: "Subscribed sockets.") var sockets = 1000
    @Option(help: "Organizations the sockets are spread over.") var orgs = 10
    @Option(help: "Task updates per second, one run each (repeat the option).") var rate: [Int] = [100, 1000]
    @Option(help: "Seconds per run.") var seconds = 10
    @Option(help: "The server's process id, for its CPU time and RSS.") var pid: Int32?
    @OptionGroup var database: DatabaseOptions

    /// Tasks per organization the updates rotate over (so writers do not queue on a few row locks).
    static let tasksPerOrganization = 100

    struct Tenant: Sendable {
        let organization: UUID
        let project: UUID
        let tasks: [UUID]
        var members: [(user: UUID, session: UUID)]
    }

    func run() async throws {
        let loader = ConfigLoader(environment: ProcessInfo.processInfo.environment, overrides: database.overrides)
        let config = try await loader.load(developmentSecret: DevelopmentSecrets.jwtSecret)
        let logger = makeLogger(level: .warning)
        let signer = try await TokenService(secret: config.jwtSecret, issuer: "bench", accessTokenLifetime: .seconds(3600))
        let serviceKey = config.apiKeys.serviceRole.value
        let socketBase = PhoenixClient.realtimeURL(base: url, apikey: config.apiKeys.anon)
        try await reportingFailure { () async throws(StartupError) in
            try await database.withOwnerConnection(logger: logger) { connection, target throws(StartupError) in
                do {
                    let tenants = try await setUp(connection, logger: logger)
                    try await measure(
                        tenants: tenants, target: target, signer: signer, socketBase: socketBase, serviceKey: serviceKey, logger: logger)
                } catch let error as StartupError {
                    throw error
                } catch {
                    throw .server("realtime bench failed: \(error)")
                }
            }
        }
    }

    private func setUp(_ connection: PostgresConnection, logger: Logger) async throws -> [Tenant] {
        let perOrg = max(1, sockets / orgs)
        var tenants: [Tenant] = []
        for index in 0..<orgs {
            let organization = UUID()
            let project = UUID()
            let tasks = (0..<Self.tasksPerOrganization).map { _ in UUID() }
            let tag = "rtbench-\(organization.uuidString.prefix(8).lowercased())"
            var members: [(UUID, UUID)] = []
            for _ in 0..<perOrg { members.append((UUID(), UUID())) }
            let users = members.map(\.0)
            let sessions = members.map(\.1)
            let emails = users.map { "\(tag)-\($0.uuidString.prefix(8).lowercased())@bench.test" }
            try await connection.run(
                "insert into auth.users (id, email) select * from unnest(\(users)::uuid[], \(emails)::text[])", logger: logger)
            try await connection.run(
                "insert into auth.sessions (id, user_id) select * from unnest(\(sessions)::uuid[], \(users)::uuid[])", logger: logger)
            try await connection.run(
                "insert into public.organizations (id, name, slug) values (\(organization), \("Bench \(index)"), \(tag))", logger: logger)
            try await connection.run(
                "insert into public.organization_members (user_id, organization_id, role) select u, \(organization), 'MEMBER' from unnest(\(users)::uuid[]) u",
                logger: logger)
            try await connection.run(
                "insert into public.projects (id, organization_id, name) values (\(project), \(organization), 'Bench project')",
                logger: logger)
            try await connection.run(
                "insert into public.tasks (id, project_id, title, created_by) select t, \(project), 'bench', \(users[0]) from unnest(\(tasks)::uuid[]) t",
                logger: logger)
            tenants.append(Tenant(organization: organization, project: project, tasks: tasks, members: members))
        }
        return tenants
    }

    /// Latencies of deliveries while a run is active.
    final class Collector: Sendable {
        private let state = NIOLockedValueBox<(active: Bool, samples: [Double])>((false, []))
        func start() { state.withLockedValue { $0 = (true, []) } }
        func stop() -> [Double] {
            state.withLockedValue { value in
                value.active = false
                return value.samples
            }
        }
        func record(_ milliseconds: Double) { state.withLockedValue { if $0.active { $0.samples.append(milliseconds) } } }
    }

    private func measure(
        tenants: [Tenant], target: DatabaseTarget, signer: TokenService, socketBase: String, serviceKey: String, logger: Logger
    ) async throws {
        let collector = Collector()
        let joined = NIOLockedValueBox(0)
        let (stop, stopAll) = AsyncStream.makeStream(of: Void.self)
        let writers = PostgresClient(configuration: try target.clientConfiguration(as: target.owner), backgroundLogger: logger)
        let timestampStyle = Date.ISO8601FormatStyle(includingFractionalSeconds: true)
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { await writers.run() }
            for tenant in tenants {
                for member in tenant.members {
                    let now = Int(Date().timeIntervalSince1970)
                    let token = try await signer.sign(
                        AccessClaims(
                            sub: member.user.uuidString.lowercased(), aud: "authenticated", role: "authenticated", exp: now + 3600,
                            iat: now,
                            session_id: member.session.uuidString.lowercased()))
                    let config: JSONValue = [
                        "postgres_changes": [
                            [
                                "event": "UPDATE", "schema": "public", "table": "tasks",
                                "filter": .string("project_id=eq.\(tenant.project.uuidString.lowercased())"),
                            ]
                        ]
                    ]
                    group.addTask {
                        // Thousands of sockets: frames are measured as they arrive, not kept.
                        let record: @Sendable (String) -> Void = { text in
                            let received = Date()
                            guard let range = text.range(of: #""commit_timestamp":""#) else { return }
                            let stamp = text[range.upperBound...].prefix { $0 != "\"" }
                            if let committed = try? timestampStyle.parse(String(stamp)) {
                                collector.record(received.timeIntervalSince(committed) * 1000)
                            }
                        }
                        try await PhoenixClient.connect(url: socketBase, keepingMessages: false, observe: record, logger: logger) {
                            client in
                            if try await client.join("tasks", config: config, token: token, timeout: .seconds(120)).status == "ok" {
                                joined.withLockedValue { $0 += 1 }
                            }
                            for await _ in stop {}
                        }
                    }
                }
            }
            let total = tenants.reduce(0) { $0 + $1.members.count }
            let deadline = ContinuousClock.now + .seconds(120)
            while joined.withLockedValue({ $0 }) < total && ContinuousClock.now < deadline {
                try await Task.sleep(for: .milliseconds(100))
            }
            print(
                "\(joined.withLockedValue { $0 }) of \(total) sockets joined, \(tenants.count) organizations, \(ProcessInfo.processInfo.activeProcessorCount) cores"
            )

            for rate in self.rate {
                let before = try await stats(serviceKey: serviceKey)
                let cpuBefore = pid.flatMap(Self.cpuSeconds)
                collector.start()
                let changes = rate * seconds
                let started = ContinuousClock.now
                try await withThrowingTaskGroup(of: Void.self) { writes in
                    for index in 0..<changes {
                        let due = started + .seconds(Double(index) / Double(rate))
                        let now = ContinuousClock.now
                        if due > now { try await Task.sleep(until: due) }
                        let tenant = tenants[index % tenants.count]
                        let task = tenant.tasks[(index / tenants.count) % tenant.tasks.count]
                        writes.addTask {
                            try await writers.query("update public.tasks set title = \(String(index)) where id = \(task)", logger: logger)
                        }
                    }
                    try await writes.waitForAll()
                }
                let writing = ContinuousClock.now - started
                try await Task.sleep(for: .seconds(3)) // let the last deliveries arrive
                let samples = collector.stop().sorted()
                let after = try await stats(serviceKey: serviceKey)
                let cpuAfter = pid.flatMap(Self.cpuSeconds)
                let percentile = { (p: Double) -> String in
                    samples.isEmpty ? "-" : String(format: "%.1f ms", samples[min(samples.count - 1, Int(Double(samples.count) * p))])
                }
                let expected = changes * (total / tenants.count)
                print(
                    "rate \(rate)/s for \(seconds) s: \(changes) changes committed in \(writing); \(samples.count) of \(expected) deliveries received"
                )
                print(
                    "  commit→delivery p50 \(percentile(0.5)), p99 \(percentile(0.99)), max \(samples.last.map { String(format: "%.1f ms", $0) } ?? "-")"
                )
                let changesSeen = after.changes - before.changes
                let queries = after.authorisationQueries - before.authorisationQueries
                print(
                    "  authorisation queries: \(queries) for \(changesSeen) changes (\(changesSeen > 0 ? String(format: "%.2f", Double(queries) / Double(changesSeen)) : "-") per change) and \(total) subscribers"
                )
                if let pid, let cpuBefore, let cpuAfter {
                    let elapsed = Double(writing.components.seconds) + 3
                    print(
                        String(format: "  server CPU %.0f%% of one core; RSS %@", (cpuAfter - cpuBefore) / elapsed * 100, Self.memory(pid)))
                }
            }
            stopAll.finish()
            group.cancelAll()
        }
    }

    struct Stats: Decodable {
        let changes: Int
        let authorisationQueries: Int
    }

    private func stats(serviceKey: String) async throws -> Stats {
        var request = URLRequest(url: URL(string: url + "/realtime/v1/stats")!)
        request.setValue(serviceKey, forHTTPHeaderField: "apikey")
        request.setValue("Bearer \(serviceKey)", forHTTPHeaderField: "Authorization")
        let (data, _) = try await URLSession.shared.data(for: request)
        return try JSONDecoder().decode(Stats.self, from: data)
    }

    /// utime + stime of a process, in seconds.
    static func cpuSeconds(_ pid: Int32) -> Double? {
        guard let text = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
            let close = text.lastIndex(of: ")")
        else { return nil }
        let fields = text[text.index(after: close)...].split(separator: " ")
        guard fields.count > 13, let user = Double(fields[11]), let system = Double(fields[12]) else { return nil }
        return (user + system) / 100
    }

    static func memory(_ pid: Int32) -> String {
        guard let text = try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8) else { return "?" }
        let lines = text.split(separator: "\n")
        func value(_ key: String) -> String {
            lines.first { $0.hasPrefix(key + ":") }.map { $0.dropFirst(key.count + 1).trimmingCharacters(in: .whitespaces) } ?? "?"
        }
        return "\(value("VmRSS")) (peak \(value("VmHWM")))"
    }
}
