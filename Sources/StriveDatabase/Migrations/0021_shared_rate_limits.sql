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
