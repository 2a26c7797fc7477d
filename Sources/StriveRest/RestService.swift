import Foundation
import HTTPTypes
import Logging
import PostgresNIO
import StriveCore
import StriveDatabase

/// The schema cache, loaded on first use (the pools are not running yet when routes are built) and
/// reloaded on demand after migrations without restarting.
public actor SchemaCacheStore {
    private var loaded: SchemaCache?
    private var loading: Task<SchemaCache, any Error>?
    private let database: Database
    private let logger: Logger

    public init(database: Database, logger: Logger) {
        self.database = database
        self.logger = logger
    }

    public var current: SchemaCache {
        get async throws {
            if let loaded { return loaded }
            return try await load()
        }
    }

    /// Reads the catalogs again; requests keep using the previous cache until the new one is ready.
    @discardableResult
    public func reload() async throws -> SchemaCache {
        loading = nil
        return try await load()
    }

    private func load() async throws -> SchemaCache {
        if let loading { return try await loading.value }
        let task = Task { [database, logger] in
            try await database.withAdminConnection { try await SchemaCache.load(on: $0, logger: logger) }
        }
        loading = task
        do {
            let cache = try await task.value
            loaded = cache
            loading = nil
            logger.debug(
                "loaded the data API schema cache", metadata: ["tables": "\(cache.tables.count)", "functions": "\(cache.functions.count)"])
            return cache
        } catch {
            loading = nil
            throw error
        }
    }
}

public struct RestSettings: Sendable {
    /// Most rows one response returns, like PostgREST's `db-max-rows`.
    public var maxRows: Int
    public var maxBodyBytes: Int

    public init(maxRows: Int = 1000, maxBodyBytes: Int = 1024 * 1024) {
        self.maxRows = maxRows
        self.maxBodyBytes = maxBodyBytes
    }
}

/// A finished data API answer.
public struct RestReply: Sendable {
    public var status: HTTPResponse.Status
    public var headers: HTTPFields
    public var body: String?
}

/// Executes PostgREST requests: parse → one parameterised statement → JSON built by PostgreSQL.
public struct RestService: Sendable {
    public let database: Database
    public let schema: SchemaCacheStore
    public let settings: RestSettings
    let logger: Logger

    public init(database: Database, schema: SchemaCacheStore, settings: RestSettings, logger: Logger) {
        self.database = database
        self.schema = schema
        self.settings = settings
        self.logger = logger
    }

    public struct Call: Sendable {
        public var identity: RequestIdentity
        public var anonymous: Bool
        public var query: String
        public var headers: HTTPFields
        public var body: Data?

        public init(identity: RequestIdentity, anonymous: Bool, query: String, headers: HTTPFields, body: Data?) {
            self.identity = identity
            self.anonymous = anonymous
            self.query = query
            self.headers = headers
            self.body = body
        }

        var wantsSingleObject: Bool {
            headers[values: .accept].contains { $0.contains("application/vnd.pgrst.object+json") }
        }
    }

    /// What every table request starts with: its parsed query string and preferences, a statement
    /// builder on the current schema cache, and the table, which must exist.
    private func prepare(table name: String, _ call: Call) async throws -> (ParsedQuery, Preferences, SQLBuilder, SchemaCache.Table) {
        let query = try QueryGrammar.parse(try QueryGrammar.pairs(call.query))
        let builder = SQLBuilder(cache: try await schema.current)
        return (query, try Preferences(call.headers).validated(), builder, try builder.table(name))
    }

    // MARK: Reads

