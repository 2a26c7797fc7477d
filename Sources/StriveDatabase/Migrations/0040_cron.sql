-- Scheduled jobs with pg_cron's interface (issue 33), built in and shared by every instance.
--
-- cron.schedule/schedule_in_database/unschedule/alter_job and the tables cron.job and
-- cron.job_run_details keep pg_cron's names, arguments and columns. Schedules are five-field cron
-- (minute hour day-of-month month day-of-week, with lists, ranges, steps, month and day names, `$` for
-- the last day of the month, @hourly … @yearly) in UTC, or 'N seconds' (1–59). Every instance's
-- `CronScheduler` asks each second which runs are due and claims them under one advisory lock, by
-- inserting the run with its tick (`scheduled_time`, unique per job): each tick runs once, on one
-- instance, and a job never starts while its previous run is alive (the running instance refreshes
-- `heartbeat_at`). A job runs as the role that scheduled it, with the claims of the session that
-- scheduled it, so row-level security sees the same user. The owner and service_role may schedule any
-- SQL; any other role only a call of one of the project's functions with constant arguments — what it
-- could call through the data API's rpc — since arbitrary SQL could set other claims.

create schema cron;
revoke all on schema cron from public;
grant usage on schema cron to service_role, authenticated, anon;

create table cron.job (
    jobid bigserial primary key,
    schedule text not null,
    command text not null,
    nodename text not null default 'localhost',
    nodeport integer not null default coalesce(inet_server_port(), 5432),
    database text not null default current_database(),
    username text not null default current_user,
    active boolean not null default true,
    jobname text,
    claims jsonb,
    created_at timestamptz not null default now()
);
create unique index job_jobname_username_uniq on cron.job (jobname, username, coalesce(claims ->> 'sub', ''));

create table cron.job_run_details (
    jobid bigint,
    runid bigserial primary key,
    job_pid integer,
    database text,
    username text,
    command text,
    status text,
    return_message text,
    start_time timestamptz,
    end_time timestamptz,
    scheduled_time timestamptz not null,
    instance text,
    heartbeat_at timestamptz,
    unique (jobid, scheduled_time)
);
create index job_run_details_running_idx on cron.job_run_details (jobid) where status in ('starting', 'running');

-- The session's claims, and whether the caller may see or change a job: its role, and its user.
create function cron._claims() returns jsonb
language sql stable set search_path = ''
begin atomic
    select nullif(current_setting('request.jwt.claims', true), '')::jsonb;
end;

alter table cron.job enable row level security;
alter table cron.job force row level security;
create policy job_owner on cron.job for all to public
    using (username = current_user and (claims ->> 'sub') is not distinct from (cron._claims() ->> 'sub'))
    with check (username = current_user and claims is not distinct from cron._claims());
alter table cron.job_run_details enable row level security;
alter table cron.job_run_details force row level security;
create policy job_run_details_read on cron.job_run_details for select to public
    using (exists (select 1 from cron.job j where j.jobid = job_run_details.jobid));
create policy job_run_details_delete on cron.job_run_details for delete to public
    using (exists (select 1 from cron.job j where j.jobid = job_run_details.jobid));
revoke all on cron.job, cron.job_run_details from public;
grant select, insert, update, delete on cron.job to service_role, authenticated, anon;
grant select, delete on cron.job_run_details to service_role, authenticated, anon;
grant insert, update on cron.job_run_details to service_role;
grant usage on sequence cron.job_jobid_seq to service_role, authenticated, anon;
grant usage on sequence cron.job_run_details_runid_seq to service_role;

-- One field of a cron schedule: whether `value` matches, or (with `value` null) whether it is valid.
create function cron._field(field text, value integer, low integer, high integer, names text[] default null, last_day integer default null)
returns boolean
language plpgsql immutable set search_path = ''
as $$
declare
    part text;
    range_text text;
    step integer;
    first integer;
    final integer;
    bounds text[];
    matched boolean := false;
