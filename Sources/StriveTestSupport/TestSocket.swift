import StriveCore
import StriveRealtime

/// The tests' realtime client is the one `strive check` and `strive bench` use.
public typealias TestSocket = PhoenixClient

public func changesConfig(_ bindings: [(event: String, table: String, filter: String?)]) -> JSONValue {
    .object([
        "broadcast": ["self": false, "ack": false],
        "presence": ["key": ""],
        "postgres_changes": .array(
            bindings.map { binding in
                var object: [String: JSONValue] = ["event": .string(binding.event), "schema": "public", "table": .string(binding.table)]
                if let filter = binding.filter { object["filter"] = .string(filter) }
                return .object(object)
            }),
    ])
}
