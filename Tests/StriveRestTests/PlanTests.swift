import Foundation
import HTTPTypes
import StriveDatabase
import Testing

@testable import StriveRest

/// Plans without a database: a request and a schema cache in, the statement or the refusal out, the way
/// PostgREST tests its query planning. Every refusal the planner owns is decided here.
@Suite("Data API plans")
struct PlanTests {
    static func column(_ name: String, _ type: String = "text", category: String = "S", nullable: Bool = true) -> SchemaCache.Column {
        SchemaCache.Column(
            name: name, type: type, category: category, nullable: nullable, hasDefault: false, isArray: type.hasSuffix("[]"),
            isJSON: type == "jsonb")
    }

    static func table(_ name: String, _ columns: [SchemaCache.Column], key: [String] = ["id"]) -> SchemaCache.Table {
        var table = SchemaCache.Table(name: name, isView: false, columns: columns, primaryKey: key, insertable: true)
        table.uniqueKeys = [Set(key)]
        return table
    }

    static func function(_ name: String, _ arguments: [(String, String)], returns: String = "integer") -> SchemaCache.Function {
        SchemaCache.Function(
            name: name,
            arguments: arguments.map { .init(name: $0.0, type: $0.1, isArray: false, isJSON: $0.1 == "json", hasDefault: false) },
            returnType: returns, returnsSet: false, returnsTable: nil, isVolatile: false)
    }

    /// projects ← tasks → people (two keys: assignee, reviewer); tags ↔ tasks through task_tags.
    static let cache: SchemaCache = {
        let id = column("id", "bigint", category: "N", nullable: false)
        let tables = [
            table("projects", [id, column("name")]),
            table(
                "tasks",
                [
                    id, column("project_id", "bigint", category: "N"), column("assignee"), column("reviewer"), column("title"),
                    column("data", "jsonb", category: "U"),
                ]),
            table("people", [column("handle", nullable: false)], key: ["handle"]),
            table("tags", [id, column("name")]),
            table(
                "task_tags", [column("task_id", "bigint", category: "N"), column("tag_id", "bigint", category: "N")],
                key: ["task_id", "tag_id"]),
        ]
        let keys = [
            SchemaCache.ForeignKey(
                name: "tasks_project_id_fkey", table: "tasks", columns: ["project_id"], referencedTable: "projects",
                referencedColumns: ["id"]),
            SchemaCache.ForeignKey(
                name: "tasks_assignee_fkey", table: "tasks", columns: ["assignee"], referencedTable: "people", referencedColumns: ["handle"]
            ),
            SchemaCache.ForeignKey(
                name: "tasks_reviewer_fkey", table: "tasks", columns: ["reviewer"], referencedTable: "people", referencedColumns: ["handle"]
            ),
            SchemaCache.ForeignKey(
                name: "task_tags_task_id_fkey", table: "task_tags", columns: ["task_id"], referencedTable: "tasks",
                referencedColumns: ["id"]),
            SchemaCache.ForeignKey(
                name: "task_tags_tag_id_fkey", table: "task_tags", columns: ["tag_id"], referencedTable: "tags", referencedColumns: ["id"]),
        ]
        let pickText = function("pick", [("a", "text")])
        let pickInt = function("pick", [("a", "integer")])
        let whole = function("whole", [("", "json")])
        let functions = ["pick": pickText, "whole": whole]
        return SchemaCache(
            tables: Dictionary(uniqueKeysWithValues: tables.map { ($0.name, $0) }), foreignKeys: keys, functions: functions,
            overloads: ["pick": [pickText, pickInt], "whole": [whole]])
    }()

    struct Case: Sendable, CustomTestStringConvertible {
        var name: String
        var action: ApiRequest.Action = .read(head: false)
        var target: String
        var query: String
        var headers: [String: String] = [:]
        var body: String? = nil
        /// Fragments the statement contains, in order.
        var sql: [String] = []
        var values: [String]? = nil
        /// The refusal's code, when the plan must not exist.
        var error: String? = nil
        var testDescription: String { name }
    }

