import Foundation
import StriveCore

/// One frame of the Phoenix V1 JSON protocol Supabase Realtime speaks: `{topic, event, payload, ref}`
/// (plus `join_ref`, which supabase-js sends and expects back on replies).
public struct PhoenixMessage: Sendable, Equatable {
    public var topic: String
    public var event: String
    public var payload: JSONValue
    public var ref: String?
    public var joinRef: String?

    public init(topic: String, event: String, payload: JSONValue, ref: String? = nil, joinRef: String? = nil) {
        self.topic = topic
        self.event = event
        self.payload = payload
        self.ref = ref
        self.joinRef = joinRef
    }

    public enum DecodingProblem: Error, Equatable, CustomStringConvertible {
        case notJSON
        case missing(String)

        public var description: String {
            switch self {
            case .notJSON: "the message is not a JSON object"
            case .missing(let field): "the message has no \(field)"
            }
        }
    }

    /// Parses a text frame. `ref` may be a string or a number (clients differ); both become strings.
    public init(text: String) throws(DecodingProblem) {
        guard let value = JSONValue(jsonText: text), let object = value.objectValue else { throw .notJSON }
        guard let topic = object["topic"]?.stringValue else { throw .missing("topic") }
        guard let event = object["event"]?.stringValue else { throw .missing("event") }
        self.topic = topic
        self.event = event
        self.payload = object["payload"] ?? .object([:])
        self.ref = Self.reference(object["ref"])
        self.joinRef = Self.reference(object["join_ref"])
    }

    static func reference(_ value: JSONValue?) -> String? {
        switch value {
        case .string(let text): text
        case .number(let number): String(Int64(number))
        default: nil
        }
    }

    /// The frame's text; server pushes carry `"ref": null`.
    public var text: String {
        Self.frame(topic: topic, event: event, payloadJSON: payload.jsonText, ref: ref, joinRef: joinRef)
    }

    /// Assembles a frame around payload JSON that is already text (change payloads are built once per
    /// change and shared by every channel they go to).
    static func frame(topic: String, event: String, payloadJSON: String, ref: String? = nil, joinRef: String? = nil) -> String {
        var text = "{\"event\":\(quote(event)),"
        if let joinRef { text += "\"join_ref\":\(quote(joinRef))," }
        text += "\"payload\":\(payloadJSON),\"ref\":\(ref.map(quote) ?? "null"),\"topic\":\(quote(topic))}"
        return text
    }

    /// A JSON string literal. Hand-written because it runs for every frame of every delivery, where a
    /// JSONEncoder per call cost more than everything else in the fan-out.
    static func quote(_ string: String) -> String {
        var result = "\""
        result.reserveCapacity(string.utf8.count + 2)
        for scalar in string.unicodeScalars {
            switch scalar {
            case "\"": result += "\\\""
            case "\\": result += "\\\\"
            case "\n": result += "\\n"
            case "\r": result += "\\r"
            case "\t": result += "\\t"
            case _ where scalar.value < 0x20:
                result += "\\u00" + String(scalar.value >> 4, radix: 16) + String(scalar.value & 0xF, radix: 16)
            default: result.unicodeScalars.append(scalar)
            }
        }
        return result + "\""
    }

    static func reply(to message: PhoenixMessage, status: String, response: JSONValue) -> PhoenixMessage {
        PhoenixMessage(
            topic: message.topic, event: "phx_reply", payload: .object(["status": .string(status), "response": response]),
            ref: message.ref, joinRef: message.joinRef)
    }

    static func errorReply(to message: PhoenixMessage, _ reason: String) -> PhoenixMessage {
        reply(to: message, status: "error", response: .object(["reason": .string(reason)]))
    }

    /// A `system` push: how Supabase Realtime tells a channel about its subscription or its end.
    static func system(topic: String, status: String, extension kind: String, message: String, channel: String) -> PhoenixMessage {
        PhoenixMessage(
            topic: topic, event: "system",
            payload: .object([
                "status": .string(status), "extension": .string(kind), "message": .string(message), "channel": .string(channel),
            ]))
    }
}
