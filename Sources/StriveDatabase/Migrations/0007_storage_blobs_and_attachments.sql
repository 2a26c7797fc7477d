-- Blob bookkeeping and the attachment ↔ object link (issue 6).
--
-- storage.blob_garbage: every blob an object stops pointing at (replaced by an upload, or its row
-- deleted by a remove, an emptied bucket or a cascade) is queued here by a trigger, in the same
-- transaction. The server deletes queued blobs after commit; a crash in between only delays that, and
-- nothing can delete a blob whose row still commits.
create table storage.blob_garbage (
    version text primary key,
    queued_at timestamptz not null default now()
);
alter table storage.blob_garbage enable row level security;
alter table storage.blob_garbage force row level security;
create policy blob_garbage_service on storage.blob_garbage for all to service_role using (true) with check (true);
revoke all on storage.blob_garbage from public, anon, authenticated;
grant select, insert, delete on storage.blob_garbage to service_role;

create function storage.queue_released_blob() returns trigger
language plpgsql security definer set search_path = ''
as $$
begin
    if old.version is not null and (tg_op = 'DELETE' or old.version is distinct from new.version) then
        insert into storage.blob_garbage (version) values (old.version) on conflict do nothing;
    end if;
    return null;
end
$$;
revoke all on function storage.queue_released_blob() from public;

create trigger queue_released_blob after update or delete on storage.objects
for each row execute function storage.queue_released_blob();

-- attachments.file_path names an object of the `attachments` bucket inside the row's own organization.
-- Deleting the object deletes its attachment rows (a record of a file that is gone helps nobody);
-- moving it within the organization carries them along; moving it elsewhere is refused by the checks.
alter table public.attachments
    add column storage_bucket text not null default 'attachments' check (storage_bucket = 'attachments');
alter table public.attachments
    add constraint attachments_file_in_organization check (split_part(file_path, '/', 1) = organization_id::text),
    add constraint attachments_object_fkey foreign key (storage_bucket, file_path)
        references storage.objects (bucket_id, name) on delete cascade on update cascade;
create index attachments_object_idx on public.attachments (storage_bucket, file_path);
