import Foundation
import StriveAuth
import StriveCore
import StriveIdentity
import StriveTestSupport
import Testing

@testable import StriveRealtime

@Suite("Realtime back-pressure")
struct SlowConsumerTests {
    /// A socket that does not read is cut off once its bounded queue is full; others keep receiving.
    @Test func aSocketThatStopsReadingIsDisconnectedNotBuffered() async throws {
        let database = try await TestCluster.shared.makeDatabase()
        try await database.withDatabase { strive in
            var limits = RealtimeLimits()
            limits.outboundQueue = 8
            let tokens = try await TokenService(secret: TestCluster.jwtSecret, issuer: "test", accessTokenLifetime: .seconds(60))
            let hub = RealtimeHub(database: strive, tokens: tokens, limits: limits, logger: database.logger)
            let key = try await tokens.verify(try await APIKeys.derive(role: .anon, secret: TestCluster.jwtSecret))
            let (slowStream, slow) = AsyncStream<String>.makeStream(bufferingPolicy: .bufferingOldest(limits.outboundQueue))
            let (fastStream, fast) = AsyncStream<String>.makeStream()
            let slowID = UUID()
            let fastID = UUID()
            await hub.connect(id: slowID, outbound: slow, apikey: Caller(role: .anon, token: key))
            await hub.connect(id: fastID, outbound: fast, apikey: Caller(role: .anon, token: key))
            let reader = Task {
                var count = 0
                for await _ in fastStream { count += 1 }
                return count
            }
            let join = PhoenixMessage(
                topic: "realtime:room", event: "phx_join", payload: ["config": ["broadcast": ["self": true]]], ref: "1"
            ).text
            await hub.receive(join, from: slowID)
            await hub.receive(join, from: fastID)
            for index in 0..<50 {
                let message = PhoenixMessage(
                    topic: "realtime:room", event: "broadcast",
                    payload: ["type": "broadcast", "event": "tick", "payload": ["n": .number(Double(index))]],
                    ref: String(index + 2))
                await hub.receive(message.text, from: fastID)
                await Task.yield()
            }
            #expect(await hub.isSlow(slowID))
            #expect(await !hub.isSlow(fastID))
            var queued = 0
            for await _ in slowStream { queued += 1 } // ended by the hub: never more than the bound
            #expect(queued <= limits.outboundQueue)
            await hub.disconnect(slowID)
            await hub.disconnect(fastID)
            #expect(await reader.value >= 50)
            #expect(await hub.stats.sockets == 0)
        }
    }
}

@Suite("Phoenix frames")
struct PhoenixFrameTests {
    @Test(arguments: ["plain", "quote \" and backslash \\", "new\nline\ttab\r", "control \u{01}\u{1F}", "unicode é ✓ 日本 🚀", ""])
    func quotedStringsAreTheJSONOfTheString(_ text: String) throws {
        let quoted = PhoenixMessage.quote(text)
        let decoded = try JSONDecoder().decode(String.self, from: Data(quoted.utf8))
        #expect(decoded == text)
    }

    @Test func framesRoundTrip() throws {
        let message = PhoenixMessage(topic: "realtime:a\"b", event: "broadcast", payload: ["n": 1, "s": "x"], ref: "7", joinRef: "3")
        let parsed = try PhoenixMessage(text: message.text)
        #expect(parsed == message)
        #expect(try PhoenixMessage(text: PhoenixMessage.frame(topic: "t", event: "e", payloadJSON: "{}")).ref == nil)
        #expect(throws: PhoenixMessage.DecodingProblem.notJSON) { try PhoenixMessage(text: "nope") }
        #expect(throws: PhoenixMessage.DecodingProblem.missing("event")) { try PhoenixMessage(text: #"{"topic":"x"}"#) }
    }

    @Test func aFilterMatchesTheRowsItsOperatorSelects() throws {
        let record: [String: JSONValue] = ["title": "b", "position": 2, "owner": "ABC"]
        #expect(try ChangeFilter("title=eq.b").matches(record))
        #expect(try !ChangeFilter("title=neq.b").matches(record))
        #expect(try ChangeFilter("position=gt.1").matches(record))
        #expect(try ChangeFilter("position=lte.2").matches(record))
        #expect(try !ChangeFilter("position=lt.2").matches(record))
        #expect(try ChangeFilter("title=in.(a,b)").matches(record))
        #expect(try ChangeFilter("owner=eq.abc").matches(record))
        #expect(try !ChangeFilter("missing=eq.x").matches(record))
    }

    @Test func aFilterRealtimeCannotEvaluateIsRefused() {
        for bad in ["title", "title=like.x", "=eq.x", "title=in.a,b", "ti tle=eq.x"] {
            #expect(throws: ChangeFilter.Problem.self) { try ChangeFilter(bad) }
        }
    }
}
