import HTTPTypes

/// Turns a request into a plan against one schema cache, without the database: every check that can
/// refuse a request without its data happens here, so a plan can be tested (request → SQL or error)
/// with no PostgreSQL running.
struct Planner {
    let cache: SchemaCache
    let settings: RestSettings

    // MARK: Reads

    func read(_ request: ApiRequest) throws(RestError) -> Plan {
        let query = try QueryGrammar.parse(request.pairs)
        var builder = SQLBuilder(cache: cache, aggregatesEnabled: settings.aggregatesEnabled)
        let table = try builder.table(request.target)
        let (sql, offset) = try rows(
            query, of: table, from: builder.qualified(table.name), alias: table.name, request: request, builder: &builder)
        return Plan(statement: .query(sql), values: builder.values, writes: false, readOnly: false, shape: .rows(offset: offset))
    }

    /// The answer's statement over the rows of `table` read from `from` (the table itself, or a function
    /// call returning its rows): select with embeds, filters with `!inner` embeds, grouping, order, range,
    /// and the total `Prefer: count` asks for.
    func rows(
        _ query: ParsedQuery, of table: SchemaCache.Table, from: String, alias: String, request: ApiRequest, builder: inout SQLBuilder
    ) throws(RestError) -> (sql: String, offset: Int) {
        let (offset, limit) = request.window(query.top, maxRows: settings.maxRows)
        let (projection, groupBy) = try builder.projectionAndGrouping(query.select, table: table, alias: alias, path: "", query: query)
        let inner = try builder.innerJoinConditions(query.select, parent: table, parentAlias: alias, path: "", query: query)
        let filters = try builder.whereClause(query.top.conditions, extra: inner, table: table, alias: alias)
        let order = try builder.orderClause(query.top.order, table: table, alias: alias)
        let source = "\(from) as \(SQLBuilder.quote(alias))\(filters)"
        let sql = SQLBuilder.result(
            over: "select \(projection) from \(source)\(groupBy)\(order) limit \(limit) offset \(offset)", media: request.output,
            total: Self.total(request, projection: projection, source: source, groupBy: groupBy))
        return (sql, offset)
    }

    /// `Prefer: count=…`'s total: the rows the filters leave, or the groups when the select aggregates.
    static func total(_ request: ApiRequest, projection: String, source: String, groupBy: String) -> String {
        guard request.preferences.count != nil else { return "null" }
        return groupBy.isEmpty
            ? "select count(*) from \(source)" : "select count(*) from (select \(projection) from \(source)\(groupBy)) as \"groups\""
    }

    // MARK: Writes

    func insert(_ request: ApiRequest) throws(RestError) -> Plan {
        let query = try QueryGrammar.parse(request.pairs)
        var builder = SQLBuilder(cache: cache, aggregatesEnabled: settings.aggregatesEnabled)
        let table = try builder.table(request.target)
        let objects = try WriteBody.objects(request, allowArray: true)
        guard !objects.isEmpty else {
            // Nothing to insert: an answer without a statement.
            let sql = SQLBuilder.result(over: "select 1 where false", media: request.output)
            return Plan(
                statement: .query(sql), values: [], writes: false, readOnly: false,
                shape: .written(status: .created, table: table.name))
        }
        let groups = try WriteBody.insertGroups(
            objects, table: table, columns: query.columns, missingDefault: request.preferences.missingDefault)
        if request.bodyFormat != .csv {
            for object in objects { try WriteBody.checkKinds(object, table: table) }
        }
        let conflict = try conflictClause(
            request.preferences, onConflict: query.onConflict, table: table, keys: Set(groups.flatMap(\.columns)))
        var statements: [String] = []
        for group in groups {
            let payload = builder.bind(WriteBody.jsonText(group.objects))
            let columns = group.columns.map(SQLBuilder.quote).joined(separator: ", ")
            let relation = builder.qualified(table.name)
            let insert =
                group.columns.isEmpty
                ? "insert into \(relation) default values"
                : "insert into \(relation) (\(columns)) select \(columns) from json_populate_recordset(null::\(relation), \(payload)::json)"
            statements.append(insert + conflict.clause)
        }
        return try write(
            statements, returning: "*", upsert: conflict.upsert, table: table, query: query, builder: &builder, request: request,
            status: .created)
    }

    func update(_ request: ApiRequest) throws(RestError) -> Plan {
        let query = try QueryGrammar.parse(request.pairs)
        var builder = SQLBuilder(cache: cache, aggregatesEnabled: settings.aggregatesEnabled)
        let table = try builder.table(request.target)
        let objects = try WriteBody.objects(request, allowArray: false)
        guard let object = objects.first, !object.isEmpty else {
            throw RestError.invalidBody("PATCH needs a JSON object with the columns to change")
        }
        for key in object.keys where table.column(key) == nil { throw RestError.unknownWriteColumn(key, table: table.name) }
        try Self.requireFilter(query, statement: "UPDATE")
        if request.bodyFormat != .csv { try WriteBody.checkKinds(object, table: table) }
        let alias = table.name
        let payload = builder.bind(WriteBody.jsonText([object]))
        let record = "json_populate_recordset(null::\(builder.qualified(table.name)), \(payload)::json)"
        let assignments = object.keys.sorted().map { "\(SQLBuilder.quote($0)) = \"input\".\(SQLBuilder.quote($0))" }.joined(separator: ", ")
        let checked = WriteBody.inputCheck(table, setting: Set(object.keys), record: record)
        let filters = try builder.whereClause(query.top.conditions, extra: [checked], table: table, alias: alias)
        let statement = """
            update \(builder.qualified(table.name)) as \(SQLBuilder.quote(alias)) set \(assignments)
            from (select * from \(record) limit 1) as "input"
            \(filters)
            """
        return try write(
            [statement], returning: "\(SQLBuilder.quote(alias)).*", upsert: false, table: table, query: query, builder: &builder,
            request: request, status: .ok)
    }

