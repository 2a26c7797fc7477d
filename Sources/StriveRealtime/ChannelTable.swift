import Foundation
import StriveCore
import StriveDatabase
import StriveIdentity

/// Who a channel acts as: the role and user of its access token, and when that token expires.
struct ChannelGrant: Sendable {
    let role: DatabaseRole
    let user: UUID?
    let expiresAt: Date
    let caller: Caller

    init(_ caller: Caller) {
        self.role = caller.role
        self.user = caller.userID
        // A token without `exp` never expires; its channel ends when the socket does.
        self.expiresAt = caller.token.expiresAt ?? .distantFuture
        self.caller = caller
    }

    /// Who row-level security sees when it decides what this channel may read (nil: the service role,
    /// which reads everything).
    var identity: Authorizer.Identity? {
        role == .serviceRole ? nil : Authorizer.Identity(role: role, claimsJSON: caller.token.payloadJSON)
    }
}

/// One `postgres_changes` subscription of a channel.
struct Binding: Sendable {
    let id: Int
    let event: String
    let schema: String
    let table: String
    let filter: ChangeFilter?
    let asSent: [String: JSONValue]

    func accepts(_ change: Change) -> Bool {
        (event == "*" || event == change.kind.rawValue) && schema == change.schema && (table == "*" || table == change.table)
    }
}

struct Channel: Sendable {
    let topic: String
    let joinRef: String?
    var grant: ChannelGrant
    let bindings: [Binding]
    let broadcastSelf: Bool
    let broadcastAck: Bool
    /// A private channel: joined under realtime.messages' policies; receives private broadcasts.
    let isPrivate: Bool
    /// Whether the caller may broadcast on it (always on public channels).
    let canSend: Bool
    let presenceKey: String

    var subtopic: String { String(topic.dropFirst("realtime:".count)) }
}

struct ChannelKey: Hashable, Sendable {
    let socket: UUID
    let topic: String
}

/// The channels of every socket of this instance, with the per-socket limits on joining. A value: the
/// hub owns one and changes it; nothing here does I/O.
struct ChannelTable: Sendable {
    private(set) var channels: [ChannelKey: Channel] = [:]
    private var topicsBySocket: [UUID: Set<String>] = [:]
    private var joinTimes: [UUID: [ContinuousClock.Instant]] = [:]
    private var nextBindingID = 1

    var isEmpty: Bool { channels.isEmpty }
    var count: Int { channels.count }

    subscript(key: ChannelKey) -> Channel? { channels[key] }

    /// Counts a join of `topic` by `socket` at `now` against the limits; the refusal's reason, or nil.
    mutating func admitJoin(socket: UUID, topic: String, now: ContinuousClock.Instant, limits: RealtimeLimits) -> String? {
        var recent = (joinTimes[socket] ?? []).filter { now - $0 < .seconds(1) }
        guard recent.count < limits.joinsPerSecond else {
            return "too many joins: at most \(limits.joinsPerSecond) per second per socket"
        }
        recent.append(now)
        joinTimes[socket] = recent
        if channels[ChannelKey(socket: socket, topic: topic)] == nil, (topicsBySocket[socket]?.count ?? 0) >= limits.channelsPerSocket {
            return "too many channels: at most \(limits.channelsPerSocket) per socket"
        }
        return nil
    }

    /// Bindings for a joining channel, numbered uniquely across this instance.
    mutating func bindings(_ specs: [JoinRequest.BindingSpec]) -> [Binding] {
        specs.map { spec in
            defer { nextBindingID += 1 }
            return Binding(
                id: nextBindingID, event: spec.event, schema: spec.schema, table: spec.table, filter: spec.filter,
                asSent: spec.asSent)
        }
    }

    mutating func insert(_ channel: Channel, for key: ChannelKey) {
        channels[key] = channel
        topicsBySocket[key.socket, default: []].insert(key.topic)
    }

    mutating func replaceGrant(_ grant: ChannelGrant, for key: ChannelKey) {
        channels[key]?.grant = grant
    }

    @discardableResult
    mutating func remove(_ key: ChannelKey) -> Channel? {
        guard let channel = channels.removeValue(forKey: key) else { return nil }
        topicsBySocket[key.socket]?.remove(key.topic)
        return channel
    }

    func topics(of socket: UUID) -> Set<String> { topicsBySocket[socket] ?? [] }

    /// Forgets what is kept per socket once its channels are removed.
    mutating func forget(socket: UUID) {
        topicsBySocket[socket] = nil
        joinTimes[socket] = nil
    }

    /// The channels joined to `topic`, on every socket.
    func keys(on topic: String) -> [ChannelKey] { channels.keys.filter { $0.topic == topic } }

    /// Channels whose access token has expired by `now`.
    func expired(at now: Date) -> [(ChannelKey, Channel)] {
        channels.filter { $0.value.grant.expiresAt <= now }.map { ($0.key, $0.value) }
    }
}
