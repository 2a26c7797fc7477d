-- Roles and request context, as PostgREST and Supabase define them, so their policies port unchanged.
--
-- anon, authenticated: what a request acts as; no login, no inherited rights.
-- service_role: server-side work that bypasses row-level security; no login.
-- authenticator: the request pool's login. It owns nothing and can do nothing until a request
--   transaction switches it to one of the three roles above (set_config('role', …, true)).
-- Roles are cluster-wide: another database on the same server may already have created them, possibly
-- at this very moment, so each creation tolerates both "exists" and a concurrent insert.

do $roles$
declare
    wanted record;
begin
    for wanted in
        select * from (values
            ('anon', 'nologin noinherit'),
            ('authenticated', 'nologin noinherit'),
            ('service_role', 'nologin noinherit bypassrls'),
            ('authenticator', 'login noinherit nosuperuser nocreatedb nocreaterole nobypassrls')
        ) as r(name, options)
    loop
        if not exists (select 1 from pg_catalog.pg_roles where rolname = wanted.name) then
            begin
                execute format('create role %I %s', wanted.name, wanted.options);
            exception when duplicate_object or unique_violation then
                null;
            end;
        end if;
    end loop;
end
$roles$;

-- Whatever existed before, these are the attributes the security model relies on. Roles are shared by
-- every database of the server and PostgreSQL fails a concurrent update of one role ("tuple concurrently
-- updated"), so a role is only altered, and a membership only granted, when it is not already right.
do $attributes$
declare
    wanted record;
begin
    for wanted in
        select * from (values
            ('anon', false, false, 'nologin noinherit nobypassrls'),
            ('authenticated', false, false, 'nologin noinherit nobypassrls'),
            ('service_role', false, true, 'nologin noinherit bypassrls'),
            ('authenticator', true, false, 'login noinherit nosuperuser nocreatedb nocreaterole nobypassrls')
        ) as r(name, can_login, bypasses_rls, options)
    loop
        if exists (
            select 1 from pg_catalog.pg_roles r
            where r.rolname = wanted.name
              and (r.rolcanlogin <> wanted.can_login or r.rolbypassrls <> wanted.bypasses_rls or r.rolinherit
                   or (wanted.name = 'authenticator' and (r.rolsuper or r.rolcreatedb or r.rolcreaterole)))
        ) then
            execute format('alter role %I %s', wanted.name, wanted.options);
        end if;
    end loop;

    for wanted in select unnest(array['anon', 'authenticated', 'service_role']) as name loop
        if not pg_catalog.pg_has_role('authenticator', wanted.name, 'member') then
            execute format('grant %I to authenticator', wanted.name);
        end if;
    end loop;
end
$attributes$;

-- A fresh database lets every role create objects in public (before PostgreSQL 15); nobody but the
-- owner should.
revoke create on schema public from public;
grant usage on schema public to anon, authenticated, service_role;

create schema if not exists auth;
grant usage on schema auth to anon, authenticated, service_role;

-- The claims of the current request. After COMMIT a transaction-local setting reads back as '' on the
-- same session, not NULL, hence nullif everywhere.
create or replace function auth.jwt() returns jsonb
language sql stable
as $$
    select coalesce(
        nullif(current_setting('request.jwt.claim', true), ''),
        nullif(current_setting('request.jwt.claims', true), '')
    )::jsonb
$$;

create or replace function auth.uid() returns uuid
language sql stable
as $$
    select coalesce(
        nullif(current_setting('request.jwt.claim.sub', true), ''),
        nullif(current_setting('request.jwt.claims', true), '')::jsonb ->> 'sub'
    )::uuid
$$;

create or replace function auth.role() returns text
language sql stable
as $$
    select coalesce(
        nullif(current_setting('request.jwt.claim.role', true), ''),
        nullif(current_setting('request.jwt.claims', true), '')::jsonb ->> 'role'
    )::text
$$;

grant execute on function auth.jwt(), auth.uid(), auth.role() to anon, authenticated, service_role;
