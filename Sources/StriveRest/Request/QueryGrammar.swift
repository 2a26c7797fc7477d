import Foundation
import StriveCore

/// PostgREST's URL grammar, parsed into values before anything touches SQL. Pure: no I/O, no schema.

/// One step of a JSON path: `->key`, `->>key`, `->0`.
public struct JSONPathStep: Sendable, Equatable {
    /// `->>` reads the value as text; `->` keeps it JSON.
    public var asText: Bool
    public var key: String
    /// An array index (digits, optionally negative), written into SQL as a number.
    public var index: Int?

    /// A step whose key is an index when it is digits, optionally negative (`->0`, `->-1`).
    init(asText: Bool, key: String) {
        self.asText = asText
        self.key = key
        let isIndex = key != "-" && key.first.map { $0 == "-" || $0.isNumber } == true && key.dropFirst().allSatisfy(\.isNumber)
        self.index = isIndex ? Int(key) : nil
    }

    /// `info->city->>name` → ("info", [->city, ->>name]). Keys may be double-quoted.
    static func split(_ text: String) throws(RestError) -> (column: String, path: [JSONPathStep]) {
        guard let arrow = text.range(of: "->") else { return (text, []) }
        let column = String(text[..<arrow.lowerBound])
        var rest = Substring(text[arrow.lowerBound...])
        var steps: [JSONPathStep] = []
        while !rest.isEmpty {
            guard rest.hasPrefix("->") else { throw .parse("a JSON path is ->key or ->>key steps", details: text) }
            rest = rest.dropFirst(2)
            let asText = rest.hasPrefix(">")
            if asText { rest = rest.dropFirst() }
            let end = rest.range(of: "->")?.lowerBound ?? rest.endIndex
            let key = QueryGrammar.unquoted(String(rest[..<end]))
            guard !key.isEmpty else { throw .parse("a JSON path step names a key or an index", details: text) }
            steps.append(JSONPathStep(asText: asText, key: key))
            rest = rest[end...]
        }
        guard !column.isEmpty else { throw .parse("a JSON path starts with a column", details: text) }
        return (column, steps)
    }
}

public indirect enum SelectItem: Sendable, Equatable {
    case star
    /// `alias:column->path::cast`
    case column(name: String, alias: String?, cast: String?, path: [JSONPathStep] = [])
    /// `alias:relation!hint!inner(items)`, or `...relation(items)` to spread its columns into the parent.
    case embed(Embed)
    /// `count()`, `alias:column.sum()::cast`
    case aggregate(Aggregate)
}

/// An aggregate in `select`, PostgREST's `db-aggregates-enabled`: grouped by the other selected columns.
public struct Aggregate: Sendable, Equatable {
    public enum Function: String, Sendable, CaseIterable { case count, sum, avg, min, max }

    public var function: Function
    /// Nil for `count()`, which counts rows.
    public var column: String?
    public var path: [JSONPathStep] = []
    public var alias: String?
    /// `column::type.sum()`: the cast of the input.
    public var inputCast: String?
    /// `column.sum()::type`: the cast of the result.
    public var outputCast: String?

    /// The key it appears under: its alias, else the function's name, as PostgreSQL names it.
    public var name: String { alias ?? function.rawValue }
}

public struct Embed: Sendable, Equatable {
    public var alias: String?
    public var relation: String
    /// A foreign key's column or constraint name, or the other table's name, choosing among relationships.
    public var hint: String?
    public var inner: Bool
    public var items: [SelectItem]
    /// `...relation(items)`: the columns join the parent's instead of nesting under a key.
    public var spread = false

    /// The key the embedded value appears under, and the prefix of its filters (`alias.column=…`).
    public var name: String { alias ?? relation }
}

public enum FilterOperator: String, Sendable, CaseIterable {
    case eq, neq, gt, gte, lt, lte, like, ilike, match, imatch, `is`, `in`, cs, cd, ov, sl, sr, nxr, nxl, adj
    case fts, plfts, phfts, wfts, isdistinct
}

/// `eq(any).{a,b}`, `like(all).{A*,*n}`: the operand is an array literal, compared element by element.
public enum FilterQuantifier: String, Sendable {
    case any, all
}

