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

create policy messages_org_members_receive on realtime.messages for select to authenticated
    using (app.is_org_member(realtime.topic_organization((select realtime.topic()))));
create policy messages_org_members_send on realtime.messages for insert to authenticated
    with check (app.is_org_member(realtime.topic_organization((select realtime.topic()))));

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
