import Foundation
import StriveCore

/// JSON Schemas of the data API's columns: the values PostgreSQL will take for each type, with the
/// column's own CHECK constraints (length, range, pattern, list) where they can be said in JSON Schema.
enum ColumnSchema {
    /// A string PostgreSQL's text types accept: anything but NUL.
    static let textPattern = "^[^\\u0000]*$"

    static func make(_ column: SchemaCache.Column) -> [String: JSONValue] {
        var schema = base(type: column.type, isArray: column.isArray, isJSON: column.isJSON, labels: column.enumLabels)
        for check in column.checks { CheckTranslation.apply(check, column: column.name, to: &schema) }
        if column.isJSON && !column.nullable {
            // JSON null is SQL NULL.
            return ["allOf": [.object(schema), ["not": ["type": "null"]]]]
        }
        if column.nullable { allowNull(&schema) }
        return schema
    }

    /// Adds JSON null to what `schema` takes (to its list, or to its type).
    static func allowNull(_ schema: inout [String: JSONValue]) {
        if case .array(var labels)? = schema["enum"] {
            labels.append(.null)
            schema["enum"] = .array(labels)
        } else if case .string(let type)? = schema["type"] {
            schema["type"] = .array([.string(type), "null"])
        }
    }

    static func base(type: String, isArray: Bool, isJSON: Bool, labels: [String] = [], nullItems: Bool = true) -> [String: JSONValue] {
        if isJSON { return ["$ref": "#/components/schemas/JSONValue"] }
        // (nullable or not, see `make`)
        if !labels.isEmpty { return ["enum": .array(labels.map(JSONValue.string))] }
        if isArray {
            // PostgreSQL arrays may hold NULLs.
            var items = base(type: String(type.dropLast(2)), isArray: false, isJSON: false)
            if nullItems { allowNull(&items) }
            return ["type": "array", "items": .object(items)]
        }
        if let temporal = TemporalText.pattern(for: type) {
            // The format is PostgreSQL's type name, as PostgREST declares it: the pattern is the contract
            // (it takes `infinity` and a date alone, which JSON Schema's date-time does not).
            return ["type": "string", "format": .string(type), "pattern": .string("^\(temporal)$")]
        }
        switch type {
        case "smallint": return ["type": "integer", "minimum": -32768, "maximum": 32767]
        case "integer": return ["type": "integer", "format": "int32", "minimum": -2_147_483_648, "maximum": 2_147_483_647]
        // OpenAPI's int64 format states the range (a bound of 2^63 - 1 has no exact JSON number).
        case "bigint": return ["type": "integer", "format": "int64"]
        case "real": return realSchema
        case "double precision": return ["type": "number"]
        case "boolean": return ["type": "boolean"]
        case "uuid": return ["type": "string", "format": "uuid", "pattern": .string("^\(FilterParameter.uuid)$")]
        default:
            if let (digits, scale) = numericShape(type) {
                // What still fits once PostgreSQL rounds to the scale (half away from zero): below 999.995
                // for numeric(5,2).
                let bound = Double(pow10(digits)) - 0.5 / Double(pow10(scale))
                return ["type": "number", "exclusiveMinimum": .number(-bound), "exclusiveMaximum": .number(bound)]
            }
            if type == "inet" || type == "cidr" {
                return ["type": "string", "format": "ipv4", "pattern": .string("^\(FilterParameter.ipv4)$")]
            }
            if type == "numeric" { return ["type": "number"] }
            var schema: [String: JSONValue] = ["type": "string", "pattern": .string(textPattern)]
            if let length = declaredLength(type) { schema["maxLength"] = .number(Double(length)) }
            return schema
        }
    }

    /// A `real` (float4): 0, or a magnitude that neither underflows to 0 nor overflows when PostgreSQL
    /// rounds it to single precision. The bounds sit at the rounding midpoints (half the smallest
    /// subnormal; halfway from the largest finite value to 2^128) — the upper one a double further out,
    /// because a client writes that midpoint's double as "3.4028235677973366e38", a decimal just below
    /// the midpoint that PostgreSQL still takes.
    static let realSchema: [String: JSONValue] = [
        "type": "number",
        "anyOf": [
            ["const": 0],
            ["exclusiveMinimum": .number(0x1p-150), "exclusiveMaximum": .number(0x1.ffffff0000001p127)],
            ["exclusiveMinimum": .number(-0x1.ffffff0000001p127), "exclusiveMaximum": .number(-0x1p-150)],
        ],
    ]

