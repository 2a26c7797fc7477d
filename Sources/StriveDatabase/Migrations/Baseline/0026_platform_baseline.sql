-- The platform alone, for STRIVE_PRODUCT_SCHEMA=none: what migrations 0001 to 0026 create for auth,
-- storage, realtime and the request plumbing, without the Strive CRM (its public tables, enums, policies,
-- helpers, buckets, realtime publications and the profile triggers on auth.users). It is assembled from
-- those files' platform statements, in their order, so the platform it builds is the one a Strive
-- database has. It takes version 26: a database starts from it or from 0001-0026, never both (the
-- migrator refuses a database of the other kind); migrations from 0027 on apply to both.

-- =================================================================================================
-- 0001_roles_and_auth
-- =================================================================================================
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

-- =================================================================================================
-- 0002_schema: owner check, extensions, auth tables, the app schema and updated_at bookkeeping
-- =================================================================================================
-- Helpers and policies are SECURITY DEFINER functions owned by whoever runs the migrations. Tables force
-- row-level security even on their owner, so that owner must bypass it or every helper would see nothing.
do $owner$
begin
    if not exists (
        select 1 from pg_catalog.pg_roles where rolname = current_user and (rolsuper or rolbypassrls)
    ) then
        raise exception 'the role running Strive''s migrations (%) must be a superuser or have BYPASSRLS', current_user
            using hint = 'ALTER ROLE ' || quote_ident(current_user) || ' BYPASSRLS; (as a superuser), or migrate as one';
    end if;
end
$owner$;

-- Extensions live outside public so the data API never exposes their functions; requests get no access.
create schema if not exists extensions;
revoke all on schema extensions from public;
create extension if not exists pgcrypto with schema extensions;

-- ---------------------------------------------------------------------------------------------------
-- auth: accounts, sessions and refresh tokens. Only the server (service_role) reads or writes them.
-- ---------------------------------------------------------------------------------------------------
create table auth.users (
    id uuid primary key default gen_random_uuid(),
    aud text not null default 'authenticated',
    role text not null default 'authenticated',
    email text,
    encrypted_password text,
    email_confirmed_at timestamptz,
    last_sign_in_at timestamptz,
    raw_app_meta_data jsonb not null default '{}',
    raw_user_meta_data jsonb not null default '{}',
    is_anonymous boolean not null default false,
    banned_until timestamptz,
    created_at timestamptz not null default now(),
    updated_at timestamptz not null default now(),
    constraint users_email_normalised check (email is null or email = lower(btrim(email)))
);
create unique index users_email_key on auth.users (email) where email is not null;

create table auth.sessions (
    id uuid primary key default gen_random_uuid(),
    user_id uuid not null references auth.users (id) on delete cascade,
    aal text not null default 'aal1',
    user_agent text,
    ip inet,
    not_after timestamptz,
    refreshed_at timestamptz,
    created_at timestamptz not null default now(),
    updated_at timestamptz not null default now()
);
create index sessions_user_id_idx on auth.sessions (user_id);

create table auth.refresh_tokens (
    id bigint generated always as identity primary key,
    -- SHA-256 of the token, hex: a leaked table does not hand out sessions.
    token_hash text not null unique,
    user_id uuid not null references auth.users (id) on delete cascade,
    session_id uuid not null references auth.sessions (id) on delete cascade,
    parent_hash text,
    revoked boolean not null default false,
    created_at timestamptz not null default now(),
    updated_at timestamptz not null default now()
);
create index refresh_tokens_user_id_idx on auth.refresh_tokens (user_id);
create index refresh_tokens_session_id_idx on auth.refresh_tokens (session_id);
create index refresh_tokens_parent_hash_idx on auth.refresh_tokens (parent_hash);

alter table auth.users enable row level security;
alter table auth.users force row level security;
alter table auth.sessions enable row level security;
alter table auth.sessions force row level security;
alter table auth.refresh_tokens enable row level security;
alter table auth.refresh_tokens force row level security;
revoke all on auth.users, auth.sessions, auth.refresh_tokens from public, anon, authenticated;
grant select, insert, update, delete on auth.users, auth.sessions, auth.refresh_tokens to service_role;

create schema if not exists app;
revoke all on schema app from public;

create function app.touch_updated_at() returns trigger
language plpgsql
set search_path = ''
as $$
begin
    new.updated_at := now();
    return new;
end
$$;

do $touch$
declare
    t record;
begin
    for t in
        select n.nspname, c.relname
        from pg_catalog.pg_class c
        join pg_catalog.pg_namespace n on n.oid = c.relnamespace
        join pg_catalog.pg_attribute a on a.attrelid = c.oid and a.attname = 'updated_at' and not a.attisdropped
        where c.relkind = 'r' and n.nspname in ('public', 'auth')
    loop
        execute format(
            'create trigger touch_updated_at before update on %I.%I for each row execute function app.touch_updated_at()',
            t.nspname, t.relname
        );
    end loop;
end
$touch$;

-- =================================================================================================
-- 0003_security: the request roles reach schema app; no function in it is executable by default
-- =================================================================================================
grant usage on schema app to anon, authenticated, service_role;
alter default privileges in schema app revoke execute on functions from public;
alter default privileges in schema public revoke execute on functions from public;

