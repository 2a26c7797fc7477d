import HTTPTypes

/// A finished data API answer.
public struct RestReply: Sendable {
    public var status: HTTPResponse.Status
    public var headers: HTTPFields
    public var body: String?
}

/// The pipeline's last stage: a plan's result as PostgREST answers it — status, `Content-Range`,
/// `Preference-Applied`, `Location`, and the body in the negotiated media type.
enum ReplyWriter {
    static func reply(_ plan: Plan, _ result: StatementResult, request: ApiRequest, appliedTransaction: String?) throws(RestError)
        -> RestReply
    {
        var headers: HTTPFields = [:]
        if let applied = request.preferences.applied(transaction: appliedTransaction.flatMap(Preferences.Transaction.init)) {
            headers[.preferenceApplied] = applied
        }
        let media = request.output
        switch plan.shape {
        case .rows(let offset):
            if let total = result.total, total > 0, offset > 0, offset >= total {
                throw RestError.invalidRange("Requested range not satisfiable: offset \(offset) is past the \(total) rows")
            }
            let range = result.rows == 0 ? "*" : "\(offset)-\(offset + result.rows - 1)"
            headers[.contentRange] = "\(range)/\(result.total.map(String.init) ?? "*")"
            let body = try Self.body(result, media: media)
            headers[.contentType] = media.contentType
            let partial = result.total.map { offset > 0 || result.rows < $0 } ?? false
            return RestReply(
                status: partial && !media.isSingleObject ? .partialContent : .ok, headers: headers, body: request.isHead ? nil : body)
        case .written(let status, let table):
            if request.preferences.count != nil { headers[.contentRange] = "*/\(result.rows)" }
            // An upsert that returned rows knows whether it inserted any (`total`): none is 200, not 201.
            let answered: HTTPResponse.Status = status == .created && result.total == 0 && result.rows > 0 ? .ok : status
            guard request.preferences.returning == .representation else {
                if request.preferences.returning == .headersOnly, let location = result.location {
                    headers[.location] = "/\(table)?\(location)"
                }
                return RestReply(status: answered == .created ? .created : .noContent, headers: headers, body: nil)
            }
            let body = try Self.body(result, media: media)
            headers[.contentType] = media.contentType
            return RestReply(status: answered, headers: headers, body: body)
        case .single:
            if request.preferences.count != nil { headers[.contentRange] = "0-0/1" }
            headers[.contentType] = "application/json; charset=utf-8"
            return RestReply(status: .ok, headers: headers, body: request.isHead ? nil : result.first ?? "null")
        case .scalar:
            if request.preferences.count != nil { headers[.contentRange] = "0-0/1" }
            headers[.contentType] = "application/json; charset=utf-8"
            return RestReply(status: .ok, headers: headers, body: request.isHead ? nil : result.body ?? "null")
        case .void:
            return RestReply(status: .noContent, headers: headers, body: nil)
        }
    }

    /// The rows in the answer's media type; one object for `application/vnd.pgrst.object+json`.
    static func body(_ result: StatementResult, media: OutputMedia) throws(RestError) -> String {
        if media.isSingleObject {
            guard result.rows == 1, let first = result.first else { throw RestError.notSingle(result.rows) }
            return first
        }
        return result.body ?? "[]"
    }

    /// The answer to `Accept: application/vnd.pgrst.plan…`: the plan alone.
    static func plan(_ text: String, media: OutputMedia) -> RestReply {
        RestReply(status: .ok, headers: [.contentType: media.contentType], body: text)
    }
}
