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

    private var sockets: [UUID: Socket] = [:]
    private var channels = ChannelTable()
    private var presences = PresenceTable()
    /// Whether any socket on this instance has joined a channel (anyone to deliver changes to).
    var hasChannels: Bool { !channels.isEmpty }
    /// When each other instance was last heard on the bus.
    private var lastHeard: [UUID: ContinuousClock.Instant] = [:]
    /// Sockets disconnected for being too slow (the socket task closes them with a reason).
    private(set) var slowSockets: Set<UUID> = []

    private var changesSeen = 0
    private var changesDelivered = 0
    /// How many recent delivery lags the stats summarise.
    static let lagSamples = 1000
    private var lags = LagWindow(capacity: RealtimeHub.lagSamples)

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

    public var stats: Stats {
        Stats(
            sockets: sockets.count, channels: channels.count, changes: changesSeen, deliveries: changesDelivered,
            authorisationQueries: authorizer.queries.load(ordering: .relaxed), deliveryLagP50Ms: lags.percentile(0.5),
            deliveryLagP99Ms: lags.percentile(0.99))
    }

    private func recordLag(_ seconds: Double) {
        StriveMetrics.deliveryLag(.seconds(seconds))
        lags.record(milliseconds: seconds * 1000)
    }

    // MARK: Sockets

    func connect(id: UUID, outbound: AsyncStream<String>.Continuation, apikey: Caller) {
        sockets[id] = Socket(id: id, outbound: outbound, apikey: apikey)
    }

    func disconnect(_ id: UUID) async {
        for topic in channels.topics(of: id) {
            await removeChannel(ChannelKey(socket: id, topic: topic))
        }
        channels.forget(socket: id)
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
        if let refusal = channels.admitJoin(socket: id, topic: message.topic, now: .now, limits: limits) {
            send(.errorReply(to: message, refusal), to: id)
            return
        }
        let request: JoinRequest
        let grant: ChannelGrant
        let access: ChannelAccess
        do throws(JoinRequest.Refusal) {
            request = try JoinRequest(message)
            do {
                grant = try await authorize(token: request.accessToken, socket: socket)
            } catch {
                throw JoinRequest.Refusal(reason: error.message)
            }
            access = try await channelAccess(request, grant: grant)
            if !request.bindings.isEmpty {
                let published: Set<PublishedTable>
                do {
                    published = try await publishedTables()
                } catch {
                    throw JoinRequest.Refusal(reason: "the list of published tables could not be read; try again")
                }
                if let refusal = request.unpublished(in: published) { throw refusal }
            }
        } catch {
            send(.errorReply(to: message, error.reason), to: id)
            return
        }
        let key = ChannelKey(socket: id, topic: message.topic)
        if channels[key] != nil { await removeChannel(key) }
        let bindings = channels.bindings(request.bindings)
        channels.insert(
            Channel(
                topic: message.topic, joinRef: message.joinRef ?? message.ref, grant: grant, bindings: bindings,
                broadcastSelf: request.broadcastSelf, broadcastAck: request.broadcastAck, isPrivate: access.isPrivate,
                canSend: access.canSend, presenceKey: request.presenceKey ?? UUID().uuidString.lowercased()),
            for: key)

        let replyBindings: [JSONValue] = bindings.map { binding in
            var object = binding.asSent
            object["id"] = .number(Double(binding.id))
            return .object(object)
        }
        send(.reply(to: message, status: "ok", response: ["postgres_changes": .array(replyBindings)]), to: id)
        if !bindings.isEmpty {
            send(
                .system(
                    topic: message.topic, status: "ok", extension: "postgres_changes", message: "Subscribed to PostgreSQL",
                    channel: request.subtopic),
                to: id)
        }
        send(PhoenixMessage(topic: message.topic, event: "presence_state", payload: presences.state(of: message.topic)), to: id)
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

    /// Verifies a channel's access token (or the socket's apikey) and, for a user, that the session is
    /// still live (the request context statement checks it).
    private func authorize(token: String?, socket: Socket) async throws(AuthError) -> ChannelGrant {
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
        return ChannelGrant(caller)
    }

    struct ChannelAccess: Sendable {
        let isPrivate: Bool
        let canSend: Bool
    }

    /// A private channel is joined only if realtime.messages' SELECT policies let the caller read
    /// broadcasts of the topic, and sent on only if its INSERT policies let it write them; the service
    /// role may do both.
    private func channelAccess(_ request: JoinRequest, grant: ChannelGrant) async throws(JoinRequest.Refusal) -> ChannelAccess {
        let subtopic = request.subtopic
        guard request.isPrivate else { return ChannelAccess(isPrivate: false, canSend: true) }
        guard let identity = grant.identity else { return ChannelAccess(isPrivate: true, canSend: true) }
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
                throw JoinRequest.Refusal(reason: "Unauthorized: you do not have permissions to read from this Channel topic: \(subtopic)")
            }
            return ChannelAccess(isPrivate: true, canSend: canWrite)
        } catch let refusal as JoinRequest.Refusal {
            throw refusal
        } catch {
            logger.warning(
                "realtime: checking a private channel's policies failed",
                metadata: ["topic": "\(subtopic)", "error": "\(String(reflecting: error))"])
            throw JoinRequest.Refusal(reason: "the channel's access policies could not be checked; try again")
        }
    }

    private func refreshToken(_ message: PhoenixMessage, key: ChannelKey) async {
        guard let socket = sockets[key.socket], let channel = channels[key] else { return }
        do throws(AuthError) {
            let grant = try await authorize(token: message.payload.objectValue?["access_token"]?.stringValue, socket: socket)
            guard grant.user == channel.grant.user || channel.grant.user == nil else {
                throw .badJWT("the new access token belongs to another user")
            }
            channels.replaceGrant(grant, for: key)
        } catch {
            await close(key, reason: "Invalid access token: \(error.message)")
        }
    }

    /// Ends channels whose access token has expired (called every second).
    func expireTokens(now: Date = Date()) async {
        for (key, channel) in channels.expired(at: now) {
            let seconds = Int(now.timeIntervalSince(channel.grant.expiresAt))
            await close(key, reason: "Token has expired \(seconds) seconds ago")
        }
    }

    private func close(_ key: ChannelKey, reason: String) async {
        guard let channel = channels[key] else { return }
        send(
            .system(topic: channel.topic, status: "error", extension: "system", message: reason, channel: channel.subtopic), to: key.socket)
        send(PhoenixMessage(topic: channel.topic, event: "phx_close", payload: [:], joinRef: channel.joinRef), to: key.socket)
        await removeChannel(key)
    }

    private func removeChannel(_ key: ChannelKey) async {
        guard channels.remove(key) != nil else { return }
        let (refs, _, diff) = presences.untrack(key)
        if !refs.isEmpty {
            deliverPresenceDiff(topic: key.topic, diff)
            await bus?.publish(.presence(topic: key.topic, joins: [], leaves: refs), hub: self)
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
        for other in channels.keys(on: channel.topic) where other.socket != key.socket || channel.broadcastSelf {
            sendBroadcast(frame, to: other.socket)
        }
        if channel.broadcastAck { send(.reply(to: message, status: "ok", response: [:]), to: key.socket) }
        await bus?.publish(.broadcast(topic: channel.topic, payload: message.payload), hub: self)
    }

    private func presence(_ message: PhoenixMessage, key: ChannelKey) async {
        guard let channel = channels[key] else { return }
        let payload = message.payload.objectValue ?? [:]
        let left: [String]
        var joins: [RealtimeBus.RemotePresence] = []
        let diff: PresenceTable.Diff
        switch payload["event"]?.stringValue {
        case "track":
            let tracked = presences.track(key, key: channel.presenceKey, meta: payload["payload"]?.objectValue ?? [:])
            (left, diff) = (tracked.left, tracked.diff)
            joins = [RealtimeBus.RemotePresence(key: tracked.joined.key, meta: tracked.joined.meta)]
        case "untrack":
            let untracked = presences.untrack(key)
            (left, diff) = (untracked.refs, untracked.diff)
        default:
            send(.errorReply(to: message, "presence events are track and untrack"), to: key.socket)
            return
        }
        deliverPresenceDiff(topic: key.topic, diff)
        send(.reply(to: message, status: "ok", response: [:]), to: key.socket)
        await bus?.publish(.presence(topic: key.topic, joins: joins, leaves: left), hub: self)
    }

    private func deliverPresenceDiff(topic: String, _ diff: PresenceTable.Diff) {
        guard !diff.isEmpty else { return }
        let frame = PhoenixMessage(
            topic: topic, event: "presence_diff", payload: ["joins": .object(diff.joins), "leaves": .object(diff.leaves)]
        )
        .text
        for key in channels.keys(on: topic) { sendBroadcast(frame, to: key.socket) }
    }

    // MARK: From other instances

    func remoteBroadcast(topic: String, payload: JSONValue) {
        let frame = PhoenixMessage(topic: topic, event: "broadcast", payload: payload).text
        for key in channels.keys(on: topic) { sendBroadcast(frame, to: key.socket) }
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
        for (topic, diff) in presences.forget(origins: silent) { deliverPresenceDiff(topic: topic, diff) }
        logger.info("realtime: forgot the presences of instances that went silent", metadata: ["instances": "\(silent.count)"])
    }

    func remotePresence(origin: UUID, topic: String, joins: [RealtimeBus.RemotePresence], leaves: [String]) {
        deliverPresenceDiff(topic: topic, presences.applyRemote(origin: origin, topic: topic, joins: joins, leaves: leaves))
    }

    /// Everything this instance tracks, for an instance that asks after starting.
    func localPresences() -> [(topic: String, presence: RealtimeBus.RemotePresence)] {
        presences.local()
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
        for key in channels.keys(on: topic) where channels[key]?.isPrivate == message.isPrivate {
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
        let plan = DeliveryPlan(changes, channels: channels)
        let candidates = plan.candidates
        changesSeen += changes.count
        let (allowed, failed) = await authorizer.readable(plan.pairs, changes: changes)
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