-- The product defines who is a platform admin (the console and /admin/v1 ask app.is_admin() under the
-- caller's identity). Without one, nobody is: only the service role administers. A team's migration
-- may replace this function (create or replace) with its own rule.
create function app.is_admin() returns boolean
language sql stable security definer set search_path = ''
as $$ select false $$;

revoke execute on all functions in schema app from public;
grant execute on function app.is_admin() to anon, authenticated, service_role;

-- =================================================================================================
-- 0004_storage: buckets and objects without buckets or policies (a team adds its own)
-- =================================================================================================
-- Storage metadata (SPEC §5), in Supabase Storage's shape so its policies port unchanged. Bytes live in
-- the blob store; these rows say what exists and, through row-level security on storage.objects, who may
-- read or write it. Buckets are configuration: only the service reads or changes them.

create schema if not exists storage;
grant usage on schema storage to anon, authenticated, service_role;

create table storage.buckets (
    id text primary key check (id ~ '^[a-z0-9][a-z0-9._-]{0,62}$'),
    name text not null unique,
    owner uuid,
    owner_id text,
    public boolean not null default false,
    file_size_limit bigint check (file_size_limit > 0),
    allowed_mime_types text[],
    created_at timestamptz not null default now(),
    updated_at timestamptz not null default now()
);

create table storage.objects (
    id uuid primary key default gen_random_uuid(),
    bucket_id text not null references storage.buckets (id),
    name text not null,
    owner uuid default auth.uid(),
    owner_id text default auth.uid()::text,
    metadata jsonb,
    user_metadata jsonb,
    version text,
    path_tokens text[] generated always as (string_to_array(name, '/')) stored,
    created_at timestamptz not null default now(),
    updated_at timestamptz not null default now(),
    last_accessed_at timestamptz not null default now(),
    unique (bucket_id, name),
    -- The blob store validates keys too; this keeps a bad key out whoever writes the row.
    constraint objects_name_valid check (
        octet_length(name) between 1 and 1024
        and name !~ '^/'
        and name !~ '(^|/)\.\.?(/|$)'
        and name !~ '//'
        and name !~ '[[:cntrl:]]'
    )
);
create index objects_owner_idx on storage.objects (owner);

-- Supabase's helpers: 'org/task/42/a.pdf' → folders {org,task,42}, file 'a.pdf', extension 'pdf'.
create function storage.foldername(name text) returns text[]
language sql immutable strict parallel safe set search_path = ''
as $$
    select (string_to_array(name, '/'))[1:greatest(cardinality(string_to_array(name, '/')) - 1, 0)]
$$;

create function storage.filename(name text) returns text
language sql immutable strict parallel safe set search_path = ''
as $$
    select (string_to_array(name, '/'))[cardinality(string_to_array(name, '/'))]
$$;

create function storage.extension(name text) returns text
language sql immutable strict parallel safe set search_path = ''
as $$
    select case when storage.filename(name) like '%.%'
                then lower(reverse(split_part(reverse(storage.filename(name)), '.', 1)))
                else '' end
$$;

grant execute on function storage.foldername(text), storage.filename(text), storage.extension(text)
to anon, authenticated, service_role;

-- Policies filter on the first folder (an organization or user id): index it per bucket.
create index objects_bucket_first_folder_idx on storage.objects (bucket_id, ((storage.foldername(name))[1]));

create trigger touch_updated_at before update on storage.buckets
for each row execute function app.touch_updated_at();
create trigger touch_updated_at before update on storage.objects
for each row execute function app.touch_updated_at();

alter table storage.buckets enable row level security;
alter table storage.buckets force row level security;
alter table storage.objects enable row level security;
alter table storage.objects force row level security;

-- Until the team writes its storage policies, objects are the service role's alone (who bypasses row-level
-- security anyway); this says so, where an empty policy list would look like an oversight.
create policy objects_service_role on storage.objects for all to service_role using (true) with check (true);

revoke all on storage.buckets, storage.objects from public, anon, authenticated;
grant select, insert, update, delete on storage.buckets, storage.objects to service_role;
grant select on storage.objects to anon;
grant select, insert, update, delete on storage.objects to authenticated;

-- =================================================================================================
-- 0005_auth_sessions
-- =================================================================================================
-- Auth sessions as the request path sees them. Every request transaction of a user's token asks, in its
-- first statement, whether the token's session is still active, so a signed-out or revoked session is
-- refused by every surface (data, storage, realtime) the moment it ends, not when the token expires.

create function app.require_active_session(session_id uuid) returns boolean
language plpgsql stable security definer set search_path = ''
as $$
begin
    if not exists (
        select 1 from auth.sessions s
        where s.id = session_id and (s.not_after is null or s.not_after > now())
    ) then
        raise exception 'session_not_found' using errcode = 'ST401',
            detail = 'the session of this access token has ended; sign in again';
    end if;
    return true;
end
$$;

-- The request pool's login calls it before it has switched roles.
revoke execute on function app.require_active_session(uuid) from public;
grant usage on schema app to authenticator;
grant execute on function app.require_active_session(uuid) to authenticator, anon, authenticated, service_role;

create index sessions_not_after_idx on auth.sessions (not_after) where not_after is not null;

-- =================================================================================================
-- 0007_storage_blobs: blob bookkeeping
-- =================================================================================================
-- Blob bookkeeping and the attachment ↔ object link (issue 6).
--
-- storage.blob_garbage: every blob an object stops pointing at (replaced by an upload, or its row
-- deleted by a remove, an emptied bucket or a cascade) is queued here by a trigger, in the same
-- transaction. The server deletes queued blobs after commit; a crash in between only delays that, and
-- nothing can delete a blob whose row still commits.
create table storage.blob_garbage (
    version text primary key,
    queued_at timestamptz not null default now()
);
alter table storage.blob_garbage enable row level security;
alter table storage.blob_garbage force row level security;
create policy blob_garbage_service on storage.blob_garbage for all to service_role using (true) with check (true);
revoke all on storage.blob_garbage from public, anon, authenticated;
grant select, insert, delete on storage.blob_garbage to service_role;

create function storage.queue_released_blob() returns trigger
language plpgsql security definer set search_path = ''
as $$
begin
    if old.version is not null and (tg_op = 'DELETE' or old.version is distinct from new.version) then
        insert into storage.blob_garbage (version) values (old.version) on conflict do nothing;
    end if;
    return null;
end
$$;
revoke all on function storage.queue_released_blob() from public;

create trigger queue_released_blob after update or delete on storage.objects
for each row execute function storage.queue_released_blob();

-- =================================================================================================
-- 0008_realtime: the change capture machinery (no table published)
-- =================================================================================================
-- Realtime change capture (issue 7).
--
-- Row triggers write each change into realtime.changes inside the writing transaction, so only committed
-- changes ever exist there, whatever their size. At commit a deferred constraint trigger stamps the
-- transaction's changes with a position from a sequence and holds an advisory lock on that position
-- (key -position) until the transaction ends. Positions become visible out of order only within that
-- short window; a reader never passes a missing position while its lock is held, and passes it once the
-- lock is free and the position still has no rows (an aborted commit, or a sequence gap after a crash).
-- Two transactions changing the same row are ordered by the row lock, so per-row order is commit order.
--
-- Two simpler designs were measured and rejected: one global advisory lock held through COMMIT, and a
-- NOTIFY from each writing transaction (PostgreSQL serialises notifying commits). Either makes every
-- writer of a published table wait for the previous commit's WAL flush — about 100 commits/s on a disk
-- with 10 ms fsyncs, for all tenants together. Readers poll realtime.changes by position instead.
-- Each Strive instance keeps its own cursor in realtime.cursors, so several instances each see every
-- change once, and a restarted instance resumes where it stopped.
-- Logical decoding was not chosen: it needs wal_level=logical and a replication slot per instance,
-- which a managed database (DATABASE_URL) may not grant, and a forgotten slot retains WAL forever.

