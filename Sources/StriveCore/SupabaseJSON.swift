import Foundation

/// JSON as the Supabase services write it: sorted keys, unescaped slashes, ISO 8601 dates with
/// fractional seconds. One encoder for every surface that returns rows with dates.
public enum SupabaseJSON {
    public static let encoder: JSONEncoder = {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        encoder.dateEncodingStrategy = .custom { date, encoder in
            var container = encoder.singleValueContainer()
            try container.encode(timestamp(date))
        }
        return encoder
    }()

    /// `2024-05-13T23:28:11.770Z`: UTC, whole milliseconds, as JavaScript's toISOString writes them.
    /// PostgreSQL's microseconds arrive as a binary fraction (.770 as .76999…), so they are rounded to
    /// the microsecond before the milliseconds are cut, or a stored .770 would be written .769.
    public static func timestamp(_ date: Date) -> String {
        let microseconds = (date.timeIntervalSince1970 * 1_000_000).rounded()
        let milliseconds = Int64((microseconds / 1000).rounded(.down))
        let seconds = Date(timeIntervalSince1970: TimeInterval(milliseconds.floorDivided(by: 1000)))
        let fraction = milliseconds - milliseconds.floorDivided(by: 1000) * 1000
        let whole = seconds.formatted(Date.ISO8601FormatStyle())
        return whole.dropLast() + "." + String(fraction + 1000).dropFirst() + "Z"
    }
}

extension Int64 {
    /// Division rounding toward negative infinity (dates before 1970 keep a positive remainder).
    fileprivate func floorDivided(by divisor: Int64) -> Int64 {
        let quotient = self / divisor
        return (self % divisor != 0 && (self < 0) != (divisor < 0)) ? quotient - 1 : quotient
    }
}
