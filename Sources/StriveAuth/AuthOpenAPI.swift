import StriveCore

/// `/auth/v1`: bodies as Supabase Auth takes them, answers in its two error shapes.
public enum AuthOpenAPI {
    static let email: JSONValue = .object(["type": "string", "maxLength": 255, "pattern": .string(AuthService.emailPattern)])
    static let password: JSONValue = .object([
        // The default policy's; STRIVE_AUTH_PASSWORD_MIN_LENGTH may lower or raise it.
        "type": "string", "minLength": .number(Double(ConfigVariable.authPasswordMinLength.setting.defaultInteger ?? 8)),
        "maxLength": .number(Double(PasswordPolicy.maximumLength)),
    ])
    static let metadata: JSONValue = .object([
        "type": "object", "additionalProperties": .object(["$ref": "#/components/schemas/JSONValue"]),
        // PostgreSQL's jsonb refuses NUL, in keys as in values.
        "propertyNames": .object(["pattern": "^[^\\u0000]*$"]),
    ])
    static let user: JSONValue = .object(["type": "object", "required": ["id", "aud", "role"]])
    static let session: JSONValue = .object([
        "type": "object", "required": ["access_token", "token_type", "expires_in", "refresh_token", "user"],
    ])

    /// An auth request body. Optional fields may be null (as absent), as Supabase Auth reads them; other
    /// fields are ignored, as supabase-js sends some this server has no use for (`gotrue_meta_security`).
    static func body(_ properties: [String: JSONValue], required: [String] = []) -> JSONValue {
        // A captcha token where captchas are on; its shape is checked, its token is not.
        var fields: [String: JSONValue] = [
            "gotrue_meta_security": .object([
                "anyOf": [
                    ["type": "object", "properties": ["captcha_token": ["anyOf": [["type": "string"], ["type": "null"]]]]],
                    ["type": "null"],
                ]
            ])
        ]
        for (name, schema) in properties {
            fields[name] = required.contains(name) ? schema : .object(["anyOf": [schema, ["type": "null"]]])
        }
        return .object(["type": "object", "properties": .object(fields), "required": .array(required.map(JSONValue.string))])
    }

    /// `PUT /user`: a new password comes with the current one (or a mailed `nonce`, which this schema
    /// leaves out of `dependentRequired`: a generated request cannot know one); neither may be null.
    static var userUpdateBody: JSONValue {
        guard case .object(var schema) = body(["email": email, "data": metadata]), case .object(var fields) = schema["properties"] else {
            return body([:])
        }
        fields["password"] = password
        fields["current_password"] = .object(["type": "string"])
        fields["nonce"] = .object(["type": "string"])
        schema["properties"] = .object(fields)
        schema["dependentRequired"] = .object(["password": ["current_password"]])
        return .object(schema)
    }

    static func pageSchema(maximum: Int) -> JSONValue {
        .object(["anyOf": [["type": "integer", "minimum": 1, "maximum": .number(Double(maximum))], ["type": "string", "maxLength": 0]]])
    }

    static let userID = OpenAPI.parameter(
        "id", "The user's id", in: "path", required: true,
        schema: .object(["type": "string", "format": "uuid", "pattern": .string("^\(OpenAPI.uuidPattern)$")]))