create schema if not exists realtime;
revoke all on schema realtime from public;
grant usage on schema realtime to service_role;

create sequence realtime.commit_position;

create table realtime.changes (
    id bigint generated always as identity primary key,
    -- Commit order: null until the writing transaction commits, shared by its changes (order by position, id).
    position bigint,
    xid xid8 not null default pg_current_xact_id(),
    schema_name text not null,
    table_name text not null,
    type text not null check (type in ('INSERT', 'UPDATE', 'DELETE')),
    record jsonb,
    old_record jsonb,
    commit_timestamp timestamptz
);
create index changes_position_idx on realtime.changes (position) where position is not null;
create index changes_unstamped_idx on realtime.changes (xid) where position is null;

create table realtime.cursors (
    instance text primary key,
    position bigint not null,
    updated_at timestamptz not null default now()
);

-- Broadcasts and presence too large for a NOTIFY payload (8000 bytes) travel through this table.
create table realtime.bus_messages (
    id bigint generated always as identity primary key,
    body text not null,
    created_at timestamptz not null default now()
);

alter table realtime.changes enable row level security;
alter table realtime.changes force row level security;
alter table realtime.cursors enable row level security;
alter table realtime.cursors force row level security;
alter table realtime.bus_messages enable row level security;
alter table realtime.bus_messages force row level security;
create policy changes_service on realtime.changes for all to service_role using (true) with check (true);
create policy cursors_service on realtime.cursors for all to service_role using (true) with check (true);
create policy bus_messages_service on realtime.bus_messages for all to service_role using (true) with check (true);
revoke all on realtime.changes, realtime.cursors, realtime.bus_messages from public, anon, authenticated;
grant select, delete on realtime.changes to service_role;
grant select, insert, update, delete on realtime.cursors, realtime.bus_messages to service_role;

create function realtime.capture() returns trigger
language plpgsql security definer set search_path = ''
as $$
begin
    insert into realtime.changes (schema_name, table_name, type, record, old_record)
    values (
        tg_table_schema, tg_table_name, tg_op,
        case when tg_op <> 'DELETE' then to_jsonb(new) end,
        case when tg_op <> 'INSERT' then to_jsonb(old) end
    );
    return null;
end
$$;

create function realtime.stamp_commit() returns trigger
language plpgsql security definer set search_path = ''
as $$
declare
    me constant text := pg_current_xact_id()::text;
    assigned bigint;
begin
    -- A deferred trigger fires once per change row; the first one stamps them all.
    if current_setting('realtime.stamped_xid', true) is not distinct from me then
        return null;
    end if;
    perform set_config('realtime.stamped_xid', me, true);
    assigned := nextval('realtime.commit_position');
    -- Held until this transaction ends: a reader that finds this position missing can tell an in-flight
    -- commit (lock held) from one that will never appear (lock free, no rows).
    perform pg_advisory_xact_lock(-assigned);
    update realtime.changes set position = assigned, commit_timestamp = clock_timestamp()
    where xid = pg_current_xact_id() and position is null;
    return null;
end
$$;
revoke all on function realtime.capture(), realtime.stamp_commit() from public;

create constraint trigger stamp_commit after insert on realtime.changes
deferrable initially deferred for each row execute function realtime.stamp_commit();

-- Publishing a table: one trigger. Each published table needs a read predicate below.
create function realtime.publish(target regclass) returns void
language plpgsql set search_path = ''
as $$
begin
    execute format(
        'create trigger realtime_capture after insert or update or delete on %s for each row execute function realtime.capture()',
        target);
end
$$;
revoke all on function realtime.publish(regclass) from public;

-- =================================================================================================
-- 0009_rest_input_checks: app.check_input
-- =================================================================================================
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

-- =================================================================================================
-- 0010_single_round_trip_requests
-- =================================================================================================
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

-- =================================================================================================
-- 0011_prepared_request_statements
-- =================================================================================================
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

-- =================================================================================================
-- 0013_realtime_rls_authorisation: authorizers compiled from the published tables' policies
-- =================================================================================================
-- Realtime for any table, authorised by the table's own row-level security.
--
-- 0008 shipped four hand-written "who may read this row" functions beside the tables' policies, and a
-- Swift list of the four tables. Both are gone: `realtime.publish(table)` is all a table needs, and a
-- subscriber receives a change only if the table's SELECT policies, evaluated as that subscriber, let it
-- read the row (for a DELETE, the row as it was).
--
-- How a policy is evaluated for a row that may no longer exist: `realtime.compile(table)` reads the
-- table's policies from pg_policy (pg_get_expr, so the text is PostgreSQL's own rendering of what it
-- enforces) and writes a function, `realtime."authorize <schema>.<table>"`, whose one query applies the
-- same predicate to changed rows rebuilt from their JSON: permissive policies OR-ed, restrictive ones
-- AND-ed, each only for the roles it names, nothing readable without a permissive policy, the table's
-- SELECT privilege required, and every row readable when row-level security is off. The function runs
-- as the subscriber: for each group of changes it switches to the subscriber's role and JWT claims (as
-- a request does), so auth.uid(), auth.jwt() and the helper functions the policies call see exactly
-- what they see on the data API.
--
-- One query per batch of changes, whatever the number of subscribers: the feed sends every (subscriber
-- identity, table) group of the batch at once and `realtime.authorize` loops over them inside the
-- database; the statement inside each generated function is planned once per connection.
-- A policy that raises for one subscriber: the caller runs the batch again with `isolate` set, which
-- evaluates each group in its own subtransaction and reports the failing groups instead of raising.
--
-- Policies change without Strive's help (a migration, psql): each compiled function is stored with a
-- fingerprint of what it was compiled from (RLS switches, policies, columns, privileges), checked on every
-- batch; a stale one is compiled again before it is used, so a new policy applies from the next change.