    /// `numeric(10,2)` → (8, 2): the digits left of the point, and the scale.
    static func numericShape(_ type: String) -> (digits: Int, scale: Int)? {
        guard type.hasPrefix("numeric("), type.hasSuffix(")") else { return nil }
        let parts = type.dropFirst(8).dropLast().split(separator: ",").compactMap { Int($0.trimmingCharacters(in: .whitespaces)) }
        guard let precision = parts.first else { return nil }
        let scale = parts.count > 1 ? parts[1] : 0
        return (precision - scale, scale)
    }

    static func integerDigits(ofNumeric type: String) -> Int? { numericShape(type)?.digits }

    /// `character varying(40)` → 40.
    static func declaredLength(_ type: String) -> Int? {
        guard type.hasPrefix("character"), let open = type.firstIndex(of: "("), let close = type.lastIndex(of: ")") else { return nil }
        return Int(type[type.index(after: open)..<close])
    }

    static func pow10(_ digits: Int) -> Int {
        (0..<max(0, min(digits, 15))).reduce(1) { result, _ in result * 10 }
    }

    /// Any JSON a `json`/`jsonb` column stores: PostgreSQL refuses NUL in its strings.
    static let jsonValue: JSONValue = .object([
        "anyOf": .array([
            .object(["type": .array(["number", "boolean", "null"])]),
            .object(["type": "string", "pattern": .string(textPattern)]),
            .object(["type": "array", "items": .object(["$ref": "#/components/schemas/JSONValue"])]),
            .object([
                "type": "object", "additionalProperties": .object(["$ref": "#/components/schemas/JSONValue"]),
                "propertyNames": .object(["pattern": .string(textPattern)]),
            ]),
        ])
    ])
}

/// CHECK constraints on one column, as `pg_get_constraintdef` prints them, turned into JSON Schema
/// keywords. Only shapes known to mean exactly one bound are translated; others are left out.
enum CheckTranslation {
    static func apply(_ definition: String, column: String, to schema: inout [String: JSONValue]) {
        guard definition.hasPrefix("CHECK ("), definition.hasSuffix(")") else { return }
        let body = strip(String(definition.dropFirst(7).dropLast()))
        for term in body.components(separatedBy: " AND ") { translate(strip(term), column: column, into: &schema) }
    }

    private static func translate(_ term: String, column: String, into schema: inout [String: JSONValue]) {
        let quoted = column.contains(where: { !($0.isLowercase || $0.isNumber || $0 == "_") }) ? "\"\(column)\"" : column
        let comparisons: [(String, String, String?)] = [
            (" >= ", "minimum", "minLength"), (" <= ", "maximum", "maxLength"), (" > ", "exclusiveMinimum", nil),
            (" < ", "exclusiveMaximum", nil),
        ]
        for (operatorText, numberKey, lengthKey) in comparisons {
            guard let range = term.range(of: operatorText) else { continue }
            let left = strip(String(term[..<range.lowerBound]))
            guard let bound = number(strip(String(term[range.upperBound...]))) else { return }
            if left == quoted, schema["type"].map(isNumeric) == true {
                schema[numberKey] = .number(bound)
            } else if let lengthKey, left == "char_length(\(quoted))" || left == "char_length(btrim(\(quoted)))" {
                schema[lengthKey] = .number(bound)
                if lengthKey == "minLength", left.contains("btrim"), bound >= 1 {
                    // btrim removes spaces: at least one other character must remain.
                    schema["pattern"] = "^[^\\u0000]*[^\\u0000 ][^\\u0000]*$"
                }
            }
            return
        }
        if term.hasPrefix("\(quoted) = '"), let end = term.range(of: "'::", options: .backwards) {
            let start = term.index(term.startIndex, offsetBy: quoted.count + 4)
            schema = ["enum": [.string(term[start..<end.lowerBound].replacingOccurrences(of: "''", with: "'"))]]
        } else if term.hasPrefix("\(quoted) ~ '"), let end = term.range(of: "'::text", options: .backwards) {
            let start = term.index(term.startIndex, offsetBy: quoted.count + 4)
            schema["pattern"] = .string(term[start..<end.lowerBound].replacingOccurrences(of: "''", with: "'"))
        } else if term.hasPrefix("\(quoted) = ANY (ARRAY["), term.hasSuffix("])") {
            let list = term.dropFirst(quoted.count + 14).dropLast(2)
            let labels = list.components(separatedBy: ", ").compactMap { item -> JSONValue? in
                guard item.hasPrefix("'"), let end = item.range(of: "'::", options: .backwards) else { return nil }
                return .string(String(item[item.index(after: item.startIndex)..<end.lowerBound]).replacingOccurrences(of: "''", with: "'"))
            }
            if !labels.isEmpty {
                schema = ["enum": .array(labels)]
            }
        }
    }