    public func read(table name: String, _ call: Call, head: Bool) async throws -> RestReply {
        var (query, preferences, builder, table) = try await prepare(table: name, call)
        let (offset, limit) = try window(query.top, headers: call.headers)

        let projection = try builder.projection(query.select, table: table, alias: "t0", path: "", query: query)
        let inner = try builder.innerJoinConditions(query.select, parent: table, parentAlias: "t0", path: "", query: query)
        let filters = try builder.whereClause(query.top.conditions, extra: inner, table: table, alias: "t0")
        let order = try builder.orderClause(query.top.order, table: table, alias: "t0")
        let source = "\(SQLBuilder.qualified(table.name)) as \"t0\"\(filters)"
        let total = preferences.count == nil ? "null::bigint" : "(select count(*) from \(source))"
        let sql = """
            select coalesce(json_agg("r"), '[]'::json)::text, (json_agg("r") -> 0)::text, count("r".*)::int, \(total)::int
            from (select \(projection) from \(source)\(order) limit \(limit) offset \(offset)) as "r"
            """
        let (array, first, rows, count) = try await run(
            sql, builder, columns: "body text, first text, rows int, total int", call, writes: false
        ) { row in
            try row.decode((String, String?, Int, Int?).self)
        }
        return try readReply(
            array: array, first: first, rows: rows, total: count, offset: offset, call: call, preferences: preferences, head: head)
    }

    private func readReply(
        array: String, first: String?, rows: Int, total: Int?, offset: Int, call: Call, preferences: Preferences, head: Bool
    ) throws -> RestReply {
        if let total, total > 0, offset > 0, offset >= total {
            throw RestError.invalidRange("Requested range not satisfiable: offset \(offset) is past the \(total) rows")
        }
        var headers: HTTPFields = [:]
        let range = rows == 0 ? "*" : "\(offset)-\(offset + rows - 1)"
        headers[.contentRange] = "\(range)/\(total.map(String.init) ?? "*")"
        if let applied = preferences.applied { headers[.preferenceApplied] = applied }
        var body = array
        if call.wantsSingleObject {
            guard rows == 1, let first else { throw RestError.notSingle(rows) }
            body = first
            headers[.contentType] = "application/vnd.pgrst.object+json; charset=utf-8"
        } else {
            headers[.contentType] = "application/json; charset=utf-8"
        }
        let partial = total.map { offset > 0 || rows < $0 } ?? false
        return RestReply(status: partial && !call.wantsSingleObject ? .partialContent : .ok, headers: headers, body: head ? nil : body)
    }

    /// offset and limit from `offset=`/`limit=` or the `Range` header, capped at `maxRows`.
    func window(_ resource: ResourceQuery, headers: HTTPFields) throws(RestError) -> (offset: Int, limit: Int) {
        var offset = resource.offset ?? 0
        var limit = resource.limit
        if let range = headers[.range], headers[.rangeUnit].map({ $0 == "items" }) ?? true {
            let bounds = range.replacingOccurrences(of: "items=", with: "").split(separator: "-", omittingEmptySubsequences: false)
            guard bounds.count == 2, let start = Int(bounds[0]), start >= 0 else {
                throw .invalidRange("Range must look like 0-24")
            }
            offset = start
            if let end = Int(bounds[1]) {
                guard end >= start else { throw .invalidRange("Range end \(end) is before its start \(start)") }
                limit = min(limit ?? Int.max, end - start + 1)
            }
        }
        return (offset, min(limit ?? settings.maxRows, settings.maxRows))
    }

    // MARK: Writes

    public func insert(table name: String, _ call: Call) async throws -> RestReply {
        var (query, preferences, builder, table) = try await prepare(table: name, call)
        // PostgREST limits updates and deletes; an insert changes exactly the rows sent.
        preferences.maxAffected = nil
        let objects = try Self.objects(call.body, allowArray: true)
        guard !objects.isEmpty else {
            return try writeReply(array: "[]", rows: 0, status: .created, call: call, preferences: preferences, table: table)
        }

        let groups = try Self.insertGroups(objects, table: table, columns: query.columns, missingDefault: preferences.missingDefault)
        for object in objects { try Self.checkKinds(object, table: table) }
        let conflict = try conflictClause(
            preferences: preferences, onConflict: query.onConflict, table: table, keys: Set(groups.flatMap(\.columns)))
        var statements: [String] = []
        for group in groups {
            let payload = builder.bind(Self.jsonText(group.objects))
            let columns = group.columns.map(SQLBuilder.quote).joined(separator: ", ")
            let insert =
                group.columns.isEmpty
                ? "insert into \(SQLBuilder.qualified(table.name)) default values"
                : "insert into \(SQLBuilder.qualified(table.name)) (\(columns)) select \(columns) from json_populate_recordset(null::\(SQLBuilder.qualified(table.name)), \(payload)::json)"
            statements.append(insert + conflict)
        }
        return try await write(
            statements, returning: "*", table: table, query: query, builder: &builder, call: call, preferences: preferences,
            status: .created)
    }

