/// QR codes (ISO/IEC 18004) for the `otpauth://` URI of a new TOTP factor, drawn as SVG: byte mode, error
/// correction level M, versions 1 to 10 (up to 213 bytes). No package this project may use draws them.
public struct QRCode: Sendable, Equatable {
    public let version: Int
    /// Rows of modules, true = dark; `size` × `size`.
    public let modules: [[Bool]]
    public var size: Int { modules.count }

    public enum EncodingError: Error, Equatable {
        case tooLong(Int)
    }

    /// For each version 1…10 at level M: error-correction codewords per block, then (blocks, data codewords)
    /// of the first and second group.
    static let blocksM: [(ecc: Int, groups: [(count: Int, data: Int)])] = [
        (10, [(1, 16)]), (16, [(1, 28)]), (26, [(1, 44)]), (18, [(2, 32)]), (24, [(2, 43)]),
        (16, [(4, 27)]), (18, [(4, 31)]), (22, [(2, 38), (2, 39)]), (22, [(3, 36), (2, 37)]), (26, [(4, 43), (1, 44)]),
    ]
    static let alignmentCentres: [[Int]] = [
        [], [6, 18], [6, 22], [6, 26], [6, 30], [6, 34], [6, 22, 38], [6, 24, 42], [6, 26, 46], [6, 28, 50],
    ]

    public init(_ text: String) throws(EncodingError) {
        let bytes = Array(text.utf8)
        guard
            let version = (1...10).first(where: { version in
                let capacity = Self.blocksM[version - 1].groups.reduce(0) { $0 + $1.count * $1.data }
                return 4 + (version < 10 ? 8 : 16) + bytes.count * 8 <= capacity * 8
            })
        else { throw .tooLong(bytes.count) }
        self.version = version
        var matrix = Matrix(size: version * 4 + 17)
        matrix.drawFunctionPatterns(version: version, alignment: Self.alignmentCentres[version - 1])
        matrix.drawCodewords(Self.codewords(bytes, version: version))
        // The mask with the lowest penalty; any of the eight decodes, this one reads best.
        var best: Matrix?
        var bestPenalty = Int.max
        for mask in 0..<8 {
            var candidate = matrix
            candidate.apply(mask: mask)
            candidate.drawFormatBits(mask: mask)
            let penalty = candidate.penalty()
            if penalty < bestPenalty {
                best = candidate
                bestPenalty = penalty
            }
        }
        modules = (best ?? matrix).modules
    }

    /// The code as an SVG image with a 4-module quiet zone, as a `data:` URI (what GoTrue's `qr_code` holds).
    public static func svgDataURI(_ text: String) -> String {
        guard let code = try? QRCode(text) else { return "" }
        return "data:image/svg+xml;utf-8," + code.svg
    }

    public var svg: String {
        let extent = size + 8
        var path = ""
        for (y, row) in modules.enumerated() {
            for (x, dark) in row.enumerated() where dark { path += "M\(x + 4),\(y + 4)h1v1h-1z" }
        }
        return "<svg xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 \(extent) \(extent)\" shape-rendering=\"crispEdges\">"
            + "<rect width=\"\(extent)\" height=\"\(extent)\" fill=\"#fff\"/><path fill=\"#000\" d=\"\(path)\"/></svg>"
    }

    // MARK: Codewords

