-- HTTP from SQL with pg_net's interface, and Supabase's Database Webhooks (issue 33), built in.
--
-- net.http_get/http_post/http_delete queue a request in net.http_request_queue, in the caller's
-- transaction: a transaction that rolls back sends nothing. Every Strive instance delivers the queue
-- (`HTTPOutbox`): it claims requests with SKIP LOCKED, sends them, and records each answer in
-- net._http_response under the request's id, as pg_net does; network errors, 5xx and 429 are retried
-- with back-off, so a committed request is delivered at least once, by whichever instance is alive.
-- The extra columns (attempts, next_attempt_at, claimed_until) are that bookkeeping; pg_net's own
-- columns keep their names and types. Addresses are checked when a request is sent, not here
-- (loopback, private, link-local and metadata addresses only with STRIVE_NET_ALLOW_PRIVATE).
--
-- supabase_functions.http_request() is the trigger function Supabase's Database Webhooks create:
-- `create trigger … after insert or update or delete on t for each row execute function
-- supabase_functions.http_request('https://…', 'POST', '{"Content-Type":"application/json"}', '{}', '5000')`
-- sends {type, table, schema, record, old_record}.

create schema net;
revoke all on schema net from public;
grant usage on schema net to service_role, authenticated, anon;

create domain net.http_method as text check (lower(value) in ('get', 'post', 'delete'));

create table net.http_request_queue (
    id bigserial primary key,
    method net.http_method not null,
    url text not null,
    headers jsonb,
    body bytea,
    timeout_milliseconds integer not null check (timeout_milliseconds between 1 and 600000),
    attempts integer not null default 0,
    next_attempt_at timestamptz not null default now(),
    claimed_until timestamptz,
    created timestamptz not null default now()
);
create index http_request_queue_due_idx on net.http_request_queue (next_attempt_at);

create table net._http_response (
    id bigint primary key,
    status_code integer,
    content_type text,
    headers jsonb,
    content text,
    timed_out boolean,
    error_msg text,
    created timestamptz not null default now(),
    attempts integer
);
create index http_response_created_idx on net._http_response (created);

alter table net.http_request_queue enable row level security;
alter table net.http_request_queue force row level security;
alter table net._http_response enable row level security;
alter table net._http_response force row level security;
create policy http_request_queue_service on net.http_request_queue for all to service_role using (true) with check (true);
create policy http_response_service on net._http_response for all to service_role using (true) with check (true);
revoke all on net.http_request_queue, net._http_response from public, anon, authenticated;
grant select, insert, update, delete on net.http_request_queue, net._http_response to service_role;
grant usage on sequence net.http_request_queue_id_seq to service_role;

-- RFC 3986's unreserved characters stay; every other byte of the UTF-8 text becomes %XX.
create function net._urlencode(value text) returns text
language sql immutable strict set search_path = ''
begin atomic
    select coalesce(string_agg(
        case when ch ~ '^[A-Za-z0-9._~-]$' then ch
             else upper(regexp_replace(encode(convert_to(ch, 'UTF8'), 'hex'), '(..)', '%\1', 'g')) end, '' order by position), '')
    from unnest(regexp_split_to_array(value, '')) with ordinality as t(ch, position);
end;

create function net._with_params(url text, params jsonb) returns text
language sql immutable set search_path = ''
begin atomic
    select case
        when params is null or params = '{}'::jsonb then url
        else url || case when position('?' in url) > 0 then '&' else '?' end
             || (select string_agg(net._urlencode(p.key) || '=' || net._urlencode(p.value), '&' order by p.key)
                 from jsonb_each_text(params) as p(key, value))
    end;
end;

create function net._enqueue(method text, url text, headers jsonb, body bytea, timeout_milliseconds integer) returns bigint
language plpgsql security definer set search_path = ''
as $$
declare
    request_id bigint;
begin
    if url is null or url !~* '^https?://' then
        raise exception 'url must be an http:// or https:// URL, not %', coalesce(quote_literal(url), 'null') using errcode = '22023';
    end if;
    insert into net.http_request_queue (method, url, headers, body, timeout_milliseconds)
    values (upper(method), url, headers, body, coalesce(timeout_milliseconds, 5000))
    returning id into request_id;
    -- Delivered at commit (and never for a rollback): the instances' outbox wakes up.
    perform pg_notify('strive_net', '');
    return request_id;
end
$$;

create function net.http_get(
    url text, params jsonb default '{}'::jsonb, headers jsonb default '{}'::jsonb, timeout_milliseconds integer default 5000
) returns bigint
language sql set search_path = ''
begin atomic
    select net._enqueue('GET', net._with_params(url, params), headers, null, timeout_milliseconds);
end;

create function net.http_post(
    url text, body jsonb default '{}'::jsonb, params jsonb default '{}'::jsonb,
    headers jsonb default '{"Content-Type": "application/json"}'::jsonb, timeout_milliseconds integer default 5000
) returns bigint
language plpgsql set search_path = ''
as $$
declare
    content_type text;