    public func update(table name: String, _ call: Call) async throws -> RestReply {
        var (query, preferences, builder, table) = try await prepare(table: name, call)
        let objects = try Self.objects(call.body, allowArray: false)
        guard let object = objects.first, !object.isEmpty else {
            throw RestError.invalidBody("PATCH needs a JSON object with the columns to change")
        }
        for key in object.keys where table.column(key) == nil { throw RestError.unknownWriteColumn(key, table: name) }
        try Self.requireFilter(query, statement: "UPDATE")
        try Self.checkKinds(object, table: table)
        let payload = builder.bind(Self.jsonText([object]))
        let record = "json_populate_recordset(null::\(SQLBuilder.qualified(table.name)), \(payload)::json)"
        let assignments = object.keys.sorted().map { "\(SQLBuilder.quote($0)) = \"input\".\(SQLBuilder.quote($0))" }.joined(separator: ", ")
        let checked = Self.inputCheck(table, setting: Set(object.keys), record: record)
        let filters = try builder.whereClause(query.top.conditions, extra: [checked], table: table, alias: "t0")
        let statement = """
            update \(SQLBuilder.qualified(table.name)) as "t0" set \(assignments)
            from (select * from \(record) limit 1) as "input"
            \(filters)
            """
        return try await write(
            [statement], returning: "\"t0\".*", table: table, query: query, builder: &builder, call: call, preferences: preferences,
            status: .ok)
    }

    /// The values of a PATCH, checked before any row is touched: their types (by reading them as a row of
    /// the table) and the table's CHECK constraints whose columns the body all sets (the others depend on
    /// the stored row, which PostgreSQL checks when it writes it). Without it a PATCH that matches no row
    /// would accept values no row could ever hold. A condition without references to the updated rows,
    /// so PostgreSQL evaluates it once, before scanning.
    static func inputCheck(_ table: SchemaCache.Table, setting keys: Set<String>, record: String) -> String {
        let cases = table.checks.filter { keys.isSuperset(of: $0.columns) }.map { check in
            "case when (\(check.expression)) is false then '\(check.name.replacingOccurrences(of: "'", with: "''"))' end"
        }
        let violations = cases.isEmpty ? "'{}'::text[]" : "array_remove(array[\(cases.joined(separator: ", "))]::text[], null)"
        let relation = table.name.replacingOccurrences(of: "'", with: "''")
        return "app.check_input('\(relation)', (select \(violations) from \(record) as \"input\"))"
    }

    public func delete(table name: String, _ call: Call) async throws -> RestReply {
        var (query, preferences, builder, table) = try await prepare(table: name, call)
        try Self.requireFilter(query, statement: "DELETE")
        let filters = try builder.whereClause(query.top.conditions, table: table, alias: "t0")
        let statement = "delete from \(SQLBuilder.qualified(table.name)) as \"t0\"\(filters)"
        return try await write(
            [statement], returning: "\"t0\".*", table: table, query: query, builder: &builder, call: call, preferences: preferences,
            status: .ok)
    }

