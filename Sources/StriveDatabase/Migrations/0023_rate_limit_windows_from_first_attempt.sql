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
