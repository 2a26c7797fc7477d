import Foundation
import HTTPTypes
import StriveTestSupport
import Testing

/// What real clients and a fuzzer found on the wire: query strings as forms encode them, no accidental
/// whole-table writes, PATCH values checked even when no row matches, strict JSON kinds.
/// One test at a time: each test seeds a database and starts a server, and all at once beside the other suites they
/// overran the test client's fixed 20 s read timeout in the suite's first minutes.
@Suite("Data API on the wire", .serialized)
struct WireCorrectnessTests {
    /// supabase-py (httpx) encodes a space as `+`: `name=eq.Customer+7` must find "Customer 7".
    @Test func plusInAQueryStringIsASpace() async throws {
        try await RestHarness.run { harness in
            let member = try await harness.token("member@acme.example")
            let org = try await harness.seededID("org/1")
            let name = "Ünïcode, (quoted) & \"odd\" 7+1"
            let created = try await harness.send(
                .post, "customers", token: member,
                json: #"{"organization_id":"\#(org)","name":"\#(name.replacingOccurrences(of: "\"", with: "\\\""))"}"#)
            #expect(created.status == .created, "\(created.text)")

            let plus = try await harness.send(
                .get, "customers?select=company&company=eq.Client+Co+1&organization_id=eq.\(org)", token: member)
            let percent = try await harness.send(
                .get, "customers?select=company&company=eq.Client%20Co%201&organization_id=eq.\(org)", token: member)
            #expect(plus.status == .ok)
            #expect(plus.array.map { $0["company"] as? String } == ["Client Co 1"], "\(plus.text)")
            #expect(plus.array.count == percent.array.count)

            // Form encoding of the whole value: spaces as +, a literal + as %2B, punctuation and unicode escaped.
            let form = name.addingPercentEncoding(withAllowedCharacters: .alphanumerics)!.replacingOccurrences(of: "%20", with: "+")
            let exact = try await harness.send(.get, "customers?select=name&name=eq.\(form)", token: member)
            #expect(exact.array.map { $0["name"] as? String } == [name], "\(exact.text)")
            let quotedInTree = try await harness.send(
                .get,
                "customers?select=name&or=(name.eq.\(encoded("\"\(name.replacingOccurrences(of: "\"", with: "\\\""))\"")),name.eq.nobody)",
                token: member)
            #expect(quotedInTree.array.count == 1, "\(quotedInTree.text)")

            let broken = try await harness.send(.get, "customers?name=eq.%ZZ", token: member)
            #expect(broken.status == .badRequest)
            #expect(broken.code == "PGRST100")
        }
    }

    /// An emoji modifier or a combining mark right after the operator's dot is still the dot.
    @Test func combiningCharactersAfterADelimiterKeepTheFilter() async throws {
        try await RestHarness.run { harness in
            let member = try await harness.token("member@acme.example")
            for value in ["\u{1F3FB}<x", "\u{301}accent", "(\u{20E3}),"] {
                let plain = try await harness.send(.get, "customers?select=id&name=eq.\(encoded(value))", token: member)
                #expect(plain.status == .ok, "\(value): \(plain.text)")
                let listed = try await harness.send(.get, "customers?select=id&name=in.(\(encoded("\"\(value)\"")),x)", token: member)
                #expect(listed.status == .ok, "\(value): \(listed.text)")
            }
        }
    }

    /// PATCH and DELETE without a filter are refused for every caller, and nothing changes.
    @Test(arguments: ["member@acme.example", "owner@acme.example", "service"])
    func writesWithoutAFilterAreRefused(caller: String) async throws {
        try await RestHarness.run { harness in
            let token = caller == "service" ? harness.serviceKey : try await harness.token(caller)
            let before = try await harness.ownerValue(
                "select count(*)::int || ':' || count(*) filter (where status = 'CANCELLED')::int from public.tasks", as: String.self)
            let patch = try await harness.send(.patch, "tasks", token: token, json: #"{"status":"CANCELLED"}"#)
            #expect(patch.status == .badRequest)
            #expect(patch.code == "21000")
            #expect(patch.object["message"] as? String == "UPDATE requires a WHERE clause")
            let delete = try await harness.send(.delete, "tasks?select=id&limit=5", token: token)
            #expect(delete.status == .badRequest)
            #expect(delete.code == "21000")
            #expect(delete.object["message"] as? String == "DELETE requires a WHERE clause")
            let after = try await harness.ownerValue(
                "select count(*)::int || ':' || count(*) filter (where status = 'CANCELLED')::int from public.tasks", as: String.self)
            #expect(before == after)
        }
    }

    /// Dates and timestamps are read by one documented grammar (RFC 3339 and PostgreSQL's own printed
    /// form), in bodies and filters: PostgreSQL's lenient parser alone would take `…Z*` or `tomorrow`.
    @Test func timestampsHaveOneWrittenForm() async throws {
        try await RestHarness.run { harness in
            let member = try await harness.token("member@acme.example")
            let project = try await harness.seededID("project/1/1")
            let task = try #require(
                try await harness.ownerValue("select id::text from public.tasks where project_id = '\(project)' limit 1", as: String.self))
            let before = try await harness.ownerValue(
                "select coalesce(due_date::text, 'none') from public.tasks where id = '\(task)'", as: String.self)
            for bad in ["2024-01-02T03:04:05Z*", "tomorrow", "jan 2 2024", "2024-01-02T03:04:05+02:00 junk", "20240102"] {
                let patch = try await harness.send(.patch, "tasks?id=eq.\(task)", token: member, json: #"{"due_date":"\#(bad)"}"#)
                #expect(patch.status == .badRequest, "\(bad): \(patch.text)")
                #expect(patch.code == "22007", "\(bad): \(patch.text)")
                let filter = try await harness.send(.get, "tasks?select=id&due_date=lt.\(encoded(bad))", token: member)
                #expect(filter.status == .badRequest, "\(bad): \(filter.text)")
                #expect(filter.code == "22007")
            }
            let after = try await harness.ownerValue(
                "select coalesce(due_date::text, 'none') from public.tasks where id = '\(task)'", as: String.self)
            #expect(before == after)
            for good in ["2024-01-02T03:04:05Z", "2024-01-02 03:04:05.123456+02", "2024-01-02t03:04+05:30", "2024-01-02", "infinity"] {
                let patch = try await harness.send(.patch, "tasks?id=eq.\(task)", token: member, json: #"{"due_date":"\#(good)"}"#)
                #expect(patch.status == .noContent || patch.status == .ok, "\(good): \(patch.text)")
                let filter = try await harness.send(.get, "tasks?select=id&due_date=lte.\(encoded(good))&id=eq.\(task)", token: member)
                #expect(filter.array.count == 1, "\(good): \(filter.text)")
            }
            // Operators that do not read the value as a timestamp are not held to its form.
            let unset = try await harness.send(.get, "tasks?select=id&due_date=is.null&created_at=not.is.null", token: member)
            #expect(unset.status == .ok, "\(unset.text)")
            let impossible = try await harness.send(
                .patch, "tasks?id=eq.\(task)", token: member, json: #"{"due_date":"2024-02-30T00:00:00Z"}"#)
            #expect(impossible.status == .badRequest, "\(impossible.text)")
        }
    }

    /// rpc arguments are held to their JSON kinds like columns: no boolean turned into the text "false".
    @Test func rpcArgumentsHaveStrictKinds() async throws {
        try await RestHarness.run { harness in
            let member = try await harness.token("member@acme.example")
            let before = try await harness.ownerValue("select count(*)::int from public.organizations", as: Int.self)
            let wrong = try await harness.send(.post, "rpc/create_organization", token: member, json: #"{"name":"Kinds","slug":false}"#)
            #expect(wrong.status == .badRequest, "\(wrong.text)")
            #expect(wrong.code == "22P02")
            let number = try await harness.send(.post, "rpc/create_organization", token: member, json: #"{"name":7,"slug":"kinds"}"#)
            #expect(number.code == "22P02")
            #expect(try await harness.ownerValue("select count(*)::int from public.organizations", as: Int.self) == before)
        }
    }

    /// `Prefer: handling=strict, max-affected=N` rolls a write back that would change more rows.
    @Test func maxAffectedRollsBackLargerWrites() async throws {
        try await RestHarness.run { harness in
            let member = try await harness.token("member@acme.example")
            let project = try await harness.seededID("project/1/1")
            let filter = "tasks?project_id=eq.\(project)&position=lte.3"
            let count = "select count(*)::int from public.tasks where project_id = '\(project)' and position <= 3 and status = 'CANCELLED'"

            let refused = try await harness.send(
                .patch, filter, token: member, json: #"{"status":"CANCELLED"}"#, headers: ["Prefer": "handling=strict, max-affected=2"])
            #expect(refused.status == .badRequest)
            #expect(refused.code == "PGRST124")
            #expect(refused.object["details"] as? String == "The query affects 3 rows")
            #expect(try await harness.ownerValue(count, as: Int.self) == 0, "rolled back")

            let lenient = try await harness.send(
                .patch, filter, token: member, json: #"{"status":"CANCELLED"}"#, headers: ["Prefer": "max-affected=2"])
            #expect(lenient.status == .noContent, "without handling=strict the limit is not enforced")
            #expect(try await harness.ownerValue(count, as: Int.self) == 3)

            let allowed = try await harness.send(
                .delete, "tasks?project_id=eq.\(project)&position=eq.1", token: member,
                headers: ["Prefer": "handling=strict, max-affected=1, return=representation"])
            #expect(allowed.status == .ok, "\(allowed.text)")
            #expect(allowed.array.count == 1)
            #expect(allowed.headers[HTTPField.Name("Preference-Applied")!]?.contains("max-affected=1") == true)

            let unknown = try await harness.send(
                .delete, "tasks?id=eq.\(project)", token: member, headers: ["Prefer": "handling=strict, colour=blue"])
            #expect(unknown.status == .badRequest)
            #expect(unknown.code == "PGRST122")

            let scalar = try await harness.send(
                .post, "rpc/unread_notification_count", token: member, json: "{}", headers: ["Prefer": "handling=strict, max-affected=1"])
            #expect(scalar.code == "PGRST128")
        }
    }

    /// A PATCH that matches no row still has its values checked: the answer does not depend on luck.
    @Test(arguments: [
        (#"{"progress_percentage":900}"#, "23514"),
        (#"{"progress_percentage":"ninety"}"#, "22P02"),
        (#"{"name":{}}"#, "22P02"),
        (#"{"name":null}"#, "23502"),
        (#"{"start_date":"not a date"}"#, "22007"),
    ])
    func patchValuesAreCheckedWhenNoRowMatches(body: String, code: String) async throws {
        try await RestHarness.run { harness in
            let member = try await harness.token("member@acme.example")
            let reply = try await harness.send(.patch, "projects?id=eq.\(UUID().uuidString.lowercased())", token: member, json: body)
            #expect(reply.status == .badRequest, "\(body): \(reply.text)")
            #expect(reply.code == code, "\(body): \(reply.text)")
            #expect(reply.object.keys.sorted() == ["code", "details", "hint", "message"])
        }
    }

    /// Values of the wrong JSON kind are refused on insert instead of being coerced.
    @Test func wrongJSONKindsAreRefusedOnInsert() async throws {
        try await RestHarness.run { harness in
            let member = try await harness.token("member@acme.example")
            let org = try await harness.seededID("org/1")
            for body in [
                #"{"organization_id":"\#(org)","name":5}"#, #"{"organization_id":"\#(org)","name":"x","tags":"{a}"}"#,
                #"{"organization_id":"\#(org)","name":"x","tags":[1]}"#,
            ] {
                let reply = try await harness.send(.post, "customers", token: member, json: body)
                #expect(reply.status == .badRequest, "\(body): \(reply.text)")
                #expect(reply.code == "22P02")
            }
            let fine = try await harness.send(
                .post, "customers", token: member, json: #"{"organization_id":"\#(org)","name":"x","tags":["a",null]}"#)
            #expect(fine.status == .created, "\(fine.text)")
        }
    }
}