    /// The objects of one insert, split by the columns each statement names. With `columns=` that list;
    /// with `missing=default` (or one object) each object's own keys, so absent keys take defaults; else,
    /// as PostgREST, the union of all keys with absent ones NULL — except where NULL could only fail (a
    /// NOT NULL column with a default), which takes its default instead.
    static func insertGroups(
        _ objects: [[String: JSONText]], table: SchemaCache.Table, columns: [String]?, missingDefault: Bool
    ) throws(RestError) -> [(columns: [String], objects: [[String: JSONText]])] {
        let defaulted = Set(table.columns.filter { !$0.nullable && $0.hasDefault }.map(\.name))
        let union = Set(objects.flatMap(\.keys))
        var order: [[String]] = []
        var grouped: [[String]: [[String: JSONText]]] = [:]
        for object in objects {
            let keys: [String]
            if let columns {
                keys = columns
            } else if missingDefault || objects.count == 1 {
                keys = object.keys.sorted()
            } else {
                keys = union.filter { object[$0] != nil || !defaulted.contains($0) }.sorted()
            }
            if grouped[keys] == nil { order.append(keys) }
            grouped[keys, default: []].append(object)
        }
        for keys in order {
            if let unknown = keys.first(where: { table.column($0) == nil }) {
                throw RestError.unknownWriteColumn(unknown, table: table.name)
            }
        }
        return order.map { ($0, grouped[$0] ?? []) }
    }

    /// Each value must be of the JSON kind its column takes: PostgreSQL would quietly turn `{}` into the
    /// text "{}" or "5" into the number 5, which is how client bugs become data. NULL into a NOT NULL
    /// column is refused here too (for a PATCH that matches no row PostgreSQL would never say so).
    static func checkKinds(_ object: [String: JSONText], table: SchemaCache.Table) throws(RestError) {
        for (key, value) in object {
            guard let column = table.column(key) else { continue }
            if value.kind == .null {
                guard column.nullable else {
                    throw RestError(
                        .badRequest, code: "23502",
                        message: "null value in column \"\(key)\" of relation \"\(table.name)\" violates not-null constraint")
                }
                continue
            }
            func refuse(_ expected: JSONText.Kind, _ found: JSONText.Kind, _ what: String) -> RestError {
                RestError(
                    .badRequest, code: "22P02",
                    message: "\(what) of \(table.name).\(key) must be a JSON \(expected.rawValue), not a JSON \(found.rawValue)",
                    details: "\(key) is \(column.type)")
            }
            if column.isJSON { continue }
            if column.isArray {
                guard value.kind == .array else { throw refuse(.array, value.kind, "the value") }
                let element = Self.jsonKind(type: String(column.type.dropLast(2)), category: column.elementCategory)
                if let wrong = value.elementKinds.first(where: { $0 != element && $0 != .null }) {
                    throw refuse(element, wrong, "an element")
                }
                continue
            }
            let expected = Self.jsonKind(type: column.type, category: column.category)
            if value.kind != expected { throw refuse(expected, value.kind, "the value") }
            if let string = value.string { try TemporalText.check(string, type: column.type, at: "\(table.name).\(key)") }
        }
    }

    /// An rpc argument's JSON kind, as strict as a column's: `{"slug": false}` for a text argument is a
    /// 400, not the text "false". Null passes (the function decides what it means).
    static func checkKind(_ value: JSONText, of argument: SchemaCache.Function.Argument, function: String) throws(RestError) {
        guard value.kind != .null, !argument.isJSON else { return }
        let expected: JSONText.Kind
        if argument.isArray {
            expected = .array
        } else if argument.type == "boolean" {
            expected = .boolean
        } else if ["smallint", "integer", "bigint", "real", "double precision"].contains(argument.type)
            || argument.type.hasPrefix("numeric")
        {
            expected = .number
        } else {
            expected = .string
        }
        guard value.kind != expected else { return }
        throw RestError(
            .badRequest, code: "22P02",
            message: "argument \(argument.name) of \(function) must be a JSON \(expected.rawValue), not a JSON \(value.kind.rawValue)",
            details: "\(argument.name) is \(argument.type)")
    }