    public static var items: [String: JSONValue] {
        typealias Doc = OpenAPI
        let ok = { (schema: JSONValue) in ["200": Doc.jsonResponse(schema)] }
        return [
            "/signup": .object([
                "post": Doc.operation(
                    "Create an account and a session", tag: "auth", secured: true, errors: .auth,
                    body: body(["email": email, "password": password, "data": metadata], required: ["email", "password"]),
                    responses: ok(session))
            ]),
            "/token": .object([
                "post": Doc.operation(
                    "Sign in (grant_type=password) or refresh (grant_type=refresh_token)", tag: "auth", secured: true, errors: .auth,
                    parameters: [
                        Doc.parameter(
                            "grant_type", "password or refresh_token", required: true,
                            schema: .object(["type": "string", "enum": ["password", "refresh_token"]]))
                    ],
                    body: body(["email": email, "password": password, "refresh_token": .object(["type": "string"])]),
                    responses: ok(session))
            ]),
            "/authorize": .object([
                "get": Doc.operation(
                    "Start signing in with an external provider (302 to it)", tag: "auth", errors: .auth,
                    parameters: [
                        Doc.parameter(
                            "provider", "A configured provider (github, google, keycloak, …)", required: true,
                            schema: .object(["type": "string", "maxLength": 40])),
                        Doc.parameter(
                            "redirect_to", "Where the callback sends the browser (the allow-list decides)",
                            schema: .object(["type": "string"])),
                        Doc.parameter("scopes", "Scopes beyond the provider's own, space-separated", schema: .object(["type": "string"])),
                    ],
                    responses: ["302": .object(["description": "To the provider's sign-in page"])])
            ]),
            "/sso": .object([
                "post": Doc.operation(
                    "Start single sign-on for an email domain or SSO provider", tag: "auth", secured: true, errors: .auth,
                    body: body([
                        "domain": .object(["type": "string", "maxLength": 253]),
                        "provider_id": .object(["type": "string", "format": "uuid"]), "redirect_to": .object(["type": "string"]),
                        "skip_http_redirect": .object(["type": "boolean"]),
                    ]),
                    responses: [
                        "200": Doc.jsonResponse(.object(["type": "object", "required": ["url"]])),
                        "303": .object(["description": "To the provider"]),
                    ])
            ]),
            "/passkeys/authentication/options": .object([
                "post": Doc.operation(
                    "Begin signing in with a passkey", tag: "auth", secured: true, errors: .auth, body: body([:]), bodyRequired: false,
                    responses: ok(.object(["type": "object", "required": ["challenge_id", "options", "expires_at"]])))
            ]),
            "/passkeys/authentication/verify": .object([
                "post": Doc.operation(
                    "Sign in with a passkey's assertion", tag: "auth", secured: true, errors: .auth,
                    body: body(
                        ["challenge_id": .object(["type": "string", "format": "uuid"]), "credential": .object(["type": "object"])],
                        required: ["challenge_id", "credential"]),
                    responses: ok(session))
            ]),
            "/user": .object([
                "get": Doc.operation("The signed-in user", tag: "auth", secured: true, errors: .auth, responses: ok(user)),
                "put": Doc.operation(
                    "Change the signed-in user's metadata, email or password", tag: "auth", secured: true, errors: .auth,
                    body: userUpdateBody, responses: ok(user)),
            ]),
            "/logout": .object([
                "post": Doc.operation(
                    "End sessions", tag: "auth", secured: true, errors: .auth,
                    parameters: [
                        Doc.parameter(
                            "scope", "global (default), local or others",
                            schema: .object(["type": "string", "enum": ["global", "local", "others"]]))
                    ],
                    responses: ["204": Doc.noContent("Signed out")])
            ]),
            "/admin/users": .object([
                "get": Doc.operation(
                    "List users (service role)", tag: "auth", secured: true, errors: .auth,
                    parameters: [
                        // Empty means the default, as GoTrue reads it (supabase-py sends `?page=&per_page=`).
                        Doc.parameter("page", "1-based page; empty: 1", schema: pageSchema(maximum: 1_000_000)),
                        Doc.parameter("per_page", "Users per page; empty: 50", schema: pageSchema(maximum: 1000)),
                    ],
                    responses: ok(.object(["type": "object", "required": ["users"]]))),
                "post": Doc.operation(
                    "Create a user (service role)", tag: "auth", secured: true, errors: .auth,
                    body: adminUser(required: ["email"], banning: false), responses: ok(user)),
            ]),
            "/admin/users/{id}": .object([
                "parameters": .array([userID]),
                "get": Doc.operation("One user (service role)", tag: "auth", secured: true, errors: .auth, responses: ok(user)),
                "put": Doc.operation(
                    "Change a user (service role)", tag: "auth", secured: true, errors: .auth, body: adminUser(required: [], banning: true),
                    responses: ok(user)),
                "delete": Doc.operation("Delete a user (service role)", tag: "auth", secured: true, errors: .auth, responses: ok(user)),
            ]),
        ]
    }

    /// `ban_duration` is read when a user is changed, not when one is created.
    static func adminUser(required: [String], banning: Bool) -> JSONValue {
        var fields: [String: JSONValue] = [
            "email": email, "password": password, "email_confirm": .object(["type": "boolean"]),
            "user_metadata": metadata, "app_metadata": metadata,
        ]
        if banning { fields["ban_duration"] = .object(["type": "string", "pattern": "^(none|[0-9]{1,6}(h|m|s))$"]) }
        return body(fields, required: required)
    }
}
