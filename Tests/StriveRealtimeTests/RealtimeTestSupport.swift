import Foundation
import HummingbirdTesting
import HummingbirdWSClient
import Logging
import NIOCore
import PostgresNIO
import StriveCore
import StriveDatabase
import StriveRealtime
import StriveServer
import StriveTestSupport
import Testing

/// A live Strive with the tenant fixture and a token per actor, and WebSocket clients to it.
struct RealtimeHarness: Sendable {
    let client: any TestClientProtocol
    let database: TestDatabase
    let fixture: TenantFixture
    let services: StriveApplication.Services
    let tokens: [TenantFixture.Actor: String]

    static func run<T: Sendable>(
        environment: [String: String] = [:], database existing: TestDatabase? = nil, fixture existingFixture: TenantFixture? = nil,
        _ body: @Sendable (RealtimeHarness) async throws -> T
    ) async throws -> T {
        let database: TestDatabase
        if let existing { database = existing } else { database = try await TestCluster.shared.makeDatabase() }
        let fixture: TenantFixture
        if let existingFixture {
            fixture = existingFixture
        } else {
            fixture = try await database.withOwnerConnection { try await TenantFixture.create(on: $0, logger: database.logger) }
        }
        let tokens = try await fixture.accessTokens(on: database)
        return try await database.withLiveApp(environment: environment) { client, services in
            try await body(RealtimeHarness(client: client, database: database, fixture: fixture, services: services, tokens: tokens))
        }
    }

    func id(_ key: String) -> String { fixture.id(key).uuidString.lowercased() }

    /// Runs SQL as the database owner (`:key` names fixture ids).
    func owner(_ sql: String) async throws {
        try await database.withOwnerConnection { connection in
            try await connection.run(PostgresQuery(unsafeSQL: fixture.substitute(sql)), logger: database.logger)
        }
    }

    /// A WebSocket to this server's realtime endpoint, with `key` as the URL's apikey.
    func withSocket<T: Sendable>(key: String? = nil, _ body: @Sendable (TestSocket) async throws -> T) async throws -> T {
        let port = try #require(client.port)
        let apikey = key ?? tokens[.anon]!
        return try await TestSocket.connect(url: "ws://127.0.0.1:\(port)/realtime/v1/websocket?apikey=\(apikey)&vsn=1.0.0", body)
    }
}

/// A Phoenix client as supabase-js drives it: send JSON frames, wait for the ones you expect.
final class TestSocket: Sendable {
    let outgoing: AsyncStream<String>.Continuation
    let inbox = Inbox()
    private let refs = Counter()

    init(outgoing: AsyncStream<String>.Continuation) {
        self.outgoing = outgoing
    }

    actor Inbox {
        private(set) var messages: [PhoenixMessage] = []
        private(set) var raw: [String] = []
        private(set) var closed = false

        func append(_ text: String) {
            raw.append(text)
            if let message = try? PhoenixMessage(text: text) { messages.append(message) }
        }

        func close() { closed = true }
    }

    actor Counter {
        var value = 0
        func next() -> String {
            value += 1
            return String(value)
        }
    }

    static func connect<T: Sendable>(url: String, _ body: @Sendable (TestSocket) async throws -> T) async throws -> T {
        let (stream, continuation) = AsyncStream<String>.makeStream()
        let socket = TestSocket(outgoing: continuation)
        let logger = {
            var logger = Logger(label: "test-socket")
            logger.logLevel = .warning
            return logger
        }()
        return try await withThrowingTaskGroup(of: T?.self) { group in
            group.addTask {
                try await WebSocketClient.connect(url: url, configuration: .init(maxFrameSize: 1 << 22), logger: logger) { inbound, outbound, _ in
                    try await withThrowingTaskGroup(of: Void.self) { inner in
                        inner.addTask {
                            for await text in stream { try await outbound.write(.text(text)) }
                            try? await outbound.close(.normalClosure, reason: nil)
                        }
                        for try await message in inbound.messages(maxSize: 1 << 22) {
                            if case .text(let text) = message { await socket.inbox.append(text) }
                        }
                        await socket.inbox.close()
                        inner.cancelAll()
                    }
                }
                return nil
            }
            let result = try await body(socket)
            continuation.finish()
            group.cancelAll()
            return result
        }
    }

