import Foundation
import HTTPTypes
import Hummingbird
import PostgresNIO
import StriveCore
import StriveDatabase

/// A data API failure in PostgREST's shape: `{code, message, details, hint}`, all four keys always present.
public struct RestError: Error, Sendable, Equatable, HTTPResponseError {
    public static func == (lhs: RestError, rhs: RestError) -> Bool {
        lhs.status == rhs.status && lhs.code == rhs.code && lhs.message == rhs.message && lhs.details == rhs.details && lhs.hint == rhs.hint
            && lhs.detailItems == rhs.detailItems
    }

    public let status: HTTPResponse.Status
    public let code: String
    public let message: String
    public let details: String?
    public let hint: String?
    /// Headers the answer carries besides its body (`Allow` on a 405).
    public var headers: HTTPFields = [:]
    /// `details` as a list of objects instead of text (PGRST201's candidate relationships).
    public var detailItems: [JSONValue]?

    public init(_ status: HTTPResponse.Status, code: String, message: String, details: String? = nil, hint: String? = nil) {
        self.status = status
        self.code = code
        self.message = message
        self.details = details
        self.hint = hint
    }

    // MARK: Request errors (PostgREST's PGRST codes)

    public static func parse(_ message: String, details: String? = nil) -> RestError {
        RestError(.badRequest, code: "PGRST100", message: message, details: details)
    }

    public static func unknownTable(_ name: String, schema: String = "public") -> RestError {
        RestError(.notFound, code: "PGRST205", message: "Could not find the table '\(schema).\(name)' in the schema cache")
    }

    public static func unknownColumn(_ column: String, table: String) -> RestError {
        RestError(.badRequest, code: "42703", message: "column \(table).\(column) does not exist")
    }

    public static func unknownWriteColumn(_ column: String, table: String) -> RestError {
        RestError(.badRequest, code: "PGRST204", message: "Could not find the '\(column)' column of '\(table)' in the schema cache")
    }

    public static func unknownFunction(_ name: String, schema: String = "public") -> RestError {
        RestError(.notFound, code: "PGRST202", message: "Could not find the function \(schema).\(name) in the schema cache")
    }

    static func noRelationship(_ parent: String, _ child: String, hint: String?, schema: String) -> RestError {
        RestError(
            .badRequest, code: "PGRST200",
            message: "Could not find a relationship between '\(parent)' and '\(child)' in the schema cache",
            details: "Searched for a foreign key relationship between '\(parent)' and '\(child)'"
                + (hint.map { " using the hint '\($0)'" } ?? "") + " in the schema '\(schema)', but no matches were found.")
    }

    static func ambiguousRelationship(_ parent: String, _ child: String, candidates: [Relationship]) -> RestError {
        var error = RestError(
            .multipleChoices, code: "PGRST201",
            message: "Could not embed because more than one relationship was found for '\(parent)' and '\(child)'",
            hint: "Try changing '\(child)' to one of the following: "
                + candidates.map { "'\(child)!\($0.hintName)'" }.joined(separator: ", ")
                + ". Find the desired relationship in the 'details' key.")
        error.detailItems = candidates.map(\.description)
        return error
    }

    public static func notSingle(_ rows: Int) -> RestError {
        RestError(
            .notAcceptable, code: "PGRST116", message: "Cannot coerce the result to a single JSON object",
            details: "The result contains \(rows) rows")
    }

    public static func invalidBody(_ message: String) -> RestError {
        RestError(.badRequest, code: "PGRST102", message: message)
    }

    public static let bodyTooLarge = RestError(.contentTooLarge, code: "PGRST413", message: "Request body is too large")

    public static func invalidRange(_ message: String) -> RestError {
        RestError(.rangeNotSatisfiable, code: "PGRST103", message: message)
    }

    // MARK: Database errors, mapped as PostgREST maps SQLSTATEs

    /// A failed statement, in PostgREST's words and status. The one place the data API maps SQLSTATEs.
    public static func database(_ fields: DatabaseError.ServerFields, anonymous: Bool) -> RestError {
        let status: HTTPResponse.Status
        switch fields.code {
        case .insufficientPrivilege: status = anonymous ? .unauthorized : .forbidden
        case .uniqueViolation, .foreignKeyViolation, .serializationFailure, .deadlockDetected: status = .conflict
        case .notNullViolation, .checkViolation, .invalidTextRepresentation, .stringDataRightTruncationException,
            .numericValueOutOfRange, .invalidDatetimeFormat, .datetimeFieldOverflow, .invalidParameterValue, .nullValueNotAllowed,
            .invalidRegularExpression, .datatypeMismatch, .undefinedFunction, .undefinedTable, .undefinedColumn, .cardinalityViolation:
            status = .badRequest
        case .noDataFound: status = .notFound
        case .queryCanceled: status = .gatewayTimeout
        case .readOnlySqlTransaction: status = .methodNotAllowed
        case .sessionNotFound:
            return RestError(.unauthorized, code: "PGRST301", message: "JWT session has ended: sign in again", details: fields.detail)
        default:
            let state = fields.sqlState
            if state.hasPrefix("PT"), let code = Int(state.dropFirst(2)), (400...599).contains(code) {
                // PostgREST's convention: a function raising SQLSTATE PTxyz answers HTTP xyz.
                status = HTTPResponse.Status(code: code)
            } else if state.hasPrefix("22") || state.hasPrefix("23") {
                // Data exceptions and integrity violations are the client's input.
                status = .badRequest
            } else {
                status = .internalServerError
            }
        }
        // A constraint violation names the constraint, so the client knows which rule it broke.
        let details = fields.detail ?? fields.constraint.map { "constraint \($0)" }
        return RestError(status, code: fields.sqlState, message: fields.message, details: details, hint: fields.hint)
    }

    public func response(from request: Request, context: some RequestContext) throws -> Response {
        let data = try SupabaseJSON.encoder.encode(
            RestErrorBody(code: code, message: message, details: detailItems.map { .array($0) } ?? details.map { .string($0) }, hint: hint))
        var fields = headers
        fields[.contentType] = "application/json; charset=utf-8"
        return Response(status: status, headers: fields, body: .init(byteBuffer: ByteBuffer(bytes: data)))
    }
}

/// PostgREST's keys are always present, null when empty.
struct RestErrorBody: Encodable {
    let code: String
    let message: String
    let details: JSONValue?
    let hint: String?

    func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(code, forKey: .code)
        try container.encode(message, forKey: .message)
        // PostgREST's keys are always present, null when empty.
        try container.encode(details, forKey: .details)
        try container.encode(hint, forKey: .hint)
    }

    enum CodingKeys: String, CodingKey { case code, message, details, hint }
}
