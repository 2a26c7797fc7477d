import ArgumentParser
import CryptoExtras
import Foundation
import JWTKit
import StriveAuth
import StriveCore
import StriveIdentity
import StriveServer

#if canImport(FoundationNetworking)
    import FoundationNetworking
#endif

struct Bench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Measure Strive on this machine (build with -c release for meaningful numbers).",
        subcommands: [AuthBench.self, RealtimeBench.self]
    )
}

/// Sign-in latency (bcrypt-bound), access-token verification throughput on one core, and refresh
/// round trips, against a real server started in this process on the configured database.
struct AuthBench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "auth",
        abstract: "Sign-in latency, token verification throughput per core, refresh round-trip latency."
    )

    @Option(name: .customLong("sign-ins"), help: "Sequential sign-ins to time.") var signIns = 20
    @Option(help: "Sequential refreshes to time.") var refreshes = 100
    @Option(name: .customLong("verify-seconds"), help: "How long to verify tokens in a loop.") var verifySeconds = 3
    @OptionGroup var database: DatabaseOptions

    func run() async throws {
        var overrides = database.overrides
        overrides[.port] = ("bench", "0")
        overrides[.logLevel] = ("bench", "warning")
        overrides[.authRateLimitPerIP] = ("bench", "100000")
        overrides[.authRateLimitPerEmail] = ("bench", "100000")
        var loaded: StriveConfig?
        try await reportingFailure { () async throws(StartupError) in loaded = try await loadConfiguration(overrides) }
        guard let config = loaded else { return }
        let logger = makeLogger(level: .warning)

        print("bcrypt cost \(config.auth.bcryptCost); \(ProcessInfo.processInfo.activeProcessorCount) cores")
        let verification = try await Self.verificationThroughput(config: config, seconds: verifySeconds)
        print(String(format: "token verification: %.0f tokens/s on one core", verification))
        for (name, keys) in try await Self.signatureKeyCollections(config: config) {
            let microseconds = try await Self.uncachedVerification(keys, seconds: verifySeconds)
            print(String(format: "%@ signature check, uncached: %.1f µs per token", name, microseconds))
        }

        let (stream, urls) = AsyncStream.makeStream(of: String.self)
        let (finished, finish) = AsyncStream.makeStream(of: Void.self)
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask {
                defer { urls.finish() }
                try await reportingFailure { () async throws(StartupError) in
                    try await StriveLauncher(config: config, logger: logger).serve(
                        onListening: { urls.yield($0) },
                        stopWhen: { for await _ in finished {} }
                    )
                }
            }
            // Whatever happens below, the server shuts down gracefully (and stops the cluster it started).
            defer { finish.finish() }
            var iterator = stream.makeAsyncIterator()
            guard let base = await iterator.next() else {
                try await group.waitForAll() // the server failed to start; its error is reported
                return
            }
            let client = BenchClient(base: base, anonKey: config.apiKeys.anon)
            let email = "bench-\(UUID().uuidString.prefix(8).lowercased())@example.com"
            var session = try await client.signUp(email: email)

            var signInTimes: [Duration] = []
            for _ in 0..<signIns {
                let started = ContinuousClock.now
                session = try await client.signIn(email: email)
                signInTimes.append(ContinuousClock.now - started)
            }
            print("sign-in (password grant, HTTP): \(Self.summary(signInTimes))")

            var refreshTimes: [Duration] = []
            for _ in 0..<refreshes {
                let started = ContinuousClock.now
                session = try await client.refresh(session.refresh_token)
                refreshTimes.append(ContinuousClock.now - started)
            }
            print("refresh (rotation, HTTP): \(Self.summary(refreshTimes))")
        }
    }

    static func verificationThroughput(config: StriveConfig, seconds: Int) async throws -> Double {
        let tokens = try await TokenService(secret: config.jwtSecret, issuer: "bench", accessTokenLifetime: .seconds(3600))
        let now = Int(Date().timeIntervalSince1970)
        let token = try await tokens.sign(
            AccessClaims(
                sub: UUID().uuidString.lowercased(), aud: "authenticated", role: "authenticated", email: "bench@example.com",
                exp: now + 3600, iat: now, session_id: UUID().uuidString.lowercased(), aal: "aal1",
                amr: [.init(method: "password", timestamp: now)], app_metadata: .object([:]), user_metadata: .object([:]),
                is_anonymous: false
            ))
        let deadline = ContinuousClock.now + .seconds(seconds)
        var count = 0
        while ContinuousClock.now < deadline {
            for _ in 0..<100 { _ = try await tokens.verify(token) }
            count += 100
        }
        return Double(count) / Double(seconds)
    }

    /// One key of each algorithm tokens may be signed with.
    static func signatureKeyCollections(config: StriveConfig) async throws -> [(String, JWTKeyCollection)] {
        let hmac = await JWTKeyCollection().add(hmac: HMACKey(from: config.jwtSecret.value), digestAlgorithm: .sha256)
        let es256 = await JWTKeyCollection().add(ecdsa: ES256PrivateKey())
        let rsa = try Insecure.RSA.PrivateKey(backing: try _RSA.Signing.PrivateKey(keySize: .bits2048))
        let rs256 = await JWTKeyCollection().add(rsa: rsa, digestAlgorithm: .sha256)
        return [("HS256", hmac), ("ES256", es256), ("RS256", rs256)]
    }

    /// Microseconds per verification of one signed token, bypassing `TokenService`'s cache of verified
    /// tokens: the cost a token pays the first time an instance sees it.
    static func uncachedVerification(_ keys: JWTKeyCollection, seconds: Int) async throws -> Double {
        let now = Int(Date().timeIntervalSince1970)
        let token = try await keys.sign(
            AccessClaims(sub: UUID().uuidString.lowercased(), aud: "authenticated", role: "authenticated", exp: now + 3600, iat: now))
        let started = ContinuousClock.now
        let deadline = started + .seconds(seconds)
        var count = 0
        while ContinuousClock.now < deadline {
            for _ in 0..<50 { _ = try await keys.verify(token, as: AccessClaims.self) }
            count += 50
        }
        let elapsed = ContinuousClock.now - started
        return (Double(elapsed.components.seconds) * 1e6 + Double(elapsed.components.attoseconds) / 1e12) / Double(count)
    }

    static func summary(_ samples: [Duration]) -> String {
        let sorted = samples.sorted()
        guard !sorted.isEmpty else { return "no samples" }
        func ms(_ d: Duration) -> String {
            String(format: "%.2f ms", Double(d.components.seconds) * 1000 + Double(d.components.attoseconds) / 1e15)
        }
        let p95 = sorted[min(sorted.count - 1, Int(Double(sorted.count) * 0.95))]
        return "median \(ms(sorted[sorted.count / 2])), p95 \(ms(p95)), n=\(sorted.count)"
    }
}

