-- Storage permissions decided by row-level security, as Supabase Storage lets them be: anon and
-- authenticated hold every privilege on storage.buckets and storage.objects, and the policies decide. A
-- project that wants users to create buckets writes a policy for it; storage-js and storage3 then work
-- with the anon key or a user's token exactly as against Supabase.
--
-- The built-in access stays as it was: without a policy nobody but the service role (which bypasses row-level
-- security) creates, changes or deletes a bucket; platform admins read the configuration (the console);
-- anon's uploads still meet the objects' policies, none of which lets anon write.

grant select, insert, update, delete on storage.buckets to anon, authenticated;
grant insert, update, delete on storage.objects to anon;

create policy buckets_platform_admin_select on storage.buckets for select to authenticated
    using ((select app.is_admin()));
