import HTTPTypes

/// The `Prefer` header's options PostgREST honours.
public struct Preferences: Sendable, Equatable {
    public enum Return: String, Sendable { case minimal, representation, headersOnly = "headers-only" }
    public enum Count: String, Sendable { case exact, planned, estimated }
    public enum Resolution: String, Sendable { case mergeDuplicates = "merge-duplicates", ignoreDuplicates = "ignore-duplicates" }

    public var returning: Return?
    public var count: Count?
    public var resolution: Resolution?
    public var missingDefault = false

    /// Unknown options are ignored, as PostgREST does unless `handling=strict`.
    public init(_ headers: HTTPFields) {
        for value in headers[values: .prefer] {
            for option in value.split(separator: ",") {
                let pair = option.split(separator: "=", maxSplits: 1).map { $0.trimmingCharacters(in: .whitespaces) }
                guard pair.count == 2 else { continue }
                switch pair[0] {
                case "return": returning = Return(rawValue: pair[1])
                case "count": count = Count(rawValue: pair[1])
                case "resolution": resolution = Resolution(rawValue: pair[1])
                case "missing": missingDefault = pair[1] == "default"
                default: continue
                }
            }
        }
    }

    /// What was applied, echoed in `Preference-Applied`.
    public var applied: String? {
        var parts: [String] = []
        if let returning { parts.append("return=\(returning.rawValue)") }
        if let count { parts.append("count=\(count.rawValue)") }
        if let resolution { parts.append("resolution=\(resolution.rawValue)") }
        if missingDefault { parts.append("missing=default") }
        return parts.isEmpty ? nil : parts.joined(separator: ", ")
    }
}

extension HTTPField.Name {
    static let prefer = Self("Prefer")!
    static let preferenceApplied = Self("Preference-Applied")!
    static let contentRange = Self("Content-Range")!
    static let range = Self("Range")!
    static let rangeUnit = Self("Range-Unit")!
    static let contentProfile = Self("Content-Profile")!
    static let acceptProfile = Self("Accept-Profile")!
}

import Foundation
