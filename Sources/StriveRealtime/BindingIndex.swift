import StriveCore

/// The `postgres_changes` bindings of every channel, arranged once per batch so that a change visits
/// only the bindings that can match it: by table, and for `column=eq.value` filters on a non-numeric
/// value (where ChangeFilter compares case-insensitive text, so a lookup of the lowercased value is
/// exact) by the changed row's value of that column.
/// With a thousand sockets each filtering on its own project, a change touches its project's channels,
/// not all of them. Callers still check each binding (event, and the filter itself).
struct BindingIndex {
    typealias Entry = (key: ChannelKey, binding: Binding)

    private struct Table: Hashable {
        let schema: String
        let table: String
    }

    private struct Column: Hashable {
        let schema: String
        let table: String
        let column: String
    }

    /// Bindings that must be checked against every change of their table (`*`: of their schema).
    private var scanned: [Table: [Entry]] = [:]
    /// Bindings with an indexable equality filter, by table and column, then by value.
    private var byValue: [Column: [String: [Entry]]] = [:]
    private var indexedColumns: [Table: Set<String>] = [:]

    init(_ channels: [ChannelKey: Channel]) {
        for (key, channel) in channels {
            for binding in channel.bindings {
                let table = Table(schema: binding.schema, table: binding.table)
                if let filter = binding.filter, filter.op == .eq, let value = filter.values.first, Double(value) == nil {
                    byValue[Column(schema: binding.schema, table: binding.table, column: filter.column), default: [:]][
                        value.lowercased(), default: []
                    ]
                    .append((key, binding))
                    indexedColumns[table, default: []].insert(filter.column)
                } else {
                    scanned[table, default: []].append((key, binding))
                }
            }
        }
    }

    /// The bindings that may match `change`, whose filterable row is `record`.
    func bindings(for change: Change, record: [String: JSONValue]) -> [Entry] {
        var found: [Entry] = []
        for table in [Table(schema: change.schema, table: change.table), Table(schema: change.schema, table: "*")] {
            found += scanned[table] ?? []
            for column in indexedColumns[table] ?? [] {
                guard let field = record[column], let value = ChangeFilter.text(field) else { continue }
                found += byValue[Column(schema: table.schema, table: table.table, column: column)]?[value.lowercased()] ?? []
            }
        }
        return found
    }
}
