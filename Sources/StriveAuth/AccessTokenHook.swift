import Foundation
import HTTPTypes
import Logging
import PostgresNIO
import StriveCore
import StriveDatabase
import StriveIdentity

/// Supabase's custom access token hook: a PostgreSQL function that receives `{user_id, claims,
/// authentication_method}` for every token about to be issued and returns `{claims}` (signed instead) or
/// `{error: {http_code, message}}` (the sign-in is refused with that status and message). Output that is
/// not one of those, or claims without the ones every client needs, refuses the sign-in too (GoTrue's 500).
struct AccessTokenHook: Sendable {
    let function: HookFunction

    /// The claims GoTrue requires in a hook's output, with the JSON type each must have.
    static let requiredClaims: [(name: String, isValid: @Sendable (JSONValue) -> Bool)] = [
        ("aud", { if case .string = $0 { true } else if case .array = $0 { true } else { false } }),
        ("exp", isInteger), ("iat", isInteger), ("sub", isString), ("email", isString), ("phone", isString),
        ("role", isString), ("aal", isString), ("session_id", isString),
        ("is_anonymous", { if case .bool = $0 { true } else { false } }),
    ]

    static func isString(_ value: JSONValue) -> Bool { if case .string = value { true } else { false } }
    static func isInteger(_ value: JSONValue) -> Bool {
        if case .number(let number) = value { number == number.rounded() } else { false }
    }

    /// Runs the hook on `connection` (the transaction that issues the token, so a refusal leaves nothing
    /// behind) and returns the claims to sign.
    func claims(
        for claims: AccessClaims, user: UUID, method: String, on connection: PostgresConnection, logger: Logger
    ) async throws -> [String: JSONValue] {
        let encoded = try JSONDecoder().decode(JSONValue.self, from: JSONEncoder().encode(claims))
        let input = JSONValue.object([
            "user_id": .string(user.uuidString.lowercased()), "claims": encoded, "authentication_method": .string(method),
        ])
        var query = PostgresQuery(unsafeSQL: "select \(function.qualifiedName)($1::jsonb)::text")
        query.binds.append(input.jsonText)
        let text: String?
        do {
            text = try await connection.rows(query, logger: logger).first?.decode(String?.self)
        } catch {
            logger.error("the custom access token hook failed", metadata: ["hook": "\(function.qualifiedName)", "error": "\(error)"])
            throw AuthError(status: .internalServerError, code: "unexpected_failure", message: "Error running hook URI: \(function.uri)")
        }
        return try Self.output(text)
    }

    /// The claims in a hook's answer, or the refusal it asks for or deserves.
    static func output(_ text: String?) throws(AuthError) -> [String: JSONValue] {
        guard let text, let output = JSONValue(jsonText: text)?.objectValue else {
            throw failure("Error unmarshaling JSON output.")
        }
        if let error = output["error"]?.objectValue {
            let message = error["message"]?.stringValue ?? ""
            var status = 500
            if case .number(let code) = error["http_code"] ?? .null, (400...599).contains(Int(code)) { status = Int(code) }
            throw AuthError(
                status: HTTPResponse.Status(code: status), code: status == 500 ? "unexpected_failure" : "unknown", message: message)
        }
        guard let claimsValue = output["claims"] else { throw failure("output claims field is missing") }
        guard let claims = claimsValue.objectValue else { throw failure("Error unmarshaling JSON output.") }
        let broken = requiredClaims.filter { required in claims[required.name].map { !required.isValid($0) } ?? true }.map(\.name)
        guard broken.isEmpty else {
            throw failure(
                "output claims do not conform to the expected schema: \n"
                    + broken.map { "- \($0): missing or of the wrong type" }.joined(separator: "\n"))
        }
        return claims
    }

    static func failure(_ message: String) -> AuthError {
        AuthError(status: .internalServerError, code: "unexpected_failure", message: message)
    }
}
