import PostgresNIO
import StriveDatabase

/// Builds one parameterised statement. Identifiers come only from the schema cache and are quoted;
/// values only ever become parameters; type names come from the catalogs or a fixed list.
///
/// All values travel as one text[] parameter, `$1`, and the statement reads `$1[n]` cast to the type it
/// needs: the statement runs through `app.run_request`'s EXECUTE … USING, which takes a fixed number of
/// values (migration 0010).
struct SQLBuilder {
    let cache: SchemaCache
    /// The values, in the order `$1[n]` numbers them.
    private(set) var values: [String] = []
    private var aliasCounter = 0

    /// PostgREST's db-aggregates-enabled: `count()`, `col.sum()` … in `select`.
    let aggregatesEnabled: Bool

    init(cache: SchemaCache, aggregatesEnabled: Bool = false) {
        self.cache = cache
        self.aggregatesEnabled = aggregatesEnabled
    }

    /// Casts a request may ask for in `select=col::type`.
    static let allowedCasts: [String: String] = [
        "text": "text", "varchar": "text", "int": "integer", "integer": "integer", "int4": "integer", "bigint": "bigint",
        "int8": "bigint", "smallint": "smallint", "numeric": "numeric", "float": "double precision", "float8": "double precision",
        "real": "real", "double": "double precision", "boolean": "boolean", "bool": "boolean", "json": "json", "jsonb": "jsonb",
        "date": "date", "timestamptz": "timestamp with time zone", "timestamp": "timestamp without time zone", "uuid": "uuid",
        "time": "time",
    ]

    static func quote(_ identifier: String) -> String {
        "\"" + identifier.replacingOccurrences(of: "\"", with: "\"\"") + "\""
    }

    /// A table or function of the cache's schema, quoted.
    func qualified(_ name: String) -> String {
        Self.quote(cache.schema) + "." + Self.quote(name)
    }

    /// A text value; the caller casts it.
    mutating func bind(_ value: String) -> String {
        values.append(value)
        return "($1[\(values.count)])"
    }

    /// A list of text values, as a text[] (written as an array literal inside the one text[] parameter).
    mutating func bind(_ list: [String]) -> String {
        values.append(ArrayLiteral.text(list))
        return "($1[\(values.count)])::text[]"
    }

    /// A fresh alias for an embedded table, `<table>_<n>` as PostgREST names them, so plans read alike.
    mutating func nextAlias(for table: String) -> String {
        aliasCounter += 1
        return "\(table)_\(aliasCounter)"
    }

    /// The answer's one row over the rows of `source` (a query whose rows become the response, aliased
    /// "r"): the rows in the answer's media type, the first row alone, how many, the total and Location.
    static func result(
        over source: String, media: OutputMedia, total: String = "null", location: String = "null", rowsWanted: Bool = true
    ) -> String {
        let body = rowsWanted ? Self.body(media) : "null::text"
        let first = media.nullsStripped ? "json_strip_nulls(json_agg(\"r\") -> 0)::text" : "(json_agg(\"r\") -> 0)::text"
        return """
            select \(body), \(rowsWanted ? first : "null::text"), count("r".*)::int, (\(total))::bigint, (\(location))::text
            from (\(source)) as "r"
            """
    }

    /// The rows of "r" in the answer's media type.
    static func body(_ media: OutputMedia) -> String {
        switch media {
        case .csv:
            // RFC 4180: a field is quoted when it holds a comma, quote or line break, or is the empty
            // string (so it differs from NULL, which is empty). Key order is the select list's.
            func quoted(_ value: String) -> String {
                "case when \(value) is null then '' when \(value) = '' or translate(\(value), ',\"' || chr(10) || chr(13), '') <> \(value) then '\"' || replace(\(value), '\"', '\"\"') || '\"' else \(value) end"
            }
            let header =
                "(select string_agg(\(quoted("h.k")), ',' order by h.n) from json_object_keys(row_to_json(\"r\")) with ordinality as h(k, n))"
            let line =
                "(select string_agg(\(quoted("f.v")), ',' order by f.n) from json_each_text(row_to_json(\"r\")) with ordinality as f(k, v, n))"
            return "coalesce(min(\(header)) || chr(10) || string_agg(\(line), chr(10)), '')"
        case .json(true), .object(true):
            return "json_strip_nulls(coalesce(json_agg(\"r\"), '[]'::json))::text"
        default:
            return "coalesce(json_agg(\"r\"), '[]'::json)::text"
        }
    }

    func table(_ name: String) throws(RestError) -> SchemaCache.Table {
        guard let table = cache.tables[name] else { throw .unknownTable(name, schema: cache.schema) }
        return table
    }