create table realtime.authorizers (
    relation oid primary key,
    function_name text not null,
    fingerprint text not null,
    compiled_at timestamptz not null default now()
);
alter table realtime.authorizers enable row level security;
alter table realtime.authorizers force row level security;
create policy authorizers_service on realtime.authorizers for select to service_role using (true);
-- realtime.compile (security definer) writes it as the schema's owner.
create policy authorizers_owner on realtime.authorizers for all to current_user using (true) with check (true);
revoke all on realtime.authorizers from public, anon, authenticated;
grant select on realtime.authorizers to service_role;

-- The published tables: those with the capture trigger.
create view realtime.published with (security_barrier) as
    select n.nspname::text as schema_name, c.relname::text as table_name, c.oid as relation
    from pg_catalog.pg_trigger t
    join pg_catalog.pg_class c on c.oid = t.tgrelid
    join pg_catalog.pg_namespace n on n.oid = c.relnamespace
    where t.tgname = 'realtime_capture' and not t.tgisinternal;
revoke all on realtime.published from public;
grant select on realtime.published to service_role;

-- What an authorizer is compiled from; any difference means it must be compiled again.
create function realtime.policy_fingerprint(target oid) returns text
language sql stable set search_path = ''
as $$
    select md5(concat_ws(
        '|', c.relrowsecurity, c.relacl::text,
        (select string_agg(concat_ws(':', p.polname, p.polcmd, p.polpermissive, p.polroles::text, pg_catalog.pg_get_expr(p.polqual, p.polrelid)), ';' order by p.polname)
         from pg_catalog.pg_policy p where p.polrelid = c.oid),
        (select string_agg(a.attname || ' ' || pg_catalog.format_type(a.atttypid, a.atttypmod), ',' order by a.attnum)
         from pg_catalog.pg_attribute a where a.attrelid = c.oid and a.attnum > 0 and not a.attisdropped)))
    from pg_catalog.pg_class c where c.oid = target
$$;

-- The SELECT predicate of `target` for a reader role, as SQL over a row named like the table. Which
-- policies apply is decided here, once, as PostgreSQL decides it when it rewrites a query: a policy
-- applies to the roles it names (0: public) and their members. pg_get_expr renders column references
-- unqualified or qualified by the table's name, and with this function's empty search_path it
-- schema-qualifies every function and type.
create function realtime.select_predicate(target oid, reader text) returns text
language plpgsql stable set search_path = ''
as $$
declare
    permissive text;
    restrictive text;
begin
    if not pg_catalog.has_table_privilege(reader, target, 'SELECT') then
        return 'false';
    end if;
    if not (select c.relrowsecurity from pg_catalog.pg_class c where c.oid = target) then
        return 'true';
    end if;
    -- Permissive policies let a row through when one holds, restrictive ones stop it unless all hold (a
    -- null counts as not holding, as in a WHERE clause); without a permissive policy nothing is readable.
    with applicable as (
        select p.polpermissive as is_permissive, pg_catalog.pg_get_expr(p.polqual, p.polrelid) as qual
        from pg_catalog.pg_policy p
        where p.polrelid = target and p.polcmd in ('r', '*') and p.polqual is not null
          and (0 = any (p.polroles) or exists (
              select 1 from pg_catalog.unnest(p.polroles) r where pg_catalog.pg_has_role(reader, r, 'member')))
    )
    select string_agg(format('(%s)', qual), ' or ' order by qual) filter (where is_permissive),
           string_agg(format('coalesce((%s), false)', qual), ' and ' order by qual) filter (where not is_permissive)
    into permissive, restrictive
    from applicable;
    return '(' || coalesce(permissive, 'false') || ')' || coalesce(' and ' || restrictive, '');
end
$$;

-- Writes (or reuses) the authorizer of `target` and returns its name. Runs as the schema owner: it
-- creates a function. The function it creates runs as its caller.
create function realtime.compile(target oid) returns text
language plpgsql security definer set search_path = ''
as $$
declare
    fingerprint text := realtime.policy_fingerprint(target);
    known realtime.authorizers;
    relation_name text;
    function_name text;
    alias text;
    -- The query of one group: its changes' rows, named like the table and its columns so the policies'
    -- text reads as it does on the table, filtered by the reader role's predicate.
    template constant text :=
        'select "realtime input"."realtime change", "realtime group", false '
        'from pg_catalog.unnest($5[$4["realtime group"] : $4["realtime group" + 1] - 1]) as "realtime input"("realtime change") '
        'cross join lateral pg_catalog.unnest("realtime rows"["realtime input"."realtime change" : "realtime input"."realtime change"]) as %I '
        'where %s';
