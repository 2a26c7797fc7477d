import Foundation
import PostgresNIO
import StriveCore
import StriveDatabase
import StriveTestSupport
import Testing

#if canImport(Glibc)
    import Glibc
#endif

/// Scheduled jobs (pg_cron's interface, migration 0040) run by two `strive serve` instances on one
/// database: each tick once, as the role and user that scheduled the job, cancelled at the timeout.
@Suite("Scheduled jobs on two instances", .capacityBound, .serialized)
struct CronTests {
    func serve(_ database: TestDatabase, directory: String) throws -> StriveProcess.Running {
        try StriveProcess.start(
            ["serve", "--data-dir", directory, "--port", "0"],
            environment: [
                "DATABASE_URL": try database.started.cluster.url(port: database.started.running.port, database: database.target.database),
                "STRIVE_JWT_SECRET": TestCluster.jwtSecret.value,
                "STRIVE_CRON_JOB_TIMEOUT": "2",
            ])
    }

    func value<T: PostgresDecodable & Sendable>(_ database: TestDatabase, _ sql: String, as type: T.Type = T.self) async throws -> T? {
        try await database.withOwnerConnection { connection in
            try await connection.rows(PostgresQuery(unsafeSQL: sql), logger: database.logger).first?.decode(T.self)
        }
    }

