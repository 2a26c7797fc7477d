import Foundation

/// A write's body, read and checked before any statement exists: JSON objects (or CSV rows) with each
/// value kept as the client wrote it, grouped by the columns each insert statement names.
enum WriteBody {
    /// The body as a list of objects, each key's value kept as JSON text. CSV bodies (`Content-Type:
    /// text/csv`) are a header row of column names and one object per line, every value text or NULL.
    static func objects(_ request: ApiRequest, allowArray: Bool) throws(RestError) -> [[String: JSONText]] {
        guard let body = request.body, !body.isEmpty else { throw .invalidBody("the request body must be JSON") }
        if request.bodyFormat == .csv {
            let rows = try CSVText.rows(String(decoding: body, as: UTF8.self))
            guard let header = rows.first else { return [] }
            let names = header.map { $0 ?? "" }
            guard names.allSatisfy({ !$0.isEmpty }) else { throw .invalidBody("the CSV header names every column") }
            let objects = try rows.dropFirst().map { (row: [String?]) throws(RestError) -> [String: JSONText] in
                guard row.count == names.count else {
                    throw .invalidBody("every CSV line has as many fields as the header (\(names.count)); one has \(row.count)")
                }
                return Dictionary(zip(names, row.map(JSONText.init(csvField:))), uniquingKeysWith: { first, _ in first })
            }
            guard allowArray || objects.count == 1 else { throw .invalidBody("the CSV body must hold exactly one row") }
            return objects
        }
        if let object = try? JSONDecoder().decode([String: JSONText].self, from: body) { return [object] }
        if allowArray, let array = try? JSONDecoder().decode([[String: JSONText]].self, from: body) { return array }
        if (try? JSONSerialization.jsonObject(with: body, options: [.fragmentsAllowed])) == nil {
            throw .invalidBody("the request body is not valid JSON")
        }
        throw .invalidBody(allowArray ? "the body must be a JSON object or an array of objects" : "the body must be a JSON object")
    }

    /// The objects of one insert, split by the columns each statement names. With `columns=` that list
    /// (less the keys an object leaves out, with `missing=default`);
    /// with `missing=default` (or one object) each object's own keys, so absent keys take defaults; else,
    /// as PostgREST, the union of all keys with absent ones NULL — except where NULL could only fail (a
    /// NOT NULL column with a default), which takes its default instead.
    static func insertGroups(
        _ objects: [[String: JSONText]], table: SchemaCache.Table, columns: [String]?, missingDefault: Bool
    ) throws(RestError) -> [(columns: [String], objects: [[String: JSONText]])] {
        let defaulted = Set(table.columns.filter { !$0.nullable && $0.hasDefault }.map(\.name))
        let union = Set(objects.flatMap(\.keys))
        var order: [[String]] = []
        var grouped: [[String]: [[String: JSONText]]] = [:]
        for object in objects {
            let keys: [String]
            if let columns {
                // `missing=default`: a listed column an object leaves out takes its default, not NULL.
                keys = missingDefault ? columns.filter { object[$0] != nil } : columns
            } else if missingDefault || objects.count == 1 {
                keys = object.keys.sorted()
            } else {
                keys = union.filter { object[$0] != nil || !defaulted.contains($0) }.sorted()
            }
            if grouped[keys] == nil { order.append(keys) }
            grouped[keys, default: []].append(object)
        }
        for keys in order {
            if let unknown = keys.first(where: { table.column($0) == nil }) {
                throw RestError.unknownWriteColumn(unknown, table: table.name)
            }
        }
        return order.map { ($0, grouped[$0] ?? []) }
    }

