import Foundation
import HTTPTypes
import StriveTestSupport
import Testing

@Suite("Data API reads")
struct RestReadTests {
    @Test func selectFilterOrderLimit() async throws {
        try await RestHarness.run { harness in
            let member = try await harness.token("member@acme.example")
            let project = try await harness.seededID("project/1/1")
            let reply = try await harness.send(
                .get, "tasks?select=id,title,position&project_id=eq.\(project)&order=position.desc&limit=5", token: member)
            #expect(reply.status == .ok)
            let rows = reply.array
            #expect(rows.count == 5)
            #expect(rows.map { $0["position"] as? Int } == [20, 19, 18, 17, 16])
            #expect(Set(rows.first?.keys.map { $0 } ?? []) == ["id", "title", "position"])
            #expect(reply.headers[.contentType]?.hasPrefix("application/json") == true)

            let aliased = try await harness.send(.get, "projects?select=label:name,budget::text&limit=1&order=name", token: member)
            #expect(aliased.array.first?["label"] as? String == "Project 1 of Acme Corp")
            #expect(aliased.array.first?["budget"] is String)

            let grouped = try await harness.send(
                .get, "tasks?select=id&or=(status.eq.DONE,and(status.eq.TODO,priority.eq.HIGH))&project_id=eq.\(project)", token: member)
            #expect(grouped.status == .ok)
            let expected = try await harness.ownerValue(
                "select count(*)::int from public.tasks where project_id = '\(project)' and (status = 'DONE' or (status = 'TODO' and priority = 'HIGH'))",
                as: Int.self)
            #expect(grouped.array.count == expected)

            let notIn = try await harness.send(
                .get, "tasks?select=status&status=not.in.(DONE,CANCELLED)&project_id=eq.\(project)", token: member)
            #expect(notIn.array.allSatisfy { !["DONE", "CANCELLED"].contains($0["status"] as? String ?? "") })
            #expect(!notIn.array.isEmpty)

            let like = try await harness.send(.get, "customers?select=name&name=ilike.\(encoded("*customer 1*"))&order=name", token: member)
            #expect(like.array.allSatisfy { ($0["name"] as? String)?.lowercased().contains("customer 1") == true })
            #expect(!like.array.isEmpty)

            let tags = try await harness.send(.get, "customers?select=id&tags=cs.\(encoded("{demo}"))&limit=3", token: member)
            #expect(tags.array.count == 3)

            let nullsLast = try await harness.send(.get, "tasks?select=due_date&order=due_date.desc.nullslast&limit=1", token: member)
            #expect(nullsLast.status == .ok)
        }
    }

    @Test func countsRangesAndSingleObjects() async throws {
        try await RestHarness.run { harness in
            let member = try await harness.token("member@acme.example")
            let page = try await harness.send(.get, "tasks?select=id", token: member, headers: ["Prefer": "count=exact", "Range": "0-9"])
            #expect(page.status == .partialContent)
            #expect(page.contentRange == "0-9/100")
            #expect(page.array.count == 10)

            let all = try await harness.send(.get, "tasks?select=id&limit=100", token: member, headers: ["Prefer": "count=exact"])
            #expect(all.status == .ok)
            #expect(all.contentRange == "0-99/100")

            let none = try await harness.send(.get, "tasks?select=id&title=eq.nothing", token: member, headers: ["Prefer": "count=exact"])
            #expect(none.status == .ok)
            #expect(none.contentRange == "*/0")
            #expect(none.text == "[]")

            let past = try await harness.send(.get, "tasks?select=id&offset=500", token: member, headers: ["Prefer": "count=exact"])
            #expect(past.status == .rangeNotSatisfiable)
            #expect(past.code == "PGRST103")

            let many = try await harness.send(
                .get, "tasks?select=id", token: member, headers: ["Accept": "application/vnd.pgrst.object+json"])
            #expect(many.status == .notAcceptable)
            #expect(many.code == "PGRST116")
            let task = try await harness.seededID("task/1/1/1")
            let one = try await harness.send(
                .get, "tasks?select=id,title&id=eq.\(task)", token: member, headers: ["Accept": "application/vnd.pgrst.object+json"])
            #expect(one.status == .ok)
            #expect(one.object["id"] as? String == task)

            let head = try await harness.send(.head, "tasks?select=id", token: member, headers: ["Prefer": "count=exact"])
            #expect(head.status == .partialContent || head.status == .ok)
            #expect(head.body.isEmpty)
        }
    }

