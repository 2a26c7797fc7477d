-- Logins for a team's own server-side code (an ORM, a worker, a script) that must not be the schema owner.
--
-- strive_service: every session runs as service_role — its data rights, row-level security bypassed,
--   no DDL (it owns nothing and cannot create in any schema).
-- strive_app: every session runs as authenticated, under row-level security like a data-API request;
--   the code states whose request it serves once per transaction:
--     select set_config('request.jwt.claims', '{"sub": "<user id>", "role": "authenticated"}', true);
--   Without it auth.uid() is null and the policies show no tenant's rows.
--
-- Both are NOINHERIT: the rights come from the session's default role (ALTER ROLE … SET role), so
-- `SET ROLE NONE` or `RESET ROLE` leaves a session with no rights rather than more. They are created
-- without LOGIN; `strive db url --role service|app` gives them LOGIN and a password derived from the JWT
-- secret. Roles are cluster-wide and another database may create them concurrently (see 0001).

do $logins$
declare
    wanted record;
begin
    for wanted in
        select * from (values ('strive_service', 'service_role'), ('strive_app', 'authenticated')) as r(name, runs_as)
    loop
        if not exists (select 1 from pg_catalog.pg_roles where rolname = wanted.name) then
            begin
                execute format('create role %I nologin noinherit nosuperuser nocreatedb nocreaterole nobypassrls', wanted.name);
            exception when duplicate_object or unique_violation then
                null;
            end;
        end if;
        if exists (select 1 from pg_catalog.pg_roles r where r.rolname = wanted.name
                   and (r.rolinherit or r.rolsuper or r.rolcreatedb or r.rolcreaterole or r.rolbypassrls)) then
            execute format('alter role %I noinherit nosuperuser nocreatedb nocreaterole nobypassrls', wanted.name);
        end if;
        if not pg_catalog.pg_has_role(wanted.name, wanted.runs_as, 'member') then
            execute format('grant %I to %I', wanted.runs_as, wanted.name);
        end if;
        if not exists (select 1 from pg_catalog.pg_db_role_setting s
                       where s.setrole = (select oid from pg_catalog.pg_roles where rolname = wanted.name) and s.setdatabase = 0
                         and s.setconfig @> array['role=' || wanted.runs_as]) then
            execute format('alter role %I set role %I', wanted.name, wanted.runs_as);
        end if;
    end loop;
end
$logins$;
