import StriveCore
import StriveRest

/// `/openapi.json`: OpenAPI 3.1 for the ops endpoints, auth, and every exposed table and rpc function
/// of the data API, generated from the live schema cache.
public enum OpenAPIDocument {
    public static func make(schema: SchemaCache, serverURL: String, version: String) -> JSONValue {
        var paths: [String: JSONValue] = [:]
        var schemas: [String: JSONValue] = [
            "Error": object([
                "type": "object",
                "required": .array(["code", "message", "details", "hint"].map(JSONValue.string)),
                "properties": object([
                    "code": object(["type": "string"]), "message": object(["type": "string"]),
                    "details": object(["type": .array([.string("string"), .string("null")])]),
                    "hint": object(["type": .array([.string("string"), .string("null")])]),
                ]),
            ]),
        ]

        paths["/health"] = object(["get": operation("Liveness: 200 while the process runs", tag: "ops", secured: false)])
        paths["/ready"] = object(["get": operation("Readiness: 200 when the database answers and migrations are current, else 503", tag: "ops", secured: false)])
        paths["/openapi.json"] = object(["get": operation("This document", tag: "ops", secured: false)])
        for (path, methods) in authPaths {
            paths["/auth/v1" + path] = object(methods.mapValues { operation($0, tag: "auth", secured: true) })
        }

        for name in schema.tables.keys.sorted() {
            guard let table = schema.tables[name] else { continue }
            schemas[name] = rowSchema(table)
            let filters = table.columns.map { column in
                object([
                    "name": .string(column.name), "in": "query", "required": false,
                    "description": .string("Filter on \(column.name) (\(column.type)): operator.value, e.g. eq.1, in.(1,2), is.null"),
                    "schema": object(["type": "string"]),
                ])
            }
            let reference = object(["$ref": .string("#/components/schemas/\(name)")])
            let rows = object(["type": "array", "items": reference])
            var item: [String: JSONValue] = [
                "get": operation("Read \(name) (row-level security applies)", tag: "rest", secured: true, parameters: commonReadParameters + filters, response: rows),
                "delete": operation("Delete the \(name) rows the filters select", tag: "rest", secured: true, parameters: filters),
            ]
            if !table.isView || table.insertable {
                item["post"] = operation("Insert one \(name) row or an array of them", tag: "rest", secured: true, body: reference, response: rows)
                item["patch"] = operation("Update the \(name) rows the filters select", tag: "rest", secured: true, parameters: filters, body: reference, response: rows)
            }
            paths["/rest/v1/\(name)"] = object(item)
        }

        for name in schema.functions.keys.sorted() {
            guard let function = schema.functions[name] else { continue }
            var properties: [String: JSONValue] = [:]
            for argument in function.arguments { properties[argument.name] = jsonSchema(type: argument.type, isArray: argument.isArray, isJSON: argument.isJSON) }
            let required = function.arguments.filter { !$0.hasDefault }.map { JSONValue.string($0.name) }
            let body = object(["type": "object", "properties": object(properties), "required": .array(required)])
            var item: [String: JSONValue] = [
                "post": operation("Call \(name) (returns \(function.returnsSet ? "setof " : "")\(function.returnType))", tag: "rpc", secured: true, body: body)
            ]
            if !function.isVolatile {
                item["get"] = operation("Call \(name) with arguments as query parameters", tag: "rpc", secured: true)
            }
            paths["/rest/v1/rpc/\(name)"] = object(item)
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
                ]),
            ]),
        ])
    }

    static let authPaths: [String: [String: String]] = [
        "/signup": ["post": "Create an account and a session"],
        "/token": ["post": "Sign in (grant_type=password) or refresh (grant_type=refresh_token)"],
        "/user": ["get": "The signed-in user", "put": "Change the signed-in user's metadata, email or password"],
        "/logout": ["post": "End sessions (scope=global|local|others)"],
        "/admin/users": ["get": "List users (service role)", "post": "Create a user (service role)"],
        "/admin/users/{id}": ["get": "One user (service role)", "put": "Change a user (service role)", "delete": "Delete a user (service role)"],
    ]

    static let commonReadParameters: [JSONValue] = [
        ("select", "Columns and embedded relations, e.g. id,title,project:projects(name)"),
        ("order", "e.g. created_at.desc.nullslast,title"),
        ("limit", "Maximum rows"),
        ("offset", "Rows to skip"),
    ].map { name, description in
        object(["name": .string(name), "in": "query", "required": false, "description": .string(description), "schema": object(["type": "string"])])
    }

    static func operation(
        _ summary: String, tag: String, secured: Bool, parameters: [JSONValue] = [], body: JSONValue? = nil, response: JSONValue? = nil
    ) -> JSONValue {
        var success: [String: JSONValue] = ["description": "Success"]
        if let response { success["content"] = object(["application/json": object(["schema": response])]) }
        var result: [String: JSONValue] = [
            "summary": .string(summary),
            "tags": .array([.string(tag)]),
            "responses": object([
                "200": object(success),
                "default": object([
                    "description": "Error",
                    "content": object(["application/json": object(["schema": object(["$ref": "#/components/schemas/Error"])])]),
                ]),
            ]),
        ]
        if !parameters.isEmpty { result["parameters"] = .array(parameters) }
        if let body { result["requestBody"] = object(["content": object(["application/json": object(["schema": body])])]) }
        if secured { result["security"] = .array([object(["apikey": .array([])]), object(["bearer": .array([])])]) }
        return object(result)
    }

    static func rowSchema(_ table: SchemaCache.Table) -> JSONValue {
        var properties: [String: JSONValue] = [:]
        for column in table.columns {
            var property = jsonSchema(type: column.type, isArray: column.isArray, isJSON: column.isJSON).objectValue ?? [:]
            if column.nullable, case .string(let type)? = property["type"] { property["type"] = .array([.string(type), "null"]) }
            property["description"] = .string(column.type + (table.primaryKey.contains(column.name) ? ", primary key" : ""))
            properties[column.name] = object(property)
        }
        let required = table.columns.filter { !$0.nullable && !$0.hasDefault }.map { JSONValue.string($0.name) }
        return object(["type": "object", "properties": object(properties), "required": .array(required)])
    }

    static func jsonSchema(type: String, isArray: Bool, isJSON: Bool) -> JSONValue {
        if isJSON { return object([:]) }
        if isArray {
            return object(["type": "array", "items": jsonSchema(type: String(type.dropLast(2)), isArray: false, isJSON: false)])
        }
        switch type {
        case "integer", "smallint", "bigint": return object(["type": "integer"])
        case "real", "double precision": return object(["type": "number"])
        case "boolean": return object(["type": "boolean"])
        case "uuid": return object(["type": "string", "format": "uuid"])
        case "timestamp with time zone", "timestamp without time zone": return object(["type": "string", "format": "date-time"])
        case "date": return object(["type": "string", "format": "date"])
        default:
            if type.hasPrefix("numeric") { return object(["type": "number"]) }
            return object(["type": "string"])
        }
    }

    static func object(_ members: [String: JSONValue]) -> JSONValue { .object(members) }
}
