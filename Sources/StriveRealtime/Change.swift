import Foundation
import StriveCore

/// One committed row change, as read from `realtime.changes`.
public struct Change: Sendable {
    public enum Kind: String, Sendable {
        case insert = "INSERT"
        case update = "UPDATE"
        case delete = "DELETE"
    }

    public let position: Int64
    public let id: Int64
    public let schema: String
    public let table: String
    public let kind: Kind
    /// Row JSON as PostgreSQL wrote it (`to_jsonb`): spliced into payloads untouched.
    public let recordJSON: String?
    public let oldRecordJSON: String?
    public let commitTimestamp: Date

    /// A row of realtime.messages: a broadcast from the database, not a postgres_change.
    var isBroadcast: Bool { schema == "realtime" && table == "messages" }

    struct Broadcast {
        let topic: String
        let event: String
        let payload: JSONValue
        let isPrivate: Bool
    }

    /// The broadcast a realtime.messages row carries (nil for other rows, and for presence rows).
    var broadcast: Broadcast? {
        guard isBroadcast, let row = recordJSON.flatMap(JSONValue.init(jsonText:))?.objectValue,
            row["extension"]?.stringValue == "broadcast", let topic = row["topic"]?.stringValue
        else { return nil }
        return Broadcast(
            topic: topic, event: row["event"]?.stringValue ?? "", payload: row["payload"] ?? .null,
            isPrivate: row["private"] != .bool(false))
    }

    /// The row whose readability decides delivery: the new row, or for a DELETE the row before.
    var authorizedRecordJSON: String { (kind == .delete ? oldRecordJSON : recordJSON) ?? "{}" }

    /// The row filters are applied to (the old one for DELETE, as with Supabase).
    func filterRecord() -> [String: JSONValue] {
        JSONValue(jsonText: authorizedRecordJSON)?.objectValue ?? [:]
    }

    /// `data` of a `postgres_changes` payload, built once and shared by every channel it goes to.
    func dataJSON(columnsJSON: String) -> String {
        let timestamp = commitTimestamp.formatted(Date.ISO8601FormatStyle(includingFractionalSeconds: true))
        var text = "{\"columns\":\(columnsJSON),\"commit_timestamp\":\(PhoenixMessage.quote(timestamp)),\"errors\":null,"
        if kind != .insert { text += "\"old_record\":\(oldRecordJSON ?? "{}")," }
        text += "\"record\":\(kind == .delete ? "{}" : (recordJSON ?? "{}")),"
        text += "\"schema\":\(PhoenixMessage.quote(schema)),\"table\":\(PhoenixMessage.quote(table)),\"type\":\"\(kind.rawValue)\"}"
        return text
    }
}
