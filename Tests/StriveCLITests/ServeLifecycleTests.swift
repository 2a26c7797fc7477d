import Foundation
import StriveDatabase
import StriveTestSupport
import Testing

#if canImport(Glibc)
    import Glibc
#endif

/// `strive serve` on its embedded default, end to end: a real binary, a real cluster, real HTTP, signals.
@Suite("strive serve lifecycle", .capacityBound, .serialized)
struct ServeLifecycleTests {
    func postmasterPID(_ dataDirectory: String) -> Int32? {
        guard let text = try? String(contentsOfFile: dataDirectory + "/pg/postmaster.pid", encoding: .utf8) else { return nil }
        return text.split(separator: "\n").first.flatMap { Int32($0) }
    }

    func isAlive(_ pid: Int32) -> Bool { ProcessLiveness.isRunning(pid) }

    /// Runs `sql` with psql as the owner of the cluster `url` points at.
    func ownerSQL(_ url: String, _ sql: String) async throws {
        let result = try await psqlResult(url, sql)
        #expect(result.status == 0, "psql: \(sql): \(result.stderr)")
    }

    /// Polls `url` until it answers something other than 404, for up to `seconds`.
    func firstAnswerOtherThan404(_ url: String, apikey: String, seconds: Double = 10) async throws -> (Int, String) {
        var answer = (0, "")
        let deadline = ContinuousClock.now + .seconds(seconds)
        repeat {
            answer = try await httpGet(url, headers: ["apikey": apikey])
            if answer.0 != 404 { break }
            try await Task.sleep(for: .milliseconds(20))
        } while ContinuousClock.now < deadline
        return answer
    }

