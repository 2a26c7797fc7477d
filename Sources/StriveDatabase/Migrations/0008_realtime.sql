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

select realtime.publish('public.tasks');
select realtime.publish('public.customers');
select realtime.publish('public.projects');
select realtime.publish('public.notifications');

-- Who may read a changed row, in two forms that restate the tables' SELECT policies. The reader sets
-- (realtime.readers_*, below) answer "who may read R" with one lookup per change, and the authoriser
-- joins them with the subscribers; the per-user predicates (realtime.can_read_*) are the fallback when a
-- batch fails, so one failing subscriber costs only itself. The test suite checks both forms against the
-- tables' real policies for every kind of caller.
create function realtime.can_read_tasks(uid uuid, r public.tasks) returns boolean
language sql stable security definer set search_path = ''
as $$ select r.organization_id = any (app.org_ids(uid)) $$;

create function realtime.can_read_customers(uid uuid, r public.customers) returns boolean
language sql stable security definer set search_path = ''
as $$ select r.organization_id = any (app.org_ids(uid)) $$;

create function realtime.can_read_projects(uid uuid, r public.projects) returns boolean
language sql stable security definer set search_path = ''
as $$ select r.organization_id = any (app.org_ids(uid)) $$;

create function realtime.can_read_notifications(uid uuid, r public.notifications) returns boolean
language sql stable security definer set search_path = ''
as $$ select r.user_id = uid $$;

-- One entry point: false for tables without a predicate (nothing is delivered unless it is known to be readable).
create function realtime.can_read(schema_name text, table_name text, uid uuid, record jsonb) returns boolean
language sql stable security definer set search_path = ''
as $$
    select case
        when uid is null or schema_name <> 'public' then false
        when table_name = 'tasks' then realtime.can_read_tasks(uid, jsonb_populate_record(null::public.tasks, record))
        when table_name = 'customers' then realtime.can_read_customers(uid, jsonb_populate_record(null::public.customers, record))
        when table_name = 'projects' then realtime.can_read_projects(uid, jsonb_populate_record(null::public.projects, record))
        when table_name = 'notifications' then realtime.can_read_notifications(uid, jsonb_populate_record(null::public.notifications, record))
        else false
    end
$$;
revoke all on function realtime.can_read_tasks(uuid, public.tasks), realtime.can_read_customers(uuid, public.customers),
    realtime.can_read_projects(uuid, public.projects), realtime.can_read_notifications(uuid, public.notifications),
    realtime.can_read(text, text, uuid, jsonb) from public;
grant execute on function realtime.can_read(text, text, uuid, jsonb) to service_role;

create function realtime.readers_tasks(r public.tasks) returns setof uuid
language sql stable security definer set search_path = ''
as $$ select m.user_id from public.organization_members m where m.organization_id = r.organization_id $$;

create function realtime.readers_customers(r public.customers) returns setof uuid
language sql stable security definer set search_path = ''
as $$ select m.user_id from public.organization_members m where m.organization_id = r.organization_id $$;

create function realtime.readers_projects(r public.projects) returns setof uuid
language sql stable security definer set search_path = ''
as $$ select m.user_id from public.organization_members m where m.organization_id = r.organization_id $$;

create function realtime.readers_notifications(r public.notifications) returns setof uuid
language sql stable security definer set search_path = ''
as $$ select r.user_id where r.user_id is not null $$;

-- Nobody, for tables without a reader function: nothing is delivered unless it is known to be readable.
create function realtime.readers(schema_name text, table_name text, record jsonb) returns setof uuid
language plpgsql stable security definer set search_path = ''
as $$
begin
    if schema_name <> 'public' then
        return;
    end if;
    case table_name
        when 'tasks' then return query select realtime.readers_tasks(jsonb_populate_record(null::public.tasks, record));
        when 'customers' then return query select realtime.readers_customers(jsonb_populate_record(null::public.customers, record));
        when 'projects' then return query select realtime.readers_projects(jsonb_populate_record(null::public.projects, record));
        when 'notifications' then return query select realtime.readers_notifications(jsonb_populate_record(null::public.notifications, record));
        else return;
    end case;
end
$$;

revoke all on function realtime.readers_tasks(public.tasks), realtime.readers_customers(public.customers),
    realtime.readers_projects(public.projects), realtime.readers_notifications(public.notifications),
    realtime.readers(text, text, jsonb) from public;
grant execute on function realtime.readers(text, text, jsonb) to service_role;