    static let cases: [Case] = [
        Case(
            name: "a filtered read", target: "tasks", query: "select=id,title&title=eq.x&order=id.desc&limit=5",
            sql: [
                #"select "tasks"."id" as "id", "tasks"."title" as "title" from "public"."tasks" as "tasks""#,
                #"where "tasks"."title" = ($1[1])::text order by "tasks"."id" desc limit 5 offset 0"#,
            ],
            values: ["x"]),
        Case(
            name: "like(any) reads an array of patterns", target: "tasks", query: "title=like(any).{a*,*b}",
            sql: [#"("tasks"."title")::text like any((($1[1]))::text[])"#], values: ["{a%,%b}"]),
        Case(
            name: "a JSON path binds its keys", target: "tasks", query: "select=data->a->>b&data->>c=eq.1",
            sql: [#"(("tasks"."data" -> ($1[1])) ->> ($1[2])) as "b""#, #"("tasks"."data" ->> ($1[3])) = ($1[4])::text"#],
            values: ["a", "b", "c", "1"]),
        Case(
            name: "a to-one embed with a column hint", target: "tasks", query: "select=id,people!assignee(handle)",
            sql: [
                #"(select row_to_json("r_people_1") from (select "people_1"."handle" as "handle" from "public"."people" as "people_1" where "people_1"."handle" = "tasks"."assignee" limit 1)"#
            ]),
        Case(
            name: "many-to-many goes through the junction", target: "tasks", query: "select=tags(name)",
            sql: [
                #"exists (select 1 from "public"."task_tags" as "task_tags_2" where "task_tags_2"."task_id" = "tasks"."id" and "task_tags_2"."tag_id" = "tags_1"."id")"#
            ]),
        Case(
            name: "aggregates group by the other columns", target: "tasks", query: "select=project_id,count(),n:id.max()",
            sql: [#"count(*) as "count", max("tasks"."id") as "n""#, "group by 1"]),
        Case(
            name: "an exact count", target: "tasks", query: "select=id", headers: ["Prefer": "count=exact"],
            sql: [#"(select count(*) from "public"."tasks" as "tasks")::bigint"#]),
        Case(name: "CSV output", target: "tasks", query: "select=id", headers: ["Accept": "text/csv"], sql: ["string_agg", "chr(10)"]),
        Case(
            name: "a rpc whole body", action: .call(method: .post), target: "whole", query: "", body: #"{"x":1}"#,
            sql: [#""public"."whole"((($1[1]))::json)"#], values: [#"{"x":1}"#]),
        Case(
            name: "braces in an in list are plain characters", target: "tasks", query: "title=in.(x{,y)",
            sql: [#""tasks"."title" = any"#], values: [#"{"x{","y"}"#]),
        Case(name: "an unbalanced brace in a logic tree", target: "tasks", query: "or=(title.eq.{,id.eq.1)", error: "PGRST100"),
        Case(name: "an unknown table", target: "nope", query: "", error: "PGRST205"),
        Case(name: "an unknown column", target: "tasks", query: "select=nope", error: "42703"),
        Case(name: "an ambiguous embed", target: "tasks", query: "select=people(*)", error: "PGRST201"),
        Case(name: "no relationship", target: "projects", query: "select=tags(*)", error: "PGRST200"),
        Case(name: "a repeated embed", target: "tasks", query: "select=people!assignee(*),people!reviewer(*)", error: "42712"),
        Case(name: "a spread of many", target: "projects", query: "select=...tasks(id)", error: "PGRST119"),
        Case(name: "aggregates are off", target: "tasks", query: "select=count()", error: "PGRST123"),
        Case(name: "a modifier on is", target: "tasks", query: "title=is(any).{null}", error: "PGRST100"),
        Case(name: "an unproducible Accept", target: "tasks", query: "", headers: ["Accept": "application/xml"], error: "PGRST107"),
        Case(
            name: "a plan while plans are off", target: "tasks", query: "", headers: ["Accept": "application/vnd.pgrst.plan"],
            error: "PGRST107"),
        Case(name: "an unexposed schema", target: "tasks", query: "", headers: ["Accept-Profile": "other"], error: "PGRST106"),
        Case(name: "delete without a filter", action: .delete, target: "tasks", query: "", error: "21000"),
        Case(
            name: "update of an unknown column", action: .update, target: "tasks", query: "id=eq.1", body: #"{"nope":1}"#, error: "PGRST204"
        ),
        Case(name: "ambiguous overloads", action: .call(method: .post), target: "pick", query: "", body: #"{"a":1}"#, error: "PGRST203"),
        Case(name: "an unknown argument", action: .call(method: .post), target: "pick", query: "", body: #"{"b":1}"#, error: "PGRST202"),
        Case(name: "an unknown function", action: .call(method: .get), target: "nope", query: "", error: "PGRST202"),
    ]

    /// The plan for `testCase`, or the planner's refusal.
    static func plan(_ testCase: Case) throws -> Plan {
        var headers = HTTPFields()
        for (name, value) in testCase.headers { headers[HTTPField.Name(name)!] = value }
        let settings = RestSettings(aggregatesEnabled: testCase.name.hasPrefix("aggregates group"))
        let request = try ApiRequest(
            action: testCase.action, target: testCase.target, identity: RequestIdentity(role: .anon, claimsJSON: "{}"),
            query: testCase.query, headers: headers, body: testCase.body.map { Data($0.utf8) }, settings: settings)
        let planner = Planner(cache: cache, settings: settings)
        switch testCase.action {
        case .read: return try planner.read(request)
        case .insert: return try planner.insert(request)
        case .update: return try planner.update(request)
        case .delete: return try planner.delete(request)
        case .call: return try planner.call(request)
        }
    }

    @Test(arguments: cases)
    func planOrRefusal(_ testCase: Case) throws {
        let plan: Plan
        do {
            plan = try Self.plan(testCase)
        } catch let error as RestError {
            #expect(error.code == testCase.error, "\(error.message)")
            return
        }
        #expect(testCase.error == nil, "planned where \(testCase.error ?? "") was expected")
        guard case .query(let sql) = plan.statement else {
            Issue.record("no single statement")
            return
        }
        var rest = Substring(sql)
        for fragment in testCase.sql {
            guard let found = rest.range(of: fragment) else {
                Issue.record("missing, in order: \(fragment)\nin: \(sql)")
                break
            }
            rest = rest[found.upperBound...]
        }
        if let values = testCase.values { #expect(plan.values == values) }
    }
}