    func column(_ name: String, of table: SchemaCache.Table) throws(RestError) -> SchemaCache.Column {
        guard let column = table.column(name) else { throw .unknownColumn(name, table: table.name) }
        return column
    }

    // MARK: Projection

    /// One entry of a select list: its SQL expression and the key it appears under (nil for `alias.*`).
    struct Selected {
        var expression: String
        var key: String?
        var isAggregate = false
    }

    /// The select list of `table` (aliased `alias`), embeds included, for the resource at `path`, and the
    /// GROUP BY its aggregates need (empty without aggregates).
    mutating func projection(_ items: [SelectItem], table: SchemaCache.Table, alias: String, path: String, query: ParsedQuery)
        throws(RestError) -> String
    {
        try projectionAndGrouping(items, table: table, alias: alias, path: path, query: query).select
    }

    mutating func projectionAndGrouping(
        _ items: [SelectItem], table: SchemaCache.Table, alias: String, path: String, query: ParsedQuery
    ) throws(RestError) -> (select: String, groupBy: String) {
        var selected = try selectList(items, table: table, alias: alias, path: path, query: query)
        guard selected.contains(where: \.isAggregate) else {
            return (Self.render(selected), "")
        }
        // Grouped: `*` stands for the table's columns, each a grouping term.
        selected = selected.flatMap { entry in
            entry.key == nil
                ? table.columns.map { Selected(expression: "\(Self.quote(alias)).\(Self.quote($0.name))", key: $0.name) } : [entry]
        }
        let positions = selected.indices.filter { !selected[$0].isAggregate }.map { String($0 + 1) }
        return (Self.render(selected), positions.isEmpty ? "" : " group by " + positions.joined(separator: ", "))
    }

    static func render(_ selected: [Selected]) -> String {
        selected.map { entry in entry.key.map { "\(entry.expression) as \(quote($0))" } ?? entry.expression }.joined(separator: ", ")
    }

    mutating func selectList(_ items: [SelectItem], table: SchemaCache.Table, alias: String, path: String, query: ParsedQuery)
        throws(RestError) -> [Selected]
    {
        var selected: [Selected] = []
        var embedded: Set<String> = []
        for item in items {
            switch item {
            case .star:
                selected.append(Selected(expression: "\(Self.quote(alias)).*", key: nil))
            case .column(let name, let label, let cast, let jsonPath):
                let (operand, _) = try operand(name, path: jsonPath, table: table, alias: alias)
                selected.append(Selected(expression: try Self.cast(operand, to: cast), key: label ?? Self.outputName(name, path: jsonPath)))
            case .aggregate(let aggregate):
                guard aggregatesEnabled else {
                    throw RestError(.badRequest, code: "PGRST123", message: "Use of aggregate functions is not allowed")
                }
                var argument = "*"
                if let column = aggregate.column {
                    argument = try Self.cast(
                        try operand(column, path: aggregate.path, table: table, alias: alias).expression, to: aggregate.inputCast)
                }
                let expression = try Self.cast("\(aggregate.function.rawValue)(\(argument))", to: aggregate.outputCast)
                selected.append(Selected(expression: expression, key: aggregate.name, isAggregate: true))
            case .embed(let embed):
                // An embed with nothing selected only filters (with !inner); it adds no key.
                guard !embed.items.isEmpty else { continue }
                let relationship = try cache.relationship(from: table.name, to: embed)
                if embed.spread {
                    selected += try spread(embed, relationship, parentAlias: alias, path: path, query: query)
                    continue
                }
                guard embedded.insert(embed.name).inserted else {
                    let depth = path.split(separator: ".").count + 1
                    throw RestError(
                        .badRequest, code: "42712", message: "table name \"\(table.name)_\(embed.name)_\(depth)\" specified more than once")
                }
                let expression = try embedExpression(embed, relationship, parentAlias: alias, path: path, query: query)
                selected.append(Selected(expression: expression, key: embed.name))
            }
        }
        return selected
    }

    /// `column::type` for the casts a request may ask for.
    static func cast(_ expression: String, to cast: String?) throws(RestError) -> String {
        guard let cast else { return expression }
        guard let type = allowedCasts[cast.lowercased()] else {
            throw .parse("cannot cast to \(cast.prefix(30)); allowed: \(allowedCasts.keys.sorted().joined(separator: ", "))")
        }
        return "(\(expression))::\(type)"
    }