    /// Each value must be of the JSON kind its column takes: PostgreSQL would quietly turn `{}` into the
    /// text "{}" or "5" into the number 5, which is how client bugs become data. NULL into a NOT NULL
    /// column is refused here too (for a PATCH that matches no row PostgreSQL would never say so).
    static func checkKinds(_ object: [String: JSONText], table: SchemaCache.Table) throws(RestError) {
        for (key, value) in object {
            guard let column = table.column(key) else { continue }
            if value.kind == .null {
                guard column.nullable else {
                    throw RestError(
                        .badRequest, code: "23502",
                        message: "null value in column \"\(key)\" of relation \"\(table.name)\" violates not-null constraint")
                }
                continue
            }
            func refuse(_ expected: JSONText.Kind, _ found: JSONText.Kind, _ what: String) -> RestError {
                RestError(
                    .badRequest, code: "22P02",
                    message: "\(what) of \(table.name).\(key) must be a JSON \(expected.rawValue), not a JSON \(found.rawValue)",
                    details: "\(key) is \(column.type)")
            }
            if column.isJSON { continue }
            if column.isArray {
                guard value.kind == .array else { throw refuse(.array, value.kind, "the value") }
                let element = Self.jsonKind(type: String(column.type.dropLast(2)), category: column.elementCategory)
                if let wrong = value.elementKinds.first(where: { $0 != element && $0 != .null }) {
                    throw refuse(element, wrong, "an element")
                }
                continue
            }
            let expected = Self.jsonKind(type: column.type, category: column.category)
            // A number may come as a string (JavaScript clients send bigints so, to keep their digits);
            // PostgreSQL reads it as the column's type or refuses it.
            let numberAsString = expected == .number && value.kind == .string
            if value.kind != expected && !numberAsString { throw refuse(expected, value.kind, "the value") }
            if let string = value.string { try TemporalText.check(string, type: column.type, at: "\(table.name).\(key)") }
        }
    }

    /// An rpc argument's JSON kind, as strict as a column's: `{"slug": false}` for a text argument is a
    /// 400, not the text "false". Null passes (the function decides what it means).
    static func checkKind(_ value: JSONText, of argument: SchemaCache.Function.Argument, function: String) throws(RestError) {
        guard value.kind != .null, !argument.isJSON else { return }
        let expected: JSONText.Kind
        if argument.isComposite {
            expected = .object
        } else if argument.isArray {
            expected = .array
        } else if argument.type == "boolean" {
            expected = .boolean
        } else if ["smallint", "integer", "bigint", "real", "double precision"].contains(argument.type)
            || argument.type.hasPrefix("numeric")
        {
            expected = .number
        } else {
            expected = .string
        }
        guard value.kind != expected, !(expected == .number && value.kind == .string) else { return }
        throw RestError(
            .badRequest, code: "22P02",
            message: "argument \(argument.name) of \(function) must be a JSON \(expected.rawValue), not a JSON \(value.kind.rawValue)",
            details: "\(argument.name) is \(argument.type)")
    }

    /// The JSON kind a value of this PostgreSQL type is written as.
    static func jsonKind(type: String, category: String) -> JSONText.Kind {
        if type == "boolean" { return .boolean }
        return category == "N" ? .number : .string
    }

    /// The values of a PATCH, checked before any row is touched: their types (by reading them as a row of
    /// the table) and the table's CHECK constraints whose columns the body all sets (the others depend on
    /// the stored row, which PostgreSQL checks when it writes it). Without it a PATCH that matches no row
    /// would accept values no row could ever hold. A condition without references to the updated rows,
    /// so PostgreSQL evaluates it once, before scanning.
    static func inputCheck(_ table: SchemaCache.Table, setting keys: Set<String>, record: String) -> String {
        let cases = table.checks.filter { keys.isSuperset(of: $0.columns) }.map { check in
            "case when (\(check.expression)) is false then '\(check.name.replacingOccurrences(of: "'", with: "''"))' end"
        }
        let violations = cases.isEmpty ? "'{}'::text[]" : "array_remove(array[\(cases.joined(separator: ", "))]::text[], null)"
        let relation = table.name.replacingOccurrences(of: "'", with: "''")
        return "app.check_input('\(relation)', (select \(violations) from \(record) as \"input\"))"
    }

    static func jsonText(_ objects: [[String: JSONText]]) -> String {
        "["
            + objects.map { object in
                "{" + object.keys.sorted().map { key in "\(JSONText.quoted(key)):\(object[key]?.text ?? "null")" }.joined(separator: ",")
                    + "}"
            }.joined(separator: ",") + "]"
    }
}
