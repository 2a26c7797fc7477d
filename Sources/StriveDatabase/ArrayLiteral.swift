/// PostgreSQL's array input syntax, for arrays that travel inside the one `text[]` parameter of a
/// single-round-trip statement (`Database.requestStatement`) and are cast there.
public enum ArrayLiteral {
    /// Every element quoted, so none is read as NULL or split.
    public static func text(_ elements: [String]) -> String {
        "{"
            + elements.map { element in
                "\"" + element.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\"", with: "\\\"") + "\""
            }.joined(separator: ",") + "}"
    }

    public static func integers(_ elements: [Int]) -> String {
        "{" + elements.map(String.init).joined(separator: ",") + "}"
    }
}
