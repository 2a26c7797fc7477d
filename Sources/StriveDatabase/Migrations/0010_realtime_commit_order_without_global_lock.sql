-- Commit order without serialising commits. 0008 held one advisory lock from stamping until COMMIT
-- ended, so every transaction that changed a published table waited for the previous one's WAL flush:
-- about 100 commits/s on a disk with 10 ms fsyncs, for all tenants together.
--
-- Now each transaction takes its position from the sequence and holds an advisory lock on that position
-- (key -position) until it ends. Positions become visible out of order only within that short window;
-- the reader never passes a missing position while its lock is held, and passes it once the lock is
-- free and the position still has no rows (an aborted commit, or a sequence gap after a crash).
-- Two transactions changing the same row are ordered by the row lock, so per-row order is commit order.
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
    perform pg_notify('strive_realtime', '');
    return null;
end
$$;