begin
    if fingerprint is null then
        raise exception 'realtime: relation % does not exist', target using errcode = '42P01';
    end if;
    select * into known from realtime.authorizers a where a.relation = target;
    if found and known.fingerprint = fingerprint then
        return known.function_name;
    end if;
    -- Instances compiling the same table at once wait for each other, then reuse the result.
    perform pg_catalog.pg_advisory_xact_lock(pg_catalog.hashtext('realtime.compile'), pg_catalog.hashtext(target::text));
    select * into known from realtime.authorizers a where a.relation = target;
    if found and known.fingerprint = fingerprint then
        return known.function_name;
    end if;
    select format('%I.%I', n.nspname, c.relname), c.relname into relation_name, alias
    from pg_catalog.pg_class c join pg_catalog.pg_namespace n on n.oid = c.relnamespace where c.oid = target;
    function_name := format('realtime.%I', 'authorize ' || relation_name);
    -- The generated function names nothing a table's columns could collide with: its parameters are
    -- positional ($1 each change's relation, $2 roles, $3 claims, $4 starts, $5 changes, $6 records,
    -- $7 isolate) and
    -- its loop variable and output columns carry a space.
    execute format(
        $ddl$
        create or replace function %1$s(oid[], text[], text[], int[], int[], jsonb[], boolean)
        returns table ("realtime readable change" int, "realtime readable group" int, "realtime evaluation failed" boolean)
        language plpgsql volatile set search_path = ''
        as %2$L
        $ddl$,
        function_name,
        format(
            $body$
            #variable_conflict use_column
            declare
                "realtime group" int;
                "realtime role" text;
                -- Each changed row of this table is rebuilt from its JSON once, not once per group (the
                -- other tables' rows stay null: they would not fit this row type).
                "realtime rows" %1$s[] := array(
                    select case when $1[i] = %2$s then pg_catalog.jsonb_populate_record(null::%1$s, $6[i]) end
                    from pg_catalog.generate_subscripts($6, 1) as i);
            begin
                for "realtime group" in 1 .. coalesce(pg_catalog.array_length($2, 1), 0) loop
                    continue when $1[$5[$4["realtime group"]]] is distinct from %2$s;
                    if $2["realtime group"] not in ('anon', 'authenticated') then
                        raise exception 'realtime: subscribers read as anon or authenticated, not %%', $2["realtime group"];
                    end if;
                    -- Switching role looks the role up; groups come in runs of one role.
                    if $2["realtime group"] is distinct from "realtime role" then
                        perform pg_catalog.set_config('role', $2["realtime group"], true);
                        "realtime role" := $2["realtime group"];
                    end if;
                    perform pg_catalog.set_config('request.jwt.claims', $3["realtime group"], true);
                    if not $7 then
                        if $2["realtime group"] = 'authenticated' then return query %3$s; else return query %4$s; end if;
                        continue;
                    end if;
                    begin
                        if $2["realtime group"] = 'authenticated' then return query %3$s; else return query %4$s; end if;
                    exception when others then
                        return query select c, "realtime group", true
                            from pg_catalog.unnest($5[$4["realtime group"] : $4["realtime group" + 1] - 1]) c;
                    end;
                end loop;
            end
            $body$,
            relation_name, target,
            format(template, alias, realtime.select_predicate(target, 'authenticated')),
            format(template, alias, realtime.select_predicate(target, 'anon'))));
    execute format('revoke all on function %s(oid[], text[], text[], int[], int[], jsonb[], boolean) from public', function_name);
    execute format('grant execute on function %s(oid[], text[], text[], int[], int[], jsonb[], boolean) to service_role', function_name);
    insert into realtime.authorizers (relation, function_name, fingerprint) values (target, function_name, fingerprint)
    on conflict (relation) do update set function_name = excluded.function_name, fingerprint = excluded.fingerprint, compiled_at = now();
    return function_name;
end
$$;
revoke all on function realtime.compile(oid) from public;
grant execute on function realtime.compile(oid) to service_role;

-- Which changes each group may read. Change i is records[i], a row of the table (schemas[i],
-- tables[i]); group g is one subscriber identity (roles[g], claims[g]) and the changes
-- changes[starts[g] : starts[g + 1] - 1], all of one table. Returns the readable (change, group)
-- pairs, and with `isolate` also, instead of raising, the groups whose evaluation failed (failed =
-- true, one row per change). A table that no longer exists reads as nothing. The caller's role is
-- restored before returning.
create function realtime.authorize(
    schemas text[], tables text[], roles text[], claims text[], starts int[], changes int[], records jsonb[], isolate boolean
) returns table (change int, grp int, failed boolean)
language plpgsql volatile
as $$
declare
    caller text := current_user;
    relations oid[] := array(
        select pg_catalog.to_regclass(format('%I.%I', s, t))::oid from unnest(schemas, tables) as c(s, t));
    target oid;
begin
    for target in select distinct r from pg_catalog.unnest(relations) r where r is not null loop
        -- Each table's authorizer leaves the role of its last group behind.
        perform pg_catalog.set_config('role', caller, true);
        return query execute format('select * from %s($1, $2, $3, $4, $5, $6, $7)', realtime.compile(target))
            using relations, roles, claims, starts, changes, records, isolate;
    end loop;
    perform pg_catalog.set_config('role', caller, true);
end
$$;
revoke all on function realtime.authorize(text[], text[], text[], text[], int[], int[], jsonb[], boolean) from public;
grant execute on function realtime.authorize(text[], text[], text[], text[], int[], int[], jsonb[], boolean) to service_role;

-- Publishing a table: the capture trigger, and its authorizer compiled at once (a table whose policies
-- cannot be compiled is refused here, with the reason, rather than silently delivering nothing).
create or replace function realtime.publish(target regclass) returns void
language plpgsql set search_path = ''
as $$
begin
    execute format(
        'create or replace trigger realtime_capture after insert or update or delete on %s for each row execute function realtime.capture()',
        target);
    perform realtime.compile(target);
end
$$;

create function realtime.unpublish(target regclass) returns void
language plpgsql set search_path = ''
as $$
declare
    function_name text;
begin
    execute format('drop trigger if exists realtime_capture on %s', target);
    delete from realtime.authorizers a where a.relation = target returning a.function_name into function_name;
    if function_name is not null then
        execute format('drop function if exists %s(oid[], text[], text[], int[], int[], jsonb[], boolean)', function_name);
    end if;
end
$$;
revoke all on function realtime.unpublish(regclass) from public;


-- For `strive verify`: why `target`'s authorizer cannot be compiled or run, or null when it can. It
-- compiles afresh and runs each reader role's query once (PL/pgSQL resolves a query's names when it
-- first runs it), then rolls all of that back.
create function realtime.authorizer_problem(target oid) returns text
language plpgsql set search_path = ''
as $$
declare
    schema_name text;
    table_name text;
begin
    select n.nspname, c.relname into schema_name, table_name
    from pg_catalog.pg_class c join pg_catalog.pg_namespace n on n.oid = c.relnamespace where c.oid = target;
    begin
        delete from realtime.authorizers a where a.relation = target;
        perform realtime.compile(target);
        perform realtime.authorize(
            array[schema_name], array[table_name], array['anon', 'authenticated'], array['{}', '{}'],
            array[1, 2, 3], array[1, 1], array['{}'::jsonb], false);
        raise exception 'realtime: authorizer check done' using errcode = 'ST999';
    exception
        when sqlstate 'ST999' then return null;
        when others then return sqlerrm;
    end;
end
$$;
revoke all on function realtime.authorizer_problem(oid) from public;

-- =================================================================================================
-- 0014_realtime_messages: broadcast rows (no organization policies: a team writes its own)
-- =================================================================================================
-- Broadcast from the database, and private channels authorised by policies on realtime.messages, the
-- way Supabase Realtime does both.
--
-- realtime.send(payload, event, topic, private) writes a row of realtime.messages inside the caller's
-- transaction. The row is captured like a change of a published table, so a broadcast exists only if its
-- transaction commits and reaches subscribers in commit order, once per instance, through crashes and
-- restarts, like any change. Each instance hands such rows to the sockets joined to the topic (private
-- rows to private channels, public rows to public ones); they are broadcasts, not postgres_changes.
--
-- Private channels: a caller may join a private channel on topic T only if the SELECT policies of
-- realtime.messages let it read a broadcast row of T (with realtime.topic() returning T), and may send on
-- it only if the INSERT policies let it write one. Topics `org:<organization id>:…` are private whatever
-- the client asks; the default policies below open them to the organization's members.