public struct Filter: Sendable, Equatable {
    public var column: String
    public var negated: Bool
    public var op: FilterOperator
    /// The operand as text; for `in` the already-split list is in `list`.
    public var value: String
    public var list: [String]
    /// `fts(english)`
    public var language: String?
    public var quantifier: FilterQuantifier? = nil
    /// `column->key->>key`: the filter compares a value inside a JSON column.
    public var path: [JSONPathStep] = []

    /// The operators that take `(any)`/`(all)`, as PostgREST's.
    static let quantifiable: Set<FilterOperator> = [.eq, .neq, .gt, .gte, .lt, .lte, .like, .ilike, .match, .imatch]
}

public indirect enum Condition: Sendable, Equatable {
    case filter(Filter)
    case all([Condition], negated: Bool)
    case any([Condition], negated: Bool)
}

public struct OrderTerm: Sendable, Equatable {
    public var column: String
    public var path: [JSONPathStep] = []
    public var descending: Bool
    public var nullsFirst: Bool?
}

/// Everything the query string says about one level of the result: the top-level table or an embed.
public struct ResourceQuery: Sendable, Equatable {
    public var conditions: [Condition] = []
    public var order: [OrderTerm] = []
    public var limit: Int?
    public var offset: Int?
}

public struct ParsedQuery: Sendable, Equatable {
    public var select: [SelectItem] = [.star]
    /// Keyed by embed path ("" for the top level, "project", "project.customer" for nested embeds).
    public var resources: [String: ResourceQuery] = [:]
    public var onConflict: [String]?
    public var columns: [String]?
    /// Parameters that are not grammar: RPC arguments in a GET, say.
    public var plain: [(String, String)] = []

    public static func == (lhs: ParsedQuery, rhs: ParsedQuery) -> Bool {
        lhs.select == rhs.select && lhs.resources == rhs.resources && lhs.onConflict == rhs.onConflict && lhs.columns == rhs.columns
            && lhs.plain.map(\.0) == rhs.plain.map(\.0) && lhs.plain.map(\.1) == rhs.plain.map(\.1)
    }

    public var top: ResourceQuery { resources[""] ?? ResourceQuery() }
}

public enum QueryGrammar {
    /// Nesting allowed in `or=(…)` trees and `select=` embeds; deeper is refused, not recursed into.
    public static let maximumDepth = 12
    public static let maximumConditions = 500

    /// Splits a raw query string into decoded (key, value) pairs, keeping order and repeats; `+` is a
    /// space, as the Supabase clients encode it.
    public static func pairs(_ query: String) throws(RestError) -> [(String, String)] {
        do {
            return try QueryString(query).pairs.map { ($0.key, $0.value) }
        } catch {
            throw .parse("the query string is not valid percent-encoding", details: error.part)
        }
    }

    /// Parses every parameter. `reserved` names (RPC arguments) go to `plain` instead of being filters.
    public static func parse(_ pairs: [(String, String)], treatAsPlain: Set<String> = []) throws(RestError) -> ParsedQuery {
        var query = ParsedQuery()
        var conditionCount = 0
        func resource(_ path: String, _ update: (inout ResourceQuery) throws(RestError) -> Void) throws(RestError) {
            var current = query.resources[path] ?? ResourceQuery()
            try update(&current)
            query.resources[path] = current
        }
        for (key, value) in pairs {
            if treatAsPlain.contains(key) {
                query.plain.append((key, value))
                continue
            }
            switch key {
            case "select":
                query.select = try parseSelect(value)
                continue
            case "on_conflict":
                query.onConflict = try identifierList(value, what: "on_conflict")
                continue
            case "columns":
                query.columns = try identifierList(value, what: "columns")
                continue
            default: break
            }
            // `path.to.embed.name` → the embed path and the parameter name within it.
            let (path, name) = splitPath(key)
            switch name {
            case "order":
                try resource(path) { (r: inout ResourceQuery) throws(RestError) in r.order = try parseOrder(value) }
            case "limit":
                try resource(path) { (r: inout ResourceQuery) throws(RestError) in r.limit = try nonNegative(value, "limit") }
            case "offset":
                try resource(path) { (r: inout ResourceQuery) throws(RestError) in r.offset = try nonNegative(value, "offset") }
            case "or", "and", "not.or", "not.and":
                let negated = name.hasPrefix("not.")
                let conditions = try parseLogic(value, depth: 1, count: &conditionCount)
                let node: Condition = name.hasSuffix("or") ? .any(conditions, negated: negated) : .all(conditions, negated: negated)
                try resource(path) { (r: inout ResourceQuery) throws(RestError) in r.conditions.append(node) }
            default:
                let filter = try parseFilter(column: name, value, inTree: false)
                conditionCount += 1
                try resource(path) { (r: inout ResourceQuery) throws(RestError) in r.conditions.append(.filter(filter)) }
            }
            if conditionCount > maximumConditions { throw .parse("too many filters (at most \(maximumConditions))") }
        }
        return query
    }

