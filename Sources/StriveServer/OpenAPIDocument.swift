import StriveAuth
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
        var schemas: [String: JSONValue] = OpenAPIErrorShape.allCases.reduce(into: [:]) { $0[$1.schemaName] = $1.schema }

        paths["/health"] = OpenAPI.object([
            "get": OpenAPI.operation(
                "Liveness: 200 while the process runs", tag: "ops", errors: .ops,
                responses: ["200": OpenAPI.jsonResponse(OpenAPI.object(["type": "object"]))])
        ])
        paths["/ready"] = OpenAPI.object([
            "get": OpenAPI.operation(
                "Readiness: 200 when the database answers and migrations are current, else 503", tag: "ops", errors: .ops,
                responses: [
                    "200": OpenAPI.jsonResponse(OpenAPI.object(["type": "object"])),
                    "503": OpenAPI.jsonResponse(OpenAPI.object(["type": "object"])),
                ])
        ])
        paths["/openapi.json"] = OpenAPI.object([
            "get": OpenAPI.operation(
                "This document", tag: "ops", errors: .ops,
                responses: ["200": OpenAPI.response(OpenAPI.object(["type": "object"]), mediaType: "application/openapi+json")])
        ])
        for (path, item) in AuthOpenAPI.items { paths["/auth/v1" + path] = item }

        let rest = RestOpenAPI.paths(schema: schema)
        paths.merge(rest.paths) { current, _ in current }
        schemas.merge(rest.schemas) { current, _ in current }

        return OpenAPI.object([
            "openapi": "3.1.0",
            "info": OpenAPI.object([
                "title": "Strive", "version": .string(version),
                "description": "Auth, data API (PostgREST grammar over row-level security), storage and realtime, Supabase-compatible.",
            ]),
            "servers": .array([OpenAPI.object(["url": .string(serverURL)])]),
            "paths": OpenAPI.object(paths),
            "components": OpenAPI.object([
                "schemas": OpenAPI.object(schemas),
                "securitySchemes": OpenAPI.object([
                    "apikey": OpenAPI.object(["type": "apiKey", "in": "header", "name": "apikey"]),
                    "bearer": OpenAPI.object(["type": "http", "scheme": "bearer", "bearerFormat": "JWT"]),
                    // Where access tokens come from; tools learn that this operation mints credentials.
                    "password": OpenAPI.object([
                        "type": "oauth2",
                        "flows": OpenAPI.object([
                            "password": OpenAPI.object(["tokenUrl": "/auth/v1/token?grant_type=password", "scopes": OpenAPI.object([:])])
                        ]),
                    ]),
                ]),
            ]),
        ])
    }
}
