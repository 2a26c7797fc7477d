/// A URL query string decoded the way HTML forms and every Supabase client encode it: pairs split on
/// `&`, key and value split on the first `=`, `+` read as a space and `%XX` as a byte (RFC 3986 +
/// `application/x-www-form-urlencoded`). postgrest-py and httpx send `name=eq.Customer+7`, so a decoder
/// that keeps `+` answers their filters wrongly. Every surface reads query strings through this type.
public struct QueryString: Sendable, Equatable {
    /// The pairs in order, repeats kept (PostgREST allows `id=gt.1&id=lt.9`).
    public let pairs: [(key: String, value: String)]

    /// A pair whose key or value holds `%` not followed by two hex digits, or bytes that are not UTF-8.
    public struct MalformedError: Error, Sendable, Equatable {
        /// The offending `key=value` as sent, shortened for error messages.
        public let part: String
    }

    public init(pairs: [(key: String, value: String)]) {
        self.pairs = pairs
    }

    /// Decodes `raw` (the part after `?`, without it). Empty parts (`a=1&&b=2`) are skipped.
    public init(_ raw: some StringProtocol) throws(MalformedError) {
        var pairs: [(key: String, value: String)] = []
        for part in raw.utf8.split(separator: UInt8(ascii: "&"), omittingEmptySubsequences: true) {
            let equals = part.firstIndex(of: UInt8(ascii: "="))
            let keyBytes = equals.map { part[part.startIndex..<$0] } ?? part[...]
            let valueBytes = equals.map { part[part.index(after: $0)...] } ?? part[part.endIndex...]
            guard let key = Self.decode(keyBytes), let value = Self.decode(valueBytes) else {
                throw MalformedError(part: String(decoding: part.prefix(80), as: UTF8.self))
            }
            pairs.append((key, value))
        }
        self.pairs = pairs
    }

    /// Decodes `raw`, treating a malformed query string as empty: for routes whose parameters are all
    /// optional hints (`?download`) and where refusing the request would help nobody.
    public init(lenient raw: (some StringProtocol)?) {
        self = (try? QueryString(raw ?? "")) ?? QueryString(pairs: [])
    }

    /// The first value of `key`, if present.
    public subscript(_ key: String) -> String? {
        pairs.first { $0.key == key }?.value
    }

    public static func == (lhs: QueryString, rhs: QueryString) -> Bool {
        lhs.pairs.map(\.key) == rhs.pairs.map(\.key) && lhs.pairs.map(\.value) == rhs.pairs.map(\.value)
    }

    /// One component: `+` → space, `%XX` → byte; nil when an escape is cut short or not hex, or the
    /// result is not UTF-8.
    static func decode(_ bytes: some Collection<UInt8>) -> String? {
        // Fast path: most keys and many values need no decoding at all.
        if !bytes.contains(where: { $0 == UInt8(ascii: "%") || $0 == UInt8(ascii: "+") }) {
            return String(validating: bytes, as: UTF8.self)
        }
        var output: [UInt8] = []
        output.reserveCapacity(bytes.count)
        var index = bytes.startIndex
        while index != bytes.endIndex {
            let byte = bytes[index]
            switch byte {
            case UInt8(ascii: "+"):
                output.append(UInt8(ascii: " "))
            case UInt8(ascii: "%"):
                let high = bytes.index(after: index)
                guard high != bytes.endIndex else { return nil }
                let low = bytes.index(after: high)
                guard low != bytes.endIndex, let h = hexValue(bytes[high]), let l = hexValue(bytes[low]) else { return nil }
                output.append(h << 4 | l)
                index = low
            default:
                output.append(byte)
            }
            index = bytes.index(after: index)
        }
        return String(validating: output, as: UTF8.self)
    }

    private static func hexValue(_ byte: UInt8) -> UInt8? {
        switch byte {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): byte - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): byte - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): byte - UInt8(ascii: "A") + 10
        default: nil
        }
    }
}