    /// Where an embedded resource's rows come from, and how they meet the parent row.
    private mutating func source(_ relationship: Relationship, parentAlias: String) throws(RestError)
        -> (table: SchemaCache.Table, alias: String, from: String, conditions: [String])
    {
        let child = try table(relationship.child)
        let childAlias = nextAlias(for: child.name)
        let parentRef = Self.quote(parentAlias)
        let childRef = Self.quote(childAlias)
        func pairs(_ left: String, _ leftColumns: [String], _ right: String, _ rightColumns: [String]) -> [String] {
            zip(leftColumns, rightColumns).map { "\(left).\(Self.quote($0)) = \(right).\(Self.quote($1))" }
        }
        switch relationship.path {
        case .foreignKey(let key, let parentHoldsKey):
            let conditions =
                parentHoldsKey
                ? pairs(childRef, key.referencedColumns, parentRef, key.columns)
                : pairs(childRef, key.columns, parentRef, key.referencedColumns)
            return (child, childAlias, "\(qualified(child.name)) as \(childRef)", conditions)
        case .junction(let junction, let toParent, let toChild):
            let junctionRef = Self.quote(nextAlias(for: junction))
            let link =
                pairs(junctionRef, toParent.columns, parentRef, toParent.referencedColumns)
                + pairs(junctionRef, toChild.columns, childRef, toChild.referencedColumns)
            let exists = "exists (select 1 from \(qualified(junction)) as \(junctionRef) where \(link.joined(separator: " and ")))"
            return (child, childAlias, "\(qualified(child.name)) as \(childRef)", [exists])
        case .function(let function):
            return (child, childAlias, "\(qualified(function))(\(parentRef)) as \(childRef)", [])
        }
    }

    mutating func embedExpression(
        _ embed: Embed, _ relationship: Relationship, parentAlias: String, path: String, query: ParsedQuery
    ) throws(RestError) -> String {
        let (child, childAlias, from, joins) = try source(relationship, parentAlias: parentAlias)
        let childPath = path.isEmpty ? embed.name : path + "." + embed.name
        let resource = query.resources[childPath] ?? ResourceQuery()
        let (columns, groupBy) = try projectionAndGrouping(embed.items, table: child, alias: childAlias, path: childPath, query: query)
        var conditions = joins
        for condition in resource.conditions { conditions.append(try sql(condition, table: child, alias: childAlias)) }
        conditions += try innerJoinConditions(embed.items, parent: child, parentAlias: childAlias, path: childPath, query: query)
        let rowAlias = Self.quote("r_" + childAlias)
        let filter = conditions.isEmpty ? "" : " where " + conditions.joined(separator: " and ")
        var inner = "select \(columns) from \(from)\(filter)\(groupBy)"
        if relationship.toOne {
            return "(select row_to_json(\(rowAlias)) from (\(inner) limit 1) as \(rowAlias))"
        }
        inner += try orderClause(resource.order, table: child, alias: childAlias)
        if let limit = resource.limit { inner += " limit \(limit)" }
        if let offset = resource.offset { inner += " offset \(offset)" }
        return "(select coalesce(json_agg(\(rowAlias)), '[]'::json) from (\(inner)) as \(rowAlias))"
    }

    /// `...relation(columns)`: each of the child's columns as a key of the parent, from its one row (null
    /// without one). Only a to-one relationship has one row to spread.
    private mutating func spread(_ embed: Embed, _ relationship: Relationship, parentAlias: String, path: String, query: ParsedQuery)
        throws(RestError) -> [Selected]
    {
        guard relationship.toOne else {
            throw RestError(
                .badRequest, code: "PGRST119", message: "A spread operation on '\(embed.relation)' is not possible",
                details: "'\(relationship.parent)' and '\(embed.relation)' do not form a many-to-one or one-to-one relationship")
        }
        let (child, childAlias, from, joins) = try source(relationship, parentAlias: parentAlias)
        let childPath = path.isEmpty ? embed.name : path + "." + embed.name
        let resource = query.resources[childPath] ?? ResourceQuery()
        var conditions = joins
        for condition in resource.conditions { conditions.append(try sql(condition, table: child, alias: childAlias)) }
        let filter = conditions.isEmpty ? "" : " where " + conditions.joined(separator: " and ")
        let entries = try selectList(embed.items, table: child, alias: childAlias, path: childPath, query: query).flatMap { entry in
            entry.key == nil
                ? child.columns.map { Selected(expression: "\(Self.quote(childAlias)).\(Self.quote($0.name))", key: $0.name) } : [entry]
        }
        return entries.map { entry in
            Selected(expression: "(select \(entry.expression) from \(from)\(filter) limit 1)", key: entry.key, isAggregate: false)
        }
    }

