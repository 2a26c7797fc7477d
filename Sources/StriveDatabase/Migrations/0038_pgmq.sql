-- Queues with pgmq's SQL interface (issue 33), built in: nothing to install, and it runs on any
-- PostgreSQL Strive runs on. The functions keep pgmq's names, argument names and result types, so code
-- written for pgmq (the `pgmq` Python client, SQL calling pgmq.send/read/archive, Supabase's
-- pgmq_public wrappers) runs unchanged.
--
-- Each queue is two tables, pgmq.q_<name> (messages) and pgmq.a_<name> (archived ones), made by
-- pgmq.create as the owner with row-level security forced and a policy for the service role only:
-- a project lets other roles use a queue by granting them the functions and adding its own policies
-- (README, Queues). Reading claims messages with FOR UPDATE SKIP LOCKED and hides them for the
-- visibility timeout, so two consumers never receive the same message inside it.

create schema pgmq;
revoke all on schema pgmq from public;
grant usage on schema pgmq to service_role, authenticated, anon;

create table pgmq.meta (
    queue_name varchar primary key,
    is_partitioned boolean not null default false,
    is_unlogged boolean not null,
    created_at timestamptz not null default now()
);
alter table pgmq.meta enable row level security;
alter table pgmq.meta force row level security;
create policy meta_service on pgmq.meta for all to service_role using (true) with check (true);
revoke all on pgmq.meta from public, anon, authenticated;
grant select on pgmq.meta to service_role;

create type pgmq.message_record as (
    msg_id bigint,
    read_ct integer,
    enqueued_at timestamptz,
    last_read_at timestamptz,
    vt timestamptz,
    message jsonb,
    headers jsonb
);

create type pgmq.queue_record as (
    queue_name varchar,
    is_partitioned boolean,
    is_unlogged boolean,
    created_at timestamptz
);

create type pgmq.metrics_result as (
    queue_name text,
    queue_length bigint,
    newest_msg_age_sec integer,
    oldest_msg_age_sec integer,
    total_messages bigint,
    scrape_time timestamptz,
    queue_visible_length bigint
);

-- A queue's name becomes part of two table names: letters, digits and underscores, at most 47.
create function pgmq.validate_queue_name(queue_name text) returns void
language plpgsql immutable set search_path = ''
as $$
begin
    if queue_name is null or queue_name !~ '^[A-Za-z0-9_]{1,47}$' then
        raise exception 'invalid queue name %: use 1 to 47 letters, digits or underscores', quote_literal(coalesce(queue_name, 'null'))
            using errcode = '22023';
    end if;
end
$$;

-- The quoted table of a queue: `q` for messages, `a` for the archive.
create function pgmq._table(queue_name text, kind text) returns text
language plpgsql immutable set search_path = ''
as $$
begin
    perform pgmq.validate_queue_name(queue_name);
    return format('pgmq.%I', kind || '_' || lower(queue_name));
end
$$;

create function pgmq._create(queue_name text, unlogged boolean) returns void
language plpgsql security definer set search_path = ''
as $$
declare
    q text := pgmq._table(queue_name, 'q');
    a text := pgmq._table(queue_name, 'a');
    t text;
begin
    -- Two sessions creating one queue: the second waits, then finds it.
    perform pg_advisory_xact_lock(hashtext('pgmq.queue_' || lower(queue_name)));
    if exists (select 1 from pgmq.meta m where m.queue_name = lower(_create.queue_name)) then
        return;
    end if;
    execute format(
        'create %s table %s (msg_id bigint primary key generated always as identity, read_ct integer not null default 0, '
        'enqueued_at timestamptz not null default now(), last_read_at timestamptz, vt timestamptz not null, message jsonb, headers jsonb)',
        case when unlogged then 'unlogged' else '' end, q);
    execute format('create index on %s (vt)', q);
    execute format(
        'create table %s (msg_id bigint primary key, read_ct integer not null default 0, enqueued_at timestamptz not null default now(), '
        'archived_at timestamptz not null default now(), last_read_at timestamptz, vt timestamptz not null, message jsonb, headers jsonb)',
        a);
    execute format('create index on %s (archived_at)', a);
    foreach t in array array[q, a] loop
        execute format('alter table %s enable row level security', t);
        execute format('alter table %s force row level security', t);
        execute format('create policy service_role_all on %s for all to service_role using (true) with check (true)', t);
        execute format('revoke all on %s from public, anon, authenticated', t);
        execute format('grant select, insert, update, delete on %s to service_role', t);
    end loop;
    execute format('grant usage, select on sequence %s to service_role', q || '_msg_id_seq');
    insert into pgmq.meta (queue_name, is_partitioned, is_unlogged) values (lower(_create.queue_name), false, unlogged);