create table realtime.messages (
    id bigint generated always as identity primary key,
    topic text not null,
    extension text not null default 'broadcast' check (extension in ('broadcast', 'presence')),
    event text,
    payload jsonb,
    private boolean not null default true,
    inserted_at timestamptz not null default now()
);
create index messages_inserted_at_idx on realtime.messages (inserted_at);
alter table realtime.messages enable row level security;
alter table realtime.messages force row level security;

-- The request roles reach realtime.topic(), realtime.send and the messages policies; everything else in
-- the schema stays revoked from them table by table and function by function.
grant usage on schema realtime to anon, authenticated;
revoke all on function realtime.policy_fingerprint(oid), realtime.select_predicate(oid, text) from public;
revoke all on realtime.messages from public;
grant select, insert on realtime.messages to anon, authenticated;
grant select, insert, delete on realtime.messages to service_role;
create policy messages_service on realtime.messages for all to service_role using (true) with check (true);
-- realtime.send (security definer) writes as the schema's owner.
create policy messages_owner on realtime.messages for all to current_user using (true) with check (true);

-- The topic a channel check is about (set by Strive while it evaluates the policies).
create function realtime.topic() returns text
language sql stable
as $$ select nullif(pg_catalog.current_setting('realtime.topic', true), '') $$;
grant execute on function realtime.topic() to anon, authenticated, service_role;

-- The organization an `org:<id>:…` topic belongs to, or null.
create function realtime.topic_organization(topic text) returns uuid
language sql immutable
as $$
    select case when topic ~ '^org:[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}(:|$)'
                then substring(topic from 5 for 36)::uuid end
$$;
grant execute on function realtime.topic_organization(text) to anon, authenticated, service_role;

-- Broadcast `payload` as `event` on `topic` when the calling transaction commits. Callable from triggers
-- and functions whatever the writer's role (the data API exposes only the public schema, so clients
-- cannot call it directly).
create function realtime.send(payload jsonb, event text, topic text, private boolean default true) returns void
language sql security definer set search_path = ''
as $$
    insert into realtime.messages (topic, extension, event, payload, private) values (topic, 'broadcast', event, payload, private)
$$;
revoke all on function realtime.send(jsonb, text, text, boolean) from public;
grant execute on function realtime.send(jsonb, text, text, boolean) to anon, authenticated, service_role;

-- A row trigger's change as a broadcast (Supabase's helper): payload {record, old_record, operation,
-- table, schema}, private.
create function realtime.broadcast_changes(
    topic_name text, event_name text, operation text, table_name text, table_schema text, new record, old record, level text default 'ROW'
) returns void
language plpgsql
as $$
begin
    if level <> 'ROW' then
        raise exception 'realtime.broadcast_changes runs in row triggers, not % triggers', lower(level);
    end if;
    if operation not in ('INSERT', 'UPDATE', 'DELETE') then
        raise exception 'realtime.broadcast_changes: unexpected operation %', operation;
    end if;
    perform realtime.send(
        jsonb_build_object(
            'record', case when operation <> 'DELETE' then to_jsonb(new) end,
            'old_record', case when operation <> 'INSERT' then to_jsonb(old) end,
            'operation', operation, 'table', table_name, 'schema', table_schema),
        event_name, topic_name, true);
end
$$;
grant execute on function realtime.broadcast_changes(text, text, text, text, text, record, record, text) to anon, authenticated, service_role;

-- Messages travel as captured changes (the trigger is not named realtime_capture: realtime.messages is
-- not a table clients subscribe to with postgres_changes).
create trigger realtime_messages_capture after insert on realtime.messages
for each row execute function realtime.capture();

-- May the caller (role, claims) read and send broadcasts on private topic `topic`? Reading: the SELECT
-- policies of realtime.messages on a broadcast row of the topic, evaluated as for changes. Sending: an
-- INSERT of such a row as the caller, rolled back. Both with realtime.topic() returning `topic`.
create function realtime.channel_access(topic text, role text, claims text, out can_read boolean, out can_write boolean)
language plpgsql volatile
as $$
declare
    caller text := current_user;
begin
    perform pg_catalog.set_config('realtime.topic', topic, true);
    can_read := exists (
        select 1 from realtime.authorize(
            array['realtime'], array['messages'], array[role], array[claims], array[1, 2], array[1],
            array[jsonb_build_object('id', 0, 'topic', topic, 'extension', 'broadcast', 'private', true, 'inserted_at', now())], false));
    perform pg_catalog.set_config('role', caller, true);
    begin
        perform pg_catalog.set_config('role', role, true), pg_catalog.set_config('request.jwt.claims', claims, true);
        insert into realtime.messages (topic, extension, private) values (topic, 'broadcast', true);
        raise exception 'realtime: probe done' using errcode = 'ST998';
    exception
        when sqlstate 'ST998' then can_write := true;
        when insufficient_privilege then can_write := false;
    end;
    perform pg_catalog.set_config('role', caller, true);
end
$$;
revoke all on function realtime.channel_access(text, text, text) from public;
grant execute on function realtime.channel_access(text, text, text) to service_role;

