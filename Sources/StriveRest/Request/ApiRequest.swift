import Foundation
import HTTPTypes
import StriveDatabase

/// A data API request as a typed value, the pipeline's first stage: what the route, query string and
/// headers say, read and checked once, before the schema cache is consulted. Everything here is the
/// client's input; nothing here has touched the database.
public struct ApiRequest: Sendable {
    public enum Action: Sendable, Equatable {
        case read(head: Bool)
        case insert
        case update
        case delete
        /// `rpc/<name>`: GET and HEAD read their arguments from the query string.
        case call(method: CallMethod)

        /// GET and HEAD, which never change data.
        public var isRead: Bool {
            switch self {
            case .read, .call(method: .get), .call(method: .head): true
            default: false
            }
        }
    }

    public enum CallMethod: Sendable, Equatable {
        case get, head, post
    }

    /// How the body is written.
    public enum BodyFormat: Sendable, Equatable {
        case json, csv, text, binary
    }

    public var action: Action
    /// The schema named by `Accept-Profile`/`Content-Profile`, or the first exposed one.
    public var schema: String
    /// The table, view or function name from the path.
    public var target: String
    public var identity: RequestIdentity
    /// The query string as decoded (key, value) pairs, in order; an rpc GET reads its arguments from them.
    public var pairs: [(String, String)]
    public var preferences: Preferences
    /// The `Range` header (`items=0-24`), when the client sent one.
    public var range: (start: Int, end: Int?)?
    public var output: OutputMedia
    public var bodyFormat: BodyFormat
    public var body: Data?

    public init(
        action: Action, target: String, identity: RequestIdentity, query: String, headers: HTTPFields, body: Data?,
        settings: RestSettings
    ) throws(RestError) {
        self.action = action
        self.target = target
        self.identity = identity
        self.pairs = try QueryGrammar.pairs(query)
        self.preferences = try Preferences(headers).validated()
        self.range = try Self.range(headers)
        var output = try OutputMedia.negotiate(accept: headers[values: .accept].joined(separator: ", "), planEnabled: settings.planEnabled)
        // `Prefer: nulls=stripped` asks for what the `nulls=stripped` media type parameter does.
        if preferences.nullsStripped {
            if case .json = output { output = .json(nullsStripped: true) }
            if case .object = output { output = .object(nullsStripped: true) }
        }
        self.output = output
        self.bodyFormat = Self.bodyFormat(headers[.contentType])
        self.body = body
        self.schema = try Self.exposed(action.isRead ? headers[.acceptProfile] : headers[.contentProfile], schemas: settings.schemas)
    }

    /// True for GET and HEAD, which never change data (an rpc GET runs in a read-only transaction).
    public var isRead: Bool { action.isRead }

    public var isHead: Bool {
        action == .read(head: true) || action == .call(method: .head)
    }

    /// `Range: items=0-24`; absent, or a unit other than items, is no range.
    static func range(_ headers: HTTPFields) throws(RestError) -> (start: Int, end: Int?)? {
        guard let range = headers[.range], headers[.rangeUnit].map({ $0 == "items" }) ?? true else { return nil }
        let bounds = range.replacingOccurrences(of: "items=", with: "").split(separator: "-", omittingEmptySubsequences: false)
        guard bounds.count == 2, let start = Int(bounds[0]), start >= 0 else {
            throw .invalidRange("Range must look like 0-24")
        }
        if bounds[1].isEmpty { return (start, nil) }
        guard let end = Int(bounds[1]) else { throw .invalidRange("Range must look like 0-24") }
        guard end >= start else { throw .invalidRange("Range end \(end) is before its start \(start)") }
        return (start, end)
    }

    static func bodyFormat(_ contentType: String?) -> BodyFormat {
        let type = contentType?.split(separator: ";").first?.trimmingCharacters(in: .whitespaces).lowercased() ?? "application/json"
        switch type {
        case "text/csv": return .csv
        case "text/plain": return .text
        case "application/octet-stream": return .binary
        default: return .json
        }
    }

    /// The schema `Accept-Profile` (reads) or `Content-Profile` (writes) names, if it is exposed; the default
    /// for none, else 406 PGRST106.
    static func exposed(_ profile: String?, schemas: [String]) throws(RestError) -> String {
        guard let profile else { return schemas.first ?? "public" }
        guard schemas.contains(profile) else {
            throw RestError(
                .notAcceptable, code: "PGRST106", message: "Invalid schema: \(profile)",
                hint: "Only the following schemas are exposed: \(schemas.joined(separator: ", "))")
        }
        return profile
    }

    /// offset and limit from `offset=`/`limit=` and the `Range` header, capped at `maxRows`.
    func window(_ resource: ResourceQuery, maxRows: Int) -> (offset: Int, limit: Int) {
        var offset = resource.offset ?? 0
        var limit = resource.limit
        if let range {
            offset = range.start
            if let end = range.end { limit = min(limit ?? Int.max, end - range.start + 1) }
        }
        return (offset, min(limit ?? maxRows, maxRows))
    }
}