    /// Mode, length, data, terminator and padding, split into blocks with their Reed-Solomon codewords,
    /// interleaved.
    static func codewords(_ bytes: [UInt8], version: Int) -> [UInt8] {
        let layout = blocksM[version - 1]
        let capacity = layout.groups.reduce(0) { $0 + $1.count * $1.data }
        var bits: [Bool] = []
        func append(_ value: Int, _ count: Int) {
            for shift in stride(from: count - 1, through: 0, by: -1) { bits.append((value >> shift) & 1 == 1) }
        }
        append(0b0100, 4)
        append(bytes.count, version < 10 ? 8 : 16)
        for byte in bytes { append(Int(byte), 8) }
        append(0, min(4, capacity * 8 - bits.count))
        append(0, (8 - bits.count % 8) % 8)
        var data: [UInt8] = stride(from: 0, to: bits.count, by: 8).map { start in
            bits[start..<start + 8].reduce(UInt8(0)) { ($0 << 1) | ($1 ? 1 : 0) }
        }
        var pad: UInt8 = 0xEC
        while data.count < capacity {
            data.append(pad)
            pad = pad == 0xEC ? 0x11 : 0xEC
        }

        let divisor = ReedSolomon.divisor(degree: layout.ecc)
        var blocks: [(data: [UInt8], ecc: [UInt8])] = []
        var offset = 0
        for group in layout.groups {
            for _ in 0..<group.count {
                let block = Array(data[offset..<offset + group.data])
                blocks.append((block, ReedSolomon.remainder(block, divisor: divisor)))
                offset += group.data
            }
        }
        var result: [UInt8] = []
        for index in 0..<(blocks.map(\.data.count).max() ?? 0) {
            for block in blocks where index < block.data.count { result.append(block.data[index]) }
        }
        for index in 0..<layout.ecc {
            for block in blocks { result.append(block.ecc[index]) }
        }
        return result
    }

    enum ReedSolomon {
        /// Product in GF(2^8) modulo x^8 + x^4 + x^3 + x^2 + 1.
        static func multiply(_ a: UInt8, _ b: UInt8) -> UInt8 {
            var product: Int = 0
            for shift in stride(from: 7, through: 0, by: -1) {
                product = (product << 1) ^ ((product >> 7) * 0x11D)
                product ^= ((Int(b) >> shift) & 1) * Int(a)
            }
            return UInt8(product & 0xFF)
        }

        /// The generator polynomial (x − α^0)…(x − α^(degree−1)), highest coefficient implied.
        static func divisor(degree: Int) -> [UInt8] {
            var result = [UInt8](repeating: 0, count: degree)
            result[degree - 1] = 1
            var root: UInt8 = 1
            for _ in 0..<degree {
                for index in 0..<degree {
                    result[index] = multiply(result[index], root)
                    if index + 1 < degree { result[index] ^= result[index + 1] }
                }
                root = multiply(root, 0x02)
            }
            return result
        }

        static func remainder(_ data: [UInt8], divisor: [UInt8]) -> [UInt8] {
            var result = [UInt8](repeating: 0, count: divisor.count)
            for byte in data {
                let factor = byte ^ result.removeFirst()
                result.append(0)
                for index in result.indices { result[index] ^= multiply(divisor[index], factor) }
            }
            return result
        }
    }

    // MARK: The matrix

    struct Matrix: Equatable {
        var modules: [[Bool]]
        var isFunction: [[Bool]]
        let size: Int

        init(size: Int) {
            self.size = size
            modules = Array(repeating: Array(repeating: false, count: size), count: size)
            isFunction = modules
        }

        mutating func set(_ x: Int, _ y: Int, _ dark: Bool) {
            modules[y][x] = dark
            isFunction[y][x] = true
        }

        mutating func drawFunctionPatterns(version: Int, alignment: [Int]) {
            for index in 0..<size {
                set(6, index, index % 2 == 0)
                set(index, 6, index % 2 == 0)
            }
            for (cx, cy) in [(3, 3), (size - 4, 3), (3, size - 4)] {
                for dy in -4...4 {
                    for dx in -4...4 where (0..<size).contains(cx + dx) && (0..<size).contains(cy + dy) {
                        let distance = max(abs(dx), abs(dy))
                        set(cx + dx, cy + dy, distance != 2 && distance != 4)
                    }
                }
            }
            let last = alignment.count - 1
            for (i, cx) in alignment.enumerated() {
                for (j, cy) in alignment.enumerated() where !((i == 0 && j == 0) || (i == 0 && j == last) || (i == last && j == 0)) {
                    for dy in -2...2 {
                        for dx in -2...2 { set(cx + dx, cy + dy, max(abs(dx), abs(dy)) != 1) }
                    }
                }
            }
            // Reserve the format areas now (drawn for real with the mask), and the version blocks.
            drawFormatBits(mask: 0)
            if version >= 7 {
                var remainder = version
                for _ in 0..<12 { remainder = (remainder << 1) ^ ((remainder >> 11) * 0x1F25) }
                let bits = version << 12 | remainder
                for index in 0..<18 {
                    let dark = (bits >> index) & 1 == 1
                    let a = size - 11 + index % 3
                    let b = index / 3
                    set(a, b, dark)
                    set(b, a, dark)
                }
            }
        }