    private static func isNumeric(_ type: JSONValue) -> Bool {
        type == "integer" || type == "number"
    }

    /// `(0)::numeric` → 0, `100` → 100.
    private static func number(_ text: String) -> Double? {
        var value = text
        if let cast = value.range(of: ")::") { value = String(value[..<cast.lowerBound]) }
        return Double(value.trimmingCharacters(in: CharacterSet(charactersIn: "() ")))
    }

    /// Drops the parentheses PostgreSQL wraps around a whole expression.
    private static func strip(_ text: String) -> String {
        var text = text.trimmingCharacters(in: .whitespaces)
        while text.hasPrefix("("), text.hasSuffix(")"), balanced(text.dropFirst().dropLast()) {
            text = String(text.dropFirst().dropLast())
        }
        return text
    }

    private static func balanced(_ text: Substring) -> Bool {
        var depth = 0
        for character in text {
            if character == "(" { depth += 1 }
            if character == ")" { depth -= 1 }
            if depth < 0 { return false }
        }
        return depth == 0
    }
}

/// A filter query parameter as the grammar has it: `[not.]operator.value`, with values of the
/// column's type, so every string the schema allows is a filter the server answers.
enum FilterParameter {
    static let uuid = OpenAPI.uuidPattern
    static let ipv4 = "((25[0-5]|2[0-4][0-9]|1[0-9]{2}|[1-9]?[0-9])\\.){3}(25[0-5]|2[0-4][0-9]|1[0-9]{2}|[1-9]?[0-9])"

    static func make(_ column: SchemaCache.Column, required: Bool) -> JSONValue {
        OpenAPI.parameter(
            column.name, "Filter on \(column.name) (\(column.type)): [not.]operator.value, e.g. eq.<value>, in.(<a>,<b>), is.null",
            required: required,
            schema: .object(["type": "string", "pattern": .string("^(not\\.)?(\(alternatives(column).joined(separator: "|")))$")]))
    }

    static func alternatives(_ column: SchemaCache.Column) -> [String] {
        if column.type == "boolean" { return ["is\\.(null|not_null|true|false)", "(eq|neq)\\.(true|false)"] }
        var result = ["is\\.(null|not_null)"]
        if column.category == "S" && column.enumLabels.isEmpty {
            // Text: any characters but NUL; a list value is one without the list's punctuation.
            result.append("(eq|neq|gt|gte|lt|lte|like|ilike)\\.[^\\u0000]*")
            result.append("in\\.\\(([^\\u0000,()\"]+)(,[^\\u0000,()\"]+){0,3}\\)")
            return result
        }
        guard let value = value(column) else { return result }
        let ordered = column.enumLabels.isEmpty
        result.append("(eq|neq\(ordered ? "|gt|gte|lt|lte" : ""))\\.\(value)")
        result.append("in\\.\\(\(value)(,\(value)){0,3}\\)")
        return result
    }

