import Foundation
import HummingbirdTesting
import Logging
import PostgresNIO
import StriveCore
import StriveDatabase
import StriveTestSupport
import Testing

@testable import StriveTypeGen

/// The generated files are checked by the compilers their users run: `tsc --strict` for the TypeScript,
/// `swiftc` for the Swift, over the built-in schema plus a fixture of awkward names and types.
@Suite("Generated client types")
struct GeneratedTypesTests {
    /// Names and types a generator gets wrong first: keywords, spaces, leading digits, quotes in enum
    /// labels, arrays of enums, a composite type, a view, a one-to-one key, set-returning functions.
    static let fixture = [
        #"create type public."Mood" as enum ('happy', 'IN_PROGRESS', 'a "quoted" label', '2nd')"#,
        "create type public.money_pair as (amount numeric(12,2), currency text)",
        """
        create table public.gadgets (
            id bigint generated always as identity primary key,
            "default" text not null,
            "class" int,
            "a b" boolean not null default false,
            "2fa" smallint,
            moods public."Mood"[] not null default '{}',
            mood public."Mood",
            price public.money_pair,
            ratio double precision,
            weight real,
            amount numeric(10,2),
            payload jsonb not null default '{}',
            seen_at timestamptz,
            born date,
            owner uuid references auth.users (id)
        )
        """,
        "create table public.gadget_details (gadget_id bigint primary key references public.gadgets (id), note text)",
        // DISTINCT makes the view read-only: no Insert or Update type.
        "create view public.gadget_names as select distinct id, \"default\" from public.gadgets",
        "grant select on public.gadgets to service_role",
        "create function public.gadgets_named(prefix text, max_rows int default 10) returns setof public.gadgets language sql stable as $$ select * from public.gadgets where \"default\" like prefix || '%' limit max_rows $$",
        "create function public.gadget_total() returns numeric language sql stable as 'select 1.5'",
    ]

    @Test func typeScriptTypeChecksWithTscStrict() async throws {
        let source = try await Self.generate(TypeScriptTypes.render)
        #expect(source.contains("export type Database = {"))
        #expect(source.contains(#""a b": boolean"#))
        #expect(source.contains(#"Mood: "happy" | "IN_PROGRESS" | "a \"quoted\" label" | "2nd""#))
        let folder = try Self.temporaryFolder()
        try source.write(toFile: folder + "/database.ts", atomically: true, encoding: .utf8)
        // Uses the file as supabase-js code does; each @ts-expect-error line must be an error, so a
        // generator that types too loosely (any, optional everything) fails the check as surely as one
        // that emits invalid TypeScript.
        try """
        import type { Database, Tables, TablesInsert, TablesUpdate, Enums, Json } from "./database"
        import { Constants } from "./database"

        type Gadget = Database["public"]["Tables"]["gadgets"]
        const row: Gadget["Row"] = {
          id: 1, default: "x", class: null, "a b": true, "2fa": null, moods: ["happy", "2nd"], mood: null,
          price: { amount: 1.5, currency: "EUR" }, ratio: null, weight: 0.5, amount: 3.25,
          payload: { nested: [1, "two", null] }, seen_at: "2026-11-30T00:00:00Z", born: null, owner: null,
        }
        const insert: TablesInsert<"gadgets"> = { default: "only the required column" }
        const update: TablesUpdate<"customers"> = { status: "ACTIVE" }
        const customer: Tables<"customers"> | null = null
        const view: Tables<"gadget_names"> = { id: null, default: null }
        const mood: Enums<"Mood"> = Constants.public.Enums.Mood[1]
        const args: Database["public"]["Functions"]["gadgets_named"]["Args"] = { prefix: "g" }
        const found: Database["public"]["Functions"]["gadgets_named"]["Returns"] = [row]
        const total: Database["public"]["Functions"]["gadget_total"]["Returns"] = 1.5
        const detailKey: Database["public"]["Tables"]["gadget_details"]["Relationships"][0]["isOneToOne"] = true
        const json: Json = { a: [true, 1, "s", null] }

        // @ts-expect-error a required column is missing
        const missing: TablesInsert<"gadgets"> = {}
        // @ts-expect-error not a label of TaskStatus
        const wrongLabel: TablesUpdate<"tasks"> = { status: "FINISHED" }
        // @ts-expect-error a string column does not take a number
        const wrongType: TablesInsert<"customers"> = { organization_id: "o", name: 7 }
        // @ts-expect-error an unknown column
        const unknownColumn: TablesUpdate<"projects"> = { colour: "red" }
        // @ts-expect-error a NOT NULL column is not nullable in Row
        const notNull: Gadget["Row"]["default"] = null
        // @ts-expect-error views have no Insert
        type NoInsert = Database["public"]["Views"]["gadget_names"]["Insert"]
        // @ts-expect-error the required argument is missing
        const noArgs: Database["public"]["Functions"]["gadgets_named"]["Args"] = {}

        export const used = [row, insert, update, customer, view, mood, args, found, total, detailKey, json,
          missing, wrongLabel, wrongType, unknownColumn, notNull, noArgs]
        """.write(toFile: folder + "/usage.ts", atomically: true, encoding: .utf8)

        let tsc = try #require(ToolProcess.find("tsc"), "tsc not found: install Debian's node-typescript (Scripts/test does)")
        let result = try await ToolProcess.run(
            tsc, ["--noEmit", "--strict", "--target", "es2020", "--moduleResolution", "node", "usage.ts"], in: folder)
        #expect(result.status == 0, "tsc failed:\n\(result.output)")
    }

