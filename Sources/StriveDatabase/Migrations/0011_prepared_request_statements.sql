-- Request statements are planned once per connection, not once per request.
--
-- app.run_request (0010) ran its statement with EXECUTE, which parses, rewrites (row-level security
-- adds its policies here) and plans it every time: for a short read that is most of PostgreSQL's work.
-- It now keeps each statement it runs as a prepared statement of the session, named after the md5 of
-- its text, and executes that; its values still arrive as the one text[] parameter (written into the
-- EXECUTE as a quoted literal: a utility EXECUTE takes no parameters of its own).
--
-- Why this is safe with row-level security: PostgreSQL's plan cache remembers the role and the
-- row_security setting a plan was made for and re-plans when they differ, and policies that read the
-- claims (auth.uid()) evaluate them at execution; a prepared statement is re-planned after DDL on the
-- tables it reads. Permissions are checked at every execution.
--
-- Which statements a session has prepared is kept in a session setting, `strive.prepared`, so the check
-- costs a string search rather than a scan of pg_prepared_statements. A setting rolls back with its
-- transaction and a prepared statement does not, so the setting may miss a statement (it is then found in
-- pg_prepared_statements and added back) but never names one that is gone: nothing is ever deallocated.
-- A session prepares at most 100 statements; further shapes run as before, planned each time.

create or replace function app.run_request(
    role text, claims text, method text, path text, session_id uuid, statement text, params text[]
) returns setof record
language plpgsql
as $$
declare
    prepared_name text := 'strive_' || md5(statement);
    known text := coalesce(current_setting('strive.prepared', true), '');
begin
    perform set_config('role', role, true), set_config('request.jwt.claims', claims, true),
            set_config('request.method', method, true), set_config('request.path', path, true);
    if session_id is not null then
        perform app.require_active_session(session_id);
    end if;
    if strpos(known, prepared_name) = 0 then
        if not exists (select 1 from pg_catalog.pg_prepared_statements p where p.name = prepared_name) then
            if length(known) >= 100 * 40 then
                return query execute statement using params;
                return;
            end if;
            execute format('prepare %I (text[]) as %s', prepared_name, statement);
        end if;
        perform set_config('strive.prepared', known || prepared_name || ' ', false);
    end if;
    return query execute format('execute %I(%L)', prepared_name, params);
end
$$;