    /// A regular expression for the values of `column` the server takes in a filter, or nil when it
    /// declares none (JSON, arrays, types without a literal form here).
    static func value(_ column: SchemaCache.Column) -> String? {
        if column.isArray || column.isJSON { return nil }
        if !column.enumLabels.isEmpty { return "(" + column.enumLabels.map(escaped).joined(separator: "|") + ")" }
        if let temporal = TemporalText.pattern(for: column.type) { return temporal }
        switch column.type {
        case "uuid": return uuid
        case "smallint", "integer", "bigint": return "-?[0-9]{1,4}"
        case "real", "double precision": return "-?[0-9]{1,4}(\\.[0-9]{1,2})?"
        case "boolean": return "(true|false)"
        case "inet", "cidr": return ipv4
        default:
            if let digits = ColumnSchema.integerDigits(ofNumeric: column.type) ?? (column.type == "numeric" ? 4 : nil) {
                return digits > 0 ? "-?[0-9]{1,\(min(digits, 4))}(\\.[0-9]{1,2})?" : "0(\\.[0-9]{1,2})?"
            }
            return column.category == "S" ? "[^\\u0000]*" : nil
        }
    }

    /// Types whose values have an order PostgreSQL can sort by.
    static func isOrderable(_ column: SchemaCache.Column) -> Bool {
        !column.isArray && !column.isJSON && (["N", "S", "D", "B", "E"].contains(column.category) || column.type == "uuid")
    }

    /// `label` as a regular expression matching exactly itself.
    static func escaped(_ label: String) -> String {
        var result = ""
        for character in label {
            if "\\^$.|?*+()[]{}".contains(character) { result.append("\\") }
            result.append(character)
        }
        return result
    }
}

/// The row schemas of a table: as read (no column required: `select` chooses them), as inserted
/// (what has no default is required) and as patched (at least one column).
enum RowSchema {
    static func read(_ table: SchemaCache.Table) -> JSONValue {
        var properties: [String: JSONValue] = [:]
        for column in table.columns {
            var property = ColumnSchema.base(type: column.type, isArray: column.isArray, isJSON: column.isJSON, labels: column.enumLabels)
            // Read values are whatever is stored: the write bounds do not describe them, their types do.
            for bound in ["pattern", "minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum", "maxLength", "format"] {
                property[bound] = nil
            }
            if case .object(var items)? = property["items"] {
                for bound in ["pattern", "minimum", "maximum", "maxLength", "format"] { items[bound] = nil }
                property["items"] = .object(items)
            }
            if column.nullable { ColumnSchema.allowNull(&property) }
            property["description"] = .string(column.type + (table.primaryKey.contains(column.name) ? ", primary key" : ""))
            properties[column.name] = .object(property)
        }
        return .object(["type": "object", "properties": .object(properties)])
    }

    static func insert(_ table: SchemaCache.Table) -> JSONValue {
        var schema = writable(table)
        // A default that reads the caller (`auth.uid()`) is NULL for the service role: such a column is
        // required where NULL is not allowed.
        let required = table.columns.filter { column in
            !column.nullable && (!column.hasDefault || column.defaultExpression?.contains("auth.") == true)
        }
        schema["required"] = .array(required.map { .string($0.name) })
        return .object(schema)
    }

    static func update(_ table: SchemaCache.Table) -> JSONValue {
        var schema = writable(table)
        schema["minProperties"] = 1
        return .object(schema)
    }

    private static func writable(_ table: SchemaCache.Table) -> [String: JSONValue] {
        var properties: [String: JSONValue] = [:]
        for column in table.columns { properties[column.name] = .object(ColumnSchema.make(column)) }
        return ["type": "object", "properties": .object(properties), "additionalProperties": false]
    }
}

/// `/rest/v1/rpc/{name}`: POST with named arguments in a JSON object; GET with them as query parameters.
enum RPCPaths {
    /// `@param name {JSON}` lines of a function's comment, by argument name.
    static func annotations(_ comment: String?) -> [String: [String: JSONValue]] {
        var result: [String: [String: JSONValue]] = [:]
        for line in (comment ?? "").split(separator: "\n") where line.hasPrefix("@param ") {
            let parts = line.dropFirst(7).split(separator: " ", maxSplits: 1)
            guard parts.count == 2, let data = parts[1].data(using: .utf8),
                case .object(let keywords)? = try? JSONDecoder().decode(JSONValue.self, from: data)
            else { continue }
            result[String(parts[0])] = keywords
        }
        return result
    }

