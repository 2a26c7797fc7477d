/// The CBOR (RFC 8949) that WebAuthn authenticators speak: attestation objects and COSE keys. Only what
/// those use is decoded — integers, byte and text strings, arrays, maps, booleans, null — definite lengths
/// only, nesting bounded; anything else is refused, never guessed at. No package of the project's mirror
/// reads CBOR, hence this small one.
public indirect enum CBOR: Sendable, Equatable, Hashable {
    case unsigned(UInt64)
    case negative(UInt64) // the value is -1 - n
    case bytes([UInt8])
    case text(String)
    case array([CBOR])
    case map([CBOR: CBOR])
    case bool(Bool)
    case null

    public struct Malformed: Error, Equatable, Sendable {
        public let reason: String
    }

    /// Decodes one item from the start of `bytes`; `consumed` says how many bytes it took (authenticator
    /// data is followed by extensions, an attestation object must be exactly one item).
    public static func decode(_ bytes: [UInt8]) throws(Malformed) -> (value: CBOR, consumed: Int) {
        var reader = Reader(bytes: bytes)
        let value = try reader.item(depth: 0)
        return (value, reader.offset)
    }

    public subscript(key: CBOR) -> CBOR? {
        if case .map(let map) = self { return map[key] }
        return nil
    }

    public subscript(text key: String) -> CBOR? { self[.text(key)] }

    public subscript(int key: Int) -> CBOR? { self[key >= 0 ? .unsigned(UInt64(key)) : .negative(UInt64(-1 - key))] }

    public var bytesValue: [UInt8]? {
        if case .bytes(let value) = self { return value }
        return nil
    }

    public var textValue: String? {
        if case .text(let value) = self { return value }
        return nil
    }

    public var intValue: Int? {
        switch self {
        case .unsigned(let value) where value <= UInt64(Int.max): Int(value)
        case .negative(let value) where value < UInt64(Int.max): -1 - Int(value)
        default: nil
        }
    }

    struct Reader {
        let bytes: [UInt8]
        var offset = 0
        static let maximumDepth = 16

        mutating func byte() throws(Malformed) -> UInt8 {
            guard offset < bytes.count else { throw Malformed(reason: "ends in the middle of an item") }
            defer { offset += 1 }
            return bytes[offset]
        }

        mutating func take(_ count: UInt64) throws(Malformed) -> ArraySlice<UInt8> {
            guard count <= UInt64(bytes.count - offset) else { throw Malformed(reason: "a length runs past the end") }
            let end = offset + Int(count)
            defer { offset = end }
            return bytes[offset..<end]
        }

        mutating func argument(_ info: UInt8) throws(Malformed) -> UInt64 {
            switch info {
            case 0..<24: return UInt64(info)
            case 24: return UInt64(try byte())
            case 25, 26, 27:
                let width = 1 << (info - 24)
                return try take(UInt64(width)).reduce(0) { $0 << 8 | UInt64($1) }
            default: throw Malformed(reason: "indefinite lengths and reserved values are not used by WebAuthn")
            }
        }

        mutating func item(depth: Int) throws(Malformed) -> CBOR {
            guard depth < Self.maximumDepth else { throw Malformed(reason: "nested too deeply") }
            let initial = try byte()
            let major = initial >> 5
            let info = initial & 0x1F
            if major == 7 {
                switch info {
                case 20: return .bool(false)
                case 21: return .bool(true)
                case 22, 23: return .null
                default: throw Malformed(reason: "floats and simple values are not used by WebAuthn")
                }
            }
            let argument = try argument(info)
            switch major {
            case 0: return .unsigned(argument)
            case 1: return .negative(argument)
            case 2: return .bytes(Array(try take(argument)))
            case 3:
                guard let text = String(validating: try take(argument), as: UTF8.self) else {
                    throw Malformed(reason: "a text string is not UTF-8")
                }
                return .text(text)
            case 4:
                guard argument <= UInt64(bytes.count - offset) else { throw Malformed(reason: "an array longer than the input") }
                var items: [CBOR] = []
                for _ in 0..<argument { items.append(try item(depth: depth + 1)) }
                return .array(items)
            case 5:
                guard argument <= UInt64(bytes.count - offset) else { throw Malformed(reason: "a map longer than the input") }
                var map: [CBOR: CBOR] = [:]
                for _ in 0..<argument {
                    let key = try item(depth: depth + 1)
                    guard map[key] == nil else { throw Malformed(reason: "a map repeats a key") }
                    map[key] = try item(depth: depth + 1)
                }
                return .map(map)
            default:
                throw Malformed(reason: "tags are not used by WebAuthn")
            }
        }
    }
}
