import Foundation
import Testing

/// The data API answers as PostgREST 12/13 does — status, error code and body — for the request shapes
/// the Supabase clients send: each table is one area, each row one behaviour, named in any failure. One
/// server for all areas: ten of them, each on a database of its own, crowded the suite's first minute.
@Suite("PostgREST compatibility")
struct PostgRESTCompatibilityTests {
    /// Under the settings PostgREST's client suites run with (plans, aggregates, tx override, two schemas),
    /// on one server: the areas that change rows come last, so the others read the fixture as written.
    @Test func underPostgRESTsTestSettings() async throws {
        try await PostgRESTHarness.run { harness in
            try await Self.filtersWithModifiersAndLogicTrees(harness)
            try await Self.jsonPathsAndComputedFields(harness)
            try await Self.embedsAsPostgRESTResolvesThem(harness)
            try await Self.aggregates(harness)
            try await Self.schemasByProfile(harness)
            try await Self.mediaTypes(harness)
            try await Self.rpcAsPostgRESTCallsIt(harness)
            try await Self.transactionsAndUpserts(harness)
        }
    }

    /// Under Strive's defaults.
    @Test func underTheDefaultSettings() async throws {
        try await PostgRESTHarness.run(environment: [:]) { harness in try await Self.plansNeedTheSetting(harness) }
    }