    @Test func swiftCompilesAndDecodesWhatTheDataAPIServes() async throws {
        let database = try await TestCluster.shared.makeDatabase()
        try await database.withOwnerConnection { connection in
            _ = try await DemoSeed.run(scale: 1, on: connection, logger: database.logger)
            for statement in Self.fixture { try await connection.run(PostgresQuery(unsafeSQL: statement), logger: database.logger) }
            try await connection.run(
                #"insert into public.gadgets ("default", moods, price, amount, payload) values ('g1', '{happy,"a \"quoted\" label"}', (2.50, 'EUR'), 9.99, '{"k": [1, null]}')"#,
                logger: database.logger)
        }
        let source = try await database.withOwnerConnection { connection in
            SwiftTypes.render(try await TypeCatalog.load(on: connection, logger: database.logger))
        }
        let serviceKey = try await APIKeys.derive(role: .serviceRole, secret: TestCluster.jwtSecret)
        let (customers, gadgets) = try await database.withLiveApp { client, _ in
            let http = TestHTTP(client)
            let customers = try await http.send(.get, "/rest/v1/customers?select=*&limit=3", apikey: serviceKey, bearer: serviceKey)
            let gadgets = try await http.send(.get, "/rest/v1/gadgets?select=*", apikey: serviceKey, bearer: serviceKey)
            try #require(customers.status == .ok && gadgets.status == .ok, "\(customers.text) \(gadgets.text)")
            return (customers.text, gadgets.text)
        }

        let folder = try Self.temporaryFolder()
        try source.write(toFile: folder + "/Database.swift", atomically: true, encoding: .utf8)
        try customers.write(toFile: folder + "/customers.json", atomically: true, encoding: .utf8)
        try gadgets.write(toFile: folder + "/gadgets.json", atomically: true, encoding: .utf8)
        try """
        import Foundation

        let folder = CommandLine.arguments[1]
        let customers = try JSONDecoder().decode([Customers.Row].self, from: Data(contentsOf: URL(fileURLWithPath: folder + "/customers.json")))
        let gadgets = try JSONDecoder().decode([Gadgets.Row].self, from: Data(contentsOf: URL(fileURLWithPath: folder + "/gadgets.json")))
        let gadget = gadgets[0]
        print("customers \\(customers.count) \\(customers.allSatisfy { CustomerStatus.allCases.contains($0.status) })")
        print("gadget \\(gadget.`default`) \\(gadget.moods.map(\\.rawValue)) \\(gadget.price?.currency ?? "-") \\(gadget.amount ?? 0)")
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        let insert = Customers.Insert(organizationId: customers[0].organizationId, name: "New", status: .prospect)
        print(String(decoding: try encoder.encode(insert), as: UTF8.self))
        print(String(decoding: try encoder.encode(Tasks.Update(status: .inProgress)), as: UTF8.self))
        print(Mood.allCases.map(\\.rawValue).joined(separator: "|"))
        """.write(toFile: folder + "/main.swift", atomically: true, encoding: .utf8)

        let swiftc = try #require(ToolProcess.find("swiftc"), "swiftc not found")
        let compiled = try await ToolProcess.run(
            swiftc, ["-swift-version", "6", "-o", "decode", "Database.swift", "main.swift"], in: folder)
        try #require(compiled.status == 0, "swiftc failed:\n\(compiled.output)")
        let ran = try await ToolProcess.run(folder + "/decode", [folder], in: folder)
        #expect(ran.status == 0, "\(ran.output)")
        let lines = ran.output.split(separator: "\n").map(String.init)
        #expect(lines.count == 5, "\(ran.output)")
        guard lines.count == 5 else { return }
        #expect(lines[0] == "customers 3 true")
        #expect(lines[1] == #"gadget g1 ["happy", "a \"quoted\" label"] EUR 9.99"#)
        #expect(lines[2].hasPrefix(#"{"name":"New","organization_id":""#) && lines[2].hasSuffix(#"","status":"PROSPECT"}"#))
        #expect(lines[3] == #"{"status":"IN_PROGRESS"}"#)
        #expect(lines[4] == #"happy|IN_PROGRESS|a "quoted" label|2nd"#)
    }