end
$$;

create function pgmq.create(queue_name text) returns void
language sql set search_path = ''
begin atomic
    select pgmq._create(queue_name, false);
end;

create function pgmq.create_non_partitioned(queue_name text) returns void
language sql set search_path = ''
begin atomic
    select pgmq._create(queue_name, false);
end;

create function pgmq.create_unlogged(queue_name text) returns void
language sql set search_path = ''
begin atomic
    select pgmq._create(queue_name, true);
end;

create function pgmq.create_partitioned(
    queue_name text, partition_interval text default '10000', retention_interval text default '100000'
) returns void
language plpgsql set search_path = ''
as $$
begin
    raise exception 'partitioned queues need pg_partman, which Strive does not use; pgmq.create makes an ordinary queue'
        using errcode = '0A000';
end
$$;

create function pgmq.drop_queue(queue_name text) returns boolean
language plpgsql security definer set search_path = ''
as $$
begin
    perform pg_advisory_xact_lock(hashtext('pgmq.queue_' || lower(queue_name)));
    if not exists (select 1 from pgmq.meta m where m.queue_name = lower(drop_queue.queue_name)) then
        raise notice 'pgmq queue % does not exist', queue_name;
        return false;
    end if;
    execute format('drop table %s', pgmq._table(queue_name, 'q'));
    execute format('drop table %s', pgmq._table(queue_name, 'a'));
    delete from pgmq.meta m where m.queue_name = lower(drop_queue.queue_name);
    return true;
end
$$;

-- pgmq's older two-argument form (tembo-pgmq-python calls it).
create function pgmq.drop_queue(queue_name text, partitioned boolean) returns boolean
language sql set search_path = ''
begin atomic
    select pgmq.drop_queue(queue_name);
end;

create function pgmq.detach_archive(queue_name text) returns void
language plpgsql set search_path = ''
as $$
begin
    -- pgmq detaches the archive from its extension; here it never belonged to one.
    perform pgmq.validate_queue_name(queue_name);
end
$$;

create function pgmq.list_queues() returns setof pgmq.queue_record
language sql stable set search_path = ''
begin atomic
    select m.queue_name, m.is_partitioned, m.is_unlogged, m.created_at from pgmq.meta m order by m.created_at, m.queue_name;
end;

-- Sending: every form comes to this one (headers, and the time the message becomes visible).
create function pgmq.send(queue_name text, msg jsonb, headers jsonb, delay timestamptz) returns setof bigint
language plpgsql set search_path = ''
as $$
begin
    return query execute format('insert into %s (vt, message, headers) values ($1, $2, $3) returning msg_id', pgmq._table(queue_name, 'q'))
        using delay, msg, headers;
end
$$;

create function pgmq.send(queue_name text, msg jsonb) returns setof bigint
language sql set search_path = ''
begin atomic
    select pgmq.send(queue_name, msg, null::jsonb, clock_timestamp());
end;

create function pgmq.send(queue_name text, msg jsonb, headers jsonb) returns setof bigint
language sql set search_path = ''
begin atomic
    select pgmq.send(queue_name, msg, headers, clock_timestamp());
end;

create function pgmq.send(queue_name text, msg jsonb, delay integer) returns setof bigint
language sql set search_path = ''
begin atomic
    select pgmq.send(queue_name, msg, null::jsonb, clock_timestamp() + make_interval(secs => delay));
end;

create function pgmq.send(queue_name text, msg jsonb, delay timestamptz) returns setof bigint
language sql set search_path = ''
begin atomic
    select pgmq.send(queue_name, msg, null::jsonb, delay);
end;

create function pgmq.send(queue_name text, msg jsonb, headers jsonb, delay integer) returns setof bigint
language sql set search_path = ''
begin atomic
    select pgmq.send(queue_name, msg, headers, clock_timestamp() + make_interval(secs => delay));
end;

create function pgmq.send_batch(queue_name text, msgs jsonb[], headers jsonb[], delay timestamptz) returns setof bigint
language plpgsql set search_path = ''
as $$
begin
    if headers is not null and cardinality(headers) <> cardinality(msgs) then
        raise exception 'headers must have as many entries as msgs' using errcode = '22023';
    end if;
    return query execute format(
        'insert into %s (vt, message, headers) select $1, m.message, $3[m.position] '
        'from unnest($2) with ordinality as m(message, position) order by m.position returning msg_id',
        pgmq._table(queue_name, 'q'))
        using delay, msgs, headers;
end
$$;

create function pgmq.send_batch(queue_name text, msgs jsonb[]) returns setof bigint
language sql set search_path = ''
begin atomic
    select pgmq.send_batch(queue_name, msgs, null::jsonb[], clock_timestamp());
