import Foundation

/// JSON as the Supabase services write it: sorted keys, unescaped slashes, ISO 8601 dates with
/// fractional seconds. One encoder for every surface that returns rows with dates.
public enum SupabaseJSON {
    public static let encoder: JSONEncoder = {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        encoder.dateEncodingStrategy = .custom { date, encoder in
            var container = encoder.singleValueContainer()
            try container.encode(date.formatted(Date.ISO8601FormatStyle(includingFractionalSeconds: true)))
        }
        return encoder
    }()
}
