import Foundation

/// What a data API answer can be, chosen from the request's `Accept` as PostgREST chooses: the first
/// acceptable type the server can produce, by the client's q-values; nothing producible is PGRST107.
public enum OutputMedia: Sendable, Equatable {
    /// `application/json`: an array of rows; `nullsStripped` drops keys whose value is null
    /// (`application/vnd.pgrst.array+json;nulls=stripped`).
    case json(nullsStripped: Bool)
    /// `application/vnd.pgrst.object+json`: exactly one row, as an object.
    case object(nullsStripped: Bool)
    /// `text/csv`: a header row and one line per row, RFC 4180 quoting, NULL as an empty field.
    case csv
    /// `application/vnd.pgrst.plan(+json|+text)`: the statement's execution plan instead of its rows.
    case plan(PlanRequest)

    public var contentType: String {
        switch self {
        case .json: "application/json; charset=utf-8"
        case .object: "application/vnd.pgrst.object+json; charset=utf-8"
        case .csv: "text/csv; charset=utf-8"
        case .plan(let plan):
            plan.format == .json
                ? "application/vnd.pgrst.plan+json; for=\"\(plan.target)\"; charset=utf-8"
                : "application/vnd.pgrst.plan+text; for=\"\(plan.target)\"; charset=utf-8"
        }
    }

    public var isSingleObject: Bool {
        if case .object = self { return true }
        return false
    }

    var nullsStripped: Bool {
        switch self {
        case .json(let stripped), .object(let stripped): stripped
        default: false
        }
    }
}

/// `EXPLAIN` as the client asked for it: the output format, the media type whose statement is explained
/// (`for=`), and the options (`options=analyze|verbose|settings|buffers|wal`).
public struct PlanRequest: Sendable, Equatable {
    public enum Format: Sendable { case json, text }
    public enum Option: String, Sendable, CaseIterable { case analyze, verbose, settings, buffers, wal }

    public var format: Format
    public var target: String
    public var options: Set<Option>
}

/// One media range of an `Accept` header: `type/subtype` with its parameters.
struct MediaRange: Equatable {
    var type: String
    var parameters: [String: String]
    var quality: Double

    /// `Accept`'s ranges, best first (stable for equal q-values, as clients list them in preference order).
    static func parse(accept: String) -> [MediaRange] {
        var ranges: [MediaRange] = []
        for part in splitOutsideQuotes(accept, on: ",") {
            let pieces = splitOutsideQuotes(part, on: ";").map { $0.trimmingCharacters(in: .whitespaces) }
            guard let type = pieces.first?.lowercased(), !type.isEmpty else { continue }
            var parameters: [String: String] = [:]
            var quality = 1.0
            for piece in pieces.dropFirst() {
                let pair = piece.split(separator: "=", maxSplits: 1).map { $0.trimmingCharacters(in: .whitespaces) }
                guard pair.count == 2 else { continue }
                let value =
                    pair[1].hasPrefix("\"") && pair[1].hasSuffix("\"") && pair[1].count >= 2
                    ? String(pair[1].dropFirst().dropLast()) : pair[1]
                if pair[0].lowercased() == "q" {
                    quality = Double(value) ?? 1
                } else {
                    parameters[pair[0].lowercased()] = value
                }
            }
            ranges.append(MediaRange(type: type, parameters: parameters, quality: quality))
        }
        return ranges.enumerated().sorted { ($0.element.quality, -$0.offset) > ($1.element.quality, -$1.offset) }.map(\.element)
            .filter { $0.quality > 0 }
    }

    private static func splitOutsideQuotes(_ text: String, on separator: Character) -> [String] {
        var parts: [String] = []
        var current = ""
        var quoted = false
        for character in text {
            if character == "\"" { quoted.toggle() }
            if character == separator && !quoted {
                parts.append(current)
                current = ""
            } else {
                current.append(character)
            }
        }
        parts.append(current)
        return parts
    }
}

extension OutputMedia {
    /// The answer's media type for `accept`. `planEnabled` is PostgREST's db-plan-enabled: off, the plan
    /// types are simply not producible.
    static func negotiate(accept: String?, planEnabled: Bool) throws(RestError) -> OutputMedia {
        guard let accept, !accept.trimmingCharacters(in: .whitespaces).isEmpty else { return .json(nullsStripped: false) }
        let ranges = MediaRange.parse(accept: accept)
        for range in ranges {
            let stripped = range.parameters["nulls"] == "stripped"
            switch range.type {
            case "application/json", "application/*", "*/*", "application/vnd.pgrst.array+json", "application/vnd.pgrst.array":
                return .json(nullsStripped: stripped)
            case "application/vnd.pgrst.object+json", "application/vnd.pgrst.object":
                return .object(nullsStripped: stripped)
            case "text/csv", "text/*":
                return .csv
            case "application/vnd.pgrst.plan", "application/vnd.pgrst.plan+text", "application/vnd.pgrst.plan+json":
                guard planEnabled else { continue }
                return .plan(try PlanRequest(range))
            default:
                continue
            }
        }
        throw RestError(
            .notAcceptable, code: "PGRST107",
            message: "None of these media types are available: \(ranges.map(\.type).joined(separator: ", "))")
    }
}

extension PlanRequest {
    init(_ range: MediaRange) throws(RestError) {
        format = range.type.hasSuffix("+json") ? .json : .text
        target = range.parameters["for"] ?? "application/json"
        guard ["application/json", "application/vnd.pgrst.object+json", "text/csv"].contains(target) else {
            throw RestError(.notAcceptable, code: "PGRST107", message: "None of these media types are available: \(target)")
        }
        var options: Set<Option> = []
        for name in (range.parameters["options"] ?? "").split(separator: "|") where !name.isEmpty {
            guard let option = Option(rawValue: String(name)) else {
                throw RestError.parse("unknown plan option \"\(name.prefix(20))\"; options are analyze, verbose, settings, buffers, wal")
            }
            options.insert(option)
        }
        self.options = options
    }

    /// `EXPLAIN`'s option list for this request.
    var explainOptions: String {
        var parts = ["format \(format == .json ? "json" : "text")"]
        for option in Option.allCases where options.contains(option) { parts.append(option.rawValue) }
        return parts.joined(separator: ", ")
    }
}
