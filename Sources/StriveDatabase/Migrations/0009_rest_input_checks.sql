-- The data API checks the values of a PATCH before it touches a row.
--
-- An UPDATE evaluates its values and the table's CHECK constraints only for the rows it changes, so a
-- PATCH whose filter matches nothing used to accept anything — `{"progress_percentage": 900}` answered
-- 204 — and a client (or a fuzzer reading /openapi.json) could not tell a bad request from an empty match.
-- The server now reads the body as a row of the table and evaluates the table's CHECK expressions on it
-- inside the UPDATE's WHERE clause, in a condition that references no updated row; PostgreSQL runs such a
-- condition once, before scanning, so the check costs no extra round trip. A CHECK over several columns
-- sees NULL for the columns the body leaves out and passes (NULL is not false); the real row is checked
-- again by PostgreSQL when it is written.
--
-- This function turns the names of the violated constraints into the error PostgreSQL itself would raise
-- (SQLSTATE 23514). STABLE, not VOLATILE: a volatile call would be evaluated per row, i.e. never when no
-- row matches.

create function app.check_input(relation text, violated text[]) returns boolean
language plpgsql stable
set search_path = ''
as $$
begin
    if cardinality(violated) > 0 then
        raise exception using
            errcode = '23514',
            message = format('new row for relation "%s" violates check constraint "%s"', relation, violated[1]),
            detail = 'the values sent break this rule for any row they are written to',
            constraint = violated[1];
    end if;
    return true;
end
$$;

revoke all on function app.check_input(text, text[]) from public;
grant execute on function app.check_input(text, text[]) to anon, authenticated, service_role;

-- What an rpc function accepts beyond its argument types, for /openapi.json: a comment line
-- `@param <argument> <JSON Schema keywords>` is merged into that argument's schema, so generated clients
-- and fuzzers know the rules the function enforces (and the server never refuses a documented call).
comment on function public.mark_notifications_read(uuid[]) is
'Marks the caller''s notifications with these ids as read, all or none.
@param ids {"minItems": 1, "maxItems": 100}';

comment on function public.create_organization(text, text) is
'Creates an organization with the caller as its OWNER.
@param name {"minLength": 1, "maxLength": 200, "pattern": "^[^\\u0000]*[^\\u0000 ][^\\u0000]*$"}
@param slug {"pattern": "^[a-z0-9][a-z0-9-]{0,62}$"}';