    @Test func embeddingInBothDirections() async throws {
        try await RestHarness.run { harness in
            let member = try await harness.token("member@acme.example")
            let task = try await harness.seededID("task/1/1/1")
            let toOne = try await harness.send(
                .get, "tasks?select=title,project:projects(name),assignee:users!assigned_to(name,email)&id=eq.\(task)", token: member)
            #expect(toOne.status == .ok, "\(toOne.text)")
            let row = try #require(toOne.array.first)
            #expect((row["project"] as? [String: Any])?["name"] as? String == "Project 1 of Acme Corp")
            #expect(((row["assignee"] as? [String: Any])?["email"] as? String)?.hasSuffix("@acme.example") == true)

            let toMany = try await harness.send(
                .get, "projects?select=name,tasks(title,position)&tasks.order=position.desc&tasks.limit=2&order=name&limit=2", token: member
            )
            #expect(toMany.status == .ok, "\(toMany.text)")
            let first = try #require(toMany.array.first)
            let tasks = try #require(first["tasks"] as? [[String: Any]])
            #expect(tasks.map { $0["position"] as? Int } == [20, 19])

            let nested = try await harness.send(
                .get, "tasks?select=title,project:projects(name,customer:customers(name))&limit=1", token: member)
            #expect(((nested.array.first?["project"] as? [String: Any])?["customer"] as? [String: Any])?["name"] != nil)

            let ambiguous = try await harness.send(.get, "tasks?select=title,users(name)&limit=1", token: member)
            #expect(ambiguous.status == .multipleChoices)
            #expect(ambiguous.code == "PGRST201")

            let unrelated = try await harness.send(.get, "tasks?select=title,ai_tools(name)&limit=1", token: member)
            #expect(unrelated.status == .badRequest)
            #expect(unrelated.code == "PGRST200")

            // !inner keeps only parents whose embed matches its filter.
            let inner = try await harness.send(
                .get, "projects?select=name,tasks!inner(title)&tasks.title=eq.\(encoded("Task 3 of project 2"))", token: member)
            #expect(inner.array.count == 1)
            #expect(inner.array.first?["name"] as? String == "Project 2 of Acme Corp")
            let outer = try await harness.send(
                .get, "projects?select=name,tasks(title)&tasks.title=eq.\(encoded("Task 3 of project 2"))", token: member)
            #expect(outer.array.count == 5)
        }
    }

    @Test func valuesWithPunctuationUnicodeEmptyAndNull() async throws {
        try await RestHarness.run { harness in
            let member = try await harness.token("member@acme.example")
            let org = try await harness.seededID("org/1")
            let tricky = #"Zoë, "Quoted" (Ltd.): a.b"#
            let created = try await harness.send(
                .post, "customers", token: member,
                json:
                    #"[{"organization_id":"\#(org)","name":"Zoë, \"Quoted\" (Ltd.): a.b","company":""},{"organization_id":"\#(org)","name":"Nameless","company":null}]"#,
                headers: ["Prefer": "return=representation"])
            #expect(created.status == .created, "\(created.text)")
            #expect(created.array.count == 2)

            let byEq = try await harness.send(.get, "customers?select=name&name=eq.\(encoded(tricky))", token: member)
            #expect(byEq.array.map { $0["name"] as? String } == [tricky])
            let quotedInTree = #"or=(name.eq."Zoë, \"Quoted\" (Ltd.): a.b",name.eq.none)"#
            let byOr = try await harness.send(
                .get, "customers?select=name&" + "or=" + encoded(String(quotedInTree.dropFirst(3))), token: member)
            #expect(byOr.array.map { $0["name"] as? String } == [tricky], "\(byOr.text)")
            let inList = #"("Zoë, \"Quoted\" (Ltd.): a.b",Nameless)"#
            let byIn = try await harness.send(.get, "customers?select=name&name=in.\(encoded(inList))&order=name", token: member)
            #expect(byIn.array.count == 2)
            let empty = try await harness.send(.get, "customers?select=name&company=eq.", token: member)
            #expect(empty.array.map { $0["name"] as? String } == [tricky])
            let null = try await harness.send(.get, "customers?select=name&company=is.null&name=eq.Nameless", token: member)
            #expect(null.array.count == 1)
        }
    }
}