    func send(_ text: String) {
        outgoing.yield(text)
    }

    /// Sends a message and returns its ref.
    @discardableResult
    func push(topic: String, event: String, payload: JSONValue) async -> String {
        let ref = await refs.next()
        send(PhoenixMessage(topic: topic, event: event, payload: payload, ref: ref, joinRef: event == "phx_join" ? ref : nil).text)
        return ref
    }

    /// Joins `realtime:<name>` and waits for the reply.
    func join(_ name: String, config: JSONValue = [:], token: String? = nil) async throws -> PhoenixMessage {
        var payload: [String: JSONValue] = ["config": config]
        if let token { payload["access_token"] = .string(token) }
        let ref = await push(topic: "realtime:" + name, event: "phx_join", payload: .object(payload))
        return try await reply(to: ref)
    }

    func reply(to ref: String, timeout: Duration = .seconds(20)) async throws -> PhoenixMessage {
        try #require(await first(timeout: timeout) { $0.event == "phx_reply" && $0.ref == ref }, "no reply to ref \(ref)")
    }

    /// The first message (received so far or within `timeout`) that satisfies `predicate`.
    func first(timeout: Duration = .seconds(20), where predicate: @Sendable (PhoenixMessage) -> Bool) async -> PhoenixMessage? {
        let deadline = ContinuousClock.now + timeout
        while true {
            if let found = await inbox.messages.first(where: predicate) { return found }
            if ContinuousClock.now >= deadline { return nil }
            try? await Task.sleep(for: .milliseconds(20))
        }
    }

    func all(where predicate: @Sendable (PhoenixMessage) -> Bool) async -> [PhoenixMessage] {
        await inbox.messages.filter(predicate)
    }

    /// Waits until `count` messages satisfy `predicate` (or the timeout passes) and returns them.
    func waitForAll(count: Int, timeout: Duration = .seconds(20), where predicate: @Sendable (PhoenixMessage) -> Bool) async -> [PhoenixMessage] {
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            let found = await all(where: predicate)
            if found.count >= count { return found }
            try? await Task.sleep(for: .milliseconds(20))
        }
        return await all(where: predicate)
    }

    /// postgres_changes pushes on `topic`.
    func changes(_ topic: String) async -> [PhoenixMessage] {
        await all { $0.topic == "realtime:" + topic && $0.event == "postgres_changes" }
    }

    func waitForChanges(_ topic: String, count: Int, timeout: Duration = .seconds(20)) async -> [PhoenixMessage] {
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            let found = await changes(topic)
            if found.count >= count { return found }
            try? await Task.sleep(for: .milliseconds(20))
        }
        return await changes(topic)
    }
}

extension PhoenixMessage {
    var status: String? { payload.objectValue?["status"]?.stringValue }
    var reason: String? { payload.objectValue?["response"]?.objectValue?["reason"]?.stringValue }
    var data: [String: JSONValue] { payload.objectValue?["data"]?.objectValue ?? [:] }
    var changeType: String? { data["type"]?.stringValue }
    var record: [String: JSONValue] { data["record"]?.objectValue ?? [:] }
    var oldRecord: [String: JSONValue] { data["old_record"]?.objectValue ?? [:] }
}

func changesConfig(_ bindings: [(event: String, table: String, filter: String?)]) -> JSONValue {
    .object([
        "broadcast": ["self": false, "ack": false],
        "presence": ["key": ""],
        "postgres_changes": .array(bindings.map { binding in
            var object: [String: JSONValue] = ["event": .string(binding.event), "schema": "public", "table": .string(binding.table)]
            if let filter = binding.filter { object["filter"] = .string(filter) }
            return .object(object)
        }),
    ])
}
