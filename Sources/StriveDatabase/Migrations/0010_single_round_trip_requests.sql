-- One round trip per data-API request.
--
-- A request used to cost four: BEGIN, a statement setting the caller's role and claims, the statement
-- itself, COMMIT — each a message to PostgreSQL and back, each a context switch on a small machine, and
-- together most of a request's time. These functions carry all of it in one statement, so one
-- extended-protocol exchange runs it in its own implicit transaction:
--
--   1. the caller's role, claims, method and path are set transaction-locally (as before: they vanish
--      at the end of the statement's transaction and never reach the next user of the connection);
--   2. a token's session is checked (SQLSTATE ST401 when it has ended);
--   3. the request's statement runs by EXECUTE, which parses and plans it only now, under the role
--      just set: row-level security, grants and policies apply exactly as they did to the separate
--      statement (the RLS contract suite runs through this path);
--   4. its rows are returned; any error rolls all of it back.
--
-- The statement's values arrive as one text[] (`$1[n]` inside it, cast to the column types by the
-- server's SQL builder): EXECUTE … USING takes a fixed number of values, a request a variable one.
--
-- SECURITY INVOKER and only for authenticator, the request pool's login, which may switch only to the
-- roles it is a member of (anon, authenticated, service_role); no other role can call these.

create function app.run_request(
    role text, claims text, method text, path text, session_id uuid, statement text, params text[]
) returns setof record
language plpgsql
as $$
begin
    perform set_config('role', role, true), set_config('request.jwt.claims', claims, true),
            set_config('request.method', method, true), set_config('request.path', path, true);
    if session_id is not null then
        perform app.require_active_session(session_id);
    end if;
    return query execute statement using params;
end
$$;

-- The same for writes whose rows are not wanted back (`Prefer: return=minimal`): the number of rows the
-- statements changed, counted without RETURNING (which would check the rows against the SELECT policies:
-- a writer may change rows it cannot read).
create function app.run_request_write(
    role text, claims text, method text, path text, session_id uuid, statements text[], params text[]
) returns bigint
language plpgsql
as $$
declare
    total bigint := 0;
    changed bigint;
    one text;
begin
    perform set_config('role', role, true), set_config('request.jwt.claims', claims, true),
            set_config('request.method', method, true), set_config('request.path', path, true);
    if session_id is not null then
        perform app.require_active_session(session_id);
    end if;
    foreach one in array statements loop
        execute one using params;
        get diagnostics changed = row_count;
        total := total + changed;
    end loop;
    return total;
end
$$;

revoke all on function app.run_request(text, text, text, text, uuid, text, text[]) from public;
revoke all on function app.run_request_write(text, text, text, text, uuid, text[], text[]) from public;
grant execute on function app.run_request(text, text, text, text, uuid, text, text[]) to authenticator;
grant execute on function app.run_request_write(text, text, text, text, uuid, text[], text[]) to authenticator;