struct BenchSession: Decodable {
    let access_token: String
    let refresh_token: String
}

/// The two requests supabase-js makes to sign in and refresh.
struct BenchClient {
    let base: String
    let anonKey: String

    struct Failure: Error, CustomStringConvertible {
        let description: String
    }

    func signUp(email: String) async throws -> BenchSession {
        try await post("/auth/v1/signup", #"{"email":"\#(email)","password":"bench password 123"}"#)
    }

    func signIn(email: String) async throws -> BenchSession {
        try await post("/auth/v1/token?grant_type=password", #"{"email":"\#(email)","password":"bench password 123"}"#)
    }

    func refresh(_ token: String) async throws -> BenchSession {
        try await post("/auth/v1/token?grant_type=refresh_token", #"{"refresh_token":"\#(token)"}"#)
    }

    private func post(_ path: String, _ body: String) async throws -> BenchSession {
        guard let url = URL(string: base + path) else { throw Failure(description: "bad URL \(base + path)") }
        var request = URLRequest(url: url)
        request.httpMethod = "POST"
        request.setValue(anonKey, forHTTPHeaderField: "apikey")
        request.setValue("application/json", forHTTPHeaderField: "Content-Type")
        request.httpBody = Data(body.utf8)
        let (data, response) = try await URLSession.shared.data(for: request)
        guard (response as? HTTPURLResponse)?.statusCode == 200 else {
            throw Failure(description: "\(path) answered \(String(decoding: data, as: UTF8.self))")
        }
        return try JSONDecoder().decode(BenchSession.self, from: data)
    }
}
