import Foundation

/// Plans `rpc/<name>`: chooses the function among its overloads by the arguments the call names, reads
/// the arguments (a JSON object, the whole body for a single unnamed parameter, or the query string of a
/// GET), and treats a function returning rows like a table: `select=`, filters, order, range and counts
/// apply to its result.
extension Planner {
    /// Query parameters that are never function arguments.
    static let reservedParameters: Set<String> = [
        "select", "order", "limit", "offset", "on_conflict", "columns", "or", "and", "not.or", "not.and",
    ]

    func call(_ request: ApiRequest) throws(RestError) -> Plan {
        guard let candidates = cache.overloads[request.target], !candidates.isEmpty else {
            throw RestError.unknownFunction(request.target, schema: cache.schema)
        }
        let viaQuery = request.action != .call(method: .post)
        let arguments = try ProvidedArguments(request, candidates: candidates, viaQuery: viaQuery)
        let function = try Self.choose(request.target, among: candidates, for: arguments, schema: cache.schema)
        let argumentNames = Set(function.arguments.map(\.name))
        let query = try QueryGrammar.parse(
            viaQuery ? request.pairs.filter { !argumentNames.contains($0.0) } : request.pairs)
        if request.preferences.enforcedMaxAffected != nil && !function.returnsSet {
            throw RestError(
                .badRequest, code: "PGRST128",
                message: "Function must return SETOF or TABLE when max-affected preference is used with handling=strict")
        }
        var builder = SQLBuilder(cache: cache, aggregatesEnabled: settings.aggregatesEnabled)
        let callSQL = try callExpression(function, arguments, builder: &builder)
        let writes = !request.isRead
        let maxAffected = request.preferences.enforcedMaxAffected

        if !function.resultColumns.isEmpty {
            // Rows with columns: filtered, ordered and projected like a table's.
            let table = SchemaCache.Table(
                name: function.name, isView: true, columns: function.resultColumns, primaryKey: [], insertable: false)
            let (sql, offset) = try rows(query, of: table, from: callSQL, alias: function.name, request: request, builder: &builder)
            return Plan(
                statement: .query(sql), values: builder.values, writes: writes, readOnly: request.isRead,
                shape: function.returnsSet ? .rows(offset: offset) : .single, maxAffected: maxAffected)
        }
        guard query.select == [.star] else {
            throw RestError.parse("\(function.name) returns \(function.returnType), which has no columns to select")
        }
        if function.returnsSet {
            let (offset, limit) = request.window(query.top, maxRows: settings.maxRows)
            let total = request.preferences.count == nil ? "null" : "select count(*) from \(callSQL)"
            let source = "select * from \(callSQL) as \"value\" limit \(limit) offset \(offset)"
            // A set of scalars is answered as PostgREST does, an array of the values themselves: [1, 2].
            let sql =
                request.output == .csv
                ? SQLBuilder.result(over: source, media: request.output, total: total)
                : """
                select coalesce(json_agg("r"."value"), '[]'::json)::text, (json_agg("r"."value") -> 0)::text, count(*)::int,
                       (\(total))::bigint, null::text
                from (\(source)) as "r"
                """
            return Plan(
                statement: .query(sql), values: builder.values, writes: writes, readOnly: request.isRead, shape: .rows(offset: offset),
                maxAffected: maxAffected)
        }
        let total = request.preferences.count == nil ? "null" : "1"
        let sql = "select to_json(\(callSQL))::text, null::text, 1, \(total)::bigint, null::text"
        return Plan(
            statement: .query(sql), values: builder.values, writes: writes, readOnly: request.isRead,
            shape: function.returnType == "void" ? .void : .scalar, maxAffected: maxAffected)
    }

    /// The overload the call's arguments name, by PostgREST's rules: with no parameters, no argument;
    /// every required parameter given; every argument given a parameter (an unnamed one is named ""). When
    /// none fits, a POST goes to a function whose one unnamed parameter takes the whole body. Only
    /// functions PostgREST can call are candidates: all parameters named, or exactly one unnamed of
    /// type json, jsonb, text, xml or bytea. More than one fit is PostgREST's 300 PGRST203.
    static func choose(_ name: String, among all: [SchemaCache.Function], for arguments: ProvidedArguments, schema: String)
        throws(RestError)
        -> SchemaCache.Function
    {
        let candidates = all.filter(\.isCallable)
        let given = Set(arguments.named.keys)
        var fits = candidates.filter { function in
            let names = Set(function.arguments.map(\.name))
            let required = Set(function.arguments.filter { !$0.hasDefault }.map(\.name))
            return given.isSubset(of: names) && required.isSubset(of: given)
        }
        if fits.isEmpty, let format = arguments.wholeBodyFormat {
            fits = candidates.filter { $0.takesWholeBody(format) }
        }
        guard let first = fits.first else {
            let names = given.sorted().joined(separator: ", ")
            let searched =
                given.isEmpty ? "without parameters" : (given.count == 1 ? "with parameter \(names)" : "with parameters \(names)")
            throw RestError(
                .notFound, code: "PGRST202",
                message: given.isEmpty
                    ? "Could not find the function \(schema).\(name) without parameters in the schema cache"
                    : "Could not find the function \(schema).\(name)(\(names)) in the schema cache",
                details: "Searched for the function \(schema).\(name) \(searched) or with a single unnamed json/jsonb parameter,"
                    + " but no matches were found in the schema cache.")
        }
        guard fits.count == 1 else {
            let ordered = fits.sorted { ($0.arguments.count, $0.signature(in: schema)) < ($1.arguments.count, $1.signature(in: schema)) }
            throw RestError(
                .multipleChoices, code: "PGRST203",
                message: "Could not choose the best candidate function between: "
                    + ordered.map { $0.signature(in: schema) }.joined(separator: ", "),
                hint: "Try renaming the parameters or the function itself in the database so function overloading can be resolved")
        }
        return first
    }