        /// Level M (00) and the mask, BCH-protected, twice around the finders; plus the dark module.
        mutating func drawFormatBits(mask: Int) {
            let data = (0b00 << 3) | mask
            var remainder = data
            for _ in 0..<10 { remainder = (remainder << 1) ^ ((remainder >> 9) * 0x537) }
            let bits = (data << 10 | remainder) ^ 0x5412
            func bit(_ index: Int) -> Bool { (bits >> index) & 1 == 1 }
            for index in 0...5 { set(8, index, bit(index)) }
            set(8, 7, bit(6))
            set(8, 8, bit(7))
            set(7, 8, bit(8))
            for index in 9..<15 { set(14 - index, 8, bit(index)) }
            for index in 0..<8 { set(size - 1 - index, 8, bit(index)) }
            for index in 8..<15 { set(8, size - 15 + index, bit(index)) }
            set(8, size - 8, true)
        }

        /// The zig-zag of two-module columns from the bottom right, skipping the vertical timing pattern.
        mutating func drawCodewords(_ data: [UInt8]) {
            var index = 0
            var right = size - 1
            while right >= 1 {
                if right == 6 { right = 5 }
                for vertical in 0..<size {
                    for offset in 0..<2 {
                        let x = right - offset
                        let upward = (right + 1) & 2 == 0
                        let y = upward ? size - 1 - vertical : vertical
                        if !isFunction[y][x] && index < data.count * 8 {
                            modules[y][x] = (data[index >> 3] >> (7 - (index & 7))) & 1 == 1
                            index += 1
                        }
                    }
                }
                right -= 2
            }
        }

        mutating func apply(mask: Int) {
            for y in 0..<size {
                for x in 0..<size where !isFunction[y][x] {
                    let invert: Bool
                    switch mask {
                    case 0: invert = (x + y) % 2 == 0
                    case 1: invert = y % 2 == 0
                    case 2: invert = x % 3 == 0
                    case 3: invert = (x + y) % 3 == 0
                    case 4: invert = (x / 3 + y / 2) % 2 == 0
                    case 5: invert = x * y % 2 + x * y % 3 == 0
                    case 6: invert = (x * y % 2 + x * y % 3) % 2 == 0
                    default: invert = ((x + y) % 2 + x * y % 3) % 2 == 0
                    }
                    if invert { modules[y][x].toggle() }
                }
            }
        }

        /// The standard's penalty rules 1 (runs of five or more), 2 (2×2 blocks), 3 (finder-like patterns)
        /// and 4 (dark/light balance).
        func penalty() -> Int {
            var total = 0
            let columns = (0..<size).map { x in (0..<size).map { modules[$0][x] } }
            for line in modules + columns {
                var run = 1
                for index in 1..<size {
                    if line[index] == line[index - 1] {
                        run += 1
                        if run == 5 { total += 3 } else if run > 5 { total += 1 }
                    } else {
                        run = 1
                    }
                }
                let pattern: [Bool] = [true, false, true, true, true, false, true]
                for start in 0...(size - 7) where Array(line[start..<start + 7]) == pattern {
                    let before = start >= 4 && line[(start - 4)..<start].allSatisfy { !$0 }
                    let after = start + 11 <= size && line[(start + 7)..<(start + 11)].allSatisfy { !$0 }
                    if before || after { total += 40 }
                }
            }
            for y in 0..<(size - 1) {
                for x in 0..<(size - 1) {
                    let colour = modules[y][x]
                    if modules[y][x + 1] == colour && modules[y + 1][x] == colour && modules[y + 1][x + 1] == colour { total += 3 }
                }
            }
            let dark = modules.reduce(0) { $0 + $1.filter { $0 }.count }
            let cells = size * size
            let deviation = abs(dark * 20 - cells * 10)
            total += max(0, (deviation + cells - 1) / cells - 1) * 10
            return total
        }
    }
}
