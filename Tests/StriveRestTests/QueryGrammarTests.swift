import Testing

@testable import StriveRest

@Suite("PostgREST grammar")
struct QueryGrammarTests {
    func parse(_ query: String) throws -> ParsedQuery {
        try QueryGrammar.parse(try QueryGrammar.pairs(query))
    }

    @Test func aSelectListKeepsAliasesCastsAndNestedEmbeds() throws {
        let items = try QueryGrammar.parseSelect(
            "id,label:title,budget::text,project:projects(name,customers!inner(name)),assignee:users!assigned_to(name)")
        #expect(
            items == [
                .column(name: "id", alias: nil, cast: nil),
                .column(name: "title", alias: "label", cast: nil),
                .column(name: "budget", alias: nil, cast: "text"),
                .embed(
                    Embed(
                        alias: "project", relation: "projects", hint: nil, inner: false,
                        items: [
                            .column(name: "name", alias: nil, cast: nil),
                            .embed(
                                Embed(
                                    alias: nil, relation: "customers", hint: nil, inner: true,
                                    items: [.column(name: "name", alias: nil, cast: nil)])),
                        ])),
                .embed(
                    Embed(
                        alias: "assignee", relation: "users", hint: "assigned_to", inner: false,
                        items: [.column(name: "name", alias: nil, cast: nil)])),
            ])
    }

    @Test func aStarSelectsEveryColumnAtAnyLevel() throws {
        #expect(
            try QueryGrammar.parseSelect("*,tasks(*)") == [
                .star, .embed(Embed(alias: nil, relation: "tasks", hint: nil, inner: false, items: [.star])),
            ])
    }

    @Test func aSelectListThatIsNotOneIsRefused() throws {
        #expect(throws: RestError.self) { try QueryGrammar.parseSelect("id;drop table tasks") }
        #expect(throws: RestError.self) { try QueryGrammar.parseSelect("projects(name") }
        let deep = String(repeating: "a(", count: 20) + "id" + String(repeating: ")", count: 20)
        #expect(throws: RestError.self) { try QueryGrammar.parseSelect(deep) }
    }

    @Test func filtersWithEveryOperatorShape() throws {
        let query = try parse("status=not.eq.DONE&id=in.(1,%222,3%22,4)&due_date=is.null&title=ilike.*plan*&body=fts(english).cats")
        let filters = query.top.conditions.compactMap { condition -> Filter? in
            if case .filter(let filter) = condition { return filter }
            return nil
        }
        #expect(filters.count == 5)
        #expect(filters[0] == Filter(column: "status", negated: true, op: .eq, value: "DONE", list: [], language: nil))
        #expect(filters[1].list == ["1", "2,3", "4"])
        #expect(filters[2].op == .is && filters[2].value == "null")
        #expect(filters[3].op == .ilike && filters[3].value == "*plan*")
        #expect(filters[4].op == .fts && filters[4].language == "english" && filters[4].value == "cats")
        // A plain filter keeps dots and commas in its value.
        #expect(
            try parse("name=eq.a.b,c").top.conditions == [
                .filter(Filter(column: "name", negated: false, op: .eq, value: "a.b,c", list: [], language: nil))
            ])
        #expect(throws: RestError.self) { try parse("status=equals.DONE") }
        #expect(throws: RestError.self) { try parse("status=DONE") }
        #expect(throws: RestError.self) { try parse("id=in.1,2") }
        #expect(throws: RestError.self) { try parse("done=is.maybe") }
        #expect(throws: RestError.self) { try parse("name=eq.%zz") }
    }

    @Test func aLogicTreeKeepsQuotedValuesAndNestedGroups() throws {
        let query = try parse(#"or=(name.eq."a,b.c:(d)\"e",and(progress.gt.10,status.not.eq.DONE),name.is.null)"#)
        guard case .any(let children, let negated) = try #require(query.top.conditions.first) else {
            Issue.record("expected an or group")
            return
        }
        #expect(!negated)
        #expect(children.count == 3)
        #expect(children[0] == .filter(Filter(column: "name", negated: false, op: .eq, value: #"a,b.c:(d)"e"#, list: [], language: nil)))
        guard case .all(let inner, _) = children[1] else {
            Issue.record("expected an and group")
            return
        }
        #expect(inner.count == 2)
    }

    @Test func aLogicTreeTooDeepOrUnbalancedIsRefused() throws {
        let nested = "or=" + String(repeating: "(a.eq.1,or", count: 30) + "(a.eq.1)" + String(repeating: ")", count: 30)
        #expect(throws: RestError.self) { try parse(nested) }
        #expect(throws: RestError.self) { try parse("or=(a.eq.1") }
        #expect(throws: RestError.self) { try parse("or=()") }
    }

    @Test func aNegatedGroupIsNegated() throws {
        #expect(
            try parse("not.and=(a.eq.1,b.eq.2)").top.conditions.first.map { if case .all(_, true) = $0 { true } else { false } } == true)
    }

    @Test func orderingAndPagingApplyToTheTopAndToEachEmbed() throws {
        let query = try parse(
            "order=position.desc.nullslast,title&limit=10&offset=20&tasks.order=position&tasks.limit=2&tasks.status=eq.TODO&tasks.or=(a.eq.1,b.eq.2)"
        )
        #expect(
            query.top.order == [
                OrderTerm(column: "position", descending: true, nullsFirst: false),
                OrderTerm(column: "title", descending: false, nullsFirst: nil),
            ])
        #expect(query.top.limit == 10)
        #expect(query.top.offset == 20)
        let tasks = try #require(query.resources["tasks"])
        #expect(tasks.limit == 2)
        #expect(tasks.order == [OrderTerm(column: "position", descending: false, nullsFirst: nil)])
        #expect(tasks.conditions.count == 2)
    }

    @Test func anOrderOrLimitThatIsNotOneIsRefused() throws {
        #expect(throws: RestError.self) { try parse("order=id.sideways") }
        #expect(throws: RestError.self) { try parse("limit=-1") }
        #expect(throws: RestError.self) { try parse("limit=ten") }
    }
}
