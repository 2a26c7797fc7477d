/// The one written form Strive takes for dates and timestamps, in bodies and in filters, and the one
/// `/openapi.json` declares (the same patterns). PostgreSQL's own input parser is far more lenient (it
/// reads `2024-01-02Z*`, `jan 2 2024`, `today`, `epoch`, Julian days…), so without this a value the API
/// documents as invalid could be stored, and a fuzzer rightly calls that a failure:
///
///     date        YYYY-MM-DD                       a real calendar day, years 0001–9999
///     timestamp   date[(T|t| )hh:mm[:ss[.ffffff]]][Z|z|±hh[[:]mm]]
///     both        infinity, -infinity
///
/// That is RFC 3339 plus what PostgreSQL itself prints (a space separator, a zone of hours only) and a
/// date alone for midnight.
public enum TemporalText {
    static let year = "([1-9][0-9]{3}|0[1-9][0-9]{2}|00[1-9][0-9]|000[1-9])"
    static let monthAndDay = "((0[1-9]|1[0-2])-(0[1-9]|1[0-9]|2[0-8])|(0[13-9]|1[0-2])-(29|30)|(0[13578]|1[02])-31)"
    static let leapDay = "([0-9]{2}(0[48]|[2468][048]|[13579][26])|([2468][048]|[13579][26]|0[48])00)-02-29"
    static let time = "([01][0-9]|2[0-3]):[0-5][0-9](:[0-5][0-9](\\.[0-9]{1,6})?)?"
    static let zone = "([Zz]|[+-](0[0-9]|1[0-4])(:?[0-5][0-9])?)"
    static let infinity = "-?infinity"

    /// A regular expression (ECMA-262 and Swift alike, unanchored) for a date.
    public static let datePattern = "(\(year)-\(monthAndDay)|\(leapDay)|\(infinity))"
    /// A regular expression (unanchored) for a timestamp, with or without time zone.
    public static let timestampPattern = "((\(year)-\(monthAndDay)|\(leapDay))([Tt ]\(time)\(zone)?)?|\(infinity))"

    /// The pattern for values of `type`, or nil when `type` is not a date or timestamp type.
    public static func pattern(for type: String) -> String? {
        switch type {
        case "date": datePattern
        case "timestamp with time zone", "timestamp without time zone": timestampPattern
        default: nil
        }
    }

    /// Refuses `value` (400 `22007`, as PostgreSQL names bad datetime syntax) unless it is a value of
    /// `type` in the documented form; any value passes when `type` is not a date or timestamp type.
    /// `place` says where the value was, for the error's details (`tasks.due_date`, `filter on due_date`).
    static func check(_ value: String, type: String, at place: String) throws(RestError) {
        guard let pattern = pattern(for: type) else { return }
        // Compiled per call: Regex is not Sendable, so it cannot be a stored static; only values of
        // date and timestamp columns pay for it.
        if let regex = try? Regex(pattern), value.wholeMatch(of: regex) != nil { return }
        let form =
            type == "date"
            ? "a date is written YYYY-MM-DD (a real calendar day)"
            : "a timestamp is written YYYY-MM-DD[Thh:mm[:ss[.ffffff]]][Z|±hh:mm] (RFC 3339), on a real calendar day"
        throw RestError(
            .badRequest, code: "22007", message: "invalid input syntax for type \(type): \"\(value)\"", details: "\(place): \(form)")
    }
}
