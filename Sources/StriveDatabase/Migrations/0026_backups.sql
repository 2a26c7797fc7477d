-- Every backup archive written, by `strive backup` or a scheduled backup of `strive serve`: where it is,
-- how big, how long it took, or why it failed. The console lists them; the schedule reads the newest
-- finished one to decide when the next is due. Not exposed to the data API (strive_meta is not).
create table strive_meta.backups (
    id bigint generated always as identity primary key,
    file text not null,
    instance text not null,
    scheduled boolean not null,
    started_at timestamptz not null,
    finished_at timestamptz,
    bytes bigint,
    objects int,
    error text
);
create index backups_started_at_idx on strive_meta.backups (started_at desc);
revoke all on strive_meta.backups from public;