begin
    if field is null or field = '' then
        return false;
    end if;
    foreach part in array string_to_array(lower(field), ',') loop
        step := 1;
        range_text := part;
        if position('/' in part) > 0 then
            range_text := split_part(part, '/', 1);
            if split_part(part, '/', 2) !~ '^[0-9]+$' then return false; end if;
            step := split_part(part, '/', 2)::integer;
            if step < 1 then return false; end if;
        end if;
        if range_text = '*' then
            first := low;
            final := high;
        elsif range_text = '$' and last_day is not null then
            first := last_day;
            final := last_day;
        else
            bounds := string_to_array(range_text, '-');
            if cardinality(bounds) > 2 then return false; end if;
            for i in 1..cardinality(bounds) loop
                if bounds[i] !~ '^[0-9]+$' then
                    if names is null or array_position(names, bounds[i]) is null then return false; end if;
                    bounds[i] := (array_position(names, bounds[i]) - 1 + low)::text;
                end if;
            end loop;
            first := bounds[1]::integer;
            final := bounds[cardinality(bounds)]::integer;
            if position('/' in part) > 0 and cardinality(bounds) = 1 then
                final := high;
            end if;
        end if;
        if first < low or final > high or first > final then
            return false;
        end if;
        if value is not null and value between first and final and (value - first) % step = 0 then
            matched := true;
        end if;
    end loop;
    return value is null or matched;
end
$$;

-- 'N seconds' → N; null for anything else.
create function cron._seconds(schedule text) returns integer
language sql immutable set search_path = ''
begin atomic
    select case when (regexp_match(lower(trim(schedule)), '^([0-9]{1,2}) seconds?$'))[1]::integer between 1 and 59
                then (regexp_match(lower(trim(schedule)), '^([0-9]{1,2}) seconds?$'))[1]::integer end;
end;

create function cron._fields(schedule text) returns text[]
language sql immutable set search_path = ''
begin atomic
    select case lower(trim(schedule))
        when '@yearly' then array['0', '0', '1', '1', '*']
        when '@annually' then array['0', '0', '1', '1', '*']
        when '@monthly' then array['0', '0', '1', '*', '*']
        when '@weekly' then array['0', '0', '*', '*', '0']
        when '@daily' then array['0', '0', '*', '*', '*']
        when '@midnight' then array['0', '0', '*', '*', '*']
        when '@hourly' then array['0', '*', '*', '*', '*']
        else regexp_split_to_array(trim(schedule), '\s+')
    end;
end;

create function cron._matches(schedule text, at timestamptz) returns boolean
language plpgsql immutable set search_path = ''
as $$
declare
    seconds integer := cron._seconds(schedule);
    fields text[];
    moment timestamp := at at time zone 'UTC';
    months constant text[] := array['jan', 'feb', 'mar', 'apr', 'may', 'jun', 'jul', 'aug', 'sep', 'oct', 'nov', 'dec'];
    days constant text[] := array['sun', 'mon', 'tue', 'wed', 'thu', 'fri', 'sat'];
    last_day integer;
    day_matches boolean;
    weekday_matches boolean;
begin
    if seconds is not null then
        return (extract(epoch from date_trunc('second', at))::bigint % seconds) = 0;
    end if;
    if extract(second from moment) >= 1 then
        return false;
    end if;
    fields := cron._fields(schedule);
    if cardinality(fields) <> 5 then
        return false;
    end if;
    last_day := extract(day from date_trunc('month', moment) + interval '1 month - 1 day')::integer;
    if not (cron._field(fields[1], extract(minute from moment)::integer, 0, 59)
            and cron._field(fields[2], extract(hour from moment)::integer, 0, 23)
            and cron._field(fields[4], extract(month from moment)::integer, 1, 12, months)) then
        return false;
    end if;
    day_matches := cron._field(fields[3], extract(day from moment)::integer, 1, 31, null, last_day);
    -- Sunday is 0 or 7.
    weekday_matches := cron._field(fields[5], extract(dow from moment)::integer, 0, 7, days)
        or (extract(dow from moment) = 0 and cron._field(fields[5], 7, 0, 7, days));
    -- As in Vixie cron: with both days restricted, either may match.
    if fields[3] <> '*' and fields[5] <> '*' then
        return day_matches or weekday_matches;
    end if;
    return day_matches and weekday_matches;
