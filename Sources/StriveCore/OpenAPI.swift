/// The pieces every surface's part of `/openapi.json` is built from: operations, parameters, responses
/// and schema references in OpenAPI 3.1's shape, and each surface's error body.
public enum OpenAPI {
    /// A lowercase UUID, as PostgreSQL prints it.
    public static let uuidPattern = "[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"

    public static func operation(
        _ summary: String, tag: String, secured: Bool = false, errors: OpenAPIErrorShape, parameters: [JSONValue] = [],
        body: JSONValue? = nil,
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

    public static func parameter(
        _ name: String, _ description: String, in location: String = "query", required: Bool = false, schema: JSONValue
    )
        -> JSONValue
    {
        object([
            "name": .string(name), "in": .string(location), "required": .bool(required), "description": .string(description),
            "schema": schema,
        ])
    }

    public static func jsonResponse(_ schema: JSONValue, description: String = "Success") -> JSONValue {
        response(schema, mediaType: "application/json", description: description)
    }

    public static func response(_ schema: JSONValue, mediaType: String, description: String = "Success") -> JSONValue {
        object(["description": .string(description), "content": object([mediaType: object(["schema": schema])])])
    }

    public static func noContent(_ description: String) -> JSONValue { object(["description": .string(description)]) }

    public static func ref(_ name: String) -> JSONValue { object(["$ref": .string("#/components/schemas/\(name)")]) }

    public static func object(_ members: [String: JSONValue]) -> JSONValue { .object(members) }
}

/// The error bodies, one per surface, exactly as each renders them.
public enum OpenAPIErrorShape: CaseIterable, Sendable {
    case rest, auth, storage, ops

    public var schemaName: String {
        switch self {
        case .rest: "RestError"
        case .auth: "AuthError"
        case .storage: "StorageError"
        case .ops: "Error"
        }
    }

    public var schema: JSONValue {
        let string = OpenAPI.object(["type": "string"])
        let nullableString = OpenAPI.object(["type": .array(["string", "null"])])
        func shape(_ properties: [String: JSONValue]) -> JSONValue {
            OpenAPI.object([
                "type": "object", "required": .array(properties.keys.sorted().map(JSONValue.string)),
                "properties": OpenAPI.object(properties),
                "additionalProperties": false,
            ])
        }
        switch self {
        case .rest:
            return shape(["code": string, "message": string, "details": nullableString, "hint": nullableString])
        case .auth:
            // Supabase Auth's two shapes: `{code, message}` with `X-Supabase-Api-Version: 2024-01-01`, else the older one.
            return OpenAPI.object([
                "oneOf": .array([
                    shape(["code": string, "message": string]),
                    shape(["code": OpenAPI.object(["type": "integer"]), "error_code": string, "msg": string]),
                ])
            ])
        case .storage:
            return shape(["statusCode": string, "error": string, "message": string])
        case .ops:
            return shape(["code": string, "message": string])
        }
    }
}