    @Test func namesBecomeSwiftIdentifiers() {
        let members = ["organization_id", "default", "2fa", "a b", "createdAt", "IN_PROGRESS", "self", "é"]
        #expect(
            members.map { SwiftIdentifier.escaped(SwiftIdentifier.member($0)) } == [
                "organizationId", "`default`", "_2fa", "aB", "createdAt", "inProgress", "`self`", "_",
            ])
        #expect(SwiftIdentifier.type("task_comments") == "TaskComments")
        #expect(SwiftIdentifier.type("AIModel") == "AIModel")
        #expect(TypeScriptTypes.key("a b") == #""a b""# && TypeScriptTypes.key("default") == "default")
        #expect(TypeScriptTypes.literal("tab\t\u{1}") == #""tab\t\u0001""#)
    }

    // MARK: -

    static func generate(_ render: (TypeCatalog) -> String) async throws -> String {
        let database = try await TestCluster.shared.makeDatabase()
        return try await database.withOwnerConnection { connection in
            for statement in fixture { try await connection.run(PostgresQuery(unsafeSQL: statement), logger: database.logger) }
            return render(try await TypeCatalog.load(on: connection, logger: database.logger))
        }
    }

    /// Every exposed schema gets its key in `Database` (and its namespace in Swift), with its own enums,
    /// even where a table's name repeats one of `public`.
    @Test func everyExposedSchemaHasItsTypes() async throws {
        let database = try await TestCluster.shared.makeDatabase()
        let (typescript, swift) = try await database.withOwnerConnection { connection in
            for statement in [
                "create schema fx_other", "create type fx_other.shade as enum ('light', 'dark')",
                "create table fx_other.customers (id bigint primary key, shade fx_other.shade not null, note text)",
                "create function fx_other.darkest() returns setof fx_other.customers language sql stable as $$ select * from fx_other.customers $$",
            ] {
                try await connection.run(PostgresQuery(unsafeSQL: statement), logger: database.logger)
            }
            let catalogs = [
                try await TypeCatalog.load(on: connection, logger: database.logger),
                try await TypeCatalog.load(on: connection, schema: "fx_other", logger: database.logger),
            ]
            return (TypeScriptTypes.render(catalogs), SwiftTypes.render(catalogs))
        }
        #expect(swift.contains("public enum FxOther {"), "\(swift.prefix(400))")
        let folder = try Self.temporaryFolder()
        try typescript.write(toFile: folder + "/database.ts", atomically: true, encoding: .utf8)
        try """
        import { Database, Tables } from "./database"
        type Other = Database["fx_other"]
        const row: Other["Tables"]["customers"]["Row"] = { id: 1, shade: "dark", note: null }
        const shade: Other["Enums"]["shade"] = "light"
        const rows: Other["Functions"]["darkest"]["Returns"] = [row]
        const publicCustomer: Tables<"customers">["name"] = "still public's"
        // @ts-expect-error not a label of fx_other.shade
        const wrong: Other["Tables"]["customers"]["Insert"] = { id: 2, shade: "grey" }
        export const used = [row, shade, rows, publicCustomer, wrong]
        """.write(toFile: folder + "/usage.ts", atomically: true, encoding: .utf8)
        let tsc = try #require(ToolProcess.find("tsc"), "tsc not found: install Debian's node-typescript (Scripts/test does)")
        let result = try await ToolProcess.run(
            tsc, ["--noEmit", "--strict", "--target", "es2020", "--moduleResolution", "node", "usage.ts"], in: folder)
        #expect(result.status == 0, "tsc failed:\n\(result.output)")
    }

    static func temporaryFolder() throws -> String {
        let folder = NSTemporaryDirectory() + "strive-typegen-" + UUID().uuidString
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        return folder
    }
}