end;

create function pgmq.send_batch(queue_name text, msgs jsonb[], headers jsonb[]) returns setof bigint
language sql set search_path = ''
begin atomic
    select pgmq.send_batch(queue_name, msgs, headers, clock_timestamp());
end;

create function pgmq.send_batch(queue_name text, msgs jsonb[], delay integer) returns setof bigint
language sql set search_path = ''
begin atomic
    select pgmq.send_batch(queue_name, msgs, null::jsonb[], clock_timestamp() + make_interval(secs => delay));
end;

create function pgmq.send_batch(queue_name text, msgs jsonb[], delay timestamptz) returns setof bigint
language sql set search_path = ''
begin atomic
    select pgmq.send_batch(queue_name, msgs, null::jsonb[], delay);
end;

create function pgmq.send_batch(queue_name text, msgs jsonb[], headers jsonb[], delay integer) returns setof bigint
language sql set search_path = ''
begin atomic
    select pgmq.send_batch(queue_name, msgs, headers, clock_timestamp() + make_interval(secs => delay));
end;

-- Reading: the oldest visible messages, skipping those another reader holds, hidden for `vt` seconds.
create function pgmq.read(queue_name text, vt integer, qty integer, conditional jsonb default '{}') returns setof pgmq.message_record
language plpgsql set search_path = ''
as $$
begin
    if qty is null or qty < 1 or vt is null then
        raise exception 'read needs a visibility timeout and a quantity of at least 1' using errcode = '22023';
    end if;
    return query execute format(
        'with claimed as (select msg_id from %1$s where vt <= clock_timestamp() and ($3 = ''{}''::jsonb or message @> $3) '
        '                 order by msg_id limit $1 for update skip locked) '
        'update %1$s q set vt = clock_timestamp() + make_interval(secs => $2), read_ct = q.read_ct + 1, last_read_at = clock_timestamp() '
        'from claimed where q.msg_id = claimed.msg_id '
        'returning q.msg_id, q.read_ct, q.enqueued_at, q.last_read_at, q.vt, q.message, q.headers',
        pgmq._table(queue_name, 'q'))
        using qty, vt, coalesce(conditional, '{}'::jsonb);
end
$$;

create function pgmq.read_with_poll(
    queue_name text, vt integer, qty integer, max_poll_seconds integer default 5, poll_interval_ms integer default 100,
    conditional jsonb default '{}'
) returns setof pgmq.message_record
language plpgsql set search_path = ''
as $$
declare
    stop_at timestamptz := clock_timestamp() + make_interval(secs => max_poll_seconds);
    found_any boolean;
    claimed pgmq.message_record;
begin
    loop
        found_any := false;
        for claimed in select * from pgmq.read(queue_name, read_with_poll.vt, qty, conditional) loop
            found_any := true;
            return next claimed;
        end loop;
        if found_any or clock_timestamp() >= stop_at then
            return;
        end if;
        perform pg_sleep(poll_interval_ms / 1000.0);
    end loop;
end
$$;

create function pgmq.pop(queue_name text, qty integer default 1) returns setof pgmq.message_record
language plpgsql set search_path = ''
as $$
begin
    return query execute format(
        'with claimed as (select msg_id from %1$s where vt <= clock_timestamp() order by msg_id limit $1 for update skip locked) '
        'delete from %1$s q using claimed where q.msg_id = claimed.msg_id '
        'returning q.msg_id, q.read_ct, q.enqueued_at, q.last_read_at, q.vt, q.message, q.headers',
        pgmq._table(queue_name, 'q'))
        using coalesce(qty, 1);
end
$$;

create function pgmq.delete(queue_name text, msg_ids bigint[]) returns setof bigint
language plpgsql set search_path = ''
as $$
begin
    return query execute format('delete from %s where msg_id = any($1) returning msg_id', pgmq._table(queue_name, 'q')) using msg_ids;
end
$$;

create function pgmq.delete(queue_name text, msg_id bigint) returns boolean
language sql set search_path = ''
begin atomic
    select exists (select 1 from pgmq.delete(queue_name, array[msg_id]));
end;

create function pgmq.archive(queue_name text, msg_ids bigint[]) returns setof bigint
language plpgsql set search_path = ''
as $$
begin
    return query execute format(
        'with gone as (delete from %s where msg_id = any($1) returning msg_id, read_ct, enqueued_at, last_read_at, vt, message, headers) '
        'insert into %s (msg_id, read_ct, enqueued_at, last_read_at, vt, message, headers) '
        'select msg_id, read_ct, enqueued_at, last_read_at, vt, message, headers from gone returning msg_id',
        pgmq._table(queue_name, 'q'), pgmq._table(queue_name, 'a'))
        using msg_ids;
