import Foundation
import Logging
import PostgresNIO

/// What the data API may name in one exposed schema: its tables and views, their columns, keys and foreign
/// keys, and its functions, read from the catalogs. Every identifier in a request is looked up here and
/// only the catalog's own spelling reaches SQL.
public struct SchemaCache: Sendable {
    public struct Column: Sendable, Equatable {
        public let name: String
        /// `format_type` of the column: a type name PostgreSQL itself printed, safe to cast to.
        public let type: String
        /// `pg_type.typcategory`: A array, B boolean, N numeric, S string, U user (uuid, json), E enum, D date …
        public let category: String
        public let nullable: Bool
        public let hasDefault: Bool
        public let isArray: Bool
        public let isJSON: Bool
        /// The labels of an enum type, in order; empty for other types.
        public var enumLabels: [String] = []
        /// `pg_get_constraintdef` of the CHECK constraints on this column alone, so documents can state them.
        public var checks: [String] = []
        /// The column's default as PostgreSQL prints it, e.g. `auth.uid()`.
        public var defaultExpression: String? = nil
        /// For an array, its elements' `typcategory`.
        public var elementCategory: String = ""
    }

    public struct ForeignKey: Sendable, Equatable {
        public let name: String
        public let table: String
        public let columns: [String]
        public let referencedTable: String
        public let referencedColumns: [String]
        /// A base table's key repeated for a view that exposes its columns (see `viewForeignKeys`).
        public var throughView = false
    }

    public struct Table: Sendable {
        public let name: String
        public let isView: Bool
        public let columns: [Column]
        public let primaryKey: [String]
        public let insertable: Bool
        /// The column sets of its primary key and unique indexes: a foreign key onto one of them is one-to-one.
        public var uniqueKeys: [Set<String>] = []
        /// The table's CHECK constraints: name and boolean expression over its bare column names, as
        /// PostgreSQL deparses them. Trusted text from the catalog, used to check a PATCH body up front.
        public var checks: [(name: String, expression: String, columns: [String])] = []

        public func column(_ name: String) -> Column? { columns.first { $0.name == name } }
    }

    public struct Function: Sendable {
        public struct Argument: Sendable, Equatable {
            public let name: String
            public let type: String
            public let isArray: Bool
            public let isJSON: Bool
            public let hasDefault: Bool
            /// A row type (a table's or a composite type): its JSON object is read with json_populate_record.
            public var isComposite = false
        }

        public let name: String
        public let arguments: [Argument]
        public let returnType: String
        public let returnsSet: Bool
        /// The table whose rows it returns (a composite of a public table), so results can be filtered.
        public let returnsTable: String?
        public let isVolatile: Bool
        /// `COMMENT ON FUNCTION`: a summary, and `@param name {JSON Schema}` lines for the API document.
        public var comment: String? = nil
        /// The columns of each row it returns (a table's or composite type's, or its OUT and TABLE
        /// parameters); empty for a function returning a scalar.
        public var resultColumns: [Column] = []
        /// Its last argument is VARIADIC.
        public var isVariadic = false
        /// `pg_type.typcategory` of the return type.
        public var returnCategory = ""

        /// A function PostgREST can call: every parameter named, or exactly one, unnamed, of a type a whole
        /// body can be (json, jsonb, text, xml, bytea).
        public var isCallable: Bool {
            if arguments.allSatisfy({ !$0.name.isEmpty }) { return true }
            return arguments.count == 1 && ["json", "jsonb", "text", "xml", "bytea"].contains(arguments[0].type)
        }

        /// Whether a body of `format` goes whole to this function's one unnamed parameter: JSON to json or
        /// jsonb, plain text to text or xml, octets to bytea.
        func takesWholeBody(_ format: ApiRequest.BodyFormat) -> Bool {
            guard arguments.count == 1, arguments[0].name.isEmpty else { return false }
            switch format {
            case .json: return arguments[0].isJSON
            case .text: return ["text", "xml"].contains(arguments[0].type)
            case .binary: return arguments[0].type == "bytea"
            case .csv: return arguments[0].type == "text"
            }
        }

