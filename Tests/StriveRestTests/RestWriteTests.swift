import Foundation
import HTTPTypes
import Hummingbird
import StriveTestSupport
import Testing

/// One test at a time: each test seeds a database and starts a server, and all at once beside the other suites they
/// overran the test client's fixed 20 s read timeout in the suite's first minutes.
@Suite("Data API writes, RPC and safety", .serialized)
struct RestWriteTests {
    @Test func insertWithEveryPreferOption() async throws {
        try await RestHarness.run { harness in
            let member = try await harness.token("member@acme.example")
            let org = try await harness.seededID("org/1")
            let minimal = try await harness.send(
                .post, "customers", token: member, json: #"{"organization_id":"\#(org)","name":"Minimal"}"#)
            #expect(minimal.status == .created)
            #expect(minimal.body.isEmpty)

            let represented = try await harness.send(
                .post, "customers?select=id,name,status", token: member, json: #"{"organization_id":"\#(org)","name":"Shown"}"#,
                headers: ["Prefer": "return=representation"])
            #expect(represented.status == .created)
            #expect(represented.array.first?["status"] as? String == "LEAD", "defaults apply to omitted columns")

            let located = try await harness.send(
                .post, "customers", token: member, json: #"{"organization_id":"\#(org)","name":"Located"}"#,
                headers: ["Prefer": "return=headers-only"])
            #expect(located.status == .created)
            #expect(located.headers[.location]?.hasPrefix("/customers?id=eq.") == true)

            // Bulk with differing keys: missing ones are NULL (PostgREST), unless missing=default — and a
            // missing NOT NULL column with a default takes the default, as NULL could only fail there.
            let bulk = #"[{"organization_id":"\#(org)","name":"Bulk A","status":"ACTIVE"},{"organization_id":"\#(org)","name":"Bulk B"}]"#
            let withDefaults = try await harness.send(
                .post, "customers?select=name,status", token: member, json: bulk,
                headers: ["Prefer": "return=representation,missing=default"])
            #expect(withDefaults.status == .created, "\(withDefaults.text)")
            #expect(Set(withDefaults.array.compactMap { $0["status"] as? String }) == ["ACTIVE", "LEAD"])
            let withNulls = try await harness.send(
                .post, "customers?select=name,status", token: member, json: bulk, headers: ["Prefer": "return=representation"])
            #expect(withNulls.status == .created, "status is NOT NULL with a default: \(withNulls.text)")
            #expect(Set(withNulls.array.compactMap { $0["status"] as? String }) == ["ACTIVE", "LEAD"])
            let explicitNull = try await harness.send(
                .post, "customers", token: member, json: #"[{"organization_id":"\#(org)","name":"N","status":null}]"#)
            #expect(explicitNull.status == .badRequest, "an explicit null into a NOT NULL column is refused: \(explicitNull.text)")
            #expect(explicitNull.code == "23502")

            let counted = try await harness.send(
                .post, "customers", token: member, json: bulk, headers: ["Prefer": "count=exact,missing=default"])
            #expect(counted.contentRange == "*/2")

            // Upserts on the primary key.
            let id = try #require(represented.array.first?["id"] as? String)
            let merged = try await harness.send(
                .post, "customers?select=name", token: member, json: #"{"id":"\#(id)","organization_id":"\#(org)","name":"Merged"}"#,
                headers: ["Prefer": "return=representation,resolution=merge-duplicates"])
            #expect(merged.status == .ok, "an upsert that only updated answers 200, as PostgREST")
            #expect(merged.array.first?["name"] as? String == "Merged")
            let ignored = try await harness.send(
                .post, "customers?select=name", token: member, json: #"{"id":"\#(id)","organization_id":"\#(org)","name":"Ignored"}"#,
                headers: ["Prefer": "return=representation,resolution=ignore-duplicates"])
            #expect(ignored.array.isEmpty)
            #expect(try await harness.ownerValue("select name from public.customers where id = '\(id)'", as: String.self) == "Merged")

            let conflict = try await harness.send(
                .post, "customers", token: member, json: #"{"id":"\#(id)","organization_id":"\#(org)","name":"Dup"}"#)
            #expect(conflict.status == .conflict)
            #expect(conflict.code == "23505")
            #expect((conflict.object["details"] as? String) != nil)
            #expect(conflict.object.keys.sorted() == ["code", "details", "hint", "message"])
        }
    }

    @Test func patchAndDeleteWithFilters() async throws {
        try await RestHarness.run { harness in
            let member = try await harness.token("member@acme.example")
            let admin = try await harness.token("admin@acme.example")
            let task = try await harness.seededID("task/1/1/1")
            let patched = try await harness.send(
                .patch, "tasks?id=eq.\(task)&select=id,status", token: member, json: #"{"status":"DONE"}"#,
                headers: ["Prefer": "return=representation"])
            #expect(patched.status == .ok, "\(patched.text)")
            #expect(patched.array.first?["status"] as? String == "DONE")
            let quiet = try await harness.send(.patch, "tasks?id=eq.\(task)", token: member, json: #"{"title":"Renamed"}"#)
            #expect(quiet.status == .noContent)
            #expect(try await harness.ownerValue("select title from public.tasks where id = '\(task)'", as: String.self) == "Renamed")

            let wrongType = try await harness.send(.patch, "tasks?id=eq.\(task)", token: member, json: #"{"position":"first"}"#)
            #expect(wrongType.status == .badRequest)
            #expect(wrongType.code == "22P02")
            let unknown = try await harness.send(.patch, "tasks?id=eq.\(task)", token: member, json: #"{"colour":"red"}"#)
            #expect(unknown.code == "PGRST204")
            let check = try await harness.send(
                .patch, "projects?id=eq.\(try await harness.seededID("project/1/1"))", token: admin, json: #"{"progress_percentage":150}"#)
            #expect(check.status == .badRequest)
            #expect(check.code == "23514")

            let deleted = try await harness.send(
                .delete, "tasks?id=eq.\(task)&select=id", token: admin, headers: ["Prefer": "return=representation"])
            #expect(deleted.status == .ok)
            #expect(deleted.array.count == 1)
            let again = try await harness.send(.delete, "tasks?id=eq.\(task)", token: admin)
            #expect(again.status == .noContent)
            #expect(try await harness.ownerValue("select count(*)::int from public.tasks where id = '\(task)'", as: Int.self) == 0)
        }
    }

    @Test func rpcKindsAndNotifications() async throws {
        try await RestHarness.run { harness in
            let member = try await harness.token("member@acme.example")
            let admin = try await harness.token("admin@acme.example")
            let org = try await harness.seededID("org/1")
            let memberID = try await harness.seededID("user/1/member")

            // The seed's scenario: create INFO, list unread, mark read, create SUCCESS with action_url/entity,
            // filter by type, paginate with exact count, delete, confirm.
            let info = try await harness.send(
                .post, "notifications", token: admin,
                json:
                    #"{"user_id":"\#(memberID)","organization_id":"\#(org)","type":"INFO","title":"Heads up","message":"Review the plan"}"#)
            #expect(info.status == .created, "\(info.text)")
            let unread = try await harness.send(.get, "notifications?select=id,title&read=eq.false&order=created_at.desc", token: member)
            #expect(unread.array.contains { $0["title"] as? String == "Heads up" })
            let count = try await harness.send(.post, "rpc/unread_notification_count", token: member, json: "{}")
            #expect(Int(count.text) == unread.array.count)
            let viaGet = try await harness.send(.get, "rpc/unread_notification_count", token: member)
            #expect(viaGet.text == count.text)

            let headsUp = try #require(unread.array.first { $0["title"] as? String == "Heads up" }?["id"] as? String)
            let marked = try await harness.send(.post, "rpc/mark_notifications_read", token: member, json: #"{"ids":["\#(headsUp)"]}"#)
            #expect(marked.status == .ok, "\(marked.text)")
            #expect(marked.text == "1")
            let foreign = try await harness.send(
                .post, "rpc/mark_notifications_read", token: member, json: #"{"ids":["\#(headsUp)","\#(UUID().uuidString.lowercased())"]}"#)
            #expect(foreign.status == .notFound)
            #expect(foreign.code == "P0002")
            let tooMany = try await harness.send(.post, "rpc/mark_notifications_read", token: member, json: #"{"ids":[]}"#)
            #expect(tooMany.status == .badRequest)

            let success = try await harness.send(
                .post, "notifications", token: admin,
                json:
                    #"{"user_id":"\#(memberID)","organization_id":"\#(org)","type":"SUCCESS","title":"Shipped","message":"Release 1.0 is out","action_url":"/releases/1","entity_type":"project","entity_id":"\#(try await harness.seededID("project/1/1"))"}"#
            )
            #expect(success.status == .created)
            let successes = try await harness.send(.get, "notifications?select=title,action_url,entity_type&type=eq.SUCCESS", token: member)
            #expect(successes.array.first?["action_url"] as? String == "/releases/1")
            let paged = try await harness.send(
                .get, "notifications?select=id&order=created_at.desc&limit=2&offset=0", token: member, headers: ["Prefer": "count=exact"])
            #expect(paged.array.count == 2)
            #expect(paged.contentRange?.hasSuffix("/\(2 + 2)") == true, "2 seeded + 2 new: \(paged.contentRange ?? "")")
            let all = try await harness.send(.post, "rpc/mark_all_notifications_read", token: member, json: "{}")
            #expect(Int(all.text) ?? 0 >= 1)
            let removed = try await harness.send(
                .delete, "notifications?title=eq.Shipped", token: member, headers: ["Prefer": "count=exact"])
            #expect(removed.contentRange == "*/1")
            #expect(try await harness.send(.get, "notifications?title=eq.Shipped", token: member).text == "[]")
            let invalid = try await harness.send(
                .post, "notifications", token: admin,
                json: #"{"user_id":"\#(memberID)","organization_id":"\#(org)","title":"","message":"x"}"#)
            #expect(invalid.status == .badRequest)
            #expect(invalid.code == "23514")
            #expect((invalid.object["message"] as? String)?.contains("notifications_title_check") == true)

            // Composite result: one object; volatile functions refuse GET; unknown names and arguments are 404.
            let organization = try await harness.send(
                .post, "rpc/create_organization", token: member, json: #"{"name":"Side Project","slug":"side-project"}"#)
            #expect(organization.status == .ok, "\(organization.text)")
            #expect(organization.object["slug"] as? String == "side-project")
            #expect(try await harness.send(.get, "rpc/create_organization?name=x&slug=x", token: member).status == .methodNotAllowed)
            #expect(try await harness.send(.post, "rpc/no_such_function", token: member, json: "{}").code == "PGRST202")
            #expect(
                try await harness.send(.post, "rpc/unread_notification_count", token: member, json: #"{"user_id":"x"}"#).code == "PGRST202")
            #expect(
                try await harness.send(.post, "rpc/create_organization", token: nil, json: #"{"name":"A","slug":"anon-org"}"#).status
                    == .unauthorized)
        }
    }

    @Test func assigningSomeoneElseNotifiesThem() async throws {
        try await RestHarness.run { harness in
            let admin = try await harness.token("admin@acme.example")
            let viewer = try await harness.token("viewer@acme.example")
            let viewerID = try await harness.seededID("user/1/viewer")
            let task = try await harness.seededID("task/1/1/2")
            let before = try await harness.send(.get, "notifications?select=id", token: viewer)
            let assigned = try await harness.send(.patch, "tasks?id=eq.\(task)", token: admin, json: #"{"assigned_to":"\#(viewerID)"}"#)
            #expect(assigned.status == .noContent, "\(assigned.text)")
            let after = try await harness.send(.get, "notifications?select=title,entity_id&order=created_at.desc", token: viewer)
            #expect(after.array.count == before.array.count + 1)
            #expect(after.array.first?["entity_id"] as? String == task)
        }
    }

    @Test func anotherOrganizationsRowsAreOutOfReach() async throws {
        try await RestHarness.run { harness in
            let outsider = try await harness.token("member@globex.example")
            let acme = try await harness.seededID("org/1")
            let task = try await harness.seededID("task/1/1/1")
            #expect(try await harness.send(.get, "tasks?organization_id=eq.\(acme)", token: outsider).text == "[]")
            #expect(try await harness.send(.get, "tasks?id=eq.\(task)", token: outsider).text == "[]")
            let patched = try await harness.send(
                .patch, "tasks?id=eq.\(task)&select=id", token: outsider, json: #"{"title":"pwned"}"#,
                headers: ["Prefer": "return=representation"])
            #expect(patched.text == "[]")
            let deleted = try await harness.send(.delete, "tasks?id=eq.\(task)", token: outsider, headers: ["Prefer": "count=exact"])
            #expect(deleted.contentRange == "*/0")
            let inserted = try await harness.send(
                .post, "customers", token: outsider, json: #"{"organization_id":"\#(acme)","name":"Intruder"}"#)
            #expect(inserted.status == .forbidden)
            #expect(inserted.code == "42501")
            #expect(
                try await harness.ownerValue("select title from public.tasks where id = '\(task)'", as: String.self)
                    == "Task 1 of project 1")
            let anonymous = try await harness.send(.get, "tasks", token: nil)
            #expect(anonymous.status == .unauthorized)
            #expect(try await harness.send(.get, "content?select=title", token: nil).status == .ok)
        }
    }

    @Test func hostileInputGetsPostgRESTErrors() async throws {
        try await RestHarness.run { harness in
            let member = try await harness.token("member@acme.example")
            let injectedColumn = try await harness.send(.get, "tasks?select=\(encoded("id,title;drop table public.tasks"))", token: member)
            #expect(injectedColumn.status == .badRequest)
            let quotedColumn = try await harness.send(.get, "tasks?select=\(encoded(#""id""; drop table x""#))", token: member)
            #expect(quotedColumn.status == .badRequest)
            let valueInjection = try await harness.send(.get, "tasks?title=eq.\(encoded("x'; drop table public.tasks; --"))", token: member)
            #expect(valueInjection.status == .ok)
            #expect(valueInjection.text == "[]")
            let orderInjection = try await harness.send(.get, "tasks?order=\(encoded("id;drop table public.tasks"))", token: member)
            #expect(orderInjection.status == .badRequest)
            let orderColumn = try await harness.send(.get, "tasks?order=\(encoded("id;drop"))", token: member)
            #expect(orderColumn.code == "42703")
            let deep = "or=" + String(repeating: "(title.eq.a,or", count: 40) + "(title.eq.a)" + String(repeating: ")", count: 40)
            let nested = try await harness.send(.get, "tasks?\(deep)", token: member)
            #expect(nested.status == .badRequest)
            #expect(nested.code == "PGRST100")
            let huge = try await harness.send(
                .post, "customers", token: member, headers: ["Content-Type": "application/json"],
                rawBody: ByteBuffer(string: #"{"name":"\#(String(repeating: "x", count: 10 * 1024 * 1024))"}"#))
            #expect(huge.status == .contentTooLarge)
            let malformed = try await harness.send(.post, "customers", token: member, json: #"{"name": "#)
            #expect(malformed.status == .badRequest)
            #expect(malformed.code == "PGRST102")
            let scalar = try await harness.send(.post, "customers", token: member, json: "42")
            #expect(scalar.code == "PGRST102")
            #expect(try await harness.send(.get, "no_such_table", token: member).code == "PGRST205")
            #expect(try await harness.send(.get, "tasks?colour=eq.red", token: member).code == "42703")
            #expect(try await harness.send(.get, "tasks?position=eq.first", token: member).code == "22P02")
            #expect(try await harness.send(.get, "tasks?select=id::regclass", token: member).status == .badRequest)
            for reply in [injectedColumn, orderInjection, nested, malformed] {
                #expect(reply.object.keys.sorted() == ["code", "details", "hint", "message"])
            }
            #expect(try await harness.ownerValue("select count(*)::int from public.tasks", as: Int.self) == 200)
        }
    }
}