    @Test func eachTickRunsOnceAsItsSchedulerAndLongRunsAreCancelled() async throws {
        let database = try await TestCluster.shared.makeDatabase()
        let fixture = try await database.withOwnerConnection { try await TenantFixture.create(on: $0, logger: database.logger) }
        let directories = [temporaryPath("strive-cron-a"), temporaryPath("strive-cron-b")]
        defer { for directory in directories { try? FileManager.default.removeItem(atPath: directory) } }
        let instances = try directories.map { try serve(database, directory: $0) }
        defer { for instance in instances { instance.signal(SIGKILL) } }
        for instance in instances { _ = try await instance.waitUntilReady() }

        // What a member's job may see: the function runs as the member, under the same policies as the API.
        let projectB = UUID()
        try await database.withOwnerConnection { connection in
            for statement in [
                "create table public.cron_probe (sub uuid, organizations integer, at timestamptz default now())",
                "alter table public.cron_probe enable row level security",
                "create policy cron_probe_insert on public.cron_probe for insert to authenticated with check (sub = auth.uid())",
                "grant insert on public.cron_probe to authenticated",
                """
                create function public.cron_probe() returns void language sql as $$
                    insert into public.cron_probe (sub, organizations) select auth.uid(), count(distinct organization_id) from public.tasks
                $$
                """,
                "grant execute on function public.cron_probe() to authenticated",
                "create table public.cron_ticks (at timestamptz default clock_timestamp())",
                // Another organization's task, which the member must never see.
                "insert into public.projects (id, organization_id, name) values ('\(projectB)', '\(fixture.id("orgB"))', 'Project B')",
                """
                insert into public.tasks (project_id, title, created_by)
                values ('\(projectB)', 'Task B', '\(try #require(fixture.userID(of: .outsider)))')
                """,
            ] {
                try await connection.run(PostgresQuery(unsafeSQL: statement), logger: database.logger)
            }
        }
        let (memberJob, refusal, visibleJobs) = try await database.withDatabase { server in
            try await server.withRequestTransaction(fixture.identity(of: .member)) { connection in
                let job = try await connection.rows(
                    "select cron.schedule('probe', '1 seconds', 'select public.cron_probe()')", logger: database.logger
                )
                .first?.decode(Int64.self)
                var refusal = ""
                do {
                    try await connection.run("savepoint attempt", logger: database.logger)
                    _ = try await connection.rows(
                        "select cron.schedule('escape', '1 seconds', 'select 1; delete from public.tasks')", logger: database.logger)
                } catch {
                    refusal = DatabaseError.serverFields(in: error)?.message ?? "\(error)"
                    try await connection.run("rollback to savepoint attempt", logger: database.logger)
                }
                let visible = try await connection.rows("select count(*)::int from cron.job", logger: database.logger).first?.decode(
                    Int.self)
                return (job, refusal, visible)
            }
        }
        #expect(memberJob != nil)
        #expect(refusal.contains("may only call one function"), "\(refusal)")
        #expect(visibleJobs == 1, "a member sees only their own jobs")

        // The owner's jobs: a tick counter, and one that outlives the 2 s timeout.
        let counter = try #require(
            try await value(
                database, "select cron.schedule('tick', '1 seconds', 'insert into public.cron_ticks default values')", as: Int64.self))
        let sleeper = try #require(
            try await value(database, "select cron.schedule('sleeper', '1 seconds', 'select pg_sleep(5)')", as: Int64.self))
        try await Task.sleep(for: .seconds(30))
        for job in ["tick", "sleeper", "probe"] {
            _ = try await value(database, "update cron.job set active = false where jobname = '\(job)' returning 1", as: Int.self)
        }
        try await Task.sleep(for: .seconds(3))

        let runs = try #require(
            try await value(database, "select count(*)::int from cron.job_run_details where jobid = \(counter)", as: Int.self))
        let ticks = try #require(try await value(database, "select count(*)::int from public.cron_ticks", as: Int.self))
        let distinctTicks = try #require(
            try await value(
                database, "select count(distinct scheduled_time)::int from cron.job_run_details where jobid = \(counter)", as: Int.self))
        let succeeded = try #require(
            try await value(
                database, "select count(*)::int from cron.job_run_details where jobid = \(counter) and status = 'succeeded'", as: Int.self))
        #expect((29...31).contains(runs), "a 1-second job over 30 s ran \(runs) times")
        #expect(ticks == runs && distinctTicks == runs && succeeded == runs, "each tick once: \(ticks) rows, \(distinctTicks) ticks")
        let message = try await value(
            database, "select return_message from cron.job_run_details where jobid = \(counter) order by runid limit 1", as: String.self)
        #expect(message == "1 row")
        let unrecorded = try await value(
            database, "select count(*)::int from cron.job_run_details where jobid = \(counter) and job_pid is null", as: Int.self)
        #expect(unrecorded == 0, "every run records the backend that ran it")

        // The member's job saw the member's organizations only, as the member.
        let member = try #require(fixture.userID(of: .member))
        let probes = try #require(try await value(database, "select count(*)::int from public.cron_probe", as: Int.self))
        #expect(probes >= 25, "\(probes)")
        let strangers = try await value(
            database, "select count(*)::int from public.cron_probe where sub <> '\(member.uuidString.lowercased())'", as: Int.self)
        #expect(strangers == 0)
        let seen = try await value(database, "select max(organizations) from public.cron_probe", as: Int.self)
        let all = try await value(database, "select count(distinct organization_id)::int from public.tasks", as: Int.self)
        #expect(seen == 1 && (all ?? 0) > 1, "the member's job saw \(String(describing: seen)) of \(String(describing: all)) organizations")

        // Cancelled at the timeout, recorded, and never two runs of one job at once.
        let cancelled = try await value(
            database,
            "select count(*)::int from cron.job_run_details where jobid = \(sleeper) and status = 'failed' and return_message like '%timeout%'",
            as: Int.self)
        #expect((cancelled ?? 0) >= 5, "\(String(describing: cancelled))")
        let overlapping = try await value(
            database,
            """
            select count(*)::int from cron.job_run_details a join cron.job_run_details b
              on a.jobid = b.jobid and a.runid < b.runid and b.start_time < a.end_time and a.end_time is not null
            where a.jobid = \(sleeper)
            """, as: Int.self)
        let sleeperRuns = try await value(
            database,
            """
            select string_agg(runid || ' ' || instance || ' ' || status || ' ' || to_char(scheduled_time, 'MI:SS') || ' '
                              || to_char(start_time, 'MI:SS.MS') || '-' || coalesce(to_char(end_time, 'MI:SS.MS'), '?'), '; ' order by runid)
            from cron.job_run_details where jobid = \(sleeper)
            """, as: String.self)
        #expect(overlapping == 0, "a run starts only after the previous one ended: \(sleeperRuns ?? "")")
    }

    @Test func aRestartNeitherLosesNorRepeatsATick() async throws {
        let database = try await TestCluster.shared.makeDatabase()
        let directories = [temporaryPath("strive-cron-r1"), temporaryPath("strive-cron-r2")]
        defer { for directory in directories { try? FileManager.default.removeItem(atPath: directory) } }
        let first = try serve(database, directory: directories[0])
        defer { first.signal(SIGKILL) }
        _ = try await first.waitUntilReady()
        let job = try #require(try await value(database, "select cron.schedule('beat', '1 seconds', 'select 1')", as: Int64.self))
        try await Task.sleep(for: .seconds(5))
        first.signal(SIGKILL)
        _ = try? await first.wait()
        try await Task.sleep(for: .seconds(4))
        let second = try serve(database, directory: directories[1])
        defer { second.signal(SIGKILL) }
        _ = try await second.waitUntilReady()
        try await Task.sleep(for: .seconds(5))
        _ = try await value(database, "update cron.job set active = false where jobid = \(job) returning 1", as: Int.self)
        try await Task.sleep(for: .seconds(2))

        // Every second from the first tick to the last has exactly one run, across the outage.
        let (runs, distinct, span) = try #require(
            try await database.withOwnerConnection { connection in
                try await connection.rows(
                    """
                    select count(*)::int, count(distinct scheduled_time)::int,
                           (extract(epoch from max(scheduled_time) - min(scheduled_time)))::int + 1
                    from cron.job_run_details where jobid = \(job)
                    """, logger: database.logger
                ).first?.decode((Int, Int, Int).self)
            })
        #expect(runs == distinct && runs == span && runs >= 12, "\(runs) runs for \(distinct) ticks over \(span) s")
    }
}
