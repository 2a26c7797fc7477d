import StriveCore
import StriveRest

/// `/openapi.json`: OpenAPI 3.1 for the ops endpoints, auth, and every exposed table and rpc function
/// of the data API, generated from the live schema cache.
///
/// The document promises only what the server accepts: a generator or a fuzzer that follows it must
/// never be refused. So filters are declared as the grammar's `operator.value` strings whose values
/// fit the column's type, `select` and `order` name real columns, CHECK constraints on one column
/// become JSON Schema bounds, and every declared response (status, body, error shape) is what the
/// server sends.
public enum OpenAPIDocument {
    public static func make(schema: SchemaCache, serverURL: String, version: String) -> JSONValue {
        var paths: [String: JSONValue] = [:]
        var schemas: [String: JSONValue] = ErrorShape.allCases.reduce(into: [:]) { $0[$1.schemaName] = $1.schema }
        schemas["JSONValue"] = ColumnSchema.jsonValue

        paths["/health"] = object([
            "get": operation(
                "Liveness: 200 while the process runs", tag: "ops", errors: .ops,
                responses: ["200": jsonResponse(object(["type": "object"]))])
        ])
        paths["/ready"] = object([
            "get": operation(
                "Readiness: 200 when the database answers and migrations are current, else 503", tag: "ops", errors: .ops,
                responses: ["200": jsonResponse(object(["type": "object"])), "503": jsonResponse(object(["type": "object"]))])
        ])
        paths["/openapi.json"] = object([
            "get": operation(
                "This document", tag: "ops", errors: .ops,
                responses: ["200": response(object(["type": "object"]), mediaType: "application/openapi+json")])
        ])
        for (path, item) in AuthPaths.items { paths["/auth/v1" + path] = item }

        for name in schema.tables.keys.sorted() {
            guard let table = schema.tables[name] else { continue }
            schemas[name] = RowSchema.read(table)
            let filters = table.columns.map { FilterParameter.make($0, required: false) }
            let rows = object(["type": "array", "items": ref(name)])
            var item: [String: JSONValue] = [
                "get": operation(
                    "Read \(name) (row-level security applies)", tag: "rest", secured: true, errors: .rest,
                    parameters: readParameters(table) + filters, responses: ["200": jsonResponse(rows)])
            ]
            // A filter is required: PATCH and DELETE without one are refused (no accidental whole-table writes).
            let keyed = writeFilters(table)
            item["delete"] = operation(
                "Delete the \(name) rows the filters select", tag: "rest", secured: true, errors: .rest, parameters: keyed,
                responses: ["204": noContent("Deleted (Prefer: return=minimal)")])
            if !table.isView || table.insertable {
                schemas["\(name).insert"] = RowSchema.insert(table)
                schemas["\(name).update"] = RowSchema.update(table)
                let insertBody = object([
                    "oneOf": .array([ref("\(name).insert"), object(["type": "array", "items": ref("\(name).insert")])])
                ])
                item["post"] = operation(
                    "Insert one \(name) row or an array of them", tag: "rest", secured: true, errors: .rest, body: insertBody,
                    responses: ["201": noContent("Created (Prefer: return=minimal)")])
                item["patch"] = operation(
                    "Update the \(name) rows the filters select", tag: "rest", secured: true, errors: .rest, parameters: keyed,
                    body: ref("\(name).update"), responses: ["204": noContent("Updated (Prefer: return=minimal)")])
            }
            paths["/rest/v1/\(name)"] = object(item)
        }

        for name in schema.functions.keys.sorted() {
            guard let function = schema.functions[name] else { continue }
            paths["/rest/v1/rpc/\(name)"] = object(RPCPaths.item(function, schema: schema))
        }

        return object([
            "openapi": "3.1.0",
            "info": object([
                "title": "Strive", "version": .string(version),
                "description": "Auth, data API (PostgREST grammar over row-level security), storage and realtime, Supabase-compatible.",
            ]),
            "servers": .array([object(["url": .string(serverURL)])]),
            "paths": object(paths),
            "components": object([
                "schemas": object(schemas),
                "securitySchemes": object([
                    "apikey": object(["type": "apiKey", "in": "header", "name": "apikey"]),
                    "bearer": object(["type": "http", "scheme": "bearer", "bearerFormat": "JWT"]),
                    // Where access tokens come from; tools learn that this operation mints credentials.
                    "password": object([
                        "type": "oauth2",
                        "flows": object(["password": object(["tokenUrl": "/auth/v1/token?grant_type=password", "scopes": object([:])])]),
                    ]),
                ]),
            ]),
        ])
    }

    // MARK: Data API parameters