end
$$;

create function cron._validate_schedule(schedule text) returns void
language plpgsql immutable set search_path = ''
as $$
declare
    fields text[];
begin
    if cron._seconds(schedule) is not null then
        return;
    end if;
    fields := cron._fields(coalesce(schedule, ''));
    if cardinality(fields) <> 5
        or not cron._field(fields[1], null, 0, 59)
        or not cron._field(fields[2], null, 0, 23)
        or not cron._field(fields[3], null, 1, 31, null, 31)
        or not cron._field(fields[4], null, 1, 12, array['jan', 'feb', 'mar', 'apr', 'may', 'jun', 'jul', 'aug', 'sep', 'oct', 'nov', 'dec'])
        or not cron._field(fields[5], null, 0, 7, array['sun', 'mon', 'tue', 'wed', 'thu', 'fri', 'sat']) then
        raise exception 'invalid schedule: %', schedule
            using errcode = '22023', hint = 'Use cron syntax (minute hour day-of-month month day-of-week) or ''[1-59] seconds''';
    end if;
end
$$;

-- What a role other than the owner and service_role may schedule: `select [schema.]function(constants)`,
-- a function of the project's own (not PostgreSQL's, nor Strive's) that the role may execute.
create function cron._check_command(command text, username text) returns void
language plpgsql stable set search_path = ''
as $$
declare
    literal constant text := '(?:''(?:[^'']|'''')*''|-?[0-9]+(?:\.[0-9]+)?|true|false|null)(?:::[a-z_][a-z0-9_ ]*(?:\[\])?)?';
    argument constant text := '(?:[a-z_][a-z0-9_]*\s*=>\s*)?' || literal;
    shape constant text := '^\s*select\s+(?:([a-z_][a-z0-9_]*)\.)?([a-z_][a-z0-9_]*)\s*\(\s*(?:' || argument || '(?:\s*,\s*' || argument
        || ')*)?\s*\)\s*;?\s*$';
    parts text[];
    schema_name text;
begin
    if username = 'service_role' or exists (select 1 from pg_catalog.pg_roles r where r.rolname = username and r.rolsuper)
        or username = (select pg_catalog.pg_get_userbyid(n.nspowner) from pg_catalog.pg_namespace n where n.nspname = 'cron') then
        return;
    end if;
    parts := regexp_match(command, shape, 'i');
    if parts is null then
        raise exception 'a job of % may only call one function with constant arguments: select my_function(''a'', 1)', username
            using errcode = '42501';
    end if;
    schema_name := lower(coalesce(parts[1], 'public'));
    if schema_name like 'pg\_%' or schema_name in (
        'information_schema', 'cron', 'net', 'pgmq', 'pgmq_public', 'auth', 'storage', 'realtime', 'supabase_functions', 'app',
        'strive_meta', 'extensions') then
        raise exception 'a job of % may not call %.%', username, schema_name, lower(parts[2]) using errcode = '42501';
    end if;
    if not exists (
        select 1 from pg_catalog.pg_proc p join pg_catalog.pg_namespace n on n.oid = p.pronamespace
        where n.nspname = schema_name and p.proname = lower(parts[2])
          and pg_catalog.has_function_privilege(username, p.oid, 'execute')) then
        raise exception 'function %.% does not exist or % may not execute it', schema_name, lower(parts[2]), username
            using errcode = '42883';
    end if;
end
$$;

create function cron._check_job() returns trigger
language plpgsql set search_path = ''
as $$
begin
    perform cron._validate_schedule(new.schedule);
    if new.database <> current_database() then
        raise exception 'jobs run in this database (%), not %', current_database(), new.database using errcode = '22023';
    end if;
    if new.username not in ('anon', 'authenticated', 'service_role')
        and not exists (select 1 from pg_catalog.pg_roles r where r.rolname = new.username and r.rolsuper)
        and new.username <> (select pg_catalog.pg_get_userbyid(n.nspowner) from pg_catalog.pg_namespace n where n.nspname = 'cron') then
        raise exception 'jobs run as anon, authenticated, service_role or the database owner, not %', new.username
            using errcode = '42501';
    end if;
    perform cron._check_command(new.command, new.username);
    return new;
end
$$;
create trigger check_job before insert or update on cron.job for each row execute function cron._check_job();

create function cron.schedule(job_name text, schedule text, command text) returns bigint
language plpgsql set search_path = ''
as $$
declare
    id bigint;
begin
    if job_name is null then raise exception 'job_name can not be NULL'; end if;
    if schedule is null then raise exception 'schedule can not be NULL'; end if;
    if command is null then raise exception 'command can not be NULL'; end if;
    update cron.job j set schedule = $2, command = $3
    where j.jobname = job_name and j.username = current_user
      and coalesce(j.claims ->> 'sub', '') = coalesce(cron._claims() ->> 'sub', '')
    returning j.jobid into id;
    if id is null then
        insert into cron.job (jobname, schedule, command, claims) values (job_name, schedule, command, cron._claims())
        returning jobid into id;
    end if;
    return id;
end
$$;

create function cron.schedule(schedule text, command text) returns bigint
language plpgsql strict set search_path = ''
as $$
declare
    id bigint;
begin
    insert into cron.job (schedule, command, claims) values (schedule, command, cron._claims()) returning jobid into id;
    return id;
end
$$;

-- Only as a role the caller may become: scheduling never grants a privilege the caller lacks.
create function cron.schedule_in_database(
    job_name text, schedule text, command text, database text, username text default null, active boolean default true
) returns bigint
language plpgsql set search_path = ''
as $$
declare
    id bigint;
begin
    if username is not null and username <> current_user then
        raise exception 'must be superuser to create a job for another role' using errcode = '42501';
    end if;
    id := cron.schedule(job_name, schedule, command);
    update cron.job j set database = schedule_in_database.database, active = schedule_in_database.active where j.jobid = id;
    return id;
end
$$;

create function cron.unschedule(job_id bigint) returns boolean
language plpgsql strict set search_path = ''
as $$
begin
    delete from cron.job j where j.jobid = job_id;
    if not found then
        raise exception 'could not find valid entry for job %', job_id;
    end if;
    return true;
end
$$;

create function cron.unschedule(job_name text) returns boolean
language plpgsql strict set search_path = ''
as $$
begin
    delete from cron.job j where j.jobname = job_name and j.username = current_user;
    if not found then
        raise exception 'could not find valid entry for job ''%''', job_name;
    end if;
    return true;