    /// `strive serve` on its own cluster in `dataDirectory`: the process, its URL, its anon key and the
    /// owner's database URL.
    func serving(_ dataDirectory: String) async throws -> (StriveProcess.Running, String, String, String) {
        let server = try StriveProcess.start(["serve", "--data-dir", dataDirectory, "--port", "0"])
        let base = try await server.waitUntilReady()
        let anonKey = try #require(
            server.stdout.split(separator: "\n").first { $0.contains("anon key:") }?.split(separator: " ").last.map(String.init))
        let url = try await StriveProcess.run(["db", "url", "--data-dir", dataDirectory]).stdout.trimmingCharacters(
            in: .whitespacesAndNewlines)
        return (server, base, anonKey, url)
    }

    /// Two instances on one database (the second through DATABASE_URL, sharing the first's JWT secret as a
    /// deployment would): DDL by psql reaches both data APIs, with no signal.
    @Test func ddlFromAnywhereReachesTheDataAPIWithoutASignal() async throws {
        let dataDirectory = temporaryPath("strive-ddl")
        let secondDirectory = temporaryPath("strive-ddl-second")
        defer {
            try? FileManager.default.removeItem(atPath: dataDirectory)
            try? FileManager.default.removeItem(atPath: secondDirectory)
        }
        let (server, base, anonKey, url) = try await serving(dataDirectory)
        let secret = try String(contentsOfFile: dataDirectory + "/jwt-secret", encoding: .utf8).trimmingCharacters(
            in: .whitespacesAndNewlines)
        let second = try StriveProcess.start(
            ["serve", "--data-dir", secondDirectory, "--port", "0"], environment: ["DATABASE_URL": url, "STRIVE_JWT_SECRET": secret])
        let secondBase = try await second.waitUntilReady()
        let probes = [base + "/rest/v1/live_probe", secondBase + "/rest/v1/live_probe"]
        for probe in probes { #expect(try await httpGet(probe, headers: ["apikey": anonKey]).0 == 404) }

        let committed = ContinuousClock.now
        try await ownerSQL(url, "create table public.live_probe (id int primary key); grant select on public.live_probe to anon;")
        for (index, probe) in probes.enumerated() {
            let answer = try await firstAnswerOtherThan404(probe, apikey: anonKey)
            print("DDL commit to a request that sees it, instance \(index + 1): \(ContinuousClock.now - committed)")
            #expect(answer.0 == 200, "instance \(index + 1): \(answer.1)")
            #expect(answer.1 == "[]")
        }
        second.signal(SIGTERM)
        #expect(try await second.wait().status == 0)

        // A column added later is there too (the cache is replaced, not just extended).
        try await ownerSQL(url, "alter table public.live_probe add column label text; insert into public.live_probe values (1, 'one');")
        var selected = (0, "")
        for _ in 0..<500 {
            selected = try await httpGet(probes[0] + "?select=label", headers: ["apikey": anonKey])
            if selected.0 == 200 { break }
            try await Task.sleep(for: .milliseconds(20))
        }
        #expect(selected.0 == 200)
        server.signal(SIGTERM)
        #expect(try await server.wait().status == 0)
    }

    /// Where no event trigger exists (the owner was not a superuser), SIGHUP reloads by hand.
    @Test func sighupReloadsTheDataAPISchemaCache() async throws {
        let dataDirectory = temporaryPath("strive-hup")
        defer { try? FileManager.default.removeItem(atPath: dataDirectory) }
        let (server, base, anonKey, url) = try await serving(dataDirectory)
        try await ownerSQL(url, "drop event trigger strive_schema_changed")
        let probe = base + "/rest/v1/reload_probe"
        let before = try await httpGet(probe, headers: ["apikey": anonKey])
        #expect(before.0 == 404)
        #expect(before.1.contains("PGRST205"))

        try await ownerSQL(url, "create table public.reload_probe (id int primary key); grant select on public.reload_probe to anon;")
        try await Task.sleep(for: .seconds(1))
        #expect(try await httpGet(probe, headers: ["apikey": anonKey]).0 == 404, "without the trigger the cache waits for SIGHUP")
        server.signal(SIGHUP)
        let after = try await firstAnswerOtherThan404(probe, apikey: anonKey, seconds: 5)
        #expect(after.0 == 200)
        #expect(after.1 == "[]")
        server.signal(SIGTERM)
        #expect(try await server.wait().status == 0)
    }

    @Test func servesStopsCleanlyKeepsDataAndRecoversFromKillNine() async throws {
        let dataDirectory = temporaryPath("strive-serve")
        defer { try? FileManager.default.removeItem(atPath: dataDirectory) }
        let port = try #require(LoopbackPort.free())
        let arguments = ["serve", "--data-dir", dataDirectory, "--port", String(port)]

        // First start: initdb, start, migrate, serve.
        let clock = ContinuousClock()
        let firstStart = clock.now
        let first = try StriveProcess.start(arguments)
        let base = try await first.waitUntilReady()
        print("time-to-ready (fresh data dir): \(clock.now - firstStart)")
        #expect(base == "http://127.0.0.1:\(port)")
        #expect(first.stdout.contains("anon key:"))
        #expect(try await httpGet(base + "/health").0 == 200)
        let ready = try await httpGet(base + "/ready")
        #expect(ready.0 == 200)
        #expect(ready.1.contains(#""status":"ready""#))

        let secretPath = dataDirectory + "/jwt-secret"
        let secret = try String(contentsOfFile: secretPath, encoding: .utf8)
        let attributes = try FileManager.default.attributesOfItem(atPath: secretPath)
        #expect((attributes[.posixPermissions] as? NSNumber)?.intValue == 0o600)

        // A second Strive on the same data directory is refused while the first runs.
        let second = try await StriveProcess.run(["serve", "--data-dir", dataDirectory, "--port", "0"])
        #expect(second.status == 75)
        #expect(second.stderr.contains("already using data directory \(dataDirectory)"))

        // Another Strive on the same port is refused before it starts anything.
        let otherDirectory = temporaryPath("strive-port")
        let third = try await StriveProcess.run(["serve", "--data-dir", otherDirectory, "--port", String(port)])
        #expect(third.status == 75)
        #expect(third.stderr.contains("port \(port) on 127.0.0.1 is already in use"))
        #expect(!FileManager.default.fileExists(atPath: otherDirectory + "/pg"))
        try? FileManager.default.removeItem(atPath: otherDirectory)

        let status = try await StriveProcess.run(["db", "status", "--data-dir", dataDirectory])
        #expect(status.stdout.hasPrefix("running on 127.0.0.1:"))

        // SIGTERM: HTTP stops, pools drain, the cluster stops, exit 0.
        let postgres = try #require(postmasterPID(dataDirectory))
        first.signal(SIGTERM)
        let firstExit = try await first.wait(timeout: .seconds(30))
        #expect(firstExit.status == 0)
        #expect(!isAlive(postgres))
        #expect(postmasterPID(dataDirectory) == nil)

        // Second start on the existing data directory: same secret, data kept, quick.
        let secondStart = clock.now
        let restarted = try StriveProcess.start(arguments)
        _ = try await restarted.waitUntilReady()
        print("time-to-ready (existing data dir): \(clock.now - secondStart)")
        #expect(try String(contentsOfFile: secretPath, encoding: .utf8) == secret)
        #expect(try await httpGet(base + "/ready").0 == 200)

        // kill -9 Strive: its PostgreSQL is orphaned; the next start takes it over and stops it on exit.
        let orphan = try #require(postmasterPID(dataDirectory))
        restarted.signal(SIGKILL)
        _ = try await restarted.wait()
        #expect(isAlive(orphan))
        let recovered = try StriveProcess.start(arguments)
        _ = try await recovered.waitUntilReady()
        #expect(try await httpGet(base + "/ready").0 == 200)
        recovered.signal(SIGINT)
        let recoveredExit = try await recovered.wait(timeout: .seconds(30))
        #expect(recoveredExit.status == 0)
        #expect(!isAlive(orphan))

        // kill -9 PostgreSQL itself: a stale postmaster.pid remains; the next start removes it.
        let relaunch = try StriveProcess.start(arguments)
        _ = try await relaunch.waitUntilReady()
        let victim = try #require(postmasterPID(dataDirectory))
        kill(victim, SIGKILL)
        relaunch.signal(SIGKILL)
        _ = try await relaunch.wait()
        for _ in 0..<50 where isAlive(victim) { try await Task.sleep(for: .milliseconds(100)) }
        #expect(postmasterPID(dataDirectory) == victim, "the pid file outlives a killed server")
        let afterCrash = try StriveProcess.start(arguments)
        _ = try await afterCrash.waitUntilReady()
        #expect(try await httpGet(base + "/ready").0 == 200)
        afterCrash.signal(SIGTERM)
        #expect(try await afterCrash.wait(timeout: .seconds(30)).status == 0)
    }

    @Test func dbStartLeavesTheClusterRunningUntilDbStop() async throws {
        let dataDirectory = temporaryPath("strive-db")
        defer { try? FileManager.default.removeItem(atPath: dataDirectory) }
        let start = try await StriveProcess.run(["db", "start", "--data-dir", dataDirectory])
        #expect(start.status == 0)
        #expect(start.stdout.contains("postgres://strive:"))
        let url = try await StriveProcess.run(["db", "url", "--data-dir", dataDirectory])
        #expect(url.stdout.hasPrefix("postgres://strive:"))

        // serve uses the running cluster and leaves it running when it exits.
        let serve = try StriveProcess.start(["serve", "--data-dir", dataDirectory, "--port", "0"])
        _ = try await serve.waitUntilReady()
        serve.signal(SIGTERM)
        #expect(try await serve.wait(timeout: .seconds(30)).status == 0)
        let status = try await StriveProcess.run(["db", "status", "--data-dir", dataDirectory])
        #expect(status.stdout.contains("running on 127.0.0.1:"))

        let stop = try await StriveProcess.run(["db", "stop", "--data-dir", dataDirectory])
        #expect(stop.status == 0)
        let stopped = try await StriveProcess.run(["db", "status", "--data-dir", dataDirectory])
        #expect(stopped.stdout.hasPrefix("stopped"))
    }
}
