import Foundation
import PostgresNIO
import StriveCore
import StriveDatabase
import StriveTestSupport
import Testing

#if canImport(Glibc)
    import Glibc
#endif

/// HTTP from SQL (net.http_*) and Database Webhooks (supabase_functions.http_request) against `strive
/// serve` instances on one database, with a real receiver on loopback (`Scripts/webhook-receiver.py`)
/// that checks Standard Webhooks signatures, fails, rate-limits and hangs on purpose.
@Suite("Webhooks and HTTP from SQL", .capacityBound, .serialized)
struct WebhookTests {
    /// 32 bytes, as `whsec_` + base64.
    static let secret = "whsec_" + Data((0..<32).map { UInt8($0 * 7 + 3) }).base64EncodedString()

    func serve(_ database: TestDatabase, directory: String) throws -> StriveProcess.Running {
        try StriveProcess.start(
            ["serve", "--data-dir", directory, "--port", "0"],
            environment: [
                "DATABASE_URL": try database.started.cluster.url(port: database.started.running.port, database: database.target.database),
                "STRIVE_JWT_SECRET": TestCluster.jwtSecret.value,
                "STRIVE_NET_ALLOW_PRIVATE": "127.0.0.1", "STRIVE_WEBHOOK_SECRET": Self.secret, "STRIVE_NET_MAX_ATTEMPTS": "3",
            ])
    }

    /// Runs `statements` one after another on one owner connection.
    func sql(_ database: TestDatabase, _ statements: String...) async throws {
        try await database.withOwnerConnection { connection in
            for statement in statements { try await connection.run(PostgresQuery(unsafeSQL: statement), logger: database.logger) }
        }
    }

    struct Answer {
        let status: Int?
        let attempts: Int
        let error: String?
    }

    /// `net._http_response`, once it holds `count` answers (nil if it never does within a minute).
    func answers(_ database: TestDatabase, count: Int) async throws -> [Int64: Answer]? {
        for _ in 0..<600 {
            let answers = try await database.withOwnerConnection { connection in
                try await connection.rows(
                    "select id, status_code, coalesce(attempts, 0), error_msg from net._http_response", logger: database.logger
                ).map { row in
                    let (id, status, attempts, error) = try row.decode((Int64, Int?, Int, String?).self)
                    return (id, Answer(status: status, attempts: attempts, error: error))
                }
            }
            if answers.count >= count { return Dictionary(answers) { first, _ in first } }
            try await Task.sleep(for: .milliseconds(100))
        }
        return nil
    }

    func requestID(_ database: TestDatabase, _ call: String) async throws -> Int64 {
        try await database.withOwnerConnection { connection in
            try await connection.rows(PostgresQuery(unsafeSQL: "select \(call)"), logger: database.logger).first?.decode(Int64.self) ?? -1
        }
    }

    @Test func committedChangesAreDeliveredSignedRetriedAndPrivateAddressesRefused() async throws {
        let database = try await TestCluster.shared.makeDatabase()
        let receiver = try await TestWebhookReceiver.start(secret: Self.secret)
        defer { receiver.stop() }
        let directory = temporaryPath("strive-webhooks")
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let server = try serve(database, directory: directory)
        defer { server.signal(SIGKILL) }
        let base = try await server.waitUntilReady()

        // A Database Webhook as Supabase's dashboard writes it.
        try await sql(
            database, "create table public.webhook_events (id integer primary key, note text)",
            """
            create trigger notify_receiver after insert or update or delete on public.webhook_events for each row
            execute function supabase_functions.http_request(
                '\(receiver.url("/ok"))', 'POST', '{"Content-Type":"application/json"}', '{}', '5000')
            """)
        for id in 1...20 { try await sql(database, "insert into public.webhook_events values (\(id), 'committed')") }
        try await sql(database, "update public.webhook_events set note = 'changed' where id = 1")
        try await sql(
            database, "begin", "insert into public.webhook_events select g, 'rolled back' from generate_series(100, 104) g", "rollback")
        let flaky = try await requestID(database, "net.http_post('\(receiver.url("/flaky"))', '{\"n\": 1}'::jsonb)")
        let limited = try await requestID(database, "net.http_get('\(receiver.url("/limited"))', '{\"q\": \"a b\"}'::jsonb)")
        let metadata = try await requestID(database, "net.http_get('http://169.254.169.254/latest/meta-data/')")
        let loopbackV6 = try await requestID(database, "net.http_delete('http://[::1]:\(receiver.port)/ok')")
        // A receiver that is gone: connection refused, tried STRIVE_NET_MAX_ATTEMPTS (3) times, then recorded.
        let gonePort = try #require(LoopbackPort.free())
        let gone = try await requestID(database, "net.http_get('http://127.0.0.1:\(gonePort)/')")

        let answers = try #require(try await answers(database, count: 26), "every request answered within a minute")
        let received = try await receiver.received()

        // Every committed change at least once, none of the rolled-back ones, each signed.
        let inserted = Set(
            received.filter { $0.path == "/ok" }.compactMap { request -> Int? in
                guard let payload = JSONValue(jsonText: request.body)?.objectValue, payload["type"]?.stringValue == "INSERT" else {
                    return nil
                }
                return payload["record"]?.objectValue?["id"].flatMap { Int($0.jsonText) }
            })
        #expect(inserted == Set(1...20), "\(inserted.sorted())")
        let update = received.first { JSONValue(jsonText: $0.body)?.objectValue?["type"]?.stringValue == "UPDATE" }
        let updatePayload = try #require(update.flatMap { JSONValue(jsonText: $0.body)?.objectValue })
        #expect(updatePayload["table"]?.stringValue == "webhook_events" && updatePayload["schema"]?.stringValue == "public")
        #expect(updatePayload["old_record"]?.objectValue?["note"]?.stringValue == "committed")
        #expect(updatePayload["record"]?.objectValue?["note"]?.stringValue == "changed")
        #expect(
            received.allSatisfy { $0.verified }, "unsigned: \(received.filter { !$0.verified }.map { "\($0.method) \($0.path)" })")
        #expect(received.allSatisfy { $0.userAgent.hasPrefix("strive-net/") })