    static func item(_ function: SchemaCache.Function, schema: SchemaCache) -> [String: JSONValue] {
        var properties: [String: JSONValue] = [:]
        let annotations = annotations(function.comment)
        for argument in function.arguments {
            var schema = ColumnSchema.base(type: argument.type, isArray: argument.isArray, isJSON: argument.isJSON)
            schema.merge(annotations[argument.name] ?? [:]) { _, annotated in annotated }
            properties[argument.name] = .object(schema)
        }
        let required = function.arguments.filter { !$0.hasDefault }.map { JSONValue.string($0.name) }
        let body: JSONValue = .object([
            "type": "object", "properties": .object(properties), "required": .array(required), "additionalProperties": false,
        ])
        let success: [String: JSONValue] =
            function.returnType == "void"
            ? ["204": OpenAPI.noContent("Done")]
            : ["200": OpenAPI.jsonResponse(.object([:]))]
        let summary = "Call \(function.name) (returns \(function.returnsSet ? "setof " : "")\(function.returnType))"
        var item: [String: JSONValue] = [
            "post": OpenAPI.operation(
                summary, tag: "rpc", secured: true, errors: .rest, body: body, bodyRequired: !required.isEmpty, responses: success)
        ]
        // GET runs any function, in a read-only transaction, as PostgREST: one that writes answers 405 (25006).
        let parameters = function.arguments.map { argument in
            // A query string has no NULL: an array argument's items there are values only.
            var schema = properties[argument.name] ?? .object(ColumnSchema.base(type: argument.type, isArray: false, isJSON: false))
            if argument.isArray {
                schema = .object(ColumnSchema.base(type: argument.type, isArray: true, isJSON: false, nullItems: false))
            }
            return OpenAPI.parameter(argument.name, "\(argument.type) argument", required: !argument.hasDefault, schema: schema)
        }
        item["get"] = OpenAPI.operation(
            summary + " with arguments as query parameters, read-only"
                + (function.isVolatile ? " (answers 405, SQLSTATE 25006, if it writes)" : ""), tag: "rpc", secured: true,
            errors: .rest, parameters: parameters, responses: success)
        return item
    }
}

/// The data API's part of `/openapi.json`, generated from the live schema cache. The document promises
/// only what the server accepts: filters are the grammar's `operator.value` strings whose values fit the
/// column's type, `select` and `order` name real columns, one-column CHECK constraints become JSON
/// Schema bounds.
public enum RestOpenAPI {
    /// The data API's paths (every exposed table and rpc function) and the schemas they refer to.
    public static func paths(schema: SchemaCache) -> (paths: [String: JSONValue], schemas: [String: JSONValue]) {
        var paths: [String: JSONValue] = [:]
        var schemas: [String: JSONValue] = ["JSONValue": ColumnSchema.jsonValue]
        for name in schema.tables.keys.sorted() {
            guard let table = schema.tables[name] else { continue }
            schemas[name] = RowSchema.read(table)
            let filters = table.columns.map { FilterParameter.make($0, required: false) }
            let rows = OpenAPI.object(["type": "array", "items": OpenAPI.ref(name)])
            var item: [String: JSONValue] = [
                "get": OpenAPI.operation(
                    "Read \(name) (row-level security applies)", tag: "rest", secured: true, errors: .rest,
                    parameters: readParameters(table) + filters + [profile(schema.schema, reads: true)],
                    responses: ["200": rowsResponse(rows)])
            ]
            // A filter is required: PATCH and DELETE without one are refused (no accidental whole-table writes).
            let keyed = writeFilters(table) + [profile(schema.schema, reads: false)]
            item["delete"] = OpenAPI.operation(
                "Delete the \(name) rows the filters select", tag: "rest", secured: true, errors: .rest, parameters: keyed,
                responses: ["204": OpenAPI.noContent("Deleted (Prefer: return=minimal)")])
            if !table.isView || table.insertable {
                schemas["\(name).insert"] = RowSchema.insert(table)
                schemas["\(name).update"] = RowSchema.update(table)
                let insertBody = OpenAPI.object([
                    "oneOf": .array([
                        OpenAPI.ref("\(name).insert"), OpenAPI.object(["type": "array", "items": OpenAPI.ref("\(name).insert")]),
                    ])
                ])
                item["post"] = OpenAPI.operation(
                    "Insert one \(name) row or an array of them", tag: "rest", secured: true, errors: .rest,
                    parameters: [profile(schema.schema, reads: false)], body: insertBody,
                    responses: ["201": OpenAPI.noContent("Created (Prefer: return=minimal)")])
                item["patch"] = OpenAPI.operation(
                    "Update the \(name) rows the filters select", tag: "rest", secured: true, errors: .rest, parameters: keyed,
                    body: OpenAPI.ref("\(name).update"), responses: ["204": OpenAPI.noContent("Updated (Prefer: return=minimal)")])
            }
            paths["/rest/v1/\(name)"] = OpenAPI.object(item)
        }

        for name in schema.functions.keys.sorted() {
            guard let function = schema.functions[name] else { continue }
            paths["/rest/v1/rpc/\(name)"] = OpenAPI.object(RPCPaths.item(function, schema: schema))
        }
        return (paths, schemas)
    }