    func delete(_ request: ApiRequest) throws(RestError) -> Plan {
        let query = try QueryGrammar.parse(request.pairs)
        var builder = SQLBuilder(cache: cache, aggregatesEnabled: settings.aggregatesEnabled)
        let table = try builder.table(request.target)
        try Self.requireFilter(query, statement: "DELETE")
        let alias = table.name
        let filters = try builder.whereClause(query.top.conditions, table: table, alias: alias)
        let statement = "delete from \(builder.qualified(table.name)) as \(SQLBuilder.quote(alias))\(filters)"
        return try write(
            [statement], returning: "\(SQLBuilder.quote(alias)).*", upsert: false, table: table, query: query, builder: &builder,
            request: request, status: .ok)
    }

    /// The write statements as a plan. Only when the client wants rows or a Location back do they get a
    /// RETURNING clause: returning rows needs the right to SELECT them (a writer may insert a notification
    /// for someone else without being able to read it), so `return=minimal` counts command tags instead.
    ///
    /// An upsert that returns rows answers 201 when it inserted one and 200 when every row already existed,
    /// as PostgREST: `xmax = 0` tells an inserted row from an updated one. (Without RETURNING it cannot
    /// tell, and answers 201.)
    private func write(
        _ statements: [String], returning: String, upsert: Bool, table: SchemaCache.Table, query: ParsedQuery,
        builder: inout SQLBuilder, request: ApiRequest, status: HTTPResponse.Status
    ) throws(RestError) -> Plan {
        let preferences = request.preferences
        // PostgREST limits updates and deletes; an insert changes exactly the rows sent.
        let maxAffected = status == .created ? nil : preferences.enforcedMaxAffected
        let wantsRows = preferences.returning == .representation
        let wantsLocation = preferences.returning == .headersOnly && status == .created
        guard wantsRows || wantsLocation else {
            return Plan(
                statement: .counted(statements), values: builder.values, writes: true, readOnly: false,
                shape: .written(status: status, table: table.name), maxAffected: maxAffected)
        }
        let alias = table.name
        let projection =
            wantsRows ? try builder.projection(query.select, table: table, alias: alias, path: "", query: query) : "1 as \"written\""
        let inserted = upsert ? ", (xmax = 0) as \"strive_inserted\"" : ""
        let ctes = statements.enumerated().map { "\"w\($0.offset)\" as (\($0.element) returning \(returning)\(inserted))" }
        let written = statements.indices.map { "select * from \"w\($0)\"" }.joined(separator: " union all ")
        let location = "select \(Self.locationSQL(table, alias: alias)) from \"all_written\" as \(SQLBuilder.quote(alias)) limit 1"
        // For an upsert, the total says whether any row was inserted (1) or none (0).
        let total = upsert ? "select count(*) filter (where \"strive_inserted\") from \"all_written\"" : "null"
        let sql =
            "with \(ctes.joined(separator: ", ")), \"all_written\" as (\(written))\n"
            + SQLBuilder.result(
                over: "select \(projection) from \"all_written\" as \(SQLBuilder.quote(alias))", media: request.output, total: total,
                location: location, rowsWanted: wantsRows)
        return Plan(
            statement: .query(sql), values: builder.values, writes: true, readOnly: false,
            shape: .written(status: status, table: table.name), maxAffected: maxAffected,
            requiresOneRow: wantsRows && request.output.isSingleObject)
    }

    /// `id=eq.…` for the primary key of the first written row, for `Location`.
    static func locationSQL(_ table: SchemaCache.Table, alias: String) -> String {
        guard !table.primaryKey.isEmpty else { return "null::text" }
        return table.primaryKey.map {
            "'\($0.replacingOccurrences(of: "'", with: "''"))=eq.' || \(SQLBuilder.quote(alias)).\(SQLBuilder.quote($0))::text"
        }
        .joined(separator: " || '&' || ")
    }

    /// A PATCH or DELETE without a filter would change every row the caller may change: refused, as
    /// Supabase refuses it (pg-safeupdate's SQLSTATE 21000), for every role.
    static func requireFilter(_ query: ParsedQuery, statement: String) throws(RestError) {
        guard query.top.conditions.isEmpty else { return }
        throw RestError(
            .badRequest, code: "21000", message: "\(statement) requires a WHERE clause",
            hint: "add a filter such as id=eq.<id>; to change every row on purpose, use a filter that selects them all, e.g. id=not.is.null"
        )
    }

    private func conflictClause(_ preferences: Preferences, onConflict: [String]?, table: SchemaCache.Table, keys: Set<String>)
        throws(RestError) -> (clause: String, upsert: Bool)
    {
        guard let resolution = preferences.resolution else { return ("", false) }
        let target = onConflict ?? table.primaryKey
        guard !target.isEmpty else { throw RestError.parse("upsert needs on_conflict=<columns> on a table without a primary key") }
        for column in target where table.column(column) == nil { throw RestError.unknownColumn(column, table: table.name) }
        let targetList = target.map(SQLBuilder.quote).joined(separator: ", ")
        switch resolution {
        case .ignoreDuplicates:
            return (" on conflict (\(targetList)) do nothing", false)
        case .mergeDuplicates:
            // With only the key sent, the row is still "updated" to itself, so it comes back as PostgREST's does.
            let updates = keys.subtracting(target).sorted()
            let assignments = (updates.isEmpty ? target : updates).map { "\(SQLBuilder.quote($0)) = excluded.\(SQLBuilder.quote($0))" }
            return (" on conflict (\(targetList)) do update set \(assignments.joined(separator: ", "))", true)
        }
    }
}
