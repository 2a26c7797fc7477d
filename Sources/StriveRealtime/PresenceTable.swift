import Foundation
import StriveCore

/// One tracked presence: which channel tracked it (on this instance, or `origin`'s) and its metadata.
struct Presence: Sendable {
    let owner: ChannelKey
    /// nil: tracked on this instance.
    let origin: UUID?
    let key: String
    let meta: JSONValue
}

/// Presences per topic, by `phx_ref`, local and from other instances, and the diffs each change makes. A
/// value: the hub sends the diffs and publishes local changes on the bus.
struct PresenceTable: Sendable {
    private var byTopic: [String: [String: Presence]] = [:]

    /// A presence_diff's joins and leaves, `{key: {metas: [...]}}` each.
    struct Diff: Sendable {
        var joins: [String: JSONValue] = [:]
        var leaves: [String: JSONValue] = [:]
        var isEmpty: Bool { joins.isEmpty && leaves.isEmpty }
    }

    /// `{key: {metas: [...]}}`, the shape of presence_state and of presence_diff's joins/leaves.
    static func groups(_ presences: [Presence]) -> [String: JSONValue] {
        var groups: [String: [JSONValue]] = [:]
        for presence in presences { groups[presence.key, default: []].append(presence.meta) }
        return groups.mapValues { .object(["metas": .array($0)]) }
    }

    func state(of topic: String) -> JSONValue {
        .object(Self.groups(Array((byTopic[topic] ?? [:]).values)))
    }

    /// Removes what `channel` tracked on this instance; the refs removed and the diff.
    mutating func untrack(_ channel: ChannelKey) -> (refs: [String], presences: [Presence], diff: Diff) {
        let mine = (byTopic[channel.topic] ?? [:]).filter { $0.value.origin == nil && $0.value.owner == channel }
        for ref in mine.keys { byTopic[channel.topic]?[ref] = nil }
        return (Array(mine.keys), Array(mine.values), Diff(leaves: Self.groups(Array(mine.values))))
    }

    /// Replaces what `channel` tracked with one presence of `key` and `meta` (a fresh `phx_ref` added).
    mutating func track(_ channel: ChannelKey, key: String, meta: [String: JSONValue]) -> (left: [String], joined: Presence, diff: Diff) {
        let (left, leftPresences, _) = untrack(channel)
        var meta = meta
        let ref = UUID().uuidString.lowercased()
        meta["phx_ref"] = .string(ref)
        let presence = Presence(owner: channel, origin: nil, key: key, meta: .object(meta))
        byTopic[channel.topic, default: [:]][ref] = presence
        return (left, presence, Diff(joins: Self.groups([presence]), leaves: Self.groups(leftPresences)))
    }

    /// Another instance's joins and leaves on `topic`.
    mutating func applyRemote(origin: UUID, topic: String, joins: [RealtimeBus.RemotePresence], leaves: [String]) -> Diff {
        let left = leaves.compactMap { ref in byTopic[topic]?.removeValue(forKey: ref) }
        var joined: [Presence] = []
        for join in joins {
            guard let ref = join.meta.objectValue?["phx_ref"]?.stringValue else { continue }
            let presence = Presence(owner: ChannelKey(socket: origin, topic: topic), origin: origin, key: join.key, meta: join.meta)
            byTopic[topic, default: [:]][ref] = presence
            joined.append(presence)
        }
        return Diff(joins: Self.groups(joined), leaves: Self.groups(left))
    }

    /// Removes every presence of the `origins` instances; the diff per topic.
    mutating func forget(origins: Set<UUID>) -> [(topic: String, diff: Diff)] {
        var diffs: [(String, Diff)] = []
        for (topic, entries) in byTopic {
            let gone = entries.filter { $0.value.origin.map(origins.contains) ?? false }
            guard !gone.isEmpty else { continue }
            for ref in gone.keys { byTopic[topic]?[ref] = nil }
            diffs.append((topic, Diff(leaves: Self.groups(Array(gone.values)))))
        }
        return diffs
    }

    /// Everything tracked on this instance, for an instance that asks after starting.
    func local() -> [(topic: String, presence: RealtimeBus.RemotePresence)] {
        byTopic.flatMap { topic, entries in
            entries.values.filter { $0.origin == nil }.map { (topic, RealtimeBus.RemotePresence(key: $0.key, meta: $0.meta)) }
        }
    }
}