        /// The signature as PostgREST's errors print it: `public.f(a => integer, b => text)`.
        public func signature(in schema: String) -> String {
            "\(schema).\(name)(" + arguments.map { "\($0.name) => \($0.type)" }.joined(separator: ", ") + ")"
        }
    }

    /// The schema this cache describes (`public` unless `STRIVE_DB_SCHEMAS` exposes others).
    public let schema: String
    public let tables: [String: Table]
    public let foreignKeys: [ForeignKey]
    /// A function of one table's row returning one value, usable like a column of that table.
    public struct ComputedField: Sendable {
        public let function: String
        public let column: Column
    }

    /// Computed fields by table, then by name.
    public var computedFields: [String: [String: ComputedField]] = [:]

    /// A function of one table's row returning rows of a table: embeddable from that table by its name.
    public struct ComputedRelationship: Sendable {
        public let function: String
        public let table: String
        public let toOne: Bool
    }

    /// Computed relationships by the table whose row they take, then by function name.
    public var computedRelationships: [String: [String: ComputedRelationship]] = [:]

    /// The first function of each name (documents and generated types describe one per name).
    public let functions: [String: Function]
    /// Every function of each name: overloads are told apart by the arguments a call names.
    public let overloads: [String: [Function]]

    public init(
        schema: String = "public", tables: [String: Table], foreignKeys: [ForeignKey], functions: [String: Function],
        overloads: [String: [Function]]? = nil
    ) {
        self.schema = schema
        self.tables = tables
        self.foreignKeys = foreignKeys
        self.functions = functions
        self.overloads = overloads ?? functions.mapValues { [$0] }
        for function in self.overloads.values.joined() where function.arguments.count == 1 {
            guard let table = Self.rowTable(function.arguments[0].type, schema: schema, in: tables) else { continue }
            if let target = function.returnsTable {
                computedRelationships[table, default: [:]][function.name] = ComputedRelationship(
                    function: function.name, table: target, toOne: !function.returnsSet)
                continue
            }
            guard function.resultColumns.isEmpty, !function.returnsSet else { continue }
            let column = Column(
                name: function.name, type: function.returnType, category: function.returnCategory, nullable: true, hasDefault: false,
                isArray: function.returnCategory == "A", isJSON: ["json", "jsonb"].contains(function.returnType))
            computedFields[table, default: [:]][function.name] = ComputedField(function: function.name, column: column)
        }
    }

    /// The table whose row type `type` (as `format_type` prints it) is, if any.
    static func rowTable(_ type: String, schema: String, in tables: [String: Table]) -> String? {
        let name = type.hasPrefix("\(schema).") ? String(type.dropFirst(schema.count + 1)) : type
        let unquoted = name.hasPrefix("\"") && name.hasSuffix("\"") ? String(name.dropFirst().dropLast()) : name
        return tables[unquoted] == nil ? nil : unquoted
    }