-- =================================================================================================
-- 0017_schema_change_notifications
-- =================================================================================================
-- Live schema reload: every DDL statement (a migration, psql, an ORM's db push) notifies `strive_schema`
-- when its transaction commits, and every running Strive reloads its schema cache when it hears it.
-- SIGHUP still reloads by hand.
--
-- Event triggers can only be created by a superuser. Where the owner is not one (some hosted
-- databases), this creates the function but no trigger, and reloads stay on SIGHUP.

create function app.notify_schema_change() returns event_trigger
language plpgsql
as $$
begin
    perform pg_notify('strive_schema', tg_tag);
end
$$;

revoke all on function app.notify_schema_change() from public;

do $$
begin
    if (select rolsuper from pg_roles where rolname = current_user) then
        create event trigger strive_schema_changed on ddl_command_end execute function app.notify_schema_change();
    end if;
end
$$;

-- =================================================================================================
-- 0018_server_side_logins
-- =================================================================================================
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

-- =================================================================================================
-- 0020_auth_email_flows
-- =================================================================================================
-- Auth flows that go through mail: confirmation, recovery, magic links and codes, PKCE.
--
-- auth.flow_state: one PKCE flow (RFC 7636). A link's verification issues an auth code (stored hashed)
--   that POST /token?grant_type=pkce exchanges, with the verifier, for a session.
-- auth.one_time_tokens: what a mail carries. token_hash is SHA-256 of the link's token; code_hash is an
--   HMAC (keyed with the JWT secret) of the address and the 6-digit code, so neither can be used by whoever
--   reads this table. Single use (deleted when used), expiring, and a code allows few wrong attempts.
-- auth.mail_outbox: mail to send, written in the transaction that issues the token so a mail exists iff
--   its token does; any instance delivers it (SKIP LOCKED), retrying with back-off. variables hold the
--   link and code only until delivery. Its rows of the last hour are also the send limits, shared by all
--   instances.

create table auth.flow_state (
    id uuid primary key default gen_random_uuid(),
    user_id uuid references auth.users (id) on delete cascade,
    code_challenge text not null,
    code_challenge_method text not null check (code_challenge_method in ('s256', 'plain')),
    authentication_method text not null,
    auth_code_hash text unique,
    auth_code_issued_at timestamptz,
    created_at timestamptz not null default now()
);
create index flow_state_user_id_idx on auth.flow_state (user_id);
create index flow_state_created_at_idx on auth.flow_state (created_at);

create table auth.one_time_tokens (
    id uuid primary key default gen_random_uuid(),
    user_id uuid not null references auth.users (id) on delete cascade,
    purpose text not null check (purpose in ('signup', 'recovery', 'magiclink')),
    token_hash text not null unique,
    code_hash text not null,
    relates_to text not null,
    redirect_to text,
    flow_state_id uuid references auth.flow_state (id) on delete cascade,
    failed_attempts int not null default 0,
    expires_at timestamptz not null,
    created_at timestamptz not null default now(),
    unique (user_id, purpose)
);
create index one_time_tokens_code_hash_idx on auth.one_time_tokens (code_hash);
create index one_time_tokens_flow_state_id_idx on auth.one_time_tokens (flow_state_id);
create index one_time_tokens_expires_at_idx on auth.one_time_tokens (expires_at);

create table auth.mail_outbox (
    id bigint generated always as identity primary key,
    recipient text not null,
    template text not null,
    variables jsonb,
    attempts int not null default 0,
    next_attempt_at timestamptz not null default now(),
    last_error text,
    created_at timestamptz not null default now(),
    sent_at timestamptz,
    failed_at timestamptz
);
create index mail_outbox_due_idx on auth.mail_outbox (next_attempt_at) where sent_at is null and failed_at is null;
create index mail_outbox_recipient_idx on auth.mail_outbox (recipient, created_at desc);
create index mail_outbox_created_at_idx on auth.mail_outbox (created_at);

alter table auth.flow_state enable row level security;
alter table auth.flow_state force row level security;
alter table auth.one_time_tokens enable row level security;
alter table auth.one_time_tokens force row level security;
alter table auth.mail_outbox enable row level security;
alter table auth.mail_outbox force row level security;
revoke all on auth.flow_state, auth.one_time_tokens, auth.mail_outbox from public, anon, authenticated;
grant select, insert, update, delete on auth.flow_state, auth.one_time_tokens, auth.mail_outbox to service_role;
-- service_role bypasses row-level security, as for the other auth tables; nobody else has any right here.

-- Wakes the instances' mail delivery when a mail is queued (they also poll, for retries).
create function auth.notify_mail_queued() returns trigger
language plpgsql set search_path = ''
as $$
begin
    perform pg_notify('strive_mail', '');
    return null;
end
$$;
revoke all on function auth.notify_mail_queued() from public;
create trigger mail_outbox_queued after insert on auth.mail_outbox
    for each statement execute function auth.notify_mail_queued();

-- =================================================================================================
-- 0021_shared_rate_limits
-- =================================================================================================
-- Auth's rate limits, shared by every instance on the database (GoTrue's, per client IP and per address):
-- fixed windows counted in one upsert. Unlogged: a crash forgets the counts, which costs nothing but a
-- fresh window, and the writes skip the WAL.
create unlogged table auth.rate_limits (
    bucket text not null,
    window_start timestamptz not null,
    hits int not null,
    primary key (bucket, window_start)
);
create index rate_limits_window_start_idx on auth.rate_limits (window_start);
alter table auth.rate_limits enable row level security;
alter table auth.rate_limits force row level security;
revoke all on auth.rate_limits from public, anon, authenticated;
grant select, insert, update, delete on auth.rate_limits to service_role;

-- Counts one attempt in `bucket`'s current window of `window_seconds`; 0 when it is within `maximum`, else
-- the seconds until the window ends. Windows older than a day are swept now and then.
create function auth.take_rate_limit(bucket text, window_seconds int, maximum int) returns int
language plpgsql volatile set search_path = ''
as $$
declare
    started timestamptz := to_timestamp(floor(extract(epoch from now()) / window_seconds) * window_seconds);
    used int;
begin
    insert into auth.rate_limits as r (bucket, window_start, hits) values (take_rate_limit.bucket, started, 1)
    on conflict on constraint rate_limits_pkey do update set hits = r.hits + 1
    returning r.hits into used;
    if random() < 0.01 then
        delete from auth.rate_limits where window_start < now() - interval '1 day';
    end if;
    if used > maximum then
        return greatest(1, ceil(extract(epoch from started + make_interval(secs => window_seconds) - now()))::int);
    end if;
    return 0;
end
$$;
revoke all on function auth.take_rate_limit(text, int, int) from public;
grant execute on function auth.take_rate_limit(text, int, int) to service_role;

