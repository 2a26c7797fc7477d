import Foundation
import HTTPTypes
import HummingbirdTesting
import StriveAuth
import StriveCore
import StriveServer
import StriveTestSupport
import Testing

/// Auth's rate limits live in PostgreSQL: two servers on one database share them, and the client IP comes
/// from `X-Forwarded-For` only when a trusted proxy says so.
@Suite("Auth rate limits shared by instances")
struct SharedLimitsTests {
    @Test func twoInstancesShareOneAllowance() async throws {
        let database = try await TestCluster.shared.makeDatabase()
        let environment = ["STRIVE_AUTH_RATE_LIMIT_OTP": "3", "STRIVE_AUTH_RATE_LIMIT_EMAIL": "1000"]
        try await database.withLiveApp(environment: environment) { firstClient, firstServices in
            let first = try await AuthClient(firstClient, firstServices)
            try await database.withLiveApp(environment: environment) { secondClient, secondServices in
                let second = try await AuthClient(secondClient, secondServices)
                func recover(_ auth: AuthClient) async throws -> TestHTTP.Reply {
                    try await auth.send(.post, "/recover", json: #"{"email":"\#(uniqueEmail("shared"))"}"#, apikey: auth.anonKey)
                }
                #expect(try await recover(first).status == .ok)
                #expect(try await recover(second).status == .ok)
                #expect(try await recover(first).status == .ok)
                // The fourth request of the window, on either instance, is one too many.
                let refused = try await recover(second)
                #expect(refused.status == .tooManyRequests && refused.errorCode == "over_request_rate_limit", "\(refused.text)")
                let wait = try #require(refused["Retry-After"].flatMap { Int($0) })
                #expect((1...300).contains(wait))
                #expect(try await recover(first).status == .tooManyRequests)
            }
        }
    }

    @Test func forwardedForCountsOnlyBehindATrustedProxy() async throws {
        let database = try await TestCluster.shared.makeDatabase()
        let environment = [
            "STRIVE_AUTH_RATE_LIMIT_OTP": "2", "STRIVE_AUTH_RATE_LIMIT_EMAIL": "1000", "STRIVE_TRUSTED_PROXIES": "127.0.0.0/8, ::1",
        ]
        try await database.withLiveApp(environment: environment) { client, services in
            let auth = try await AuthClient(client, services)
            func recover(from address: String) async throws -> HTTPResponse.Status {
                try await auth.send(
                    .post, "/recover", json: #"{"email":"\#(uniqueEmail("xff"))"}"#, apikey: auth.anonKey,
                    headers: [HTTPField.Name("X-Forwarded-For")!: "198.51.100.9, \(address)"]
                ).status
            }
            // Each client behind the proxy has its own allowance (the spoofable left-most entry is ignored).
            #expect(try await recover(from: "203.0.113.5") == .ok)
            #expect(try await recover(from: "203.0.113.5") == .ok)
            #expect(try await recover(from: "203.0.113.5") == .tooManyRequests)
            #expect(try await recover(from: "203.0.113.6") == .ok)
        }
        // Without a trusted proxy the header changes nothing: every request is the peer's.
        let other = try await TestCluster.shared.makeDatabase()
        try await other.withLiveApp(environment: ["STRIVE_AUTH_RATE_LIMIT_OTP": "2", "STRIVE_AUTH_RATE_LIMIT_EMAIL": "1000"]) {
            client, services in
            let auth = try await AuthClient(client, services)
            var statuses: [HTTPResponse.Status] = []
            for address in ["203.0.113.7", "203.0.113.8", "203.0.113.9"] {
                statuses.append(
                    try await auth.send(
                        .post, "/recover", json: #"{"email":"\#(uniqueEmail("spoof"))"}"#, apikey: auth.anonKey,
                        headers: [HTTPField.Name("X-Forwarded-For")!: address]
                    ).status)
            }
            #expect(statuses == [.ok, .ok, .tooManyRequests])
        }
    }

    @Test func clientAddressesAndNetworks() throws {
        let proxies = ["10.0.0.0/8", "::1", "192.168.1.7"].compactMap(IPNetwork.init)
        #expect(proxies.count == 3)
        #expect(proxies[0].contains("10.200.3.4") && !proxies[0].contains("11.0.0.1") && proxies[0].contains("::ffff:10.1.2.3"))
        #expect(proxies[1].contains("::1") && !proxies[1].contains("::2"))
        #expect(IPNetwork("10.0.0.0/33") == nil && IPNetwork("not-an-ip") == nil && IPNetwork("fe80::/10") != nil)
        typealias Routes = AuthRoutes<StriveRequestContext>
        #expect(Routes.clientIP(peer: "203.0.113.1", forwardedFor: ["1.2.3.4"], trusted: proxies) == "203.0.113.1")
        #expect(Routes.clientIP(peer: "10.0.0.2", forwardedFor: ["1.2.3.4, 198.51.100.2"], trusted: proxies) == "198.51.100.2")
        #expect(Routes.clientIP(peer: "10.0.0.2", forwardedFor: ["198.51.100.2, 10.9.9.9"], trusted: proxies) == "198.51.100.2")
        #expect(Routes.clientIP(peer: "10.0.0.2", forwardedFor: ["garbage"], trusted: proxies) == "10.0.0.2")
        #expect(Routes.clientIP(peer: "10.0.0.2", forwardedFor: [], trusted: proxies) == "10.0.0.2")
    }
}
