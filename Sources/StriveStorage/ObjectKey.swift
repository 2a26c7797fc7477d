/// An object's name within its bucket, validated: it becomes a metadata value and a URL path, never a
/// filesystem path (the blob store files bytes under ids it makes itself).
public struct ObjectKey: Sendable, Hashable, CustomStringConvertible {
    public let value: String
    public var description: String { value }

    public static let maximumBytes = 1024

    public enum Problem: Error, Sendable, Equatable, CustomStringConvertible {
        case empty
        case tooLong(bytes: Int)
        case leadingSlash
        case emptySegment
        case dotSegment
        case controlCharacter
        case backslash

        public var description: String {
            switch self {
            case .empty: "the object key is empty"
            case .tooLong(let bytes): "the object key is \(bytes) bytes; at most \(ObjectKey.maximumBytes) are allowed"
            case .leadingSlash: "the object key must not start with /"
            case .emptySegment: "the object key must not contain empty segments (//) or end with /"
            case .dotSegment: "the object key must not contain . or .. segments"
            case .controlCharacter: "the object key must not contain control characters"
            case .backslash: "the object key must not contain backslashes"
            }
        }
    }

    /// `raw` must already be percent-decoded, so `%2e%2e` arrives here as `..` and is refused.
    public init(_ raw: String) throws(Problem) {
        guard !raw.isEmpty else { throw .empty }
        let bytes = raw.utf8.count
        guard bytes <= Self.maximumBytes else { throw .tooLong(bytes: bytes) }
        guard !raw.hasPrefix("/") else { throw .leadingSlash }
        guard !raw.unicodeScalars.contains(where: { $0.properties.generalCategory == .control }) else { throw .controlCharacter }
        guard !raw.contains("\\") else { throw .backslash }
        for segment in raw.split(separator: "/", omittingEmptySubsequences: false) {
            if segment.isEmpty { throw .emptySegment }
            if segment == "." || segment == ".." { throw .dotSegment }
        }
        value = raw
    }

    /// The folders before the file name, as `storage.foldername()` returns them.
    public var folders: [Substring] {
        Array(value.split(separator: "/").dropLast())
    }
}
