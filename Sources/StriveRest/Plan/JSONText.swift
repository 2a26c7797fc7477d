import Foundation
import StriveCore

/// Any JSON value kept as its compact text, so values reach PostgreSQL exactly as the client wrote them.
struct JSONText: Decodable, Sendable {
    let text: String
    let kind: Kind
    /// For an array, its elements' kinds.
    let elementKinds: [Kind]
    /// For a string, its value.
    private(set) var string: String? = nil

    enum Kind: String, Sendable {
        case null, boolean, number, string, array, object
    }

    /// Numbers keep the digits the client sent where a Double would round them: bigint values beyond
    /// 2^53 and numeric values with many digits reach PostgreSQL exactly. (Numbers nested inside a json
    /// value still pass through a Double.)
    init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        if !container.decodeNil(), (try? container.decode(Bool.self)) == nil {
            if let integer = try? container.decode(Int64.self) {
                (text, kind, elementKinds) = (String(integer), .number, [])
                return
            }
            if let decimal = try? container.decode(Decimal.self), decimal.isFinite {
                (text, kind, elementKinds) = (decimal.description, .number, [])
                return
            }
        }
        let value = try JSONValue(from: decoder)
        text = value.jsonText
        kind = Self.kind(of: value)
        if case .string(let value) = value { string = value }
        if case .array(let elements) = value { elementKinds = elements.map(Self.kind) } else { elementKinds = [] }
    }

    /// A CSV field: text, or NULL for an empty unquoted field.
    init(csvField: String?) {
        if let csvField {
            (text, kind, elementKinds, string) = (JSONValue.string(csvField).jsonText, .string, [], csvField)
        } else {
            (text, kind, elementKinds) = ("null", .null, [])
        }
    }

    static func kind(of value: JSONValue) -> Kind {
        switch value {
        case .null: .null
        case .bool: .boolean
        case .number: .number
        case .string: .string
        case .array: .array
        case .object: .object
        }
    }

    static func quoted(_ key: String) -> String {
        JSONValue.string(key).jsonText
    }
}
