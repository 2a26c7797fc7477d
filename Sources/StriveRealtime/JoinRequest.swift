import Foundation
import StriveCore

/// A `phx_join` as a typed value: the channel, its token, and its configuration (`postgres_changes`
/// bindings, presence key, broadcast options, private). Everything a join can get wrong without asking
/// the database is refused here.
struct JoinRequest: Sendable {
    struct BindingSpec: Sendable {
        let event: String
        let schema: String
        let table: String
        let filter: ChangeFilter?
        /// The binding as the client sent it: the join reply echoes it (plus an `id`), since clients compare
        /// the reply with what they sent and leave on any difference.
        let asSent: [String: JSONValue]
    }

    struct Refusal: Error, Sendable {
        let reason: String
    }

    let topic: String
    let subtopic: String
    let accessToken: String?
    let wantsPrivate: Bool
    let bindings: [BindingSpec]
    /// The client's presence key; nil: one is made up.
    let presenceKey: String?
    let broadcastSelf: Bool
    let broadcastAck: Bool

    init(_ message: PhoenixMessage) throws(Refusal) {
        guard message.topic.hasPrefix("realtime:"), message.topic.count > "realtime:".count else {
            throw Refusal(reason: "topics are named realtime:<channel>")
        }
        topic = message.topic
        subtopic = String(message.topic.dropFirst("realtime:".count))
        let payload = message.payload.objectValue ?? [:]
        let config = payload["config"]?.objectValue ?? [:]
        accessToken = payload["access_token"]?.stringValue
        wantsPrivate = config["private"] == .bool(true)
        var bindings: [BindingSpec] = []
        for entry in Self.array(config["postgres_changes"]) {
            let spec = entry.objectValue ?? [:]
            let event = spec["event"]?.stringValue ?? "*"
            guard ["*", "INSERT", "UPDATE", "DELETE"].contains(event) else {
                throw Refusal(reason: "postgres_changes event must be *, INSERT, UPDATE or DELETE")
            }
            let filterText = spec["filter"]?.stringValue.flatMap { $0.isEmpty ? nil : $0 }
            var filter: ChangeFilter?
            if let filterText {
                do {
                    filter = try ChangeFilter(filterText)
                } catch {
                    throw Refusal(reason: error.description)
                }
            }
            bindings.append(
                BindingSpec(
                    event: event, schema: spec["schema"]?.stringValue ?? "public", table: spec["table"]?.stringValue ?? "*", filter: filter,
                    asSent: spec))
        }
        self.bindings = bindings
        presenceKey = config["presence"]?.objectValue?["key"]?.stringValue.flatMap { $0.isEmpty ? nil : $0 }
        let broadcast = config["broadcast"]?.objectValue ?? [:]
        broadcastSelf = broadcast["self"] == .bool(true)
        broadcastAck = broadcast["ack"] == .bool(true)
    }

    /// Public channels are open to every socket; a channel asked to be private, or any `org:<id>:…`
    /// topic, is private (realtime.messages' policies decide who joins it).
    var isPrivate: Bool { wantsPrivate || subtopic.hasPrefix("org:") }

    /// The refusal for the first binding on a table `published` does not list, or nil.
    func unpublished(in published: Set<PublishedTable>) -> Refusal? {
        for binding in bindings
        where !published.contains(where: { $0.schema == binding.schema && (binding.table == "*" || $0.table == binding.table) }) {
            let names = published.map { "\($0.schema).\($0.table)" }.sorted().joined(separator: ", ")
            let name = "\(binding.schema).\(binding.table)"
            return Refusal(
                reason: "\(name) is not published for realtime (publish it with select realtime.publish('\(name)'); published: \(names))")
        }
        return nil
    }

    private static func array(_ value: JSONValue?) -> [JSONValue] {
        if case .array(let items) = value { return items }
        return []
    }
}

/// A table `realtime.publish` has published.
struct PublishedTable: Hashable, Sendable {
    let schema: String
    let table: String
}