    /// "project.customer.order" → ("project.customer", "order"); "not.or" and "status" stay whole.
    static func splitPath(_ key: String) -> (String, String) {
        for suffix in ["not.or", "not.and"] where key == suffix || key.hasSuffix("." + suffix) {
            return (String(key.dropLast(suffix.count).dropLast(key == suffix ? 0 : 1)), suffix)
        }
        guard let dot = key.lastIndex(of: ".") else { return ("", key) }
        return (String(key[..<dot]), String(key[key.index(after: dot)...]))
    }

    /// The largest `limit` or `offset` taken (PostgreSQL's int4; larger ones are surely mistakes).
    public static let maximumCount = Int(Int32.max)

    static func nonNegative(_ text: String, _ what: String) throws(RestError) -> Int {
        guard text.first?.isNumber == true, let value = Int(text), value >= 0, value <= maximumCount else {
            throw .parse("\(what) must be an integer between 0 and \(maximumCount)", details: String(text.prefix(40)))
        }
        return value
    }

    static func identifierList(_ text: String, what: String) throws(RestError) -> [String] {
        let names = text.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }
        guard !names.isEmpty, names.allSatisfy({ !$0.isEmpty }) else { throw .parse("\(what) must list column names") }
        return names.map { unquoted($0) }
    }

    // MARK: select

    public static func parseSelect(_ text: String) throws(RestError) -> [SelectItem] {
        var parser = Scanner(text)
        let items = try parser.selectList(depth: 1)
        guard parser.atEnd else { throw .parse("unexpected \"\(parser.rest.prefix(20))\" in select", details: text) }
        // An empty `select=` is more likely a client bug than a wish for `*`.
        guard !items.isEmpty else { throw .parse("select names no column: write select=* or select=col1,col2", details: text) }
        return items
    }

    // MARK: order

    public static func parseOrder(_ text: String) throws(RestError) -> [OrderTerm] {
        try splitTopLevel(text).map { (term: String) throws(RestError) -> OrderTerm in
            let parts = term.split(separator: ".").map(String.init)
            guard let column = parts.first, !column.isEmpty else { throw .parse("empty term in order", details: text) }
            let (name, path) = try JSONPathStep.split(unquoted(column))
            var result = OrderTerm(column: name, path: path, descending: false, nullsFirst: nil)
            for modifier in parts.dropFirst() {
                switch modifier {
                case "asc": result.descending = false
                case "desc": result.descending = true
                case "nullsfirst": result.nullsFirst = true
                case "nullslast": result.nullsFirst = false
                default: throw .parse("order modifiers are asc, desc, nullsfirst, nullslast; got \"\(modifier.prefix(30))\"", details: text)
                }
            }
            return result
        }
    }

    // MARK: filters

    /// `[not.]op[(language)].value` for `column`.
    ///
    /// Values are arbitrary text, so delimiters are found among Unicode scalars, not Characters: an ASCII
    /// `.` followed by a combining mark or an emoji modifier is one Character, and still the delimiter.
    public static func parseFilter(column: String, _ text: String, inTree: Bool) throws(RestError) -> Filter {
        guard !column.isEmpty else { throw .parse("a filter needs a column name", details: text) }
        var rest = Substring(text).unicodeScalars
        var negated = false
        if rest.starts(with: "not.".unicodeScalars) {
            negated = true
            rest = rest.dropFirst(4)
        }
        guard let dot = rest.firstIndex(of: ".") else {
            throw .parse("\"\(column)=\(text.prefix(40))\" is not a filter: write column=operator.value, e.g. \(column)=eq.1")
        }
        var opText = String(rest[..<dot])
        var value = String(rest[rest.index(after: dot)...])
        var modifier: String?
        if let open = opText.firstIndex(of: "("), opText.hasSuffix(")") {
            modifier = String(opText[opText.index(after: open)..<opText.index(before: opText.endIndex)])
            opText = String(opText[..<open])
        }
        guard let op = FilterOperator(rawValue: opText) else {
            throw .parse(
                "unknown operator \"\(opText.prefix(20))\"",
                details: "operators: " + FilterOperator.allCases.map(\.rawValue).joined(separator: ", "))
        }
        var language: String?
        var quantifier: FilterQuantifier?
        if let modifier {
            if Filter.quantifiable.contains(op) {
                guard let parsed = FilterQuantifier(rawValue: modifier) else {
                    throw .parse("\(op.rawValue) takes the modifiers (any) and (all), not (\(modifier.prefix(20)))", details: text)
                }
                let scalars = value.unicodeScalars
                guard scalars.first == "{", scalars.last == "}" else {
                    throw .parse("\(op.rawValue)(\(modifier)) compares with a list: write \(op.rawValue)(\(modifier)).{a,b}", details: text)
                }
                quantifier = parsed
            } else if [.fts, .plfts, .phfts, .wfts].contains(op) {
                guard !modifier.isEmpty, modifier.allSatisfy({ $0.isLetter || $0 == "_" }) else {
                    throw .parse("a text search language is letters only", details: text)
                }
                language = modifier
            } else {
                throw .parse(
                    "\(op.rawValue) takes no modifier: only text search operators take a language, eq to imatch (any)/(all)", details: text)
            }
        }
        var list: [String] = []
        if op == .in {
            let scalars = value.unicodeScalars
            guard scalars.first == "(", scalars.last == ")", scalars.count >= 2 else {
                throw .parse("in needs a parenthesised list: in.(a,b)", details: text)
            }
            let inner = String(scalars.dropFirst().dropLast())
            list = inner.isEmpty ? [] : try splitTopLevel(inner).map(unquoted)
        } else if inTree {
            value = unquoted(value)
        }
        if op == .is && !["null", "true", "false", "unknown", "not_null"].contains(value.lowercased()) {
            throw .parse("is takes null, true, false or unknown", details: text)
        }
        let (name, path) = try JSONPathStep.split(unquoted(column))
        return Filter(
            column: name, negated: negated, op: op, value: value, list: list, language: language, quantifier: quantifier, path: path)
    }

    /// The inside of `or=(…)`: comma-separated filters `col.op.value` and nested `and(…)`/`or(…)`.
    static func parseLogic(_ text: String, depth: Int, count: inout Int) throws(RestError) -> [Condition] {
        guard depth <= maximumDepth else { throw .parse("logic trees nest at most \(maximumDepth) levels deep") }
        let scalars = text.unicodeScalars
        guard scalars.first == "(", scalars.last == ")", scalars.count >= 2 else {
            throw .parse("a logic tree is a parenthesised list: or=(a.eq.1,b.eq.2)", details: String(text.prefix(80)))
        }
        let inner = String(scalars.dropFirst().dropLast())
        var result: [Condition] = []
        for item in try splitTopLevel(inner, braces: true) {
            count += 1
            guard count <= maximumConditions else { throw .parse("too many filters (at most \(maximumConditions))") }
            var body = Substring(item).unicodeScalars
            var negated = false
            let not = "not.".unicodeScalars
            let and = "and(".unicodeScalars
            let or = "or(".unicodeScalars
            if body.starts(with: not) && (body.dropFirst(4).starts(with: and) || body.dropFirst(4).starts(with: or)) {
                negated = true
                body = body.dropFirst(4)
            }
            if body.starts(with: and) || body.starts(with: or) {
                let isAnd = body.starts(with: and)
                let children = try parseLogic(String(body.dropFirst(isAnd ? 3 : 2)), depth: depth + 1, count: &count)
                result.append(isAnd ? .all(children, negated: negated) : .any(children, negated: negated))
                continue
            }
            // col.op.value, where col may be quoted.
            let column: String
            let remainder: Substring.UnicodeScalarView
            if body.first == "\"" {
                let afterQuote = body.dropFirst()
                guard let close = afterQuote.firstIndex(of: "\""), body[body.index(after: close)...].first == "." else {
                    throw .parse("unterminated quoted column in logic tree", details: item)
                }
                column = String(afterQuote[..<close])
                remainder = body[body.index(close, offsetBy: 2)...]
            } else {
                guard let dot = body.firstIndex(of: ".") else {
                    throw .parse("\"\(item.prefix(40))\" is not column.operator.value", details: item)
                }
                column = String(body[..<dot])
                remainder = body[body.index(after: dot)...]
            }
            result.append(.filter(try parseFilter(column: column, String(remainder), inTree: true)))
        }
        guard !result.isEmpty else { throw .parse("empty logic tree") }
        return result
    }

    /// Splits on commas outside double quotes and parentheses, by Unicode scalars, as `parseFilter`; in a
    /// logic tree (`braces`) also outside braces, which hold array literals such as `tags.cs.{a,b}`. (An
    /// `in.(…)` list or an `order` takes braces as plain characters.)
    static func splitTopLevel(_ text: String, braces tracksBraces: Bool = false) throws(RestError) -> [String] {
        var parts: [String] = []
        var current = String.UnicodeScalarView()
        var depth = 0
        var braces = 0
        var quoted = false
        var escaped = false
        for scalar in text.unicodeScalars {
            if escaped {
                current.append(scalar)
                escaped = false
                continue
            }
            switch scalar {
            case "\\" where quoted:
                current.append(scalar)
                escaped = true
            case "\"":
                quoted.toggle()
                current.append(scalar)
            case "(" where !quoted:
                depth += 1
                current.append(scalar)
            case ")" where !quoted:
                depth -= 1
                guard depth >= 0 else { throw .parse("unbalanced parentheses", details: String(text.prefix(80))) }
                current.append(scalar)
            case "{" where !quoted && tracksBraces:
                braces += 1
                current.append(scalar)
            case "}" where !quoted && tracksBraces:
                braces -= 1
                guard braces >= 0 else { throw .parse("unbalanced braces", details: String(text.prefix(80))) }
                current.append(scalar)
            case "," where !quoted && depth == 0 && braces == 0:
                parts.append(String(current))
                current = String.UnicodeScalarView()
            default:
                current.append(scalar)
            }
        }
        guard !quoted else { throw .parse("unterminated double quote", details: String(text.prefix(80))) }
        guard depth == 0 else { throw .parse("unbalanced parentheses", details: String(text.prefix(80))) }
        guard braces == 0 else { throw .parse("unbalanced braces", details: String(text.prefix(80))) }
        parts.append(String(current))
        return parts
    }

    /// `"a \"b\""` → `a "b"`; anything else unchanged.
    static func unquoted(_ text: String) -> String {
        let scalars = text.unicodeScalars
        guard scalars.count >= 2, scalars.first == "\"", scalars.last == "\"" else { return text }
        var result = String.UnicodeScalarView()
        var escaped = false
        for scalar in scalars.dropFirst().dropLast() {
            if escaped {
                result.append(scalar)
                escaped = false
            } else if scalar == "\\" {
                escaped = true
            } else {
                result.append(scalar)
            }
        }
        return String(result)
    }
}

