import HTTPTypes

/// A request checked against the schema cache and turned into what the database will be asked: the
/// pipeline's third stage. Every refusal that does not need the data is decided before a plan exists;
/// a plan only needs executing and its result shaping.
struct Plan: Sendable {
    /// How the statement reaches the database.
    enum Statement: Sendable {
        /// One statement answering one row of `StatementResult.columns`.
        case query(String)
        /// Writes counted by their command tags, without RETURNING (`return=minimal`).
        case counted([String])
    }

    /// What the answer looks like, decided with the plan.
    enum Shape: Sendable, Equatable {
        /// Rows of a table, view or set-returning function: Content-Range, 206 for part of a counted total.
        case rows(offset: Int)
        /// A write: `status` when rows are returned, 201/204 without; `Location` for `return=headers-only`.
        case written(status: HTTPResponse.Status, table: String)
        /// A function returning one composite row: that row as an object, `null` without one.
        case single
        /// A function returning one value: the value itself.
        case scalar
        /// A function returning void: 204.
        case void
    }

    var statement: Statement
    /// `$1[n]`'s values.
    var values: [String]
    /// Whether it may change data: writes confirm their commit; reads of a GET run read-only.
    var writes: Bool
    /// Runs in a read-only transaction (GET and HEAD on a function): a write inside it fails with SQLSTATE
    /// 25006, as in PostgREST. A table read is one statement that changes nothing and needs no such care.
    var readOnly: Bool
    var shape: Shape
    /// For `Prefer: max-affected` with `handling=strict`: a write changing more rows rolls back.
    var maxAffected: Int?
    /// `application/vnd.pgrst.object+json` on a write: anything but one row rolls the write back.
    var requiresOneRow = false
}

/// The one row every planned query answers with.
struct StatementResult: Sendable, Equatable {
    /// Column definition list of that row, for `app.run_request`'s `setof record`.
    static let columns = "body text, first text, rows int, total bigint, location text"

    /// The rows in the answer's media type (a JSON array, CSV text); nil for `return=minimal`.
    var body: String?
    /// The first row alone, for `application/vnd.pgrst.object+json`.
    var first: String?
    var rows: Int
    /// The total for `Prefer: count=…`; nil when not asked.
    var total: Int?
    /// `pk=eq.…` of the first written row, for `Location`.
    var location: String?
}