    /// `exists (…)` conditions for the `!inner` embeds of `items`, applied to the parent's rows.
    mutating func innerJoinConditions(
        _ items: [SelectItem], parent: SchemaCache.Table, parentAlias: String, path: String, query: ParsedQuery
    ) throws(RestError) -> [String] {
        var result: [String] = []
        for case .embed(let embed) in items where embed.inner {
            let relationship = try cache.relationship(from: parent.name, to: embed)
            let (child, childAlias, from, joins) = try source(relationship, parentAlias: parentAlias)
            let childPath = path.isEmpty ? embed.name : path + "." + embed.name
            let resource = query.resources[childPath] ?? ResourceQuery()
            var conditions = joins
            for condition in resource.conditions { conditions.append(try sql(condition, table: child, alias: childAlias)) }
            conditions += try innerJoinConditions(embed.items, parent: child, parentAlias: childAlias, path: childPath, query: query)
            result.append("exists (select 1 from \(from)\(conditions.isEmpty ? "" : " where " + conditions.joined(separator: " and ")))")
        }
        return result
    }

    // MARK: Conditions and order

    mutating func whereClause(_ conditions: [Condition], extra: [String] = [], table: SchemaCache.Table, alias: String) throws(RestError)
        -> String
    {
        let parts =
            try conditions.map { (condition: Condition) throws(RestError) -> String in try sql(condition, table: table, alias: alias) }
            + extra
        return parts.isEmpty ? "" : " where " + parts.joined(separator: " and ")
    }

    mutating func sql(_ condition: Condition, table: SchemaCache.Table, alias: String) throws(RestError) -> String {
        switch condition {
        case .filter(let filter):
            return try sql(filter, table: table, alias: alias)
        case .all(let children, let negated), .any(let children, let negated):
            let joiner: String
            if case .all = condition { joiner = " and " } else { joiner = " or " }
            let inner = try children.map { (child: Condition) throws(RestError) -> String in try sql(child, table: table, alias: alias) }
            let group = "(" + inner.joined(separator: joiner) + ")"
            return negated ? "not " + group : group
        }
    }

    mutating func sql(_ filter: Filter, table: SchemaCache.Table, alias: String) throws(RestError) -> String {
        let (target, column) = try operand(filter.column, path: filter.path, table: table, alias: alias)
        let text = "(\(target))::text"
        let expression: String
        // Only where the value is read as the column's type (not `is.null`, not a text pattern).
        if let quantifier = filter.quantifier {
            return try quantified(filter, quantifier: quantifier, column: column, target: target)
        }
        let typedValues: [String] =
            switch filter.op {
            case .eq, .neq, .gt, .gte, .lt, .lte, .isdistinct: [filter.value]
            case .in: filter.list
            default: []
            }
        for value in typedValues { try TemporalText.check(value, type: column.type, at: "filter on \(column.name)") }
        switch filter.op {
        case .eq, .neq, .gt, .gte, .lt, .lte:
            let symbol = ["eq": "=", "neq": "<>", "gt": ">", "gte": ">=", "lt": "<", "lte": "<="][filter.op.rawValue] ?? "="
            expression = "\(target) \(symbol) \(bind(filter.value))::\(column.type)"
        case .isdistinct:
            expression = "\(target) is distinct from \(bind(filter.value))::\(column.type)"
        case .like:
            expression = "\(text) like \(bind(filter.value.replacingOccurrences(of: "*", with: "%")))"
        case .ilike:
            expression = "\(text) ilike \(bind(filter.value.replacingOccurrences(of: "*", with: "%")))"
        case .match:
            expression = "\(text) ~ \(bind(filter.value))"
        case .imatch:
            expression = "\(text) ~* \(bind(filter.value))"
        case .is:
            switch filter.value.lowercased() {
            case "null": expression = "\(target) is null"
            case "not_null": expression = "\(target) is not null"
            case "true": expression = "\(target) is true"
            case "false": expression = "\(target) is false"
            default: expression = "\(target) is unknown"
            }
        case .in:
            expression = "\(target) = any ((\(bind(filter.list)))::\(column.type)[])"
        case .cs, .cd, .ov, .sl, .sr, .nxr, .nxl, .adj:
            let symbols: [FilterOperator: String] = [
                .cs: "@>", .cd: "<@", .ov: "&&", .sl: "<<", .sr: ">>", .nxr: "&<", .nxl: "&>", .adj: "-|-",
            ]
            guard column.isArray || column.isJSON || column.type.contains("range") else {
                throw .parse("\(filter.op.rawValue) applies to array, JSON and range columns; \(column.name) is \(column.type)")
            }
            expression = "\(target) \(symbols[filter.op] ?? "@>") \(bind(filter.value))::\(column.type)"
        case .fts, .plfts, .phfts, .wfts:
            let function =
                ["fts": "to_tsquery", "plfts": "plainto_tsquery", "phfts": "phraseto_tsquery", "wfts": "websearch_to_tsquery"][
                    filter.op.rawValue] ?? "to_tsquery"
            let vector =
                column.type == "tsvector" ? target : "to_tsvector(\(filter.language.map { "\(bind($0))::regconfig, " } ?? "")\(text))"
            let config = filter.language.map { "\(bind($0))::regconfig, " } ?? ""
            expression = "\(vector) @@ \(function)(\(config)\(bind(filter.value)))"
        }
        return filter.negated ? "not (\(expression))" : expression
    }