begin
    select h.value into content_type from jsonb_each_text(coalesce(headers, '{}'::jsonb)) as h(key, value)
    where lower(h.key) = 'content-type';
    if content_type is null then
        headers := headers || '{"Content-Type": "application/json"}'::jsonb;
    elsif content_type <> 'application/json' then
        raise exception 'Content-Type header must be "application/json"' using errcode = '22023';
    end if;
    return net._enqueue('POST', net._with_params(url, params), headers, convert_to(body::text, 'UTF8'), timeout_milliseconds);
end
$$;

create function net.http_delete(
    url text, params jsonb default '{}'::jsonb, headers jsonb default '{}'::jsonb, timeout_milliseconds integer default 5000,
    body jsonb default null
) returns bigint
language sql set search_path = ''
begin atomic
    select net._enqueue('DELETE', net._with_params(url, params), headers, convert_to(body::text, 'UTF8'), timeout_milliseconds);
end;

create type net.request_status as enum ('PENDING', 'SUCCESS', 'ERROR');
create type net.http_response as (status_code integer, headers jsonb, body text);
create type net.http_response_result as (status net.request_status, message text, response net.http_response);

-- pg_net's way to read an answer back: PENDING while the request is queued, ERROR for a failure (or an
-- id that never existed), else SUCCESS with the answer. Without `async`, waits for it (up to its timeout
-- and the retries' back-off; a transaction sees answers committed after it started only outside
-- REPEATABLE READ).
create function net._http_collect_response(request_id bigint, async boolean default true) returns net.http_response_result
language plpgsql set search_path = ''
as $$
declare
    answer net._http_response;
begin
    loop
        select * into answer from net._http_response r where r.id = request_id;
        if found then
            if answer.error_msg is not null then
                return row('ERROR', answer.error_msg, null)::net.http_response_result;
            end if;
            return row('SUCCESS', 'ok', row(answer.status_code, answer.headers, answer.content)::net.http_response)::net.http_response_result;
        end if;
        if not exists (select 1 from net.http_request_queue q where q.id = request_id) then
            return row('ERROR', 'request matching request_id not found', null)::net.http_response_result;
        end if;
        if async then
            return row('PENDING', 'request is pending processing', null)::net.http_response_result;
        end if;
        perform pg_sleep(0.05);
    end loop;
end
$$;

revoke all on all functions in schema net from public;
grant execute on function net.http_get(text, jsonb, jsonb, integer), net.http_post(text, jsonb, jsonb, jsonb, integer),
    net.http_delete(text, jsonb, jsonb, integer, jsonb), net._urlencode(text), net._with_params(text, jsonb),
    net._enqueue(text, text, jsonb, bytea, integer)
    to service_role, authenticated, anon;
grant execute on function net._http_collect_response(bigint, boolean) to service_role;

create schema supabase_functions;
revoke all on schema supabase_functions from public;
grant usage on schema supabase_functions to service_role;

create table supabase_functions.hooks (
    id bigserial primary key,
    hook_table_id integer not null,
    hook_name text not null,
    created_at timestamptz not null default now(),
    request_id bigint
);
create index hooks_request_id_idx on supabase_functions.hooks (request_id);
create index hooks_h_table_id_h_name_idx on supabase_functions.hooks (hook_table_id, hook_name);
alter table supabase_functions.hooks enable row level security;
alter table supabase_functions.hooks force row level security;
create policy hooks_service on supabase_functions.hooks for all to service_role using (true) with check (true);
revoke all on supabase_functions.hooks from public, anon, authenticated;
grant select, delete on supabase_functions.hooks to service_role;

-- Arguments as Supabase's dashboard writes them: url, method, headers, params, timeout in ms.
create function supabase_functions.http_request() returns trigger
language plpgsql security definer set search_path = ''
as $$
declare
    request_id bigint;
    payload jsonb;
    url text := tg_argv[0]::text;
    method text := tg_argv[1]::text;
    headers jsonb := '{"Content-Type": "application/json"}'::jsonb;
    params jsonb := '{}'::jsonb;
    timeout_ms integer := 1000;
begin
    if url is null or url = 'null' then
        raise exception 'url argument is missing';
    end if;
    if method is null or method = 'null' then
        raise exception 'method argument is missing';
    end if;
    if tg_argv[2] is not null and tg_argv[2] <> 'null' then
        headers := tg_argv[2]::jsonb;
    end if;
    if tg_argv[3] is not null and tg_argv[3] <> 'null' then
        params := tg_argv[3]::jsonb;
    end if;
    if tg_argv[4] is not null and tg_argv[4] <> 'null' then
        timeout_ms := tg_argv[4]::integer;
    end if;
    case upper(method)
        when 'GET' then
            request_id := net.http_get(url, params, headers, timeout_ms);
        when 'POST' then
            payload := jsonb_build_object(
                'old_record', case when tg_op in ('UPDATE', 'DELETE') then to_jsonb(old) end,
                'record', case when tg_op in ('INSERT', 'UPDATE') then to_jsonb(new) end,
                'type', tg_op, 'table', tg_table_name, 'schema', tg_table_schema);
            request_id := net.http_post(url, payload, params, headers, timeout_ms);
        else
            raise exception 'method argument % is invalid', method;
    end case;
    insert into supabase_functions.hooks (hook_table_id, hook_name, request_id) values (tg_relid, tg_name, request_id);
    return new;
end
$$;
revoke all on function supabase_functions.http_request() from public;