    public static func load(on connection: PostgresConnection, schema: String = "public", logger: Logger) async throws -> SchemaCache {
        var columnsByTable: [String: [Column]] = [:]
        for row in try await connection.rows(
            """
            select c.relname, a.attname, pg_catalog.format_type(a.atttypid, a.atttypmod), t.typcategory::text,
                   not a.attnotnull, a.atthasdef or a.attidentity <> '' or a.attgenerated <> '',
                   t.typcategory = 'A', a.atttypid in ('json'::regtype, 'jsonb'::regtype),
                   coalesce((select array_agg(e.enumlabel::text order by e.enumsortorder)
                             from pg_catalog.pg_enum e where e.enumtypid = a.atttypid), '{}'),
                   coalesce((select array_agg(pg_catalog.pg_get_constraintdef(con.oid) order by con.conname)
                             from pg_catalog.pg_constraint con
                             where con.conrelid = c.oid and con.contype = 'c' and con.conkey = array[a.attnum]), '{}'),
                   (select pg_catalog.pg_get_expr(d.adbin, d.adrelid) from pg_catalog.pg_attrdef d
                    where d.adrelid = c.oid and d.adnum = a.attnum),
                   coalesce((select e.typcategory::text from pg_catalog.pg_type e where e.oid = t.typelem and t.typcategory = 'A'), '')
            from pg_catalog.pg_attribute a
            join pg_catalog.pg_class c on c.oid = a.attrelid
            join pg_catalog.pg_namespace n on n.oid = c.relnamespace
            join pg_catalog.pg_type t on t.oid = a.atttypid
            where n.nspname = \(schema) and c.relkind in ('r', 'v', 'm', 'p', 'f') and a.attnum > 0 and not a.attisdropped
            order by c.relname, a.attnum
            """, logger: logger
        ) {
            let (table, name, type, category, nullable, hasDefault, isArray, isJSON, labels, checks, defaultExpression, elementCategory) =
                try row.decode((String, String, String, String, Bool, Bool, Bool, Bool, [String], [String], String?, String).self)
            columnsByTable[table, default: []].append(
                Column(
                    name: name, type: type, category: category, nullable: nullable, hasDefault: hasDefault, isArray: isArray,
                    isJSON: isJSON,
                    enumLabels: labels, checks: checks, defaultExpression: defaultExpression, elementCategory: elementCategory))
        }

        var tables: [String: Table] = [:]
        for row in try await connection.rows(
            """
            select c.relname, c.relkind <> 'r' and c.relkind <> 'p',
                   coalesce((select array_agg(a.attname::text order by k.ord)
                             from pg_catalog.pg_index i
                             cross join unnest(i.indkey) with ordinality k(attnum, ord)
                             join pg_catalog.pg_attribute a on a.attrelid = c.oid and a.attnum = k.attnum
                             where i.indrelid = c.oid and i.indisprimary), '{}'),
                   pg_catalog.pg_relation_is_updatable(c.oid, false) & 8 = 8
            from pg_catalog.pg_class c join pg_catalog.pg_namespace n on n.oid = c.relnamespace
            where n.nspname = \(schema) and c.relkind in ('r', 'v', 'm', 'p', 'f')
            """, logger: logger
        ) {
            let (name, isView, primaryKey, insertable) = try row.decode((String, Bool, [String], Bool).self)
            tables[name] = Table(
                name: name, isView: isView, columns: columnsByTable[name] ?? [], primaryKey: primaryKey, insertable: insertable)
        }

        for row in try await connection.rows(
            """
            select c.relname, array_agg(a.attname::text)
            from pg_catalog.pg_index i
            join pg_catalog.pg_class c on c.oid = i.indrelid
            join pg_catalog.pg_namespace n on n.oid = c.relnamespace
            join pg_catalog.pg_attribute a on a.attrelid = c.oid and a.attnum = any(i.indkey)
            where n.nspname = \(schema) and i.indisunique and i.indpred is null and i.indexprs is null
            group by c.relname, i.indexrelid
            """, logger: logger
        ) {
            let (table, columns) = try row.decode((String, [String]).self)
            tables[table]?.uniqueKeys.append(Set(columns))
        }

        for row in try await connection.rows(
            """
            select c.relname, con.conname, pg_catalog.pg_get_expr(con.conbin, con.conrelid),
                   coalesce((select array_agg(a.attname::text) from pg_catalog.pg_attribute a
                             where a.attrelid = con.conrelid and a.attnum = any(con.conkey)), '{}')
            from pg_catalog.pg_constraint con
            join pg_catalog.pg_class c on c.oid = con.conrelid
            join pg_catalog.pg_namespace n on n.oid = c.relnamespace
            where n.nspname = \(schema) and con.contype = 'c'
            order by c.relname, con.conname
            """, logger: logger
        ) {
            let (table, name, expression, columns) = try row.decode((String, String, String, [String]).self)
            tables[table]?.checks.append((name, expression, columns))
        }

        var foreignKeys: [ForeignKey] = []
        for row in try await connection.rows(
            """
            select con.conname, src.relname, dst.relname,
                   (select array_agg(a.attname::text order by k.ord) from unnest(con.conkey) with ordinality k(attnum, ord)
                    join pg_catalog.pg_attribute a on a.attrelid = con.conrelid and a.attnum = k.attnum),
                   (select array_agg(a.attname::text order by k.ord) from unnest(con.confkey) with ordinality k(attnum, ord)
                    join pg_catalog.pg_attribute a on a.attrelid = con.confrelid and a.attnum = k.attnum)
            from pg_catalog.pg_constraint con
            join pg_catalog.pg_class src on src.oid = con.conrelid
            join pg_catalog.pg_class dst on dst.oid = con.confrelid
            join pg_catalog.pg_namespace sn on sn.oid = src.relnamespace
            join pg_catalog.pg_namespace dn on dn.oid = dst.relnamespace
            where con.contype = 'f' and sn.nspname = \(schema) and dn.nspname = \(schema)
            order by con.conname
            """, logger: logger
        ) {
            let (name, table, referenced, columns, referencedColumns) = try row.decode((String, String, String, [String], [String]).self)
            foreignKeys.append(
                ForeignKey(name: name, table: table, columns: columns, referencedTable: referenced, referencedColumns: referencedColumns))
        }

        foreignKeys += try await viewForeignKeys(on: connection, schema: schema, tables: tables, foreignKeys: foreignKeys, logger: logger)

        var functions: [String: Function] = [:]
        var overloads: [String: [Function]] = [:]
        for row in try await connection.rows(
            """
            with f as (
                select p.*
                from pg_catalog.pg_proc p join pg_catalog.pg_namespace n on n.oid = p.pronamespace
                where n.nspname = \(schema) and p.prokind = 'f'
                  and not exists (select 1 from pg_catalog.pg_depend d where d.objid = p.oid and d.deptype = 'e')
                  and p.prorettype <> 'trigger'::regtype
            )
            select f.proname,
                   coalesce((select array_agg(x.n order by x.o)
                             from unnest(coalesce(f.proargnames, array_fill(''::text, array[coalesce(cardinality(f.proallargtypes), f.pronargs)])),
                                         coalesce(f.proargmodes::text[], array_fill('i'::text, array[f.pronargs])))
                                  with ordinality as x(n, m, o) where x.m in ('i', 'b', 'v')), '{}'),
                   coalesce((select array_agg(pg_catalog.format_type(t, null) order by o)
                             from unnest(f.proargtypes::oid[]) with ordinality x(t, o)), '{}'),
                   coalesce((select array_agg(ty.typcategory = 'A' order by o)
                             from unnest(f.proargtypes::oid[]) with ordinality x(t, o) join pg_catalog.pg_type ty on ty.oid = x.t), '{}'),
                   coalesce((select array_agg(x.t in ('json'::regtype, 'jsonb'::regtype) order by o)
                             from unnest(f.proargtypes::oid[]) with ordinality x(t, o)), '{}'),
                   coalesce((select array_agg(ty.typtype = 'c' order by o)
                             from unnest(f.proargtypes::oid[]) with ordinality x(t, o) join pg_catalog.pg_type ty on ty.oid = x.t), '{}'),
                   f.pronargdefaults,
                   pg_catalog.format_type(f.prorettype, null), f.proretset,
                   (select c.relname from pg_catalog.pg_type rt join pg_catalog.pg_class c on c.oid = rt.typrelid
                    join pg_catalog.pg_namespace cn on cn.oid = c.relnamespace
                    where rt.oid = f.prorettype and cn.nspname = \(schema) and c.relkind <> 'c'),
                   f.provolatile = 'v', pg_catalog.obj_description(f.oid, 'pg_proc'), f.provariadic <> 0,
                   (select rt.typcategory::text from pg_catalog.pg_type rt where rt.oid = f.prorettype),
                   -- result columns: OUT/TABLE parameters, else the attributes of a composite return type
                   coalesce(
                       (select json_agg(json_build_object('name', x.n, 'type', pg_catalog.format_type(x.t, null),
                                'category', ty.typcategory, 'isJSON', x.t in ('json'::regtype, 'jsonb'::regtype)) order by x.o)::text
                        from unnest(f.proargnames, f.proargmodes::text[], f.proallargtypes::oid[]) with ordinality as x(n, m, t, o)
                        join pg_catalog.pg_type ty on ty.oid = x.t
                        where x.m in ('o', 'b', 't')),
                       (select json_agg(json_build_object('name', a.attname, 'type', pg_catalog.format_type(a.atttypid, a.atttypmod),
                                'category', ty.typcategory, 'isJSON', a.atttypid in ('json'::regtype, 'jsonb'::regtype)) order by a.attnum)::text
                        from pg_catalog.pg_type rt join pg_catalog.pg_attribute a on a.attrelid = rt.typrelid
                        join pg_catalog.pg_type ty on ty.oid = a.atttypid
                        where rt.oid = f.prorettype and rt.typrelid <> 0 and a.attnum > 0 and not a.attisdropped),
                       '[]')
            from f
            order by f.proname, f.oid
            """, logger: logger
        ) {
            let (
                name, argumentNames, argumentTypes, arrays, jsons, composites, defaults, returnType, returnsSet, returnsTable, volatile,
                comment,
                variadic, returnCategory, resultTexts
            ) = try row.decode(
                (String, [String], [String], [Bool], [Bool], [Bool], Int16, String, Bool, String?, Bool, String?, Bool, String, String).self
            )
            let firstDefault = argumentTypes.count - Int(defaults)
            let arguments = argumentTypes.indices.map { index in
                var argument = Function.Argument(
                    name: index < argumentNames.count ? argumentNames[index] : "",
                    type: argumentTypes[index], isArray: arrays[index], isJSON: jsons[index], hasDefault: index >= firstDefault)
                argument.isComposite = composites[index]
                return argument
            }
            var function = Function(
                name: name, arguments: arguments, returnType: returnType, returnsSet: returnsSet,
                returnsTable: returnsTable, isVolatile: volatile, comment: comment)
            function.isVariadic = variadic
            function.returnCategory = returnCategory
            function.resultColumns = try JSONDecoder().decode([ResultColumn].self, from: Data(resultTexts.utf8)).map(\.column)
            if functions[name] == nil { functions[name] = function }
            overloads[name, default: []].append(function)
        }
        return SchemaCache(schema: schema, tables: tables, foreignKeys: foreignKeys, functions: functions, overloads: overloads)
    }

