-- Transformed images, kept in the blob store so a thumbnail is computed once (issue 32).
--
-- A variant is named by the object's version (the blob it was made from) and the transformation's
-- options, including which formats the client accepted (that decides the output). A replaced or deleted
-- object's version is released, and its variants go with it in the same transaction, their blobs queued
-- for deletion like any released blob: an old variant can never be served. `used_at` orders eviction when
-- the cache exceeds its bound (STRIVE_STORAGE_IMAGE_CACHE_MB). Only the service role reads or writes it.

create table storage.image_variants (
    object_version text not null,
    options text not null,
    blob text not null unique,
    size bigint not null check (size >= 0),
    content_type text not null,
    created_at timestamptz not null default now(),
    used_at timestamptz not null default now(),
    primary key (object_version, options)
);
create index image_variants_used_at_idx on storage.image_variants (used_at);
-- "Is this version still an object's?": asked before a variant is kept, by the variant and blob sweeps.
create index objects_version_idx on storage.objects (version);

alter table storage.image_variants enable row level security;
alter table storage.image_variants force row level security;
create policy image_variants_service on storage.image_variants for all to service_role using (true) with check (true);
revoke all on storage.image_variants from public, anon, authenticated;
grant select, insert, update, delete on storage.image_variants to service_role;

-- The trigger that queues a released version's blob (0007) queues its variants' blobs too.
create or replace function storage.queue_released_blob() returns trigger
language plpgsql security definer set search_path = ''
as $$
begin
    if old.version is not null and (tg_op = 'DELETE' or old.version is distinct from new.version) then
        insert into storage.blob_garbage (version) values (old.version) on conflict do nothing;
        with gone as (delete from storage.image_variants where object_version = old.version returning blob)
        insert into storage.blob_garbage (version) select blob from gone on conflict do nothing;
    end if;
    return null;
end
$$;
