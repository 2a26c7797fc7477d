-- Realtime change capture (issue 7).
--
-- Mechanism: row triggers write each change into realtime.changes inside the writing transaction (so
-- only committed changes ever exist there, whatever their size), and a deferred constraint trigger
-- stamps the transaction's changes with a position at commit time while holding a transaction-level
-- advisory lock. Change-producing transactions therefore take positions in the order they commit, and
-- a reader that has seen position P has seen everything before P. A NOTIFY (delivered at commit) wakes
-- the readers; the payload is empty because the rows are read from the table, not from the
-- notification. Each Strive instance keeps its own cursor in realtime.cursors, so several instances
-- each see every change once, and a restarted instance resumes where it stopped.
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
begin
    -- A deferred trigger fires once per change row; the first one stamps them all.
    if current_setting('realtime.stamped_xid', true) is not distinct from me then
        return null;
    end if;
    perform set_config('realtime.stamped_xid', me, true);
    -- Held until COMMIT ends: the next change-producing transaction stamps only after this one is visible.
    perform pg_advisory_xact_lock(7263541);
    update realtime.changes set position = nextval('realtime.commit_position'), commit_timestamp = clock_timestamp()
    where xid = pg_current_xact_id() and position is null;
    perform pg_notify('strive_realtime', '');
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

-- Who may read a changed row, as functions of a user id: the SELECT policies of these tables, written
-- so one query can answer for many subscribers (the realtime authoriser joins subscribers × changes).
-- The test suite checks each against the table's real policies for every kind of caller.
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
