-- Resumable uploads (TUS 1.0.0, as Supabase Storage offers them at /storage/v1/upload/resumable).
--
-- storage.resumable_uploads: one upload from its creation until its last byte (or its expiry). It keeps
-- the creator's verified identity (role, claims, session), which the policies judged at creation and
-- which writes the object row at completion, so the object appears exactly as a one-shot upload by the
-- same caller would: only then, and only if the policies still allow it.
-- storage.resumable_parts: the bytes received so far, one blob per PATCH, in order. A part is recorded in
-- the same transaction that advances the offset, so after a crash the offset and the bytes agree, on
-- every instance sharing the database and the blob store.

create table storage.resumable_uploads (
    id uuid primary key default gen_random_uuid(),
    bucket_id text not null references storage.buckets (id) on delete cascade,
    name text not null,
    upload_length bigint not null check (upload_length >= 0),
    upload_offset bigint not null default 0 check (upload_offset between 0 and upload_length),
    upsert boolean not null default false,
    content_type text not null,
    cache_control text not null,
    user_metadata jsonb,
    owner uuid,
    role text not null,
    claims jsonb not null,
    session_id uuid,
    created_at timestamptz not null default now(),
    updated_at timestamptz not null default now(),
    expires_at timestamptz not null
);
create index resumable_uploads_bucket_id_idx on storage.resumable_uploads (bucket_id);
create index resumable_uploads_expires_at_idx on storage.resumable_uploads (expires_at);

create table storage.resumable_parts (
    upload_id uuid not null references storage.resumable_uploads (id) on delete cascade,
    part_offset bigint not null check (part_offset >= 0),
    size bigint not null check (size > 0),
    blob text not null unique,
    primary key (upload_id, part_offset)
);

alter table storage.resumable_uploads enable row level security;
alter table storage.resumable_uploads force row level security;
alter table storage.resumable_parts enable row level security;
alter table storage.resumable_parts force row level security;
revoke all on storage.resumable_uploads, storage.resumable_parts from public, anon, authenticated;
grant select, insert, update, delete on storage.resumable_uploads, storage.resumable_parts to service_role;