    static func readParameters(_ table: SchemaCache.Table) -> [JSONValue] {
        let names = table.columns.map(\.name)
        let orderable = table.columns.filter(FilterParameter.isOrderable).map(\.name)
        var parameters: [JSONValue] = [
            parameter(
                "select", "Columns to return: * or one column (the full grammar also takes lists, aliases, casts and embeds)",
                schema: object(["type": "string", "enum": .array((["*"] + names).map(JSONValue.string))])),
            parameter(
                "limit", "Maximum rows (at most the server's row limit)",
                schema: object(["type": "integer", "minimum": 0, "maximum": .number(Double(QueryGrammar.maximumCount))])),
            parameter(
                "offset", "Rows to skip",
                schema: object(["type": "integer", "minimum": 0, "maximum": .number(Double(QueryGrammar.maximumCount))])),
        ]
        if !orderable.isEmpty {
            let columns = orderable.map(FilterParameter.escaped).joined(separator: "|")
            parameters.append(
                parameter(
                    "order", "column[.asc|.desc][.nullsfirst|.nullslast]",
                    schema: object(["type": "string", "pattern": .string("^(\(columns))(\\.(asc|desc))?(\\.(nullsfirst|nullslast))?$")])))
        }
        return parameters
    }

    /// PATCH and DELETE need a filter. The document declares the one that addresses rows, `key=eq.<value>`
    /// on the primary key (or the first column), as required; the server takes any filter of the grammar.
    static func writeFilters(_ table: SchemaCache.Table) -> [JSONValue] {
        let keys = table.primaryKey.isEmpty ? Array(table.columns.prefix(1).map(\.name)) : table.primaryKey
        return table.columns.filter { keys.contains($0.name) }.map { column in
            parameter(
                column.name, "The \(column.name) of the rows to change: eq.<value> (any filter of the grammar is accepted)", required: true,
                schema: object(["type": "string", "pattern": .string("^eq\\.\(FilterParameter.value(column) ?? ".*")$")]))
        }
    }

    // MARK: Building blocks

    static func operation(
        _ summary: String, tag: String, secured: Bool = false, errors: ErrorShape, parameters: [JSONValue] = [], body: JSONValue? = nil,
        bodyRequired: Bool = true, responses: [String: JSONValue]
    ) -> JSONValue {
        var all = responses
        all["default"] = object([
            "description": "Error", "content": object(["application/json": object(["schema": ref(errors.schemaName)])]),
        ])
        var result: [String: JSONValue] = ["summary": .string(summary), "tags": .array([.string(tag)]), "responses": object(all)]
        if !parameters.isEmpty { result["parameters"] = .array(parameters) }
        if let body {
            result["requestBody"] = object([
                "required": .bool(bodyRequired), "content": object(["application/json": object(["schema": body])]),
            ])
        }
        if secured { result["security"] = .array([object(["apikey": .array([])]), object(["bearer": .array([])])]) }
        return object(result)
    }

    static func parameter(_ name: String, _ description: String, in location: String = "query", required: Bool = false, schema: JSONValue)
        -> JSONValue
    {
        object([
            "name": .string(name), "in": .string(location), "required": .bool(required), "description": .string(description),
            "schema": schema,
        ])
    }

    static func jsonResponse(_ schema: JSONValue, description: String = "Success") -> JSONValue {
        response(schema, mediaType: "application/json", description: description)
    }

    static func response(_ schema: JSONValue, mediaType: String, description: String = "Success") -> JSONValue {
        object(["description": .string(description), "content": object([mediaType: object(["schema": schema])])])
    }

    static func noContent(_ description: String) -> JSONValue { object(["description": .string(description)]) }

    static func ref(_ name: String) -> JSONValue { object(["$ref": .string("#/components/schemas/\(name)")]) }

    static func object(_ members: [String: JSONValue]) -> JSONValue { .object(members) }
}

/// The error bodies, one per surface, exactly as each renders them.
enum ErrorShape: CaseIterable {
    case rest, auth, storage, ops

    var schemaName: String {
        switch self {
        case .rest: "RestError"
        case .auth: "AuthError"
        case .storage: "StorageError"
        case .ops: "Error"
        }
    }

    var schema: JSONValue {
        let string = OpenAPIDocument.object(["type": "string"])
        let nullableString = OpenAPIDocument.object(["type": .array(["string", "null"])])
        func shape(_ properties: [String: JSONValue]) -> JSONValue {
            OpenAPIDocument.object([
                "type": "object", "required": .array(properties.keys.sorted().map(JSONValue.string)),
                "properties": OpenAPIDocument.object(properties),
                "additionalProperties": false,
            ])
        }
        switch self {
        case .rest:
            return shape(["code": string, "message": string, "details": nullableString, "hint": nullableString])
        case .auth:
            // Supabase Auth's two shapes: `{code, message}` with `X-Supabase-Api-Version: 2024-01-01`, else the older one.
            return OpenAPIDocument.object([
                "oneOf": .array([
                    shape(["code": string, "message": string]),
                    shape(["code": OpenAPIDocument.object(["type": "integer"]), "error_code": string, "msg": string]),
                ])
            ])
        case .storage:
            return shape(["statusCode": string, "error": string, "message": string])
        case .ops:
            return shape(["code": string, "message": string])
        }
    }
}