end
$$;

create function pgmq.archive(queue_name text, msg_id bigint) returns boolean
language sql set search_path = ''
begin atomic
    select exists (select 1 from pgmq.archive(queue_name, array[msg_id]));
end;

create function pgmq.set_vt(queue_name text, msg_ids bigint[], vt timestamptz) returns setof pgmq.message_record
language plpgsql set search_path = ''
as $$
begin
    return query execute format(
        'update %s set vt = $2 where msg_id = any($1) '
        'returning msg_id, read_ct, enqueued_at, last_read_at, vt, message, headers',
        pgmq._table(queue_name, 'q'))
        using msg_ids, vt;
end
$$;

create function pgmq.set_vt(queue_name text, msg_ids bigint[], vt integer) returns setof pgmq.message_record
language sql set search_path = ''
begin atomic
    select * from pgmq.set_vt(queue_name, msg_ids, clock_timestamp() + make_interval(secs => vt));
end;

create function pgmq.set_vt(queue_name text, msg_id bigint, vt timestamptz) returns setof pgmq.message_record
language sql set search_path = ''
begin atomic
    select * from pgmq.set_vt(queue_name, array[msg_id], vt);
end;

create function pgmq.set_vt(queue_name text, msg_id bigint, vt integer) returns setof pgmq.message_record
language sql set search_path = ''
begin atomic
    select * from pgmq.set_vt(queue_name, array[msg_id], clock_timestamp() + make_interval(secs => vt));
end;

create function pgmq.purge_queue(queue_name text) returns bigint
language plpgsql set search_path = ''
as $$
declare
    removed bigint;
begin
    execute format('with gone as (delete from %s returning 1) select count(*) from gone', pgmq._table(queue_name, 'q')) into removed;
    return removed;
end
$$;

create function pgmq.metrics(queue_name text) returns pgmq.metrics_result
language plpgsql set search_path = ''
as $$
declare
    result pgmq.metrics_result;
begin
    execute format(
        'select $1, count(*), extract(epoch from now() - max(enqueued_at))::integer, extract(epoch from now() - min(enqueued_at))::integer, '
        '       (select case when is_called then last_value else 0 end from %s), now(), count(*) filter (where vt <= clock_timestamp()) '
        'from %s',
        pgmq._table(queue_name, 'q') || '_msg_id_seq', pgmq._table(queue_name, 'q'))
        into result using lower(queue_name);
    return result;
end
$$;

create function pgmq.metrics_all() returns setof pgmq.metrics_result
language plpgsql set search_path = ''
as $$
declare
    name text;
begin
    for name in select m.queue_name from pgmq.meta m order by m.queue_name loop
        return next pgmq.metrics(name);
    end loop;
end
$$;

-- Who may use queues is the project's decision: the service role may, by default; anyone else once
-- granted these functions and given policies on the queue's tables.
revoke all on all functions in schema pgmq from public;
grant execute on all functions in schema pgmq to service_role;

-- Supabase's pgmq_public wrappers, for the data API (`rpc` with `Content-Profile: pgmq_public`, once
-- the schema is listed in STRIVE_DB_SCHEMAS).
create schema pgmq_public;
revoke all on schema pgmq_public from public;
grant usage on schema pgmq_public to service_role, authenticated, anon;

create function pgmq_public.pop(queue_name text) returns setof pgmq.message_record
language sql set search_path = ''
begin atomic
    select * from pgmq.pop(queue_name, 1);
end;

create function pgmq_public.send(queue_name text, message jsonb, sleep_seconds integer default 0) returns setof bigint
language sql set search_path = ''
begin atomic
    select pgmq.send(queue_name, message, sleep_seconds);
end;

create function pgmq_public.send_batch(queue_name text, messages jsonb[], sleep_seconds integer default 0) returns setof bigint
language sql set search_path = ''
begin atomic
    select pgmq.send_batch(queue_name, messages, sleep_seconds);
end;

create function pgmq_public.archive(queue_name text, message_id bigint) returns boolean
language sql set search_path = ''
begin atomic
    select pgmq.archive(queue_name, message_id);
end;

create function pgmq_public.delete(queue_name text, message_id bigint) returns boolean
language sql set search_path = ''
begin atomic
    select pgmq.delete(queue_name, message_id);
end;

create function pgmq_public.read(queue_name text, sleep_seconds integer, n integer) returns setof pgmq.message_record
language sql set search_path = ''
begin atomic
    select * from pgmq.read(queue_name, sleep_seconds, n);
end;

revoke all on all functions in schema pgmq_public from public;
grant execute on all functions in schema pgmq_public to service_role;