    /// Operator modifiers and logic trees around arrays, quotes and lists.
    static func filtersWithModifiersAndLogicTrees(_ harness: PostgRESTHarness) async throws {
        try await harness.check([
            Scenario(
                name: "like(all) takes a list", path: "fx_people?select=handle&handle=like(all).{a*,*n}", status: 200,
                json: #"[{"handle":"ann"}]"#),
            Scenario(
                name: "ilike(any) takes a list", path: "fx_people?select=handle&handle=ilike(any).{A*,C*}&order=handle", status: 200,
                json: #"[{"handle":"ann"},{"handle":"cy"}]"#),
            Scenario(
                name: "eq(any) reads the list as the column's type", path: "fx_people?select=handle&age=eq(any).{31,45}&order=handle",
                status: 200, json: #"[{"handle":"ann"},{"handle":"bob"}]"#),
            Scenario(
                name: "not.gt(all)", path: "fx_people?select=handle&age=not.gt(all).{30,40}&order=handle", status: 200,
                json: #"[{"handle":"ann"},{"handle":"cy"}]"#),
            Scenario(name: "a modifier needs a list", path: "fx_people?handle=like(all).a*", status: 400, code: "PGRST100"),
            Scenario(name: "is takes no modifier", path: "fx_people?handle=is(any).{null}", status: 400, code: "PGRST100"),
            Scenario(
                name: "or= with a JSON path and a JSON array",
                path: "fx_people?select=handle&or=(handle.in.(bob),info->langs.cs.[\"es\"])&order=handle",
                status: 200, json: #"[{"handle":"bob"},{"handle":"cy"}]"#),
            Scenario(
                name: "or= keeps an array literal whole",
                path: "fx_people?select=handle&or=(handle.eq.x,handle.eq(any).{bob,cy})&order=handle",
                status: 200, json: #"[{"handle":"bob"},{"handle":"cy"}]"#),
            Scenario(
                name: "or= keeps {…} whole", path: "fx_posts?select=id&or=(id.in.(1,4),body.in.(\"quiet \\\"please\\\"\"))&order=id",
                status: 200, json: #"[{"id":1},{"id":2},{"id":4}]"#),
            Scenario(
                name: "quoted values keep commas, dots and parentheses",
                path: "fx_posts?select=id&or=(body.eq.\"hello, world\",body.eq.\"a.b(c)\")", status: 200, json: #"[{"id":1}]"#),
            Scenario(
                name: "not.or and nested and", path: "fx_people?select=handle&not.or=(age.gt.40,and(status.eq.ONLINE,age.lt.30))",
                status: 200, json: #"[{"handle":"ann"}]"#),
        ])
    }

    /// Functions: GET and HEAD in a read-only transaction, overloads, unnamed and variadic parameters,
    /// results filtered and counted like tables.
    static func rpcAsPostgRESTCallsIt(_ harness: PostgRESTHarness) async throws {
        try await harness.check([
            Scenario(name: "GET with a query argument", path: "rpc/fx_status?handle_param=bob", status: 200, json: #""OFFLINE""#),
            Scenario(
                name: "GET counts a single value as one", path: "rpc/fx_status?handle_param=bob", headers: ["Prefer": "count=exact"],
                status: 200, expectHeaders: ["Content-Range": "0-0/1"]),
            Scenario(
                name: "HEAD counts set results", method: .head, path: "rpc/fx_handles_and_status?prefix=",
                headers: ["Prefer": "count=exact"], status: 200, text: "", expectHeaders: ["Content-Range": "0-2/3"]),
            Scenario(
                name: "GET of a function that writes fails read-only (25006)", path: "rpc/fx_go_offline?handle_param=ann", status: 405,
                code: "25006"),
            Scenario(
                name: "RETURNS TABLE honours select and filters", method: .post,
                path: "rpc/fx_handles_and_status?select=handle&status=neq.ONLINE", body: #"{"prefix":""}"#, status: 200,
                json: #"[{"handle":"bob"}]"#),
            Scenario(
                name: "RETURNS TABLE with alias, cast and order", method: .post,
                path: "rpc/fx_handles_and_status?select=who:handle,status::text&order=handle.desc&limit=2", body: "{}", status: 200,
                json: #"[{"who":"cy","status":"ONLINE"},{"who":"bob","status":"OFFLINE"}]"#),
            Scenario(
                name: "a range and a count on a set-returning function", path: "rpc/fx_handles_and_status?select=handle&offset=1",
                headers: ["Prefer": "count=exact"], status: 206, json: #"[{"handle":"bob"},{"handle":"cy"}]"#,
                expectHeaders: ["Content-Range": "1-2/3"]),
            Scenario(
                name: "a set of table rows", path: "rpc/fx_people_of?status_param=ONLINE&select=handle", status: 200,
                json: #"[{"handle":"ann"},{"handle":"cy"}]"#),
            Scenario(
                name: "one composite row, none found, is a row of nulls as in PostgreSQL", path: "rpc/fx_first_person?select=handle",
                status: 200, json: #"{"handle":null}"#),
            Scenario(
                name: "one composite row filtered away is null", path: "rpc/fx_first_person?handle=eq.x", status: 200, text: "null"),
            Scenario(
                name: "overloads chosen by argument names are ambiguous", method: .post, path: "rpc/fx_pick", body: #"{"a":"x"}"#,
                status: 300, code: "PGRST203",
                json: #"""
                    {"code":"PGRST203","details":null,
                     "hint":"Try renaming the parameters or the function itself in the database so function overloading can be resolved",
                     "message":"Could not choose the best candidate function between: public.fx_pick(a => integer), public.fx_pick(a => text)"}
                    """#),
            Scenario(name: "the overload without parameters", method: .post, path: "rpc/fx_pick", body: "{}", status: 204, text: ""),
            Scenario(
                name: "an unknown argument", method: .post, path: "rpc/fx_status", body: #"{"nope":1}"#, status: 404, code: "PGRST202",
                json: #"""
                    {"code":"PGRST202","hint":null,
                     "details":"Searched for the function public.fx_status with parameter nope or with a single unnamed json/jsonb parameter, but no matches were found in the schema cache.",
                     "message":"Could not find the function public.fx_status(nope) in the schema cache"}
                    """#),
            Scenario(
                name: "a single unnamed json parameter takes the whole body", method: .post, path: "rpc/fx_whole",
                body: #"{"x":"whole"}"#, status: 200, json: #""whole""#),
            Scenario(
                name: "the body keyed by an empty name goes whole too", method: .post, path: "rpc/fx_whole", body: #"{"":{"x":1}}"#,
                status: 200, text: "null"),
            Scenario(
                name: "an unnamed integer parameter is not callable", method: .post, path: "rpc/fx_whole_int", body: #"{"":1}"#,
                status: 404, code: "PGRST202"),
            Scenario(
                name: "variadic from repeated query parameters", path: "rpc/fx_total?v=1&v=2&v=4", status: 200, text: "7"),
            Scenario(
                name: "variadic from a JSON array", method: .post, path: "rpc/fx_total", body: #"{"v":[5,6]}"#, status: 200, text: "11"),
            Scenario(
                name: "a row-type argument from a JSON object", method: .post, path: "rpc/fx_posts_by?select=id",
                body: #"{"person":{"handle":"ann","status":"ONLINE"}}"#, status: 200, json: #"[{"id":1},{"id":2}]"#),
            Scenario(
                name: "a row-type argument must be an object", method: .post, path: "rpc/fx_posts_by", body: #"{"person":"ann"}"#,
                status: 400, code: "22P02"),
            Scenario(
                name: "a bigint argument may come as a string", method: .post, path: "rpc/fx_total", body: #"{"v":["2","3"]}"#,
                status: 200, text: "5"),
            Scenario(
                name: "a bigint may come as a string", method: .post, path: "fx_rooms?select=id",
                headers: ["Prefer": "return=representation"], body: #"{"id":"9007199254740993","slug":"big"}"#, status: 201,
                json: #"[{"id":9007199254740993}]"#),
        ])
    }

    /// Media types: CSV both ways, plans, single objects, stripped nulls, and 406 for anything else.
    static func mediaTypes(_ harness: PostgRESTHarness) async throws {
        try await harness.check([
            Scenario(
                name: "CSV with a header row and RFC 4180 quoting", path: "fx_posts?select=id,body&order=id",
                headers: ["Accept": "text/csv"], status: 200,
                text: "id,body\n1,\"hello, world\"\n2,\"quiet \"\"please\"\"\"\n3,up here\n4,",
                expectHeaders: ["Content-Type": "text/csv; charset=utf-8"]),
            Scenario(
                name: "CSV of nothing is empty", path: "fx_posts?id=eq.99", headers: ["Accept": "text/csv"], status: 200, text: ""),
            Scenario(
                name: "a CSV body inserts rows", method: .post, path: "fx_tags?select=id,name",
                headers: ["Content-Type": "text/csv", "Prefer": "return=representation"], body: "id,name\n10,\"a, b\"\n11,\n",
                status: 201, json: #"[{"id":10,"name":"a, b"},{"id":11,"name":null}]"#),
            Scenario(
                name: "an Accept nothing can produce", path: "fx_posts", headers: ["Accept": "application/xml"], status: 406,
                code: "PGRST107",
                json:
                    #"{"code":"PGRST107","details":null,"hint":null,"message":"None of these media types are available: application/xml"}"#
            ),
            Scenario(
                name: "the best acceptable type wins", path: "fx_tags?select=id&id=eq.1",
                headers: ["Accept": "application/xml;q=0.9, text/csv;q=0.5"], status: 200, text: "id\n1"),
            Scenario(
                name: "a JSON plan", path: "fx_posts?select=id",
                headers: ["Accept": "application/vnd.pgrst.plan+json; options=analyze"],
                status: 200, contains: "\"Node Type\": \"Aggregate\""),
            Scenario(
                name: "a text plan shows the values", path: "fx_posts?select=id&id=eq.3",
                headers: ["Accept": "application/vnd.pgrst.plan+text; options=verbose"], status: 200, contains: "'3'::bigint"),
            Scenario(
                name: "an unknown plan option", path: "fx_posts", headers: ["Accept": "application/vnd.pgrst.plan+json; options=fast"],
                status: 400, code: "PGRST100"),
            Scenario(
                name: "nulls stripped", path: "fx_people?select=handle,info&handle=eq.bob",
                headers: ["Accept": "application/vnd.pgrst.array+json;nulls=stripped"], status: 200, json: #"[{"handle":"bob"}]"#),
            Scenario(
                name: "one object, nulls stripped", path: "fx_people?select=handle,info&handle=eq.bob",
                headers: ["Accept": "application/vnd.pgrst.object+json;nulls=stripped"], status: 200, json: #"{"handle":"bob"}"#),
            Scenario(
                name: "one object of many", path: "fx_people", headers: ["Accept": "application/vnd.pgrst.object+json"], status: 406,
                json: #"""
                    {"code":"PGRST116","details":"The result contains 3 rows","hint":null,
                     "message":"Cannot coerce the result to a single JSON object"}
                    """#),
        ])
    }

    /// Plans, `tx=` and aggregates are off unless configured, as in PostgREST.
    static func plansNeedTheSetting(_ harness: PostgRESTHarness) async throws {
        try await harness.check([
            Scenario(
                name: "no plan by default", path: "fx_posts", headers: ["Accept": "application/vnd.pgrst.plan+json"], status: 406,
                code: "PGRST107"),
            Scenario(
                name: "tx=rollback is not honoured under commit", method: .post, path: "fx_tags",
                headers: ["Prefer": "tx=rollback"], body: #"{"id":20,"name":"kept"}"#, status: 201,
                absentHeaders: ["Preference-Applied"]),
            Scenario(name: "so the row is there", path: "fx_tags?select=name&id=eq.20", status: 200, json: #"[{"name":"kept"}]"#),
            Scenario(
                name: "aggregates are refused unless enabled", path: "fx_posts?select=count()", status: 400,
                json: #"{"code":"PGRST123","details":null,"hint":null,"message":"Use of aggregate functions is not allowed"}"#),
        ])
    }

    /// Prefer: tx, upsert statuses, and writes answered as one object.
    static func transactionsAndUpserts(_ harness: PostgRESTHarness) async throws {
        try await harness.check([
            Scenario(
                name: "tx=rollback answers and keeps nothing", method: .post, path: "fx_tags?select=name",
                headers: ["Prefer": "return=representation, tx=rollback"], body: #"{"id":30,"name":"gone"}"#, status: 201,
                json: #"[{"name":"gone"}]"#, expectHeaders: ["Preference-Applied": "return=representation, tx=rollback"]),
            Scenario(name: "nothing was kept", path: "fx_tags?id=eq.30", status: 200, json: "[]"),
            Scenario(
                name: "missing=default with columns= gives each row's absent columns their defaults", method: .post,
                path: "fx_people?columns=\"handle\",\"status\"&select=handle,status",
                headers: ["Prefer": "missing=default, return=representation, tx=rollback"],
                body: #"[{"handle":"eve"},{"handle":"fay","status":"OFFLINE"}]"#, status: 201,
                json: #"[{"handle":"eve","status":"ONLINE"},{"handle":"fay","status":"OFFLINE"}]"#),
            Scenario(
                name: "Prefer: nulls=stripped", path: "fx_people?select=handle,info&handle=eq.bob",
                headers: ["Prefer": "nulls=stripped"],
                status: 200, json: #"[{"handle":"bob"}]"#, expectHeaders: ["Preference-Applied": "nulls=stripped"]),
            Scenario(
                name: "a function's write rolled back", method: .post, path: "rpc/fx_go_offline", headers: ["Prefer": "tx=rollback"],
                body: #"{"handle_param":"ann"}"#, status: 200, json: #""OFFLINE""#),
            Scenario(
                name: "ann is still online", path: "fx_people?select=status&handle=eq.ann", status: 200, json: #"[{"status":"ONLINE"}]"#
            ),
            Scenario(
                name: "an upsert that only updates is 200", method: .post, path: "fx_people?on_conflict=handle&select=handle,status",
                headers: ["Prefer": "resolution=merge-duplicates, return=representation"], body: #"{"handle":"bob"}"#, status: 200,
                json: #"[{"handle":"bob","status":"OFFLINE"}]"#),
            Scenario(
                name: "an upsert that inserts is 201", method: .post, path: "fx_people?select=handle",
                headers: ["Prefer": "resolution=merge-duplicates, return=representation"],
                body: #"[{"handle":"bob"},{"handle":"dee"}]"#,
                status: 201, json: #"[{"handle":"bob"},{"handle":"dee"}]"#),
            Scenario(
                name: "a write answered as one object rolls back when it is not one row", method: .patch, path: "fx_tags?id=gt.0",
                headers: ["Prefer": "return=representation", "Accept": "application/vnd.pgrst.object+json"], body: #"{"name":"x"}"#,
                status: 406, code: "PGRST116"),
            Scenario(name: "so no tag was renamed", path: "fx_tags?select=id&name=eq.x", status: 200, json: "[]"),
        ])
    }

    /// JSON paths and computed fields read, filter and order like columns.
    static func jsonPathsAndComputedFields(_ harness: PostgRESTHarness) async throws {
        try await harness.check([
            Scenario(
                name: "a path names its last key", path: "fx_people?select=handle,info->city->>name&handle=eq.ann", status: 200,
                json: #"[{"handle":"ann","name":"Oslo"}]"#),
            Scenario(
                name: "an alias, an index and a cast",
                path: "fx_people?select=first:info->langs->>0,langs:info->langs,n:age::text&handle=eq.ann",
                status: 200, json: #"[{"first":"no","langs":["no","en"],"n":"31"}]"#),
            Scenario(
                name: "an index alone names the column", path: "fx_people?select=info->langs->0&handle=eq.cy", status: 200,
                json: #"[{"langs":"es"}]"#),
            Scenario(
                name: "a filter on a path", path: "fx_people?select=handle&info->city->>name=eq.Lima", status: 200,
                json: #"[{"handle":"cy"}]"#),
            Scenario(
                name: "order by a path", path: "fx_people?select=handle&info=not.is.null&order=info->city->>name.desc", status: 200,
                json: #"[{"handle":"ann"},{"handle":"cy"}]"#),
            Scenario(
                name: "a path on an embedded resource", path: "fx_posts?select=id,fx_people(city:info->city->>name)&id=eq.1",
                status: 200, json: #"[{"id":1,"fx_people":{"city":"Oslo"}}]"#),
            Scenario(
                name: "a path on a column that is not JSON", path: "fx_people?select=handle->>key&handle=eq.ann", status: 200,
                json: #"[{"key":null}]"#),
            Scenario(
                name: "a computed field is selected by name", path: "fx_posts?select=id,fx_excerpt&id=eq.1", status: 200,
                json: #"[{"id":1,"fx_excerpt":"hello"}]"#),
            Scenario(
                name: "filtered and ordered", path: "fx_posts?select=id&fx_excerpt=like.*l*&order=fx_excerpt.desc", status: 200,
                json: #"[{"id":1}]"#),
            Scenario(
                name: "ordered by a computed field", path: "fx_posts?select=id&fx_excerpt=not.is.null&order=fx_excerpt.desc",
                status: 200,
                json: #"[{"id":3},{"id":2},{"id":1}]"#),
            Scenario(
                name: "but not part of *", path: "fx_posts?select=*&id=eq.4", status: 200,
                json: #"[{"id":4,"body":null,"author":"cy","room_id":3}]"#),
            Scenario(name: "an unknown column", path: "fx_posts?select=nope", status: 400, code: "42703"),
        ])
    }

    /// Embedding: every relationship PostgREST finds, and its errors.
    static func embedsAsPostgRESTResolvesThem(_ harness: PostgRESTHarness) async throws {
        try await harness.check([
            Scenario(
                name: "a key onto a primary key is one-to-one: an object", path: "fx_rooms?select=id,fx_room_details(note)&order=id",
                status: 200,
                json:
                    #"[{"id":1,"fx_room_details":{"note":"the big one"}},{"id":2,"fx_room_details":{"note":"green"}},{"id":3,"fx_room_details":null}]"#
            ),
            Scenario(
                name: "many-to-one is an object", path: "fx_posts?select=id,fx_people(handle)&id=eq.1", status: 200,
                json: #"[{"id":1,"fx_people":{"handle":"ann"}}]"#),
            Scenario(
                name: "an empty embed adds no key", path: "fx_posts?select=id,fx_people()&id=eq.1", status: 200, json: #"[{"id":1}]"#),
            Scenario(
                name: "an empty !inner embed still filters",
                path: "fx_posts?select=id,fx_rooms!inner()&fx_rooms.slug=eq.attic&order=id",
                status: 200, json: #"[{"id":3},{"id":4}]"#),
            Scenario(
                name: "the same embed twice", path: "fx_pairs?select=fx_people!left_person(*),fx_people!right_person(*)", status: 400,
                json:
                    #"{"code":"42712","details":null,"hint":null,"message":"table name \"fx_pairs_fx_people_1\" specified more than once"}"#
            ),
            Scenario(
                name: "two relationships are ambiguous", path: "fx_pairs?select=fx_people(*)", status: 300,
                json: #"""
                    {"code":"PGRST201",
                     "details":[
                       {"cardinality":"many-to-one","embedding":"fx_pairs with fx_people",
                        "relationship":"fx_pairs_left_person_fkey using fx_pairs(left_person) and fx_people(handle)"},
                       {"cardinality":"many-to-one","embedding":"fx_pairs with fx_people",
                        "relationship":"fx_pairs_right_person_fkey using fx_pairs(right_person) and fx_people(handle)"}],
                     "hint":"Try changing 'fx_people' to one of the following: 'fx_people!fx_pairs_left_person_fkey', 'fx_people!fx_pairs_right_person_fkey'. Find the desired relationship in the 'details' key.",
                     "message":"Could not embed because more than one relationship was found for 'fx_pairs' and 'fx_people'"}
                    """#),
            Scenario(
                name: "a column hint chooses, with aliases",
                path: "fx_pairs?select=id,left:fx_people!left_person(handle),right:fx_people!right_person(handle)&id=eq.3", status: 200,
                json: #"[{"id":3,"left":{"handle":"bob"},"right":null}]"#),
            Scenario(
                name: "a constraint name as the target",
                path: "fx_people?select=handle,fx_pairs_left_person_fkey(id)&handle=eq.ann&fx_pairs_left_person_fkey.order=id",
                status: 200,
                json: #"[{"handle":"ann","fx_pairs_left_person_fkey":[{"id":1},{"id":2}]}]"#),
            Scenario(
                name: "a column as the target", path: "fx_pairs?select=id,left_person(status)&id=eq.1", status: 200,
                json: #"[{"id":1,"left_person":{"status":"ONLINE"}}]"#),
            Scenario(
                name: "a self-reference by name is the children", path: "fx_tree?select=id,fx_tree(id)&id=eq.1&fx_tree.order=id",
                status: 200, json: #"[{"id":1,"fx_tree":[{"id":2},{"id":3}]}]"#),
            Scenario(
                name: "a self-reference by column is the parent", path: "fx_tree?select=id,parent_id(label)&id=eq.4", status: 200,
                json: #"[{"id":4,"parent_id":{"label":"left"}}]"#),
            Scenario(
                name: "many-to-many through a junction table", path: "fx_posts?select=id,fx_tags(name)&id=eq.1&fx_tags.order=name",
                status: 200, json: #"[{"id":1,"fx_tags":[{"name":"fun"},{"name":"news"}]}]"#),
            Scenario(
                name: "a computed relationship", path: "fx_people?select=handle,posts:fx_posts_of(id)&handle=eq.ann", status: 200,
                json: #"[{"handle":"ann","posts":[{"id":1},{"id":2}]}]"#),
            Scenario(
                name: "a spread flattens a to-one embed", path: "fx_posts?select=id,...fx_people(handle,state:status)&id=eq.3",
                status: 200, json: #"[{"id":3,"handle":"bob","state":"OFFLINE"}]"#),
            Scenario(
                name: "a nested spread", path: "fx_posts?select=id,fx_rooms(slug,...fx_room_details(note))&id=eq.2", status: 200,
                json: #"[{"id":2,"fx_rooms":{"slug":"garden","note":"green"}}]"#),
            Scenario(
                name: "a spread of a to-many embed", path: "fx_people?select=handle,...fx_posts(id)", status: 400, code: "PGRST119",
                json: #"""
                    {"code":"PGRST119","details":"'fx_people' and 'fx_posts' do not form a many-to-one or one-to-one relationship",
                     "hint":null,"message":"A spread operation on 'fx_posts' is not possible"}
                    """#),
            Scenario(
                name: "no relationship", path: "fx_tags?select=fx_rooms(*)", status: 400,
                json: #"""
                    {"code":"PGRST200","hint":null,
                     "details":"Searched for a foreign key relationship between 'fx_tags' and 'fx_rooms' in the schema 'public', but no matches were found.",
                     "message":"Could not find a relationship between 'fx_tags' and 'fx_rooms' in the schema cache"}
                    """#),
            Scenario(
                name: "a view embeds through its base table's key", path: "fx_recent_posts?select=id,fx_people(handle)&id=eq.1",
                status: 200, json: #"[{"id":1,"fx_people":{"handle":"ann"}}]"#),
            Scenario(
                name: "a key onto a view's base table reaches the view",
                path: "fx_online_people?select=handle,fx_posts(id)&handle=eq.cy",
                status: 200, json: #"[{"handle":"cy","fx_posts":[{"id":4}]}]"#),
            Scenario(
                name: "and a table embeds the view", path: "fx_posts?select=id,fx_online_people(handle)&id=in.(1,3)&order=id",
                status: 200,
                json: #"[{"id":1,"fx_online_people":{"handle":"ann"}},{"id":3,"fx_online_people":null}]"#),
            Scenario(
                name: "a nested !inner filters its parent embed",
                path: "fx_people?select=handle,fx_posts(id,fx_rooms!inner(slug))&fx_posts.fx_rooms.slug=eq.lobby&handle=eq.ann",
                status: 200,
                json: #"[{"handle":"ann","fx_posts":[{"id":1,"fx_rooms":{"slug":"lobby"}}]}]"#),
        ])
    }

    /// Aggregates, grouped by the other selected columns, when the setting allows them.
    static func aggregates(_ harness: PostgRESTHarness) async throws {
        try await harness.check([
            Scenario(name: "count()", path: "fx_posts?select=count()", status: 200, json: #"[{"count":4}]"#),
            Scenario(
                name: "grouped by the other columns", path: "fx_posts?select=author,count()&order=author", status: 200,
                json: #"[{"author":"ann","count":2},{"author":"bob","count":1},{"author":"cy","count":1}]"#),
            Scenario(
                name: "sum, avg, min, max with alias and casts",
                path: "fx_people?select=total:age.sum(),mean:age.avg()::int,age.min(),oldest:age::text.max()", status: 200,
                json: #"[{"total":99,"mean":33,"min":23,"oldest":"45"}]"#),
            Scenario(
                name: "inside an embed", path: "fx_people?select=handle,fx_posts(count())&order=handle", status: 200,
                json:
                    #"[{"handle":"ann","fx_posts":[{"count":2}]},{"handle":"bob","fx_posts":[{"count":1}]},{"handle":"cy","fx_posts":[{"count":1}]}]"#
            ),
            Scenario(
                name: "on a function's rows", method: .post,
                path: "rpc/fx_handles_and_status?select=status,handle.count()&order=status",
                body: "{}", status: 200, json: #"[{"status":"OFFLINE","count":1},{"status":"ONLINE","count":2}]"#),
            Scenario(
                name: "an exact count of groups", path: "fx_posts?select=author,count()", headers: ["Prefer": "count=exact"],
                status: 200,
                expectHeaders: ["Content-Range": "0-2/3"]),
        ])
    }

    /// Schemas other than `public`, chosen per request by profile headers.
    static func schemasByProfile(_ harness: PostgRESTHarness) async throws {
        try await harness.check([
            Scenario(
                name: "Accept-Profile reads another schema", path: "fx_notes?select=body,fx_labels(name)",
                headers: ["Accept-Profile": "fx_extra"], status: 200,
                json: #"[{"body":"in another schema","fx_labels":[{"name":"red"}]}]"#),
            Scenario(
                name: "without it, the default schema", path: "fx_notes", status: 404,
                json:
                    #"{"code":"PGRST205","details":null,"hint":null,"message":"Could not find the table 'public.fx_notes' in the schema cache"}"#
            ),
            Scenario(
                name: "Content-Profile writes there", method: .post, path: "fx_notes?select=id",
                headers: ["Content-Profile": "fx_extra", "Prefer": "return=representation"], body: #"{"id":2,"person":"bob"}"#,
                status: 201, json: #"[{"id":2}]"#),
            Scenario(
                name: "and calls its functions", method: .post, path: "rpc/fx_note_count", headers: ["Content-Profile": "fx_extra"],
                body: "{}", status: 200, text: "2"),
            Scenario(
                name: "GET of a function there", path: "rpc/fx_note_count", headers: ["Accept-Profile": "fx_extra"], status: 200,
                text: "2"),
            Scenario(
                name: "an unexposed schema", path: "fx_tags", headers: ["Accept-Profile": "private"], status: 406,
                json: #"""
                    {"code":"PGRST106","details":null,"hint":"Only the following schemas are exposed: public, fx_extra",
                     "message":"Invalid schema: private"}
                    """#),
            Scenario(
                name: "the Content-Profile of a read does not count", path: "fx_tags?select=id&id=eq.1",
                headers: ["Content-Profile": "private"], status: 200, json: #"[{"id":1}]"#),
            Scenario(
                name: "the API document per profile", path: "/openapi.json", headers: ["Accept-Profile": "fx_extra"], status: 200,
                contains: "/rest/v1/fx_notes"),
            Scenario(
                name: "the API document of an unexposed profile", path: "/openapi.json", headers: ["Accept-Profile": "nope"],
                status: 406, code: "PGRST106"),
        ])
    }
}