/// A cursor over `select=` text.
struct Scanner {
    private let characters: [Character]
    private var index = 0

    init(_ text: String) { characters = Array(text) }

    var atEnd: Bool { index >= characters.count }
    var rest: String { String(characters[min(index, characters.count)...]) }

    private func peek() -> Character? { atEnd ? nil : characters[index] }

    /// Whether `->` starts here: a JSON path, not part of a name.
    private var startsArrow: Bool { peek() == "-" && index + 1 < characters.count && characters[index + 1] == ">" }

    /// `->key->>key…` after a column name.
    private mutating func jsonPath() throws(RestError) -> [JSONPathStep] {
        var steps: [JSONPathStep] = []
        while startsArrow {
            index += 2
            let asText = peek() == ">"
            if asText { index += 1 }
            var key = ""
            if peek() == "-" {
                key.append("-")
                index += 1
            }
            key += try name()
            steps.append(JSONPathStep(asText: asText, key: key))
        }
        return steps
    }

    private mutating func skipSpaces() {
        while let c = peek(), c.isWhitespace { index += 1 }
    }

    /// An identifier: letters, digits, `_`, `$`, or a double-quoted name.
    private mutating func name() throws(RestError) -> String {
        skipSpaces()
        if peek() == "\"" {
            index += 1
            var result = ""
            while let c = peek(), c != "\"" {
                result.append(c)
                index += 1
            }
            guard peek() == "\"" else { throw .parse("unterminated quoted name in select") }
            index += 1
            return result
        }
        var result = ""
        while let c = peek(), c.isLetter || c.isNumber || c == "_" || c == "$" || (c == "-" && !startsArrow) {
            result.append(c)
            index += 1
        }
        guard !result.isEmpty else {
            throw .parse("expected a column or relation name in select at \"\(rest.prefix(20))\"")
        }
        return result
    }

