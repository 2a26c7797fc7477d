import Foundation
import StriveCore

/// A `postgres_changes` filter as supabase-js sends it: `column=op.value`, with op one of eq, neq, lt,
/// lte, gt, gte, in (`in.(a,b,c)`). Comparisons are numeric when both sides are numbers, else textual.
public struct ChangeFilter: Sendable, Equatable {
    public enum Operator: String, Sendable, CaseIterable {
        case eq, neq, lt, lte, gt, gte, `in`
    }

    public let column: String
    public let op: Operator
    public let values: [String]

    public enum Problem: Error, Equatable, CustomStringConvertible {
        case malformed(String)

        public var description: String {
            switch self {
            case .malformed(let filter): "filter \"\(filter)\" is not column=op.value with op one of eq, neq, lt, lte, gt, gte, in"
            }
        }
    }

    public init(_ text: String) throws(Problem) {
        guard let equals = text.firstIndex(of: "="), let dot = text[equals...].firstIndex(of: ".") else { throw .malformed(text) }
        let column = String(text[..<equals])
        guard !column.isEmpty, column.allSatisfy({ $0.isLetter || $0.isNumber || $0 == "_" }),
            let op = Operator(rawValue: String(text[text.index(after: equals)..<dot]))
        else { throw .malformed(text) }
        let raw = String(text[text.index(after: dot)...])
        self.column = column
        self.op = op
        if op == .in {
            guard raw.hasPrefix("("), raw.hasSuffix(")") else { throw .malformed(text) }
            values = raw.dropFirst().dropLast().split(separator: ",").map { $0.trimmingCharacters(in: CharacterSet(charactersIn: " \"")) }
        } else {
            values = [raw]
        }
    }

    /// Whether `record` (a row as JSON) passes. A missing or null column never matches.
    public func matches(_ record: [String: JSONValue]) -> Bool {
        guard let field = record[column], let value = Self.text(field) else { return false }
        switch op {
        case .eq: return Self.compare(value, values[0]) == .orderedSame
        case .neq: return Self.compare(value, values[0]) != .orderedSame
        case .lt: return Self.compare(value, values[0]) == .orderedAscending
        case .lte: return Self.compare(value, values[0]) != .orderedDescending
        case .gt: return Self.compare(value, values[0]) == .orderedDescending
        case .gte: return Self.compare(value, values[0]) != .orderedAscending
        case .in: return values.contains { Self.compare(value, $0) == .orderedSame }
        }
    }

    static func text(_ value: JSONValue) -> String? {
        switch value {
        case .string(let text): text
        case .number(let number): number.rounded() == number && abs(number) < 9e15 ? String(Int64(number)) : String(number)
        case .bool(let flag): String(flag)
        default: nil
        }
    }

    static func compare(_ left: String, _ right: String) -> ComparisonResult {
        if let a = Double(left), let b = Double(right) {
            return a < b ? .orderedAscending : (a > b ? .orderedDescending : .orderedSame)
        }
        // uuids arrive in lower case from PostgreSQL; filters may not.
        let a = left.lowercased()
        let b = right.lowercased()
        return a < b ? .orderedAscending : (a > b ? .orderedDescending : .orderedSame)
    }
}