end
$$;

create function cron.alter_job(
    job_id bigint, schedule text default null, command text default null, database text default null, username text default null,
    active boolean default null
) returns void
language plpgsql set search_path = ''
as $$
begin
    if schedule is null and command is null and database is null and username is null and active is null then
        raise exception 'no updates specified';
    end if;
    if username is not null and username <> current_user then
        raise exception 'must be superuser to alter a job''s role' using errcode = '42501';
    end if;
    update cron.job j
    set schedule = coalesce(alter_job.schedule, j.schedule), command = coalesce(alter_job.command, j.command),
        database = coalesce(alter_job.database, j.database), active = coalesce(alter_job.active, j.active)
    where j.jobid = job_id;
    if not found then
        raise exception 'Job % does not exist or you don''t own it', job_id;
    end if;
end
$$;

-- The claim every instance makes each second, under one lock so two instances never claim the same job
-- at once. Runs left 'starting' or 'running' by an instance that stopped refreshing them, or running on
-- a backend that is gone, are failed first. Then, for each active job without a live run, the ticks its schedule matched since its last
-- run's tick (and since it was created, at most a minute back) get runs: every tick that came due after
-- the last run ended (an instance late to look runs them in order, none is lost), and the ticks that came
-- due while it ran, once, as pg_cron queues one. Their runs are executed one after another.
create function cron._claim_due(instance text) returns table (
    runid bigint, jobid bigint, command text, username text, claims jsonb, scheduled_time timestamptz
)
language plpgsql security definer set search_path = ''
as $$
begin
    perform pg_advisory_xact_lock(hashtext('strive cron claim'));
    update cron.job_run_details r
    set status = 'failed', return_message = 'the instance running it stopped', end_time = now()
    where r.status in ('starting', 'running')
      and (r.heartbeat_at < now() - interval '30 seconds'
           or r.status = 'running' and not exists (select 1 from pg_catalog.pg_stat_activity a where a.pid = r.job_pid));
    return query
    with latest as (
        select distinct on (r.jobid) r.jobid, r.scheduled_time, r.end_time from cron.job_run_details r order by r.jobid, r.runid desc
    ),
    candidates as (
        select j.jobid, t.tick, l.end_time
        from cron.job j
        left join latest l on l.jobid = j.jobid
        cross join lateral generate_series(
            date_trunc('second', now()) - interval '59 seconds', date_trunc('second', now()), interval '1 second') as t(tick)
        where j.active and t.tick > j.created_at and t.tick > coalesce(l.scheduled_time, '-infinity')
          and cron._matches(j.schedule, t.tick)
          and not exists (select 1 from cron.job_run_details r where r.jobid = j.jobid and r.status in ('starting', 'running'))
    ),
    chosen as (
        select c.jobid, c.tick from candidates c where c.end_time is null or c.tick > c.end_time
        union
        select c.jobid, max(c.tick) from candidates c where c.tick <= c.end_time group by c.jobid
    )
    insert into cron.job_run_details as r (jobid, database, username, command, status, start_time, scheduled_time, instance, heartbeat_at)
    select j.jobid, j.database, j.username, j.command, 'starting', clock_timestamp(), chosen.tick, instance, now()
    from chosen join cron.job j on j.jobid = chosen.jobid
    order by chosen.jobid, chosen.tick
    on conflict on constraint job_run_details_jobid_scheduled_time_key do nothing
    returning r.runid, r.jobid, r.command, r.username, (select j.claims from cron.job j where j.jobid = r.jobid), r.scheduled_time;
