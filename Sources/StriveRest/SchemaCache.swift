import Logging
import PostgresNIO

/// What the data API may name: the `public` schema's tables and views, their columns, keys and foreign
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
    }

    public struct Table: Sendable {
        public let name: String
        public let isView: Bool
        public let columns: [Column]
        public let primaryKey: [String]
        public let insertable: Bool
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
    }

    public let tables: [String: Table]
    public let foreignKeys: [ForeignKey]
    public let functions: [String: Function]

    public init(tables: [String: Table], foreignKeys: [ForeignKey], functions: [String: Function]) {
        self.tables = tables
        self.foreignKeys = foreignKeys
        self.functions = functions
    }

    public static func load(on connection: PostgresConnection, logger: Logger) async throws -> SchemaCache {
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
            where n.nspname = 'public' and c.relkind in ('r', 'v', 'm', 'p', 'f') and a.attnum > 0 and not a.attisdropped
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
            where n.nspname = 'public' and c.relkind in ('r', 'v', 'm', 'p', 'f')
            """, logger: logger
        ) {
            let (name, isView, primaryKey, insertable) = try row.decode((String, Bool, [String], Bool).self)
            tables[name] = Table(
                name: name, isView: isView, columns: columnsByTable[name] ?? [], primaryKey: primaryKey, insertable: insertable)
        }

        for row in try await connection.rows(
            """
            select c.relname, con.conname, pg_catalog.pg_get_expr(con.conbin, con.conrelid),
                   coalesce((select array_agg(a.attname::text) from pg_catalog.pg_attribute a
                             where a.attrelid = con.conrelid and a.attnum = any(con.conkey)), '{}')
            from pg_catalog.pg_constraint con
            join pg_catalog.pg_class c on c.oid = con.conrelid
            join pg_catalog.pg_namespace n on n.oid = c.relnamespace
            where n.nspname = 'public' and con.contype = 'c'
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
            where con.contype = 'f' and sn.nspname = 'public' and dn.nspname = 'public'
            order by con.conname
            """, logger: logger
        ) {
            let (name, table, referenced, columns, referencedColumns) = try row.decode((String, String, String, [String], [String]).self)
            foreignKeys.append(
                ForeignKey(name: name, table: table, columns: columns, referencedTable: referenced, referencedColumns: referencedColumns))
        }

        var functions: [String: Function] = [:]
        for row in try await connection.rows(
            """
            select p.proname,
                   coalesce(p.proargnames[1:p.pronargs], '{}'),
                   coalesce((select array_agg(pg_catalog.format_type(t, null) order by o)
                             from unnest(p.proargtypes::oid[]) with ordinality x(t, o)), '{}'),
                   coalesce((select array_agg(ty.typcategory = 'A' order by o)
                             from unnest(p.proargtypes::oid[]) with ordinality x(t, o) join pg_catalog.pg_type ty on ty.oid = x.t), '{}'),
                   coalesce((select array_agg(x.t in ('json'::regtype, 'jsonb'::regtype) order by o)
                             from unnest(p.proargtypes::oid[]) with ordinality x(t, o)), '{}'),
                   p.pronargdefaults,
                   pg_catalog.format_type(p.prorettype, null), p.proretset,
                   (select c.relname from pg_catalog.pg_type rt join pg_catalog.pg_class c on c.oid = rt.typrelid
                    join pg_catalog.pg_namespace cn on cn.oid = c.relnamespace
                    where rt.oid = p.prorettype and cn.nspname = 'public'),
                   p.provolatile = 'v', pg_catalog.obj_description(p.oid, 'pg_proc')
            from pg_catalog.pg_proc p join pg_catalog.pg_namespace n on n.oid = p.pronamespace
            where n.nspname = 'public' and p.prokind = 'f'
              and not exists (select 1 from pg_catalog.pg_depend d where d.objid = p.oid and d.deptype = 'e')
              and p.prorettype <> 'trigger'::regtype
            """, logger: logger
        ) {
            let (name, argumentNames, argumentTypes, arrays, jsons, defaults, returnType, returnsSet, returnsTable, volatile, comment) =
                try row.decode((String, [String], [String], [Bool], [Bool], Int16, String, Bool, String?, Bool, String?).self)
            let firstDefault = argumentTypes.count - Int(defaults)
            let arguments = argumentTypes.indices.map { index in
                Function.Argument(
                    name: index < argumentNames.count ? argumentNames[index] : "",
                    type: argumentTypes[index], isArray: arrays[index], isJSON: jsons[index], hasDefault: index >= firstDefault)
            }
            // Overloads are not addressable by name alone; the first one wins, as unnamed ones cannot be called.
            if functions[name] == nil {
                functions[name] = Function(
                    name: name, arguments: arguments, returnType: returnType, returnsSet: returnsSet,
                    returnsTable: returnsTable, isVolatile: volatile, comment: comment)
            }
        }
        return SchemaCache(tables: tables, foreignKeys: foreignKeys, functions: functions)
    }
}
