import Foundation
import HTTPTypes

/// The `Prefer` header's options PostgREST honours.
public struct Preferences: Sendable, Equatable {
    public enum Return: String, Sendable {
        case minimal, representation
        case headersOnly = "headers-only"
    }
    public enum Count: String, Sendable { case exact, planned, estimated }
    public enum Resolution: String, Sendable {
        case mergeDuplicates = "merge-duplicates"
        case ignoreDuplicates = "ignore-duplicates"
    }

    /// `tx=commit|rollback`, honoured only where the server's `db-tx-end` allows an override.
    public enum Transaction: String, Sendable { case commit, rollback }
    /// `nulls=stripped`: keys whose value is null are left out of the JSON rows.
    public var nullsStripped = false

    public var returning: Return?
    public var transaction: Transaction?
    public var count: Count?
    public var resolution: Resolution?
    public var missingDefault = false
    /// `handling=strict`: unknown or malformed preferences are refused instead of ignored.
    public var strict = false
    /// `max-affected=N`, honoured with `handling=strict`: a write changing more rows is rolled back.
    public var maxAffected: Int?
    /// Options this server does not understand, as sent.
    public var unrecognised: [String] = []

    /// Unknown options are ignored, as PostgREST does, unless `handling=strict` (see `validated()`).
    public init(_ headers: HTTPFields) {
        for value in headers[values: .prefer] {
            for option in value.split(separator: ",") {
                let text = option.trimmingCharacters(in: .whitespaces)
                if text.isEmpty { continue }
                let pair = text.split(separator: "=", maxSplits: 1).map { $0.trimmingCharacters(in: .whitespaces) }
                let known: Bool
                switch pair.count == 2 ? pair[0] : "" {
                case "return":
                    returning = Return(rawValue: pair[1])
                    known = returning != nil
                case "count":
                    count = Count(rawValue: pair[1])
                    known = count != nil
                case "resolution":
                    resolution = Resolution(rawValue: pair[1])
                    known = resolution != nil
                case "missing":
                    missingDefault = pair[1] == "default"
                    known = ["default", "null"].contains(pair[1])
                case "handling":
                    strict = pair[1] == "strict"
                    known = ["strict", "lenient"].contains(pair[1])
                case "max-affected":
                    maxAffected = Int(pair[1]).flatMap { $0 >= 0 ? $0 : nil }
                    known = maxAffected != nil
                case "tx":
                    transaction = Transaction(rawValue: pair[1])
                    known = transaction != nil
                case "nulls":
                    nullsStripped = pair[1] == "stripped"
                    known = pair[1] == "stripped"
                case "timezone": known = true
                default: known = false
                }
                if !known { unrecognised.append(text) }
            }
        }
    }

    /// These preferences, or PostgREST's PGRST122 when `handling=strict` meets one it cannot honour.
    public func validated() throws(RestError) -> Preferences {
        guard strict, !unrecognised.isEmpty else { return self }
        throw RestError(
            .badRequest, code: "PGRST122", message: "Invalid preferences given with handling=strict",
            details: "Invalid preferences: \(unrecognised.joined(separator: ", "))")
    }

    /// The row limit a write must respect: `max-affected` counts only under `handling=strict`.
    public var enforcedMaxAffected: Int? { strict ? maxAffected : nil }

    /// What was applied, echoed in `Preference-Applied`; `transaction` is the one the server applied
    /// (a `tx=` it did not honour is not claimed).
    public func applied(transaction applied: Transaction? = nil) -> String? {
        var parts: [String] = []
        if let returning { parts.append("return=\(returning.rawValue)") }
        if let count { parts.append("count=\(count.rawValue)") }
        if let resolution { parts.append("resolution=\(resolution.rawValue)") }
        if missingDefault { parts.append("missing=default") }
        if strict { parts.append("handling=strict") }
        if let maxAffected = enforcedMaxAffected { parts.append("max-affected=\(maxAffected)") }
        if nullsStripped { parts.append("nulls=stripped") }
        if let applied { parts.append("tx=\(applied.rawValue)") }
        return parts.isEmpty ? nil : parts.joined(separator: ", ")
    }
}

extension HTTPField.Name {
    static let allow = Self("Allow")!
    static let prefer = Self("Prefer")!
    static let preferenceApplied = Self("Preference-Applied")!
    static let contentRange = Self("Content-Range")!
    static let range = Self("Range")!
    static let rangeUnit = Self("Range-Unit")!
    public static let contentProfile = Self("Content-Profile")!
    public static let acceptProfile = Self("Accept-Profile")!
}
