/// RFC 4180 text as rows of fields: `"…"` quotes commas, line breaks and `""` (a quote); an empty
/// unquoted field is NULL (nil), as PostgREST reads CSV bodies.
enum CSVText {
    static func rows(_ text: String) throws(RestError) -> [[String?]] {
        var rows: [[String?]] = []
        var row: [String?] = []
        var field = ""
        var quoted = false
        var wasQuoted = false
        var scalars = text.unicodeScalars.makeIterator()
        var pending = scalars.next()
        func endField() {
            row.append(field.isEmpty && !wasQuoted ? nil : field)
            field = ""
            wasQuoted = false
        }
        while let scalar = pending {
            pending = scalars.next()
            if quoted {
                if scalar == "\"" {
                    if pending == "\"" {
                        field.unicodeScalars.append("\"")
                        pending = scalars.next()
                    } else {
                        quoted = false
                    }
                } else {
                    field.unicodeScalars.append(scalar)
                }
                continue
            }
            switch scalar {
            case "\"" where field.isEmpty && !wasQuoted:
                quoted = true
                wasQuoted = true
            case ",":
                endField()
            case "\r":
                continue
            case "\n":
                endField()
                rows.append(row)
                row = []
            default:
                field.unicodeScalars.append(scalar)
            }
        }
        guard !quoted else { throw .invalidBody("the CSV body ends inside a quoted field") }
        if !field.isEmpty || wasQuoted || !row.isEmpty {
            endField()
            rows.append(row)
        }
        return rows
    }
}
