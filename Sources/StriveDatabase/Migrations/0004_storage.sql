-- Storage metadata (SPEC §5), in Supabase Storage's shape so its policies port unchanged. Bytes live in
-- the blob store; these rows say what exists and, through row-level security on storage.objects, who may
-- read or write it. Buckets are configuration: only the service reads or changes them.

create schema if not exists storage;
grant usage on schema storage to anon, authenticated, service_role;

create table storage.buckets (
    id text primary key check (id ~ '^[a-z0-9][a-z0-9._-]{0,62}$'),
    name text not null unique,
    owner uuid,
    owner_id text,
    public boolean not null default false,
    file_size_limit bigint check (file_size_limit > 0),
    allowed_mime_types text[],
    created_at timestamptz not null default now(),
    updated_at timestamptz not null default now()
);

create table storage.objects (
    id uuid primary key default gen_random_uuid(),
    bucket_id text not null references storage.buckets (id),
    name text not null,
    owner uuid default auth.uid(),
    owner_id text default auth.uid()::text,
    metadata jsonb,
    user_metadata jsonb,
    version text,
    path_tokens text[] generated always as (string_to_array(name, '/')) stored,
    created_at timestamptz not null default now(),
    updated_at timestamptz not null default now(),
    last_accessed_at timestamptz not null default now(),
    unique (bucket_id, name),
    -- The blob store validates keys too; this keeps a bad key out whoever writes the row.
    constraint objects_name_valid check (
        octet_length(name) between 1 and 1024
        and name !~ '^/'
        and name !~ '(^|/)\.\.?(/|$)'
        and name !~ '//'
        and name !~ '[[:cntrl:]]'
    )
);
create index objects_owner_idx on storage.objects (owner);

-- Supabase's helpers: 'org/task/42/a.pdf' → folders {org,task,42}, file 'a.pdf', extension 'pdf'.
create function storage.foldername(name text) returns text[]
language sql immutable strict parallel safe set search_path = ''
as $$
    select (string_to_array(name, '/'))[1:greatest(cardinality(string_to_array(name, '/')) - 1, 0)]
$$;

create function storage.filename(name text) returns text
language sql immutable strict parallel safe set search_path = ''
as $$
    select (string_to_array(name, '/'))[cardinality(string_to_array(name, '/'))]
$$;

create function storage.extension(name text) returns text
language sql immutable strict parallel safe set search_path = ''
as $$
    select case when storage.filename(name) like '%.%'
                then lower(reverse(split_part(reverse(storage.filename(name)), '.', 1)))
                else '' end
$$;

grant execute on function storage.foldername(text), storage.filename(text), storage.extension(text)
to anon, authenticated, service_role;

-- Policies filter on the first folder (an organization or user id): index it per bucket.
create index objects_bucket_first_folder_idx on storage.objects (bucket_id, ((storage.foldername(name))[1]));

create trigger touch_updated_at before update on storage.buckets
for each row execute function app.touch_updated_at();
create trigger touch_updated_at before update on storage.objects
for each row execute function app.touch_updated_at();

insert into storage.buckets (id, name, public, file_size_limit, allowed_mime_types) values
    ('attachments', 'attachments', false, 52428800, null),
    ('avatars', 'avatars', true, 5242880, array['image/jpeg', 'image/png', 'image/gif', 'image/webp']),
    ('public-assets', 'public-assets', true, 10485760,
        array['image/jpeg', 'image/png', 'image/webp', 'application/pdf', 'video/mp4'])
on conflict (id) do nothing;

alter table storage.buckets enable row level security;
alter table storage.buckets force row level security;
alter table storage.objects enable row level security;
alter table storage.objects force row level security;

-- attachments: {organization_id}/{entity_type}/{entity_id}/{file}; members read, writers upload as
-- themselves, the uploader changes, the uploader or org admins delete.
create policy attachments_select on storage.objects for select to authenticated
    using (
        bucket_id = 'attachments'
        and (storage.foldername(name))[1] = any ((select app.my_org_ids())::text[])
    );
create policy attachments_insert on storage.objects for insert to authenticated
    with check (
        bucket_id = 'attachments'
        and owner = (select auth.uid())
        and (storage.foldername(name))[1] = any ((select app.my_writer_org_ids())::text[])
    );
create policy attachments_update on storage.objects for update to authenticated
    using (
        bucket_id = 'attachments'
        and owner = (select auth.uid())
        and (storage.foldername(name))[1] = any ((select app.my_writer_org_ids())::text[])
    )
    with check (
        bucket_id = 'attachments'
        and owner = (select auth.uid())
        and (storage.foldername(name))[1] = any ((select app.my_writer_org_ids())::text[])
    );
create policy attachments_delete on storage.objects for delete to authenticated
    using (
        bucket_id = 'attachments'
        and (
            (owner = (select auth.uid()) and (storage.foldername(name))[1] = any ((select app.my_org_ids())::text[]))
            or (storage.foldername(name))[1] = any ((select app.my_admin_org_ids())::text[])
        )
    );

-- avatars: {user_id}/{file}; anyone reads, a user writes only under their own id.
create policy avatars_select on storage.objects for select to anon, authenticated
    using (bucket_id = 'avatars');
create policy avatars_insert on storage.objects for insert to authenticated
    with check (bucket_id = 'avatars' and (storage.foldername(name))[1] = (select auth.uid())::text);
create policy avatars_update on storage.objects for update to authenticated
    using (bucket_id = 'avatars' and (storage.foldername(name))[1] = (select auth.uid())::text)
    with check (bucket_id = 'avatars' and (storage.foldername(name))[1] = (select auth.uid())::text);
create policy avatars_delete on storage.objects for delete to authenticated
    using (bucket_id = 'avatars' and (storage.foldername(name))[1] = (select auth.uid())::text);

-- public-assets: anyone reads, platform admins write.
create policy public_assets_select on storage.objects for select to anon, authenticated
    using (bucket_id = 'public-assets');
create policy public_assets_insert on storage.objects for insert to authenticated
    with check (bucket_id = 'public-assets' and (select app.is_admin()));
create policy public_assets_update on storage.objects for update to authenticated
    using (bucket_id = 'public-assets' and (select app.is_admin()))
    with check (bucket_id = 'public-assets' and (select app.is_admin()));
create policy public_assets_delete on storage.objects for delete to authenticated
    using (bucket_id = 'public-assets' and (select app.is_admin()));

revoke all on storage.buckets, storage.objects from public, anon, authenticated;
grant select, insert, update, delete on storage.buckets, storage.objects to service_role;
grant select on storage.objects to anon;
grant select, insert, update, delete on storage.objects to authenticated;
