import Foundation
import HTTPTypes
import HummingbirdTesting
import NIOCore
import StriveCore
import StriveTestSupport
import Testing

/// `/metrics` over real HTTP: who may read it, and that the instruments move when the server works.
/// The registry is the process's, shared by every test app, so counts are compared before and after
/// (they only grow) rather than against fixed numbers.
@Suite("Prometheus metrics")
struct MetricsTests {
    static let token = "scrape-token-0123456789abcdef"

    @Test func metricsAreForTheServiceRoleOrTheTokenAndMoveWithTraffic() async throws {
        let database = try await TestCluster.shared.makeDatabase()
        try await database.withLiveApp(environment: ["STRIVE_METRICS_TOKEN": Self.token]) { client, _ in
            let http = TestHTTP(client)
            let anon = try await APIKeys.derive(role: .anon, secret: TestCluster.jwtSecret)
            let service = try await APIKeys.derive(role: .serviceRole, secret: TestCluster.jwtSecret)

            let nobody = try await http.send(.get, "/metrics", apikey: nil)
            #expect(nobody.status == .unauthorized && nobody.text.contains("STRIVE_METRICS_TOKEN"), "\(nobody.text)")
            #expect(try await http.send(.get, "/metrics", apikey: anon).status == .unauthorized)
            #expect(try await http.send(.get, "/metrics", apikey: nil, bearer: "scrape-token-wrong-guess").status == .unauthorized)
            let asService = try await http.send(.get, "/metrics", apikey: service, bearer: service)
            #expect(asService.status == .ok)

            let before = Exposition(try await http.send(.get, "/metrics", apikey: nil, bearer: Self.token))
            #expect(before.reply.status == .ok && before.reply["Content-Type"]?.hasPrefix("text/plain; version=0.0.4") == true)

            // Traffic of every kind the metrics describe.
            let email = "metrics-\(UUID().uuidString.prefix(8).lowercased())@example.com"
            let signUp = try await http.send(
                .post, "/auth/v1/signup", apikey: anon, json: #"{"email":"\#(email)","password":"correct horse battery"}"#)
            #expect(signUp.status == .ok, "\(signUp.text)")
            let wrong = try await http.send(
                .post, "/auth/v1/token?grant_type=password", apikey: anon, json: #"{"email":"\#(email)","password":"not the password"}"#)
            #expect(wrong.status == .badRequest)
            #expect(try await http.send(.get, "/rest/v1/customers?select=id&limit=1", apikey: service, bearer: service).status == .ok)
            let bytes = ByteBuffer(repeating: 7, count: 4096)
            let key = "metrics/\(UUID().uuidString).png"
            let uploaded = try await http.send(
                .post, "/storage/v1/object/public-assets/\(key)", apikey: service, bearer: service,
                headers: [.contentType: "image/png"], body: bytes)
            #expect(uploaded.status == .ok, "\(uploaded.text)")
            #expect(try await http.send(.get, "/storage/v1/object/public/public-assets/\(key)", apikey: anon).body.count == 4096)

            let after = Exposition(try await http.send(.get, "/metrics", apikey: nil, bearer: Self.token))
            func grew(_ series: String, by minimum: Double = 1) {
                #expect(
                    after.value(series) - before.value(series) >= minimum, "\(series): \(before.value(series)) → \(after.value(series))")
            }
            grew(#"strive_http_requests_total{route="/rest/v1/{table}",method="GET",status="200"}"#)
            grew(#"strive_auth_sign_ins_total{method="password"}"#)
            grew(#"strive_auth_failures_total{reason="invalid_credentials"}"#)
            grew("strive_storage_bytes_in_total", by: 4096)
            grew("strive_storage_bytes_out_total", by: 4096)
            grew(#"strive_db_acquire_wait_seconds_count{pool="request"}"#, by: 3)
            #expect(after.value(#"strive_http_request_duration_seconds_count{route="/rest/v1/{table}",method="GET",status="200"}"#) >= 1)
            #expect(after.value("strive_migration_version") >= 25)
            #expect(after.text.contains("strive_realtime_sockets "), "\(after.text)")
            #expect(after.text.contains(#"strive_db_connections_in_use{pool="request"}"#))
            #expect(!after.text.contains(email), "no label carries user data")
        }
    }
}

/// A scrape's samples by series (`name{labels}` as written), for comparing two scrapes.
struct Exposition {
    let reply: TestHTTP.Reply
    let samples: [String: Double]
    var text: String { reply.text }

    init(_ reply: TestHTTP.Reply) {
        self.reply = reply
        var samples: [String: Double] = [:]
        for line in reply.text.split(separator: "\n") where !line.hasPrefix("#") {
            guard let space = line.lastIndex(of: " "), let value = Double(line[line.index(after: space)...]) else { continue }
            samples[String(line[..<space])] = value
        }
        self.samples = samples
    }

    /// The series' value; 0 when it has not been recorded yet.
    func value(_ series: String) -> Double { samples[series] ?? 0 }
}
