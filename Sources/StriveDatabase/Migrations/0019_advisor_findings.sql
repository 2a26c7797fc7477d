-- What `strive verify`'s advisor lints (after Supabase's splinter) found in the built-in schema.
--
-- public_bucket_allows_listing: avatars and public-assets let anyone list every object, and an avatar's
-- folder is its user's id, so the anon key enumerated every account. Public buckets are read through
-- /object/public/… (which needs no policy); listing and the authenticated routes are now for the folder's
-- own user (avatars) and platform admins.
drop policy avatars_select on storage.objects;
create policy avatars_select on storage.objects for select to authenticated
    using (bucket_id = 'avatars' and ((storage.foldername(name))[1] = (select auth.uid())::text or (select app.is_admin())));

drop policy public_assets_select on storage.objects;
create policy public_assets_select on storage.objects for select to authenticated
    using (bucket_id = 'public-assets' and (select app.is_admin()));

-- multiple_permissive_policies: content had two SELECT policies for authenticated, both evaluated for
-- every row. One policy per role, the same rows.
drop policy content_select_published on public.content;
drop policy content_select on public.content;
create policy content_select_published on public.content for select to anon
    using (status = 'PUBLISHED');
create policy content_select on public.content for select to authenticated
    using (status = 'PUBLISHED' or organization_id = any ((select app.my_org_ids())::uuid[]));

-- authenticated_security_definer_function_executable: create_organization must bypass RLS (the caller is
-- not a member of the organization it creates until it has created it). The lint asks for a reason.
comment on function public.create_organization(text, text) is
'Creates an organization with the caller as its OWNER.
@param name {"minLength": 1, "maxLength": 200, "pattern": "^[^\\u0000]*[^\\u0000 ][^\\u0000]*$"}
@param slug {"pattern": "^[a-z0-9][a-z0-9-]{0,62}$"}
@security-definer inserts the organization and the caller''s OWNER membership together; refuses callers without a signed-in user id';

-- auth_rls_initplan (policy_calls_function_per_row): the broadcast policies asked app.is_org_member once
-- per message row although its argument is the same for the whole statement.
drop policy messages_org_members_receive on realtime.messages;
create policy messages_org_members_receive on realtime.messages for select to authenticated
    using ((select app.is_org_member(realtime.topic_organization(realtime.topic()))));
drop policy messages_org_members_send on realtime.messages;
create policy messages_org_members_send on realtime.messages for insert to authenticated
    with check ((select app.is_org_member(realtime.topic_organization(realtime.topic()))));
