import Foundation
import Logging
import PostgresNIO
import StriveDatabase
import StriveRest

/// What client types are generated from: the data API's own schema cache (so the types describe exactly
/// what `/rest/v1` serves) plus what only a type generator needs — every enum of the schema, composite
/// types, and which foreign keys are one-to-one.
public struct TypeCatalog: Sendable {
    public struct CompositeType: Sendable, Equatable {
        public let name: String
        public let attributes: [(name: String, type: String)]

        public static func == (lhs: CompositeType, rhs: CompositeType) -> Bool {
            lhs.name == rhs.name && lhs.attributes.elementsEqual(rhs.attributes) { $0 == $1 }
        }
    }

    public let schema: SchemaCache
    /// Enum type name (unquoted, as `pg_type.typname`) → its labels in declaration order.
    public let enums: [String: [String]]
    public let compositeTypes: [CompositeType]
    /// Names of foreign keys whose columns are also a unique key of their table.
    public let oneToOneForeignKeys: Set<String>

    public init(schema: SchemaCache, enums: [String: [String]], compositeTypes: [CompositeType], oneToOneForeignKeys: Set<String>) {
        self.schema = schema
        self.enums = enums
        self.compositeTypes = compositeTypes
        self.oneToOneForeignKeys = oneToOneForeignKeys
    }

    /// The catalog of one exposed schema (`public` unless `STRIVE_DB_SCHEMAS` names others).
    public static func load(on connection: PostgresConnection, schema name: String = "public", logger: Logger) async throws -> TypeCatalog {
        let schema = try await SchemaCache.load(on: connection, schema: name, logger: logger)

        var enums: [String: [String]] = [:]
        for row in try await connection.rows(
            """
            select t.typname::text, array_agg(e.enumlabel::text order by e.enumsortorder)
            from pg_catalog.pg_type t
            join pg_catalog.pg_namespace n on n.oid = t.typnamespace
            join pg_catalog.pg_enum e on e.enumtypid = t.oid
            where n.nspname = \(name)
            group by t.typname
            """, logger: logger)
        {
            let (name, labels) = try row.decode((String, [String]).self)
            enums[name] = labels
        }

        var composites: [CompositeType] = []
        for row in try await connection.rows(
            """
            select c.relname::text,
                   array_agg(a.attname::text order by a.attnum),
                   array_agg(pg_catalog.format_type(a.atttypid, a.atttypmod) order by a.attnum)
            from pg_catalog.pg_class c
            join pg_catalog.pg_namespace n on n.oid = c.relnamespace
            join pg_catalog.pg_attribute a on a.attrelid = c.oid and a.attnum > 0 and not a.attisdropped
            where n.nspname = \(name) and c.relkind = 'c'
            group by c.relname
            order by c.relname
            """, logger: logger)
        {
            let (name, attributeNames, attributeTypes) = try row.decode((String, [String], [String]).self)
            composites.append(CompositeType(name: name, attributes: Array(zip(attributeNames, attributeTypes))))
        }

        var oneToOne: Set<String> = []
        for row in try await connection.rows(
            """
            select con.conname::text
            from pg_catalog.pg_constraint con
            join pg_catalog.pg_namespace n on n.oid = con.connamespace
            where con.contype = 'f' and n.nspname = \(name)
              and exists (select 1 from pg_catalog.pg_index i
                          where i.indrelid = con.conrelid and i.indisunique and i.indpred is null
                            and i.indnkeyatts = cardinality(con.conkey)
                            and (i.indkey::int2[])[0:i.indnkeyatts - 1] @> con.conkey
                            and (i.indkey::int2[])[0:i.indnkeyatts - 1] <@ con.conkey)
            """, logger: logger)
        {
            oneToOne.insert(try row.decode(String.self))
        }
        return TypeCatalog(schema: schema, enums: enums, compositeTypes: composites, oneToOneForeignKeys: oneToOne)
    }

    /// The tables and views in a stable order, so the generated file does not churn between runs.
    var sortedTables: [SchemaCache.Table] { schema.tables.values.sorted { $0.name < $1.name } }
    var sortedFunctions: [SchemaCache.Function] { schema.functions.values.sorted { $0.name < $1.name } }
    var sortedEnums: [(name: String, labels: [String])] { enums.sorted { $0.key < $1.key }.map { ($0.key, $0.value) } }

    func foreignKeys(of table: String) -> [SchemaCache.ForeignKey] {
        schema.foreignKeys.filter { $0.table == table }.sorted { $0.name < $1.name }
    }

    /// A column or argument type as PostgreSQL printed it (`format_type`), understood.
    func resolve(_ formatted: String) -> PostgresTypeName { PostgresTypeName(formatted, enums: enums, composites: compositeTypes) }
}

/// A `format_type` string taken apart: `character varying(200)[]` is a varchar array, `"TaskStatus"` the
/// enum TaskStatus, `public.customers` a row of customers.
struct PostgresTypeName: Equatable {
    enum Base: Equatable {
        case boolean, int16, int32, int64, float32, float64, decimal, string, uuid, json, void
        case enumeration(String)
        case composite(String)
        case unknown
    }

    let base: Base
    let arrayDepth: Int

    init(_ formatted: String, enums: [String: [String]], composites: [TypeCatalog.CompositeType]) {
        var name = formatted.trimmingCharacters(in: .whitespaces)
        var depth = 0
        while name.hasSuffix("[]") {
            name.removeLast(2)
            depth += 1
        }
        if let parenthesis = name.firstIndex(of: "(") {
            // `numeric(10,2)`, `timestamp(3) with time zone`: the modifier does not change the client type.
            let close = name[parenthesis...].firstIndex(of: ")") ?? name.index(before: name.endIndex)
            name = String(name[..<parenthesis]) + String(name[name.index(after: close)...])
        }
        if let dot = name.firstIndex(of: "."), !name.hasPrefix("\"") {
            // `schema.type`: a type of the catalog's schema as printed from outside the search path.
            name = String(name[name.index(after: dot)...])
        }
        if name.hasPrefix("\"") && name.hasSuffix("\"") && name.count >= 2 {
            name = String(name.dropFirst().dropLast()).replacingOccurrences(of: "\"\"", with: "\"")
        }
        arrayDepth = depth
        if enums[name] != nil {
            base = .enumeration(name)
        } else if composites.contains(where: { $0.name == name }) {
            base = .composite(name)
        } else {
            base = Self.builtin(name)
        }
    }

    private static func builtin(_ name: String) -> Base {
        switch name {
        case "boolean": .boolean
        case "smallint": .int16
        case "integer", "oid": .int32
        case "bigint": .int64
        case "real": .float32
        case "double precision": .float64
        case "numeric", "money": .decimal
        case "uuid": .uuid
        case "json", "jsonb": .json
        case "void": .void
        case "text", "character varying", "character", "\"char\"", "name", "citext", "bytea", "date", "interval", "inet", "cidr",
            "macaddr", "macaddr8", "tsvector", "tsquery", "xml", "bit", "bit varying":
            .string
        default:
            // `timestamp with time zone`, `time without time zone`, … all travel as ISO 8601 text.
            name.hasPrefix("timestamp") || name.hasPrefix("time ") || name == "time" ? .string : .unknown
        }
    }
}
