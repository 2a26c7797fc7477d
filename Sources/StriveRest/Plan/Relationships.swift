import StriveCore

/// How a parent row reaches an embedded resource, found in the schema cache as PostgREST finds it.
struct Relationship: Sendable {
    enum Path: Sendable {
        /// A foreign key; `parentHoldsKey` when the parent's columns reference the child (many-to-one).
        case foreignKey(SchemaCache.ForeignKey, parentHoldsKey: Bool)
        /// Through a junction table holding a key to each side (many-to-many).
        case junction(table: String, toParent: SchemaCache.ForeignKey, toChild: SchemaCache.ForeignKey)
        /// A function of the parent's row returning the child's rows (a computed relationship).
        case function(String)
    }

    let parent: String
    let child: String
    let path: Path
    /// The embedded value is one object (or null) rather than an array.
    let toOne: Bool

    var cardinality: String {
        switch path {
        case .foreignKey(_, let parentHoldsKey): parentHoldsKey ? "many-to-one" : (toOne ? "one-to-one" : "one-to-many")
        case .junction: "many-to-many"
        case .function: toOne ? "many-to-one" : "one-to-many"
        }
    }

    var isThroughView: Bool {
        if case .foreignKey(let key, _) = path { return key.throughView }
        return false
    }

    /// What disambiguates it in `child!<hint>`: the constraint (or junction table) name.
    var hintName: String {
        switch path {
        case .foreignKey(let key, _): key.name
        case .junction(let table, _, _): table
        case .function(let name): name
        }
    }

    /// PostgREST's description of one candidate in PGRST201's details.
    var description: JSONValue {
        let relationship: String
        switch path {
        case .foreignKey(let key, let parentHoldsKey):
            let own = "\(key.table)(\(key.columns.joined(separator: ", ")))"
            let referenced = "\(key.referencedTable)(\(key.referencedColumns.joined(separator: ", ")))"
            relationship = "\(key.name) using " + (parentHoldsKey ? "\(own) and \(referenced)" : "\(referenced) and \(own)")
        case .junction(let table, let toParent, let toChild):
            relationship =
                "\(table) using \(toParent.name)(\(toParent.columns.joined(separator: ", "))) and \(toChild.name)(\(toChild.columns.joined(separator: ", ")))"
        case .function(let name):
            relationship = "\(name) using \(parent) and \(child)"
        }
        return .object([
            "cardinality": .string(cardinality), "embedding": .string("\(parent) with \(child)"), "relationship": .string(relationship),
        ])
    }

    /// Whether `hint` (from `child!hint`) names this relationship: its constraint, one of its columns, or
    /// for many-to-many its junction table.
    func matches(hint: String) -> Bool {
        switch path {
        case .foreignKey(let key, _): key.name == hint || key.columns == [hint]
        case .junction(let table, let toParent, let toChild): table == hint || toParent.name == hint || toChild.name == hint
        case .function(let name): name == hint
        }
    }
}

extension SchemaCache {
    /// The one relationship `embed` names from `parent`: by the other table's name, a foreign key's
    /// constraint name or column, or a computed relationship's function; `!hint` chooses among several.
    /// None is PGRST200, several PGRST201 with each candidate described.
    func relationship(from parent: String, to embed: Embed) throws(RestError) -> Relationship {
        let target = embed.relation
        var candidates: [Relationship] = []
        if let computed = computedRelationships[parent]?[target] {
            candidates = [Relationship(parent: parent, child: computed.table, path: .function(computed.function), toOne: computed.toOne)]
        } else if tables[target] != nil {
            for key in foreignKeys {
                // A self-reference by the table's name reads as its children; the parent row is reached
                // through the key's column or constraint name, as in PostgREST.
                if key.table == parent && key.referencedTable == target && parent != target {
                    candidates.append(
                        Relationship(parent: parent, child: target, path: .foreignKey(key, parentHoldsKey: true), toOne: true))
                }
                if key.referencedTable == parent && key.table == target {
                    candidates.append(reverse(key))
                }
            }
            candidates += junctions(from: parent, to: target)
        } else {
            for key in foreignKeys where key.name == target {
                if key.table == parent {
                    candidates.append(
                        Relationship(parent: parent, child: key.referencedTable, path: .foreignKey(key, parentHoldsKey: true), toOne: true))
                } else if key.referencedTable == parent {
                    candidates.append(reverse(key))
                }
            }
            if candidates.isEmpty {
                for key in foreignKeys where key.table == parent && key.columns == [target] {
                    candidates.append(
                        Relationship(parent: parent, child: key.referencedTable, path: .foreignKey(key, parentHoldsKey: true), toOne: true))
                }
            }
            // A constraint or column names the key itself: its table, before the views that repeat it.
            let direct = candidates.filter { !$0.isThroughView }
            if !direct.isEmpty { candidates = direct }
        }
        if let hint = embed.hint {
            candidates = candidates.filter { $0.matches(hint: hint) }
        }
        guard let first = candidates.first else { throw .noRelationship(parent, target, hint: embed.hint, schema: schema) }
        guard candidates.count == 1 else {
            throw .ambiguousRelationship(parent, target, candidates: candidates)
        }
        return first
    }

    /// A key of `key.table` onto the parent, read from the parent: one-to-one when its columns are unique.
    private func reverse(_ key: ForeignKey) -> Relationship {
        let unique = tables[key.table]?.uniqueKeys.contains(Set(key.columns)) ?? false
        return Relationship(parent: key.referencedTable, child: key.table, path: .foreignKey(key, parentHoldsKey: false), toOne: unique)
    }

    /// Tables holding a key to `parent` and another to `child`, both within its primary key (as PostgREST
    /// recognises a junction: a table with a foreign key to each side is not one by that alone).
    private func junctions(from parent: String, to child: String) -> [Relationship] {
        var result: [Relationship] = []
        for junction in tables.keys.sorted() where junction != parent && junction != child {
            let primaryKey = Set(tables[junction]?.primaryKey ?? [])
            let keys = foreignKeys.filter { $0.table == junction && Set($0.columns).isSubset(of: primaryKey) }
            for toParent in keys where toParent.referencedTable == parent {
                for toChild in keys where toChild.referencedTable == child && toChild.name != toParent.name {
                    result.append(
                        Relationship(
                            parent: parent, child: child, path: .junction(table: junction, toParent: toParent, toChild: toChild),
                            toOne: false))
                }
            }
        }
        return result
    }
}
