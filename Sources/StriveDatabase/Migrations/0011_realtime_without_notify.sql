-- No NOTIFY from writing transactions. PostgreSQL serialises the commits of transactions that sent a
-- NOTIFY (they queue on one lock through their WAL flush), which capped every writer of a published
-- table at about one commit per fsync — the same bottleneck 0010 removed for positions. Readers now
-- poll realtime.changes by position (an index range scan; every few milliseconds while changes flow,
-- backing off when idle), which costs one cheap query per interval per instance instead.
create or replace function realtime.stamp_commit() returns trigger
language plpgsql security definer set search_path = ''
as $$
declare
    me constant text := pg_current_xact_id()::text;
    assigned bigint;
begin
    if current_setting('realtime.stamped_xid', true) is not distinct from me then
        return null;
    end if;
    perform set_config('realtime.stamped_xid', me, true);
    assigned := nextval('realtime.commit_position');
    perform pg_advisory_xact_lock(-assigned);
    update realtime.changes set position = assigned, commit_timestamp = clock_timestamp()
    where xid = pg_current_xact_id() and position is null;
    return null;
end
$$;