    // MARK: Data API parameters

    /// `Accept-Profile` (reads) or `Content-Profile` (writes): this document's schema. Without it a request
    /// goes to the default schema (`STRIVE_DB_SCHEMAS`' first), which is this one when it is `public`.
    static func profile(_ schema: String, reads: Bool) -> JSONValue {
        OpenAPI.parameter(
            reads ? "Accept-Profile" : "Content-Profile", "The schema (PostgREST's profiles): this document describes \(schema)",
            in: "header", schema: OpenAPI.object(["type": "string", "enum": .array([.string(schema)])]))
    }

    /// Rows as JSON, or as CSV for `Accept: text/csv` (a header row, RFC 4180 quoting, NULL empty).
    static func rowsResponse(_ rows: JSONValue) -> JSONValue {
        OpenAPI.object([
            "description": "Success",
            "content": OpenAPI.object([
                "application/json": OpenAPI.object(["schema": rows]),
                "text/csv": OpenAPI.object(["schema": OpenAPI.object(["type": "string"])]),
            ]),
        ])
    }

    static func readParameters(_ table: SchemaCache.Table) -> [JSONValue] {
        let names = table.columns.map(\.name)
        let orderable = table.columns.filter(FilterParameter.isOrderable).map(\.name)
        var parameters: [JSONValue] = [
            OpenAPI.parameter(
                "select", "Columns to return: * or one column (the full grammar also takes lists, aliases, casts and embeds)",
                schema: OpenAPI.object(["type": "string", "enum": .array((["*"] + names).map(JSONValue.string))])),
            OpenAPI.parameter(
                "limit", "Maximum rows (at most the server's row limit)",
                schema: OpenAPI.object(["type": "integer", "minimum": 0, "maximum": .number(Double(QueryGrammar.maximumCount))])),
            OpenAPI.parameter(
                "offset", "Rows to skip",
                schema: OpenAPI.object(["type": "integer", "minimum": 0, "maximum": .number(Double(QueryGrammar.maximumCount))])),
        ]
        if !orderable.isEmpty {
            let columns = orderable.map(FilterParameter.escaped).joined(separator: "|")
            parameters.append(
                OpenAPI.parameter(
                    "order", "column[.asc|.desc][.nullsfirst|.nullslast]",
                    schema: OpenAPI.object([
                        "type": "string", "pattern": .string("^(\(columns))(\\.(asc|desc))?(\\.(nullsfirst|nullslast))?$"),
                    ])))
        }
        return parameters
    }

    /// PATCH and DELETE need a filter. The document declares the one that addresses rows, `key=eq.<value>`
    /// on the primary key (or the first column), as required; the server takes any filter of the grammar.
    static func writeFilters(_ table: SchemaCache.Table) -> [JSONValue] {
        let keys = table.primaryKey.isEmpty ? Array(table.columns.prefix(1).map(\.name)) : table.primaryKey
        return table.columns.filter { keys.contains($0.name) }.map { column in
            OpenAPI.parameter(
                column.name, "The \(column.name) of the rows to change: eq.<value> (any filter of the grammar is accepted)", required: true,
                schema: OpenAPI.object(["type": "string", "pattern": .string("^eq\\.\(FilterParameter.value(column) ?? ".*")$")]))
        }
    }
}