        // Retries: the same webhook-id each time, the attempts recorded.
        #expect(answers[flaky]?.status == 200 && answers[flaky]?.attempts == 3, "\(String(describing: answers[flaky]))")
        let flakyAttempts = received.filter { $0.path == "/flaky" }
        #expect(flakyAttempts.count == 3 && Set(flakyAttempts.map(\.id)) == ["msg_\(flaky)"])
        #expect(answers[limited]?.status == 200 && answers[limited]?.attempts == 2)
        #expect(received.first { $0.path == "/limited" }?.query == "q=a%20b")

        // Private addresses are refused, and said so.
        for refused in [metadata, loopbackV6] {
            #expect(answers[refused]?.status == nil)
            #expect(answers[refused]?.error?.contains("STRIVE_NET_ALLOW_PRIVATE") == true, "\(String(describing: answers[refused]))")
        }
        #expect(!received.contains { $0.method == "DELETE" }, "the refused request never left")
        #expect(answers[gone]?.status == nil && answers[gone]?.attempts == 3 && answers[gone]?.error != nil)

        let metrics = try await httpRequest(
            "GET", base + "/metrics", headers: ["apikey": try server.serviceKey(), "Authorization": "Bearer \(try server.serviceKey())"])
        let text = String(decoding: metrics.1, as: UTF8.self)
        func sample(_ series: String) -> Double? {
            text.split(separator: "\n").first { $0.hasPrefix(series + " ") }.flatMap { Double($0.split(separator: " ").last ?? "") }
        }
        #expect(sample(#"strive_net_requests_total{outcome="retried"}"#) == 5)
        #expect(sample(#"strive_net_requests_total{outcome="failed"}"#) == 3)
        #expect(sample(#"strive_net_requests_total{outcome="delivered"}"#) == 23)

        // Cron and webhooks together: "call my endpoint every second".
        try await sql(
            database,
            "select cron.schedule('call-me', '1 seconds', $$select net.http_post('\(receiver.url("/ok"))', '{\"from\": \"cron\"}')$$)")
        var called = false
        for _ in 0..<100 where !called {
            called = try await receiver.received().contains { $0.body.contains(#""from": "cron""#) }
            if !called { try await Task.sleep(for: .milliseconds(100)) }
        }
        try await sql(database, "select cron.unschedule('call-me')")
        #expect(called, "a scheduled job's request reached the receiver")
    }

    @Test func aDeliveryCutShortByKillIsFinishedByAnotherInstance() async throws {
        let database = try await TestCluster.shared.makeDatabase()
        let receiver = try await TestWebhookReceiver.start(secret: Self.secret)
        defer { receiver.stop() }
        let directories = [temporaryPath("strive-webhooks-a"), temporaryPath("strive-webhooks-b")]
        defer { for directory in directories { try? FileManager.default.removeItem(atPath: directory) } }
        let first = try serve(database, directory: directories[0])
        defer { first.signal(SIGKILL) }
        _ = try await first.waitUntilReady()

        let slow = try await requestID(
            database, "net.http_post('\(receiver.url("/slow"))', '{\"x\": 1}'::jsonb, timeout_milliseconds => 3000)")
        var arrived = false
        for _ in 0..<300 where !arrived {
            arrived = try await receiver.received().contains { $0.path == "/slow" }
            if !arrived { try await Task.sleep(for: .milliseconds(100)) }
        }
        #expect(arrived, "the first instance sent the request")
        first.signal(SIGKILL)
        _ = try? await first.wait()

        let second = try serve(database, directory: directories[1])
        defer { second.signal(SIGKILL) }
        _ = try await second.waitUntilReady()
        let answers = try #require(try await answers(database, count: 1), "the second instance finished the delivery")
        #expect(answers[slow]?.status == 200 && answers[slow]?.attempts == 2, "\(String(describing: answers[slow]))")
        let attempts = try await receiver.received().filter { $0.path == "/slow" }
        #expect(attempts.count == 2 && Set(attempts.map(\.id)) == ["msg_\(slow)"], "delivered again, under the same id")
    }
}