    /// The JSON kind a value of this PostgreSQL type is written as.
    static func jsonKind(type: String, category: String) -> JSONText.Kind {
        if type == "boolean" { return .boolean }
        return category == "N" ? .number : .string
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

    /// PostgREST's `max-affected` with `handling=strict`: thrown inside the transaction, so it rolls back.
    static func checkAffected(_ rows: Int, _ preferences: Preferences) throws(RestError) {
        guard let limit = preferences.enforcedMaxAffected, rows > limit else { return }
        throw RestError(
            .badRequest, code: "PGRST124", message: "Query result exceeds max-affected preference constraint",
            details: "The query affects \(rows) rows")
    }

    private func conflictClause(preferences: Preferences, onConflict: [String]?, table: SchemaCache.Table, keys: Set<String>)
        throws(RestError) -> String
    {
        guard let resolution = preferences.resolution else { return "" }
        let target = onConflict ?? table.primaryKey
        guard !target.isEmpty else { throw RestError.parse("upsert needs on_conflict=<columns> on a table without a primary key") }
        for column in target where table.column(column) == nil { throw RestError.unknownColumn(column, table: table.name) }
        let targetList = target.map(SQLBuilder.quote).joined(separator: ", ")
        switch resolution {
        case .ignoreDuplicates:
            return " on conflict (\(targetList)) do nothing"
        case .mergeDuplicates:
            let updates = keys.subtracting(target).sorted().map { "\(SQLBuilder.quote($0)) = excluded.\(SQLBuilder.quote($0))" }
            return updates.isEmpty
                ? " on conflict (\(targetList)) do nothing"
                : " on conflict (\(targetList)) do update set \(updates.joined(separator: ", "))"
        }
    }

    /// Runs the write statements. Only when the client wants rows or a Location back do they get a
    /// RETURNING clause: returning rows needs the right to SELECT them (a writer may insert a notification
    /// for someone else without being able to read it), so `return=minimal` counts command tags instead.
    private func write(
        _ statements: [String], returning: String, table: SchemaCache.Table, query: ParsedQuery, builder: inout SQLBuilder,
        call: Call, preferences: Preferences, status: HTTPResponse.Status
    ) async throws -> RestReply {
        guard preferences.returning == .representation || (preferences.returning == .headersOnly && status == .created) else {
            let values = builder.values
            let rows: Int
            if preferences.enforcedMaxAffected == nil {
                rows = try await mappingErrors(call) {
                    try await database.requestWrite(call.identity, statements: statements, values: values, logger: logger)
                }
            } else {
                // Checked inside the transaction, so a larger write rolls back.
                let bindings = Self.bindings(values)
                rows = try await transaction(call) { connection in
                    var total = 0
                    for statement in statements {
                        total += try await connection.affectedRows(PostgresQuery(unsafeSQL: statement, binds: bindings), logger: logger)
                    }
                    try Self.checkAffected(total, preferences)
                    return total
                }
            }
            return try writeReply(array: "[]", rows: rows, status: status, call: call, preferences: preferences, table: table)
        }
        let wantsRows = preferences.returning == .representation
        let projection = wantsRows ? try builder.projection(query.select, table: table, alias: "t0", path: "", query: query) : "1"
        let ctes = statements.enumerated().map { "\"w\($0.offset)\" as (\($0.element) returning \(returning))" }
        let written = statements.indices.map { "select * from \"w\($0)\"" }.joined(separator: " union all ")
        let sql = """
            with \(ctes.joined(separator: ", ")), "all_written" as (\(written))
            select \(wantsRows ? "coalesce(json_agg(\"r\"), '[]'::json)::text" : "null::text"), count(*)::int,
                   (select \(Self.locationSQL(table)) from "all_written" as "t0" limit 1)
            from (select \(projection) from "all_written" as "t0") as "r"
            """
        let (array, rows, location) = try await run(
            sql, builder, columns: "body text, rows int, location text", call, writes: true, preferences: preferences
        ) { row in
            let decoded = try row.decode((String?, Int, String?).self)
            try Self.checkAffected(decoded.1, preferences)
            return decoded
        }
        var reply = try writeReply(array: array ?? "[]", rows: rows, status: status, call: call, preferences: preferences, table: table)
        if preferences.returning == .headersOnly, let location { reply.headers[.location] = "/\(table.name)?\(location)" }
        return reply
    }

    /// `id=eq.…` for the primary key of the first written row, for `Location`.
    static func locationSQL(_ table: SchemaCache.Table) -> String {
        guard !table.primaryKey.isEmpty else { return "null::text" }
        return table.primaryKey.map { "'\($0.replacingOccurrences(of: "'", with: "''"))=eq.' || \"t0\".\(SQLBuilder.quote($0))::text" }
            .joined(separator: " || '&' || ")
    }

    private func writeReply(
        array: String, rows: Int, status: HTTPResponse.Status, call: Call, preferences: Preferences, table: SchemaCache.Table
    ) throws -> RestReply {
        var headers: HTTPFields = [:]
        if let applied = preferences.applied { headers[.preferenceApplied] = applied }
        if preferences.count != nil { headers[.contentRange] = "*/\(rows)" }
        guard preferences.returning == .representation else {
            return RestReply(status: status == .created ? .created : .noContent, headers: headers, body: nil)
        }
        if call.wantsSingleObject {
            guard rows == 1 else { throw RestError.notSingle(rows) }
            let object = String(array.dropFirst().dropLast())
            headers[.contentType] = "application/vnd.pgrst.object+json; charset=utf-8"
            return RestReply(status: status, headers: headers, body: object)
        }
        headers[.contentType] = "application/json; charset=utf-8"
        return RestReply(status: status, headers: headers, body: array)
    }

    // MARK: RPC

    public func rpc(function name: String, _ call: Call, viaGet: Bool) async throws -> RestReply {
        let cache = try await schema.current
        guard let function = cache.functions[name] else { throw RestError.unknownFunction(name) }
        if viaGet && function.isVolatile {
            var error = RestError(.methodNotAllowed, code: "PGRST101", message: "\(name) changes data: call it with POST, not GET")
            error.headers[.allow] = "POST"
            throw error
        }
        let argumentNames = Set(function.arguments.map(\.name))
        let pairs = try QueryGrammar.pairs(call.query)
        let query = try QueryGrammar.parse(pairs, treatAsPlain: viaGet ? argumentNames : [])
        let preferences = try Preferences(call.headers).validated()
        if preferences.enforcedMaxAffected != nil && !function.returnsSet {
            throw RestError(
                .badRequest, code: "PGRST128",
                message: "Function must return SETOF or TABLE when max-affected preference is used with handling=strict")
        }
        var builder = SQLBuilder(cache: cache)

        // Arguments: a JSON object in a POST body, query parameters in a GET.
        var provided: [String: (json: String?, text: String?)] = [:]
        if viaGet {
            for (key, value) in query.plain { provided[key] = (nil, value) }
        } else if let body = call.body, !body.isEmpty {
            guard let object = try? JSONDecoder().decode([String: JSONText].self, from: body) else {
                throw RestError.invalidBody("an rpc body must be a JSON object of named arguments")
            }
            for (key, value) in object {
                if let argument = function.arguments.first(where: { $0.name == key }) {
                    try Self.checkKind(value, of: argument, function: name)
                }
                provided[key] = (value.text, nil)
            }
        }
        if let unknown = provided.keys.sorted().first(where: { !argumentNames.contains($0) }) {
            throw RestError(
                .notFound, code: "PGRST202",
                message:
                    "Could not find the function public.\(name)(\(provided.keys.sorted().joined(separator: ", "))) in the schema cache",
                details: "unknown argument \(unknown)",
                hint: "\(name) takes: \(function.arguments.map { "\($0.name) \($0.type)" }.joined(separator: ", "))")
        }
        var arguments: [String] = []
        for argument in function.arguments {
            guard let value = provided[argument.name] else {
                if argument.hasDefault { continue }
                throw RestError(
                    .notFound, code: "PGRST202",
                    message:
                        "Could not find the function public.\(name)(\(provided.keys.sorted().joined(separator: ", "))) in the schema cache",
                    hint: "missing argument \(argument.name) \(argument.type)")
            }
            let expression: String
            if let text = value.text {
                expression = "(\(builder.bind(text)))::\(argument.type)"
            } else {
                let json = builder.bind(value.json ?? "null")
                if argument.isJSON {
                    expression = "(\(json))::\(argument.type)"
                } else if argument.isArray {
                    expression = "(select array_agg(e) from json_array_elements_text((\(json))::json) as e)::\(argument.type)"
                } else {
                    expression = "((\(json))::json #>> '{}')::\(argument.type)"
                }
            }
            arguments.append("\(SQLBuilder.quote(argument.name)) => \(expression)")
        }
        let callSQL = "\"public\".\(SQLBuilder.quote(function.name))(\(arguments.joined(separator: ", ")))"

        if let tableName = function.returnsTable, let table = cache.tables[tableName] {
            let (offset, limit) = try window(query.top, headers: call.headers)
            let projection = try builder.projection(query.select, table: table, alias: "t0", path: "", query: query)
            let filters = try builder.whereClause(query.top.conditions, table: table, alias: "t0")
            let order = try builder.orderClause(query.top.order, table: table, alias: "t0")
            let sql = """
                select coalesce(json_agg("r"), '[]'::json)::text, (json_agg("r") -> 0)::text, count("r".*)::int
                from (select \(projection) from \(callSQL) as "t0"\(filters)\(order) limit \(limit) offset \(offset)) as "r"
                """
            let (array, first, rows) = try await run(
                sql, builder, columns: "body text, first text, rows int", call, writes: true, preferences: preferences
            ) { row in
                let decoded = try row.decode((String, String?, Int).self)
                try Self.checkAffected(decoded.2, preferences)
                return decoded
            }
            if !function.returnsSet {
                // A single composite row: PostgREST answers the object itself.
                return RestReply(status: .ok, headers: [.contentType: "application/json; charset=utf-8"], body: first ?? "null")
            }
            return try readReply(
                array: array, first: first, rows: rows, total: nil, offset: offset, call: call, preferences: preferences, head: false)
        }
        let sql =
            function.returnsSet
            ? "select coalesce(json_agg(\"r\"), '[]'::json)::text, count(*)::int from \(callSQL) as \"r\""
            : "select to_json(\(callSQL))::text, 1"
        let body = try await run(sql, builder, columns: "body text, rows int", call, writes: true, preferences: preferences) { row in
            let (text, rows) = try row.decode((String?, Int).self)
            try Self.checkAffected(rows, preferences)
            return text
        }
        if function.returnType == "void" {
            return RestReply(status: .noContent, headers: [:], body: nil)
        }
        return RestReply(status: .ok, headers: [.contentType: "application/json; charset=utf-8"], body: body ?? "null")
    }

    /// The methods `/rest/v1/rpc/<name>` takes, when they are fewer than the route's: a function that
    /// changes data is called with POST only. Nil for anything else.
    public func methods(ofRPC name: String) async -> [HTTPRequest.Method]? {
        guard let function = try? await schema.current.functions[name], function.isVolatile else { return nil }
        return [.post]
    }

    // MARK: Execution

    /// Runs the request's one statement and decodes its one row. In one round trip
    /// (`Database.requestStatement`; `writes` adds one to confirm the commit, functions count as
    /// writes whatever the method) unless `preferences` enforce max-affected: `decode` checks that,
    /// and its error must roll the statement back, so that case runs in a transaction of its own.
    private func run<T: Sendable>(
        _ sql: String, _ builder: SQLBuilder, columns: String, _ call: Call, writes: Bool, preferences: Preferences? = nil,
        decode: @Sendable (PostgresRow) throws -> T
    ) async throws -> T {
        let values = builder.values
        if preferences?.enforcedMaxAffected != nil {
            return try await transaction(call) { connection in
                try decode(
                    Self.onlyRow(try await connection.rows(PostgresQuery(unsafeSQL: sql, binds: Self.bindings(values)), logger: logger)))
            }
        }
        let rows = try await mappingErrors(call) {
            try await database.requestStatement(
                call.identity, statement: sql, values: values, columns: columns, writes: writes,
                logger: logger)
        }
        return try decode(Self.onlyRow(rows))
    }

    /// The one row every request statement answers with.
    private static func onlyRow(_ rows: [PostgresRow]) throws(RestError) -> PostgresRow {
        guard let row = rows.first else { throw RestError(.internalServerError, code: "PGRST000", message: "the query returned no row") }
        return row
    }

    /// The builder's values as the one text[] parameter its statements read.
    static func bindings(_ values: [String]) -> PostgresBindings {
        var bindings = PostgresBindings()
        bindings.append(values)
        return bindings
    }

    /// The caller's request transaction; database refusals become PostgREST errors.
    private func transaction<T: Sendable>(_ call: Call, _ body: (PostgresConnection) async throws -> T) async throws -> T {
        try await mappingErrors(call) { try await database.withRequestTransaction(call.identity, logger: logger, body) }
    }

    /// `body`, with database refusals turned into PostgREST errors.
    private func mappingErrors<T>(_ call: Call, _ body: () async throws -> T) async throws -> T {
        do {
            return try await body()
        } catch let error as RestError {
            throw error
        } catch {
            guard let fields = DatabaseError.serverFields(in: error) else { throw error }
            throw RestError.database(fields, anonymous: call.anonymous)
        }
    }

    /// The body as a list of JSON objects, each key's value kept as JSON text.
    static func objects(_ body: Data?, allowArray: Bool) throws(RestError) -> [[String: JSONText]] {
        guard let body, !body.isEmpty else { throw .invalidBody("the request body must be JSON") }
        if let object = try? JSONDecoder().decode([String: JSONText].self, from: body) { return [object] }
        if allowArray, let array = try? JSONDecoder().decode([[String: JSONText]].self, from: body) { return array }
        if (try? JSONSerialization.jsonObject(with: body, options: [.fragmentsAllowed])) == nil {
            throw .invalidBody("the request body is not valid JSON")
        }
        throw .invalidBody(allowArray ? "the body must be a JSON object or an array of objects" : "the body must be a JSON object")
    }

    static func jsonText(_ objects: [[String: JSONText]]) -> String {
        "["
            + objects.map { object in
                "{" + object.keys.sorted().map { key in "\(JSONText.quoted(key)):\(object[key]?.text ?? "null")" }.joined(separator: ",")
                    + "}"
            }.joined(separator: ",") + "]"
    }
}

/// Any JSON value kept as its compact text, so values reach PostgreSQL exactly as the client wrote them.
struct JSONText: Decodable, Sendable {
    let text: String
    let kind: Kind
    /// For an array, its elements' kinds.
    let elementKinds: [Kind]
    /// For a string, its value.
    private(set) var string: String? = nil

    enum Kind: String, Sendable {
        case null, boolean, number, string, array, object
    }

    /// Numbers keep the digits the client sent where a Double would round them: bigint values beyond
    /// 2^53 and numeric values with many digits reach PostgreSQL exactly. (Numbers nested inside a json
    /// value still pass through a Double.)
    init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        if !container.decodeNil(), (try? container.decode(Bool.self)) == nil {
            if let integer = try? container.decode(Int64.self) {
                (text, kind, elementKinds) = (String(integer), .number, [])
                return
            }
            if let decimal = try? container.decode(Decimal.self), decimal.isFinite {
                (text, kind, elementKinds) = (decimal.description, .number, [])
                return
            }
        }
        let value = try JSONValue(from: decoder)
        text = value.jsonText
        kind = Self.kind(of: value)
        if case .string(let value) = value { string = value }
        if case .array(let elements) = value { elementKinds = elements.map(Self.kind) } else { elementKinds = [] }
    }

    static func kind(of value: JSONValue) -> Kind {
        switch value {
        case .null: .null
        case .bool: .boolean
        case .number: .number
        case .string: .string
        case .array: .array
        case .object: .object
        }
    }

    static func quoted(_ key: String) -> String {
        JSONValue.string(key).jsonText
    }
}
