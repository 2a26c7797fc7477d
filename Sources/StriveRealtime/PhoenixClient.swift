import Foundation
import HummingbirdWSClient
import Logging
import StriveCore

/// A Phoenix client as supabase-js drives Realtime: send JSON frames, wait for the ones you expect. One
/// client for everything that talks to a realtime socket from outside — `strive check`, `strive bench
/// realtime` and the tests.
///
/// Replies (`phx_reply`) are always kept, so `join` and `reply(to:)` work; other frames are kept only
/// when `keepingMessages` (a benchmark's thousands of sockets pass them to `observe` instead).
public final class PhoenixClient: Sendable {
    let outgoing: AsyncStream<String>.Continuation
    public let inbox: Inbox
    private let refs = Counter()

    init(outgoing: AsyncStream<String>.Continuation, keepingMessages: Bool) {
        self.outgoing = outgoing
        self.inbox = Inbox(keepingMessages: keepingMessages)
    }

    public actor Inbox {
        let keepingMessages: Bool
        public private(set) var messages: [PhoenixMessage] = []
        public private(set) var raw: [String] = []
        public private(set) var closed = false

        init(keepingMessages: Bool) { self.keepingMessages = keepingMessages }

        func append(_ text: String) {
            guard keepingMessages || text.contains(#""phx_reply""#) else { return }
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

    /// The realtime WebSocket of the server at `base` (`http://host:port`), with `apikey` as the URL's key.
    public static func realtimeURL(base: String, apikey: String) -> String {
        base.replacingOccurrences(of: "http", with: "ws", options: .anchored) + "/realtime/v1/websocket?apikey=\(apikey)&vsn=1.0.0"
    }

    /// Connects to `url`, runs `body` with the client and closes the socket when it returns.
    public static func connect<T: Sendable>(
        url: String, keepingMessages: Bool = true, observe: (@Sendable (String) -> Void)? = nil, logger: Logger? = nil,
        _ body: @Sendable (PhoenixClient) async throws -> T
    ) async throws -> T {
        let (stream, continuation) = AsyncStream<String>.makeStream()
        let client = PhoenixClient(outgoing: continuation, keepingMessages: keepingMessages)
        let logger =
            logger
            ?? {
                var logger = Logger(label: "phoenix-client")
                logger.logLevel = .warning
                return logger
            }()
        return try await withThrowingTaskGroup(of: T?.self) { group in
            group.addTask {
                try await WebSocketClient.connect(url: url, configuration: .init(maxFrameSize: 1 << 22), logger: logger) {
                    inbound, outbound, _ in
                    try await withThrowingTaskGroup(of: Void.self) { inner in
                        inner.addTask {
                            for await text in stream { try await outbound.write(.text(text)) }
                            try? await outbound.close(.normalClosure, reason: nil)
                        }
                        for try await message in inbound.messages(maxSize: 1 << 22) {
                            guard case .text(let text) = message else { continue }
                            observe?(text)
                            await client.inbox.append(text)
                        }
                        await client.inbox.close()
                        inner.cancelAll()
                    }
                }
                return nil
            }
            let result = try await body(client)
            continuation.finish()
            group.cancelAll()
            return result
        }
    }

    public func send(_ text: String) {
        outgoing.yield(text)
    }

    /// Sends a message and returns its ref.
    @discardableResult
    public func push(topic: String, event: String, payload: JSONValue) async -> String {
        let ref = await refs.next()
        send(PhoenixMessage(topic: topic, event: event, payload: payload, ref: ref, joinRef: event == "phx_join" ? ref : nil).text)
        return ref
    }

    /// Joins `realtime:<name>` and waits for the reply.
    public func join(_ name: String, config: JSONValue = [:], token: String? = nil, timeout: Duration = .seconds(20)) async throws
        -> PhoenixMessage
    {
        var payload: [String: JSONValue] = ["config": config]
        if let token { payload["access_token"] = .string(token) }
        let ref = await push(topic: "realtime:" + name, event: "phx_join", payload: .object(payload))
        return try await reply(to: ref, timeout: timeout)
    }

    public struct NoReply: Error, CustomStringConvertible {
        public let ref: String
        public var description: String { "no reply to ref \(ref)" }
    }

    public func reply(to ref: String, timeout: Duration = .seconds(20)) async throws -> PhoenixMessage {
        guard let reply = await first(timeout: timeout, where: { $0.event == "phx_reply" && $0.ref == ref }) else {
            throw NoReply(ref: ref)
        }
        return reply
    }

    /// The first message (received so far or within `timeout`) that satisfies `predicate`.
    public func first(timeout: Duration = .seconds(20), where predicate: @Sendable (PhoenixMessage) -> Bool) async -> PhoenixMessage? {
        let deadline = ContinuousClock.now + timeout
        while true {
            if let found = await inbox.messages.first(where: predicate) { return found }
            if ContinuousClock.now >= deadline { return nil }
            try? await Task.sleep(for: .milliseconds(20))
        }
    }

    public func all(where predicate: @Sendable (PhoenixMessage) -> Bool) async -> [PhoenixMessage] {
        await inbox.messages.filter(predicate)
    }

    /// Waits until `count` messages satisfy `predicate` (or the timeout passes) and returns them.
    public func waitForAll(count: Int, timeout: Duration = .seconds(20), where predicate: @Sendable (PhoenixMessage) -> Bool) async
        -> [PhoenixMessage]
    {
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            let found = await all(where: predicate)
            if found.count >= count { return found }
            try? await Task.sleep(for: .milliseconds(20))
        }
        return await all(where: predicate)
    }

    /// postgres_changes pushes on `realtime:<name>`.
    public func changes(_ name: String) async -> [PhoenixMessage] {
        await all { $0.topic == "realtime:" + name && $0.event == "postgres_changes" }
    }

    public func waitForChanges(_ name: String, count: Int, timeout: Duration = .seconds(20)) async -> [PhoenixMessage] {
        await waitForAll(count: count, timeout: timeout) { $0.topic == "realtime:" + name && $0.event == "postgres_changes" }
    }
}

extension PhoenixMessage {
    /// A reply's status (`ok`, `error`).
    public var status: String? { payload.objectValue?["status"]?.stringValue }
    public var reason: String? { payload.objectValue?["response"]?.objectValue?["reason"]?.stringValue }
    public var data: [String: JSONValue] { payload.objectValue?["data"]?.objectValue ?? [:] }
    public var changeType: String? { data["type"]?.stringValue }
    public var record: [String: JSONValue] { data["record"]?.objectValue ?? [:] }
    public var oldRecord: [String: JSONValue] { data["old_record"]?.objectValue ?? [:] }
}
