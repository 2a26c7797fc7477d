import Foundation
import HTTPTypes
import Logging
import StriveCore
import StriveDatabase
import StriveIdentity
import StriveMetrics

/// Every socket, channel and subscription of this instance; routes protocol messages, committed changes,
/// broadcasts and presence to them. Delivery never blocks on a socket: each has a bounded queue, and a
/// socket whose queue is full is disconnected rather than allowed to grow memory.
public actor RealtimeHub {
    let database: Database
    let tokens: TokenService
    let authorizer: Authorizer
    let limits: RealtimeLimits
    let logger: Logger
    /// Where broadcasts and presence go to reach the other instances (nil: this instance is alone).
    var bus: RealtimeBus?

    init(database: Database, tokens: TokenService, limits: RealtimeLimits, logger: Logger) {
        self.database = database
        self.tokens = tokens
        self.authorizer = Authorizer(database: database, logger: logger)
        self.limits = limits
        self.logger = logger
    }

    func attach(bus: RealtimeBus) {
        self.bus = bus
    }

    // MARK: State

    /// Who a channel acts as: the role and user of its access token, and when that token expires.
    struct Grant: Sendable {
        let role: DatabaseRole
        let user: UUID?
        let expiresAt: Date
        let caller: Caller

        /// Who row-level security sees when it decides what this channel may read (nil: the service
        /// role, which reads everything).
        var identity: Authorizer.Identity? {
            role == .serviceRole ? nil : Authorizer.Identity(role: role, claimsJSON: caller.token.payloadJSON)
        }
    }

    struct Binding: Sendable {
        let id: Int
        let event: String
        let schema: String
        let table: String
        let filter: ChangeFilter?
        let filterText: String?

        func accepts(_ change: Change) -> Bool {
            (event == "*" || event == change.kind.rawValue) && schema == change.schema && (table == "*" || table == change.table)
        }
    }

    struct Channel: Sendable {
        let topic: String
        let joinRef: String?
        var grant: Grant
        let bindings: [Binding]
        let broadcastSelf: Bool
        let broadcastAck: Bool
        /// A private channel: joined under realtime.messages' policies; receives private broadcasts.
        let isPrivate: Bool
        /// Whether the caller may broadcast on it (always on public channels).
        let canSend: Bool
        let presenceKey: String
    }

    final class Socket: Sendable {
        let id: UUID
        let outbound: AsyncStream<String>.Continuation
        /// The `apikey` of the connection URL: the access token of channels that send none.
        let apikey: Caller

        init(id: UUID, outbound: AsyncStream<String>.Continuation, apikey: Caller) {
            self.id = id
            self.outbound = outbound
            self.apikey = apikey
        }
    }

    struct ChannelKey: Hashable, Sendable {
        let socket: UUID
        let topic: String
    }

    struct Presence: Sendable {
        /// Which socket and channel tracked it (nil origin: this instance).
        let owner: ChannelKey
        let origin: UUID?
        let key: String
        let meta: JSONValue
    }

    private var sockets: [UUID: Socket] = [:]
    private var channels: [ChannelKey: Channel] = [:]
    /// Whether any socket on this instance has joined a channel (anyone to deliver changes to).
    var hasChannels: Bool { !channels.isEmpty }
    private var channelsBySocket: [UUID: Set<String>] = [:]
    private var joinTimes: [UUID: [ContinuousClock.Instant]] = [:]
    /// Presences per topic, by phx_ref.
    private var presences: [String: [String: Presence]] = [:]
    private var nextBindingID = 1
    /// When each other instance was last heard on the bus.
    private var lastHeard: [UUID: ContinuousClock.Instant] = [:]
    /// Sockets disconnected for being too slow (the socket task closes them with a reason).
    private(set) var slowSockets: Set<UUID> = []

    private var changesSeen = 0
    private var changesDelivered = 0

    /// Counters for operators and the benchmark.
    public struct Stats: Codable, Sendable {
        public let sockets: Int
        public let channels: Int
        public let changes: Int
        public let deliveries: Int
        public let authorisationQueries: Int
        /// Commit → delivery of the last changes delivered (up to `lagSamples`), in milliseconds; nil before any.
        public let deliveryLagP50Ms: Double?
        public let deliveryLagP99Ms: Double?
    }

    /// How many recent delivery lags the stats summarise.
    static let lagSamples = 1000
    private var recentLags: [Double] = []
    private var nextLag = 0

    public var stats: Stats {
        let sorted = recentLags.sorted()
        func percentile(_ p: Double) -> Double? {
            sorted.isEmpty ? nil : sorted[min(sorted.count - 1, Int((Double(sorted.count) * p).rounded(.up)) - 1)]
        }
        return Stats(
            sockets: sockets.count, channels: channels.count, changes: changesSeen, deliveries: changesDelivered,
            authorisationQueries: authorizer.queries.load(ordering: .relaxed), deliveryLagP50Ms: percentile(0.5),
            deliveryLagP99Ms: percentile(0.99))
    }

    private func recordLag(_ seconds: Double) {
        StriveMetrics.deliveryLag(.seconds(seconds))
        if recentLags.count < Self.lagSamples {
            recentLags.append(seconds * 1000)
        } else {
            recentLags[nextLag] = seconds * 1000
        }
        nextLag = (nextLag + 1) % Self.lagSamples
    }

    // MARK: Sockets

    func connect(id: UUID, outbound: AsyncStream<String>.Continuation, apikey: Caller) {
        sockets[id] = Socket(id: id, outbound: outbound, apikey: apikey)
    }

    func disconnect(_ id: UUID) async {
        for topic in channelsBySocket[id] ?? [] {
            await removeChannel(ChannelKey(socket: id, topic: topic))
        }
        channelsBySocket[id] = nil
        joinTimes[id] = nil
        slowSockets.remove(id)
        sockets.removeValue(forKey: id)?.outbound.finish()
    }

    func isSlow(_ id: UUID) -> Bool { slowSockets.contains(id) }

    func shutdown() async {
        for id in Array(sockets.keys) { await disconnect(id) }
    }

    private func send(_ text: String, to id: UUID) {
        guard let socket = sockets[id] else { return }
        if case .dropped = socket.outbound.yield(text) {
            // The client reads slower than we produce: cut it off instead of buffering without bound.
            slowSockets.insert(id)
            logger.warning("realtime: disconnecting a slow consumer", metadata: ["socket": "\(id)"])
            socket.outbound.finish()
        }
    }

    private func send(_ message: PhoenixMessage, to id: UUID) {
        send(message.text, to: id)
    }

    // MARK: Inbound messages

    /// Handles one text frame from a socket. Malformed or unknown messages get error replies; nothing a
    /// client sends can end another client's delivery.
    func receive(_ text: String, from id: UUID) async {
        guard text.utf8.count <= limits.maxMessageBytes else {
            send(
                PhoenixMessage(
                    topic: "phoenix", event: "phx_reply",
                    payload: ["status": "error", "response": ["reason": .string("message exceeds \(limits.maxMessageBytes) bytes")]]),
                to: id)
            return
        }
        let message: PhoenixMessage
        do {
            message = try PhoenixMessage(text: text)
        } catch {
            send(
                PhoenixMessage(
                    topic: "phoenix", event: "phx_reply",
                    payload: ["status": "error", "response": ["reason": .string("malformed message: \(error)")]]),
                to: id)
            return
        }
        switch (message.topic, message.event) {
        case ("phoenix", "heartbeat"):
            send(.reply(to: message, status: "ok", response: [:]), to: id)
        case (_, "phx_join"):
            await join(message, socket: id)
        default:
            let key = ChannelKey(socket: id, topic: message.topic)
            guard channels[key] != nil else {
                send(.errorReply(to: message, "unmatched topic: join \(message.topic) first"), to: id)
                return
            }
            switch message.event {
            case "phx_leave":
                await removeChannel(key)
                send(.reply(to: message, status: "ok", response: [:]), to: id)
                send(PhoenixMessage(topic: message.topic, event: "phx_close", payload: [:], joinRef: message.joinRef), to: id)
            case "access_token":
                await refreshToken(message, key: key)
            case "broadcast":
                await broadcast(message, key: key)
            case "presence":
                await presence(message, key: key)
            default:
                send(.errorReply(to: message, "unknown event \"\(message.event)\""), to: id)
            }
        }
    }

    func rejectBinary(from id: UUID) {
        send(
            PhoenixMessage(
                topic: "phoenix", event: "phx_reply",
                payload: ["status": "error", "response": ["reason": "binary frames are not supported; send JSON text"]]),
            to: id)
    }

    // MARK: Joining

    private func join(_ message: PhoenixMessage, socket id: UUID) async {
        guard let socket = sockets[id] else { return }
        let now = ContinuousClock.now
        var recent = (joinTimes[id] ?? []).filter { now - $0 < .seconds(1) }
        guard recent.count < limits.joinsPerSecond else {
            send(.errorReply(to: message, "too many joins: at most \(limits.joinsPerSecond) per second per socket"), to: id)
            return
        }
        recent.append(now)
        joinTimes[id] = recent
        let key = ChannelKey(socket: id, topic: message.topic)
        if channels[key] == nil, (channelsBySocket[id]?.count ?? 0) >= limits.channelsPerSocket {
            send(.errorReply(to: message, "too many channels: at most \(limits.channelsPerSocket) per socket"), to: id)
            return
        }
        guard message.topic.hasPrefix("realtime:"), message.topic.count > "realtime:".count else {
            send(.errorReply(to: message, "topics are named realtime:<channel>"), to: id)
            return
        }
        let subtopic = String(message.topic.dropFirst("realtime:".count))
        let payload = message.payload.objectValue ?? [:]
        let config = payload["config"]?.objectValue ?? [:]

        let grant: Grant
        do {
            grant = try await authorize(token: payload["access_token"]?.stringValue, socket: socket)
        } catch {
            send(.errorReply(to: message, error.message), to: id)
            return
        }
        let access: ChannelAccess
        switch await channelAccess(subtopic: subtopic, wantsPrivate: config["private"] == .bool(true), grant: grant) {
        case .success(let granted): access = granted
        case .failure(let refusal):
            send(.errorReply(to: message, refusal.reason), to: id)
            return
        }
        var bindings: [Binding] = []
        let entries = config["postgres_changes"].flatMap(Self.array) ?? []
        var published: Set<PublishedTable> = []
        if !entries.isEmpty {
            do {
                published = try await publishedTables()
            } catch {
                send(.errorReply(to: message, "the list of published tables could not be read; try again"), to: id)
                return
            }
        }
        for entry in entries {
            let spec = entry.objectValue ?? [:]
            let event = spec["event"]?.stringValue ?? "*"
            let schema = spec["schema"]?.stringValue ?? "public"
            let table = spec["table"]?.stringValue ?? "*"
            let filterText = spec["filter"]?.stringValue.flatMap { $0.isEmpty ? nil : $0 }
            guard ["*", "INSERT", "UPDATE", "DELETE"].contains(event) else {
                send(.errorReply(to: message, "postgres_changes event must be *, INSERT, UPDATE or DELETE"), to: id)
                return
            }
            guard published.contains(where: { $0.schema == schema && (table == "*" || $0.table == table) }) else {
                let names = published.map { "\($0.schema).\($0.table)" }.sorted().joined(separator: ", ")
                send(
                    .errorReply(
                        to: message,
                        "\(schema).\(table) is not published for realtime (publish it with select realtime.publish('\(schema).\(table)'); published: \(names))"
                    ),
                    to: id)
                return
            }
            var filter: ChangeFilter?
            if let filterText {
                do {
                    filter = try ChangeFilter(filterText)
                } catch {
                    send(.errorReply(to: message, error.description), to: id)
                    return
                }
            }
            bindings.append(Binding(id: nextBindingID, event: event, schema: schema, table: table, filter: filter, filterText: filterText))
            nextBindingID += 1
        }
        if channels[key] != nil { await removeChannel(key) }
        let presenceKey =
            config["presence"]?.objectValue?["key"]?.stringValue.flatMap { $0.isEmpty ? nil : $0 } ?? UUID().uuidString.lowercased()
        let broadcast = config["broadcast"]?.objectValue ?? [:]
        channels[key] = Channel(
            topic: message.topic, joinRef: message.joinRef ?? message.ref, grant: grant, bindings: bindings,
            broadcastSelf: broadcast["self"] == .bool(true), broadcastAck: broadcast["ack"] == .bool(true), isPrivate: access.isPrivate,
            canSend: access.canSend, presenceKey: presenceKey)
        channelsBySocket[id, default: []].insert(message.topic)

        let replyBindings: [JSONValue] = bindings.map { binding in
            var object: [String: JSONValue] = [
                "id": .number(Double(binding.id)), "event": .string(binding.event), "schema": .string(binding.schema),
                "table": .string(binding.table),
            ]
            if let filter = binding.filterText { object["filter"] = .string(filter) }
            return .object(object)
        }
        send(.reply(to: message, status: "ok", response: ["postgres_changes": .array(replyBindings)]), to: id)
        if !bindings.isEmpty {
            send(
                .system(
                    topic: message.topic, status: "ok", extension: "postgres_changes", message: "Subscribed to PostgreSQL",
                    channel: subtopic),
                to: id)
        }
        send(PhoenixMessage(topic: message.topic, event: "presence_state", payload: presenceState(message.topic)), to: id)
    }

    struct PublishedTable: Hashable, Sendable {
        let schema: String
        let table: String
    }

    /// The tables `realtime.publish` has published, read at each join so a table published by a
    /// migration or by hand is joinable at once.
    private func publishedTables() async throws -> Set<PublishedTable> {
        let logger = self.logger
        let rows = try await database.withServiceRoleTransaction(method: "REALTIME", path: "join", logger: logger) { connection in
            try await connection.rows("select schema_name, table_name from realtime.published", logger: logger).map {
                try $0.decode((String, String).self)
            }
        }
        return Set(rows.map { PublishedTable(schema: $0.0, table: $0.1) })
    }

    static func array(_ value: JSONValue) -> [JSONValue]? {
        if case .array(let items) = value { return items }
        return nil
    }

    /// Verifies a channel's access token (or the socket's apikey) and, for a user, that the session is
    /// still live (the request context statement checks it).
    private func authorize(token: String?, socket: Socket) async throws(AuthError) -> Grant {
        let caller: Caller
        if let token, !token.isEmpty {
            // The channel's access token is checked as a bearer token is on every HTTP surface.
            caller = try await Caller.resolve(headers: [.authorization: "Bearer \(token)"], tokens: tokens)
        } else {
            caller = socket.apikey
        }
        if caller.role == .authenticated {
            do {
                try await database.withRequestTransaction(caller.identity(method: "REALTIME", path: "join")) { _ in }
            } catch {
                throw .sessionNotFound
            }
        }
        return Grant(
            role: caller.role, user: caller.userID, expiresAt: Date(timeIntervalSince1970: TimeInterval(caller.token.claims.exp)),
            caller: caller)
    }

    struct ChannelAccess: Sendable {
        let isPrivate: Bool
        let canSend: Bool
    }

    struct Refusal: Error {
        let reason: String
    }

    /// Public channels are open to every socket. A private one (asked for, or any `org:<id>:…` topic) is
    /// joined only if realtime.messages' SELECT policies let the caller read broadcasts of the topic, and
    /// sent on only if its INSERT policies let it write them; the service role may do both.
    private func channelAccess(subtopic: String, wantsPrivate: Bool, grant: Grant) async -> Result<ChannelAccess, Refusal> {
        let isPrivate = wantsPrivate || subtopic.hasPrefix("org:")
        guard isPrivate else { return .success(ChannelAccess(isPrivate: false, canSend: true)) }
        guard let identity = grant.identity else { return .success(ChannelAccess(isPrivate: true, canSend: true)) }
        let logger = self.logger
        do {
            let (canRead, canWrite) = try await database.withServiceRoleTransaction(method: "REALTIME", path: "join", logger: logger) {
                connection in
                try await connection.rows(
                    "select can_read, can_write from realtime.channel_access(\(subtopic), \(identity.role.rawValue), \(identity.claimsJSON))",
                    logger: logger
                ).first?.decode((Bool, Bool).self) ?? (false, false)
            }
            guard canRead else {
                return .failure(Refusal(reason: "Unauthorized: you do not have permissions to read from this Channel topic: \(subtopic)"))
            }
            return .success(ChannelAccess(isPrivate: true, canSend: canWrite))
        } catch {
            logger.warning(
                "realtime: checking a private channel's policies failed",
                metadata: ["topic": "\(subtopic)", "error": "\(String(reflecting: error))"])
            return .failure(Refusal(reason: "the channel's access policies could not be checked; try again"))
        }
    }

    private func refreshToken(_ message: PhoenixMessage, key: ChannelKey) async {
        guard let socket = sockets[key.socket], var channel = channels[key] else { return }
        do throws(AuthError) {
            let grant = try await authorize(token: message.payload.objectValue?["access_token"]?.stringValue, socket: socket)
            guard grant.user == channel.grant.user || channel.grant.user == nil else {
                throw .badJWT("the new access token belongs to another user")
            }
            channel.grant = grant
            channels[key] = channel
        } catch {
            await close(key, reason: "Invalid access token: \(error.message)")
        }
    }

    /// Ends channels whose access token has expired (called every second).
    func expireTokens(now: Date = Date()) async {
        for (key, channel) in channels where channel.grant.expiresAt <= now {
            let seconds = Int(now.timeIntervalSince(channel.grant.expiresAt))
            await close(key, reason: "Token has expired \(seconds) seconds ago")
        }
    }

    private func close(_ key: ChannelKey, reason: String) async {
        guard let channel = channels[key] else { return }
        let subtopic = String(channel.topic.dropFirst("realtime:".count))
        send(.system(topic: channel.topic, status: "error", extension: "system", message: reason, channel: subtopic), to: key.socket)
        send(PhoenixMessage(topic: channel.topic, event: "phx_close", payload: [:], joinRef: channel.joinRef), to: key.socket)
        await removeChannel(key)
    }

    private func removeChannel(_ key: ChannelKey) async {
        guard channels.removeValue(forKey: key) != nil else { return }
        channelsBySocket[key.socket]?.remove(key.topic)
        let mine = (presences[key.topic] ?? [:]).filter { $0.value.origin == nil && $0.value.owner == key }
        if !mine.isEmpty {
            for ref in mine.keys { presences[key.topic]?[ref] = nil }
            let leaves = Self.presenceGroups(Array(mine.values))
            deliverPresenceDiff(topic: key.topic, joins: [:], leaves: leaves)
            await bus?.publish(.presence(topic: key.topic, joins: [], leaves: Array(mine.keys)), hub: self)
        }
    }

    // MARK: Broadcast and presence

    private func broadcast(_ message: PhoenixMessage, key: ChannelKey) async {
        guard let channel = channels[key] else { return }
        guard channel.canSend else {
            send(.errorReply(to: message, "Unauthorized: you do not have permissions to write to this Channel topic"), to: key.socket)
            return
        }
        let frame = PhoenixMessage(topic: channel.topic, event: "broadcast", payload: message.payload).text
        for (other, _) in channels where other.topic == channel.topic && (other.socket != key.socket || channel.broadcastSelf) {
            sendBroadcast(frame, to: other.socket)
        }
        if channel.broadcastAck { send(.reply(to: message, status: "ok", response: [:]), to: key.socket) }
        await bus?.publish(.broadcast(topic: channel.topic, payload: message.payload), hub: self)
    }

    private func presence(_ message: PhoenixMessage, key: ChannelKey) async {
        guard let channel = channels[key] else { return }
        let payload = message.payload.objectValue ?? [:]
        let mine = (presences[key.topic] ?? [:]).filter { $0.value.origin == nil && $0.value.owner == key }
        for ref in mine.keys { presences[key.topic]?[ref] = nil }
        var joins: [Presence] = []
        switch payload["event"]?.stringValue {
        case "track":
            var meta = payload["payload"]?.objectValue ?? [:]
            let ref = UUID().uuidString.lowercased()
            meta["phx_ref"] = .string(ref)
            let presence = Presence(owner: key, origin: nil, key: channel.presenceKey, meta: .object(meta))
            presences[key.topic, default: [:]][ref] = presence
            joins = [presence]
        case "untrack":
            break
        default:
            send(.errorReply(to: message, "presence events are track and untrack"), to: key.socket)
            return
        }
        deliverPresenceDiff(topic: key.topic, joins: Self.presenceGroups(joins), leaves: Self.presenceGroups(Array(mine.values)))
        send(.reply(to: message, status: "ok", response: [:]), to: key.socket)
        await bus?.publish(
            .presence(
                topic: key.topic, joins: joins.map { RealtimeBus.RemotePresence(key: $0.key, meta: $0.meta) }, leaves: Array(mine.keys)),
            hub: self)
    }

    /// `{key: {metas: [...]}}`, the shape of presence_state and of presence_diff's joins/leaves.
    static func presenceGroups(_ presences: [Presence]) -> [String: JSONValue] {
        var groups: [String: [JSONValue]] = [:]
        for presence in presences { groups[presence.key, default: []].append(presence.meta) }
        return groups.mapValues { .object(["metas": .array($0)]) }
    }

    private func presenceState(_ topic: String) -> JSONValue {
        .object(Self.presenceGroups(Array((presences[topic] ?? [:]).values)))
    }

    private func deliverPresenceDiff(topic: String, joins: [String: JSONValue], leaves: [String: JSONValue]) {
        guard !joins.isEmpty || !leaves.isEmpty else { return }
        let frame = PhoenixMessage(topic: topic, event: "presence_diff", payload: ["joins": .object(joins), "leaves": .object(leaves)]).text
        for key in channels.keys where key.topic == topic { sendBroadcast(frame, to: key.socket) }
    }

    // MARK: From other instances

    func remoteBroadcast(topic: String, payload: JSONValue) {
        let frame = PhoenixMessage(topic: topic, event: "broadcast", payload: payload).text
        for key in channels.keys where key.topic == topic { sendBroadcast(frame, to: key.socket) }
    }

    /// Records that another instance spoke (any bus message counts as a heartbeat).
    func heard(from origin: UUID, at instant: ContinuousClock.Instant = .now) {
        lastHeard[origin] = instant
    }

    /// Forgets the presences of instances silent for longer than `limit` (a crashed instance cannot say
    /// goodbye), telling this instance's sockets they left.
    func forgetSilentInstances(limit: Duration, now: ContinuousClock.Instant = .now) {
        let silent = Set(lastHeard.filter { now - $0.value > limit }.keys)
        guard !silent.isEmpty else { return }
        for origin in silent { lastHeard[origin] = nil }
        for (topic, entries) in presences {
            let gone = entries.filter { $0.value.origin.map(silent.contains) ?? false }
            guard !gone.isEmpty else { continue }
            for ref in gone.keys { presences[topic]?[ref] = nil }
            deliverPresenceDiff(topic: topic, joins: [:], leaves: Self.presenceGroups(Array(gone.values)))
        }
        logger.info("realtime: forgot the presences of instances that went silent", metadata: ["instances": "\(silent.count)"])
    }

    func remotePresence(origin: UUID, topic: String, joins: [RealtimeBus.RemotePresence], leaves: [String]) {
        let left = leaves.compactMap { ref in presences[topic]?.removeValue(forKey: ref) }
        var joined: [Presence] = []
        for join in joins {
            guard let ref = join.meta.objectValue?["phx_ref"]?.stringValue else { continue }
            let presence = Presence(owner: ChannelKey(socket: origin, topic: topic), origin: origin, key: join.key, meta: join.meta)
            presences[topic, default: [:]][ref] = presence
            joined.append(presence)
        }
        deliverPresenceDiff(topic: topic, joins: Self.presenceGroups(joined), leaves: Self.presenceGroups(left))
    }

    /// Everything this instance tracks, for an instance that asks after starting.
    func localPresences() -> [(topic: String, presence: RealtimeBus.RemotePresence)] {
        presences.flatMap { topic, entries in
            entries.values.filter { $0.origin == nil }.map { (topic, RealtimeBus.RemotePresence(key: $0.key, meta: $0.meta)) }
        }
    }

    // MARK: Changes

    /// A row of realtime.messages (realtime.send): a broadcast to the topic's channels of its kind
    /// (private rows to private channels, public rows to public ones).
    private func deliverBroadcast(_ change: Change) {
        guard let message = change.broadcast else { return }
        let topic = "realtime:" + message.topic
        let frame = PhoenixMessage(
            topic: topic, event: "broadcast",
            payload: ["type": "broadcast", "event": .string(message.event), "payload": message.payload]
        ).text
        for (key, channel) in channels where key.topic == topic && channel.isPrivate == message.isPrivate {
            changesDelivered += 1
            sendBroadcast(frame, to: key.socket)
        }
    }

    private func sendBroadcast(_ frame: String, to socket: UUID) {
        StriveMetrics.delivered(changes: 0, broadcasts: 1)
        send(frame, to: socket)
    }

    /// Delivers a batch of committed changes, in order, to every channel with a matching binding whose
    /// caller may read the row — authorised with one query for the whole batch.
    func deliver(_ changes: [Change], columns: (Change) async -> String) async {
        struct Candidate {
            let key: ChannelKey
            let ids: [Int]
            /// nil: the service role, which reads every row.
            let identity: Authorizer.Identity?
        }
        var candidates: [[Candidate]] = Array(repeating: [], count: changes.count)
        var pairs: Set<Authorizer.Pair> = []
        let index = BindingIndex(channels)
        for (position, change) in changes.enumerated() where !change.isBroadcast {
            let record = change.filterRecord()
            var matched: [ChannelKey: [Int]] = [:]
            for (key, binding) in index.bindings(for: change, record: record)
            where binding.accepts(change) && (binding.filter?.matches(record) ?? true) {
                matched[key, default: []].append(binding.id)
            }
            for (key, ids) in matched {
                guard let channel = channels[key] else { continue }
                let identity = channel.grant.identity
                candidates[position].append(Candidate(key: key, ids: ids.sorted(), identity: identity))
                if let identity { pairs.insert(Authorizer.Pair(change: position, identity: identity)) }
            }
        }
        changesSeen += changes.count
        let (allowed, failed) = await authorizer.readable(pairs, changes: changes)
        var sent = 0
        var lagRecorded = -1
        defer { StriveMetrics.delivered(changes: sent, broadcasts: 0) }
        for (index, change) in changes.enumerated() {
            if change.isBroadcast {
                deliverBroadcast(change)
                continue
            }
            guard !candidates[index].isEmpty else { continue }
            let data = change.dataJSON(columnsJSON: await columns(change))
            for candidate in candidates[index] {
                guard channels[candidate.key] != nil else { continue }
                let pair = candidate.identity.map { Authorizer.Pair(change: index, identity: $0) }
                let permitted = pair.map { allowed.contains($0) } ?? true
                if let pair, failed.contains(pair) {
                    send(
                        .system(
                            topic: candidate.key.topic, status: "error", extension: "postgres_changes",
                            message: "a change to \(change.table) could not be authorised and was not delivered",
                            channel: String(candidate.key.topic.dropFirst("realtime:".count))),
                        to: candidate.key.socket)
                    continue
                }
                guard permitted else { continue }
                if lagRecorded != index {
                    lagRecorded = index
                    recordLag(max(0, Date().timeIntervalSince(change.commitTimestamp)))
                }
                sent += 1
                changesDelivered += 1
                let ids = candidate.ids.map(String.init).joined(separator: ",")
                send(
                    PhoenixMessage.frame(
                        topic: candidate.key.topic, event: "postgres_changes", payloadJSON: "{\"data\":\(data),\"ids\":[\(ids)]}"),
                    to: candidate.key.socket)
            }
        }
    }
}