    mutating func selectList(depth: Int) throws(RestError) -> [SelectItem] {
        guard depth <= QueryGrammar.maximumDepth else { throw .parse("embeds nest at most \(QueryGrammar.maximumDepth) levels deep") }
        var items: [SelectItem] = []
        while true {
            skipSpaces()
            if atEnd || peek() == ")" { break }
            items.append(try item(depth: depth))
            skipSpaces()
            if peek() == "," {
                index += 1
                continue
            }
            break
        }
        return items
    }

    private mutating func item(depth: Int) throws(RestError) -> SelectItem {
        skipSpaces()
        if peek() == "*" {
            index += 1
            return .star
        }
        let spread = lookingAt("...")
        if spread { index += 3 }
        var first = try name()
        var alias: String?
        skipSpaces()
        if peek() == ":" && (index + 1 >= characters.count || characters[index + 1] != ":") {
            guard !spread else { throw .parse("a spread takes no alias: alias its columns instead, ...\(first)(alias:column)") }
            index += 1
            alias = first
            first = try name()
        }
        if first == "count" && lookingAt("()") {
            index += 2
            return .aggregate(Aggregate(function: .count, column: nil, alias: alias, outputCast: try cast()))
        }
        var hint: String?
        var inner = false
        while peek() == "!" {
            index += 1
            let modifier = try name()
            if modifier == "inner" {
                inner = true
            } else if modifier == "left" {
                inner = false
            } else {
                hint = modifier
            }
        }
        skipSpaces()
        if peek() == "(" {
            index += 1
            let items = try selectList(depth: depth + 1)
            skipSpaces()
            guard peek() == ")" else { throw .parse("missing ) after the embedded select of \(first)") }
            index += 1
            return .embed(Embed(alias: alias, relation: first, hint: hint, inner: inner, items: items, spread: spread))
        }
        guard !spread else { throw .parse("a spread needs an embedded select: ...\(first)(columns)") }
        guard hint == nil && !inner else { throw .parse("!\(hint ?? "inner") only applies to an embedded relation: \(first)!…(…)") }
        let path = try jsonPath()
        let cast = try cast()
        if peek() == ".", let function = Aggregate.Function.allCases.first(where: { lookingAt(".\($0.rawValue)()") }) {
            index += function.rawValue.count + 3
            return .aggregate(
                Aggregate(function: function, column: first, path: path, alias: alias, inputCast: cast, outputCast: try self.cast()))
        }
        return .column(name: first, alias: alias, cast: cast, path: path)
    }

    /// `::type`, if one follows.
    private mutating func cast() throws(RestError) -> String? {
        guard lookingAt("::") else { return nil }
        index += 2
        return try name()
    }

    private func lookingAt(_ text: String) -> Bool {
        let expected = Array(text)
        guard index + expected.count <= characters.count else { return false }
        return Array(characters[index..<(index + expected.count)]) == expected
    }
}