    /// `"public"."f"(a => …, b => …)`, each value cast to its parameter's type.
    private func callExpression(_ function: SchemaCache.Function, _ arguments: ProvidedArguments, builder: inout SQLBuilder)
        throws(RestError) -> String
    {
        let name = builder.qualified(function.name)
        if function.arguments.count == 1 && function.arguments[0].name.isEmpty {
            // PostgREST passes a single unnamed parameter the body as sent.
            return "\(name)((\(builder.bind(arguments.wholeBody ?? "")))::\(function.arguments[0].type))"
        }
        var parts: [String] = []
        for (index, argument) in function.arguments.enumerated() {
            guard let value = arguments.named[argument.name] else { continue }
            if case .json(let json) = value { try WriteBody.checkKind(json, of: argument, function: function.name) }
            let expression: String
            switch value {
            case .text(let text):
                expression = "(\(builder.bind(text)))::\(argument.type)"
            case .texts(let texts):
                expression = "(\(builder.bind(texts)))::\(argument.type)"
            case .json(let json):
                let bound = builder.bind(json.text)
                if argument.isJSON {
                    expression = "(\(bound))::\(argument.type)"
                } else if argument.isComposite {
                    expression = "json_populate_record(null::\(argument.type), (\(bound))::json)"
                } else if argument.isArray {
                    expression = "(select array_agg(e) from json_array_elements_text((\(bound))::json) as e)::\(argument.type)"
                } else {
                    expression = "((\(bound))::json #>> '{}')::\(argument.type)"
                }
            }
            let variadic = function.isVariadic && index == function.arguments.count - 1 ? "variadic " : ""
            parts.append("\(variadic)\(SQLBuilder.quote(argument.name)) => \(expression)")
        }
        return "\(name)(\(parts.joined(separator: ", ")))"
    }
}

/// The arguments of one call, as the client gave them.
struct ProvidedArguments {
    enum Value {
        /// From a POST body: JSON, read as the parameter's type.
        case json(JSONText)
        /// From a query string: text, read as the parameter's type.
        case text(String)
        /// A repeated query parameter, for an array parameter.
        case texts([String])
    }

    var named: [String: Value] = [:]
    /// The body as sent, for a function with one unnamed parameter.
    var wholeBody: String?
    /// How that body is written; nil without a body.
    var wholeBodyFormat: ApiRequest.BodyFormat?

    init(_ request: ApiRequest, candidates: [SchemaCache.Function], viaQuery: Bool) throws(RestError) {
        if viaQuery {
            let parameters = Set(candidates.flatMap { $0.arguments.map(\.name) }).subtracting(Planner.reservedParameters)
            var values: [String: [String]] = [:]
            for (key, value) in request.pairs where parameters.contains(key) { values[key, default: []].append(value) }
            let arrays = Set(candidates.flatMap { $0.arguments.filter(\.isArray).map(\.name) })
            for (key, list) in values {
                named[key] = arrays.contains(key) ? .texts(list) : .text(list[list.count - 1])
            }
            return
        }
        guard let body = request.body, !body.isEmpty else { return }
        let text = String(decoding: body, as: UTF8.self)
        wholeBody = text
        wholeBodyFormat = request.bodyFormat
        if request.bodyFormat != .json { return }
        guard let object = try? JSONDecoder().decode([String: JSONText].self, from: body) else {
            guard (try? JSONSerialization.jsonObject(with: body, options: [.fragmentsAllowed])) != nil else {
                throw .invalidBody("the request body is not valid JSON")
            }
            // An array or a scalar can only be the one argument of a function taking the whole body.
            guard candidates.contains(where: { $0.takesWholeBody(.json) }) else {
                throw .invalidBody("an rpc body must be a JSON object of named arguments")
            }
            return
        }
        for (key, value) in object { named[key] = .json(value) }
    }
}