end
$$;

create function cron._heartbeat(run_ids bigint[]) returns void
language sql security definer set search_path = ''
begin atomic
    update cron.job_run_details set heartbeat_at = now() where runid = any(run_ids) and status in ('starting', 'running');
end;

create function cron._started(run_id bigint, pid integer) returns void
language sql security definer set search_path = ''
begin atomic
    update cron.job_run_details set status = 'running', job_pid = pid, start_time = clock_timestamp(), heartbeat_at = now()
    where runid = run_id;
end;

create function cron._finished(run_id bigint, succeeded boolean, message text) returns void
language sql security definer set search_path = ''
begin atomic
    update cron.job_run_details
    set status = case when succeeded then 'succeeded' else 'failed' end, return_message = message, end_time = clock_timestamp()
    where runid = run_id;
end;

-- A trusted job's command (the owner's, service_role's), which may hold several statements; it runs
-- with the caller's rights. Restricted jobs are one function call, sent as they are.
create function cron._execute(command text) returns text
language plpgsql set search_path = ''
as $$
declare
    changed bigint;
begin
    execute command;
    get diagnostics changed = row_count;
    return changed || case when changed = 1 then ' row' else ' rows' end;
end
$$;

revoke all on all functions in schema cron from public;
grant execute on function cron.schedule(text, text, text), cron.schedule(text, text), cron.schedule_in_database(text, text, text, text, text, boolean),
    cron.unschedule(bigint), cron.unschedule(text), cron.alter_job(bigint, text, text, text, text, boolean), cron._claims(),
    cron._field(text, integer, integer, integer, text[], integer), cron._seconds(text), cron._fields(text),
    cron._matches(text, timestamptz), cron._validate_schedule(text), cron._check_command(text, text), cron._check_job()
    to service_role, authenticated, anon;
grant execute on function cron._claim_due(text), cron._heartbeat(bigint[]), cron._started(bigint, integer),
    cron._finished(bigint, boolean, text), cron._execute(text) to service_role;