    /// The foreign keys a view inherits from the tables it reads, so views embed as PostgREST embeds them:
    /// a key of a base table whose columns the view exposes under the same names is also the view's,
    /// and a key onto a base table whose referenced columns the view exposes also points at the view.
    /// (PostgREST follows each view column to its source through the view's query tree; a column the
    /// view renames or computes is not followed here.)
    static func viewForeignKeys(
        on connection: PostgresConnection, schema: String, tables: [String: Table], foreignKeys: [ForeignKey], logger: Logger
    ) async throws -> [ForeignKey] {
        var sources: [(view: String, base: String, columns: Set<String>)] = []
        for row in try await connection.rows(
            """
            select u.view_name::text, u.table_name::text, array_agg(u.column_name::text)
            from information_schema.view_column_usage u
            where u.view_schema = \(schema) and u.table_schema = \(schema)
            group by 1, 2
            """, logger: logger
        ) {
            let (view, base, used) = try row.decode((String, String, [String]).self)
            guard let columns = tables[view]?.columns.map(\.name) else { continue }
            sources.append((view, base, Set(used).intersection(columns)))
        }
        var inherited: [ForeignKey] = []
        for source in sources {
            for key in foreignKeys {
                if key.table == source.base && Set(key.columns).isSubset(of: source.columns) {
                    inherited.append(
                        ForeignKey(
                            name: key.name, table: source.view, columns: key.columns, referencedTable: key.referencedTable,
                            referencedColumns: key.referencedColumns, throughView: true))
                }
                if key.referencedTable == source.base && Set(key.referencedColumns).isSubset(of: source.columns) {
                    inherited.append(
                        ForeignKey(
                            name: key.name, table: key.table, columns: key.columns, referencedTable: source.view,
                            referencedColumns: key.referencedColumns, throughView: true))
                }
            }
        }
        return inherited
    }

    /// A function's result column as the catalog query describes it.
    private struct ResultColumn: Decodable {
        let name: String
        let type: String
        let category: String
        let isJSON: Bool

        var column: Column {
            Column(name: name, type: type, category: category, nullable: true, hasDefault: false, isArray: category == "A", isJSON: isJSON)
        }
    }
}