    /// `op(any|all).{a,b}`: the array literal is read as an array of the column's type (or of text for the
    /// pattern operators) and compared with `op ANY|ALL (…)`.
    private mutating func quantified(_ filter: Filter, quantifier: FilterQuantifier, column: SchemaCache.Column, target: String)
        throws(RestError) -> String
    {
        let symbols: [FilterOperator: String] = [
            .eq: "=", .neq: "<>", .gt: ">", .gte: ">=", .lt: "<", .lte: "<=", .like: "like", .ilike: "ilike", .match: "~", .imatch: "~*",
        ]
        guard let symbol = symbols[filter.op] else { throw .parse("\(filter.op.rawValue) takes no (any)/(all) modifier") }
        let pattern = [.like, .ilike].contains(filter.op)
        let operand: String
        let left: String
        if pattern || filter.op == .match || filter.op == .imatch {
            left = "(\(target))::text"
            operand = "(\(bind(pattern ? filter.value.replacingOccurrences(of: "*", with: "%") : filter.value)))::text[]"
        } else {
            left = target
            operand = "(\(bind(filter.value)))::\(column.type)[]"
        }
        let expression = "\(left) \(symbol) \(quantifier.rawValue)(\(operand))"
        return filter.negated ? "not (\(expression))" : expression
    }

    mutating func orderClause(_ terms: [OrderTerm], table: SchemaCache.Table, alias: String) throws(RestError) -> String {
        guard !terms.isEmpty else { return "" }
        var parts: [String] = []
        for term in terms {
            let (expression, _) = try operand(term.column, path: term.path, table: table, alias: alias)
            var part = "\(expression) \(term.descending ? "desc" : "asc")"
            if let nullsFirst = term.nullsFirst { part += nullsFirst ? " nulls first" : " nulls last" }
            parts.append(part)
        }
        return " order by " + parts.joined(separator: ", ")
    }

    // MARK: Operands

    /// What a name in `select`, a filter or `order` stands for on `table`: a column, a computed field (a
    /// function of the table's row, `"public"."f"(alias)`), or either followed by a JSON path. The
    /// column describes the operand's type; a path's keys become parameters, its indexes numbers.
    mutating func operand(_ name: String, path: [JSONPathStep], table: SchemaCache.Table, alias: String) throws(RestError)
        -> (expression: String, column: SchemaCache.Column)
    {
        var expression: String
        var column: SchemaCache.Column
        if let found = table.column(name) {
            column = found
            expression = "\(Self.quote(alias)).\(Self.quote(found.name))"
        } else if let field = cache.computedFields[table.name]?[name] {
            column = field.column
            expression = "\(qualified(field.function))(\(Self.quote(alias)))"
        } else {
            throw .unknownColumn(name, table: table.name)
        }
        guard !path.isEmpty else { return (expression, column) }
        if !column.isJSON { expression = "to_jsonb(\(expression))" }
        for step in path {
            let key = step.index.map(String.init) ?? bind(step.key)
            expression = "(\(expression) \(step.asText ? "->>" : "->") \(key))"
        }
        let asText = path.last?.asText == true
        if !asText { expression = "(\(expression))::jsonb" }
        column = SchemaCache.Column(
            name: column.name, type: asText ? "text" : "jsonb", category: asText ? "S" : "U", nullable: true, hasDefault: false,
            isArray: false, isJSON: !asText)
        return (expression, column)
    }

    /// The key a selected operand appears under: its JSON path's last key (an index names nothing, so the
    /// key before it, or the column), as PostgREST names it.
    static func outputName(_ name: String, path: [JSONPathStep]) -> String {
        path.last { $0.index == nil }?.key ?? name
    }
}