-- =================================================================================================
-- 0022_mfa_totp
-- =================================================================================================
-- Multi-factor authentication with TOTP (GoTrue's /factors): a user enrolls an authenticator app, a
-- challenge and a right code raise the session to aal2, and policies can demand it.
--
-- auth.mfa_factors.secret is the TOTP secret sealed with a key derived from the JWT secret (ChaCha20-
-- Poly1305), so the table alone does not produce codes. last_step is the time step of the last code
-- accepted: a code works once.
create table auth.mfa_factors (
    id uuid primary key default gen_random_uuid(),
    user_id uuid not null references auth.users (id) on delete cascade,
    friendly_name text check (friendly_name is null or char_length(friendly_name) between 1 and 100),
    factor_type text not null default 'totp' check (factor_type = 'totp'),
    status text not null default 'unverified' check (status in ('unverified', 'verified')),
    secret text not null,
    last_step bigint,
    created_at timestamptz not null default now(),
    updated_at timestamptz not null default now(),
    unique (user_id, friendly_name)
);
create index mfa_factors_user_id_idx on auth.mfa_factors (user_id);

create table auth.mfa_challenges (
    id uuid primary key default gen_random_uuid(),
    factor_id uuid not null references auth.mfa_factors (id) on delete cascade,
    ip inet,
    created_at timestamptz not null default now(),
    verified_at timestamptz
);
create index mfa_challenges_factor_id_idx on auth.mfa_challenges (factor_id);

alter table auth.mfa_factors enable row level security;
alter table auth.mfa_factors force row level security;
alter table auth.mfa_challenges enable row level security;
alter table auth.mfa_challenges force row level security;
revoke all on auth.mfa_factors, auth.mfa_challenges from public, anon, authenticated;
grant select, insert, update, delete on auth.mfa_factors, auth.mfa_challenges to service_role;

-- The caller's authenticator assurance level: 'aal2' after a second factor in this session, else 'aal1'.
create function auth.aal() returns text
language sql stable set search_path = ''
as $$
    select coalesce(auth.jwt() ->> 'aal', 'aal1')
$$;

-- True when the caller has done what their account requires: aal2, or no verified factor to use. A
-- policy that protects sensitive rows adds `and (select auth.mfa_satisfied())`.
create function auth.mfa_satisfied() returns boolean
language sql stable security definer set search_path = ''
as $$
    select auth.aal() = 'aal2'
        or not exists (select 1 from auth.mfa_factors f where f.user_id = auth.uid() and f.status = 'verified')
$$;

revoke all on function auth.aal(), auth.mfa_satisfied() from public;
grant execute on function auth.aal(), auth.mfa_satisfied() to anon, authenticated, service_role;

-- =================================================================================================
-- 0023_rate_limit_windows_from_first_attempt
-- =================================================================================================
-- Rate-limit windows start at a bucket's first attempt instead of at clock-aligned boundaries (0021): an
-- aligned window let a burst straddling a boundary through at twice the limit, and made the limit's tests
-- depend on the clock. The counts are transient (an unlogged table), so the table is simply replaced.
drop function auth.take_rate_limit(text, int, int);
drop table auth.rate_limits;

create unlogged table auth.rate_limits (
    bucket text primary key,
    window_start timestamptz not null,
    hits int not null
);
create index rate_limits_window_start_idx on auth.rate_limits (window_start);
alter table auth.rate_limits enable row level security;
alter table auth.rate_limits force row level security;
revoke all on auth.rate_limits from public, anon, authenticated;
grant select, insert, update, delete on auth.rate_limits to service_role;

-- Counts one attempt in `bucket`: a window of `window_seconds` opens at the first attempt after the last
-- one closed. Returns 0 within `maximum`, else the seconds until the window closes.
create function auth.take_rate_limit(bucket text, window_seconds int, maximum int) returns int
language plpgsql volatile set search_path = ''
as $$
declare
    span interval := make_interval(secs => window_seconds);
    used int;
    started timestamptz;
begin
    insert into auth.rate_limits as r (bucket, window_start, hits) values (take_rate_limit.bucket, now(), 1)
    on conflict on constraint rate_limits_pkey do update set
        window_start = case when r.window_start <= now() - span then now() else r.window_start end,
        hits = case when r.window_start <= now() - span then 1 else r.hits + 1 end
    returning r.hits, r.window_start into used, started;
    if random() < 0.01 then
        delete from auth.rate_limits where window_start < now() - interval '1 day';
    end if;
    if used > maximum then
        return greatest(1, ceil(extract(epoch from started + span - now()))::int);
    end if;
    return 0;
end
$$;
revoke all on function auth.take_rate_limit(text, int, int) from public;
grant execute on function auth.take_rate_limit(text, int, int) to service_role;

-- =================================================================================================
-- 0024_invites
-- =================================================================================================
-- Invitations (POST /invite, admin generate_link type invite): a mailed link of its own purpose.
alter table auth.one_time_tokens drop constraint one_time_tokens_purpose_check;
alter table auth.one_time_tokens add constraint one_time_tokens_purpose_check
    check (purpose in ('signup', 'recovery', 'magiclink', 'invite'));

-- =================================================================================================
-- 0025_email_change
-- =================================================================================================
-- Secure email change and reauthentication.
--
-- A user's new address waits in auth.users.email_change until it is confirmed: with secure email change
-- (the default) by a link or code mailed to the current address and one mailed to the new one, each an
-- auth.one_time_tokens row of its own purpose; the change applies when the second is used. A token that
-- still exists is a side not yet confirmed, so no counter can go out of step with the tokens.
-- reauthentication: a 6-digit code mailed to the signed-in user, the nonce that proves it is them before
-- a password change.

alter table auth.users
    add column email_change text,
    add column email_change_sent_at timestamptz,
    add constraint users_email_change_normalised check (email_change is null or email_change = lower(btrim(email_change)));

alter table auth.one_time_tokens drop constraint one_time_tokens_purpose_check;
alter table auth.one_time_tokens add constraint one_time_tokens_purpose_check
    check (purpose in ('signup', 'recovery', 'magiclink', 'invite', 'email_change_current', 'email_change_new', 'reauthentication'));

-- =================================================================================================
-- 0026_backups
-- =================================================================================================
-- Every backup archive written, by `strive backup` or a scheduled backup of `strive serve`: where it is,
-- how big, how long it took, or why it failed. The console lists them; the schedule reads the newest
-- finished one to decide when the next is due. Not exposed to the data API (strive_meta is not).
create table strive_meta.backups (
    id bigint generated always as identity primary key,
    file text not null,
    instance text not null,
    scheduled boolean not null,
    started_at timestamptz not null,
    finished_at timestamptz,
    bytes bigint,
    objects int,
    error text
);
create index backups_started_at_idx on strive_meta.backups (started_at desc);
revoke all on strive_meta.backups from public;
