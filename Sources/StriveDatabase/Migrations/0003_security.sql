-- Who may do what (SPEC §4): helper functions, invariants the policies cannot express, row-level
-- security with its policies, and the grants that bound what each request role can even attempt.
--
-- Helpers live in schema app, which the data API does not expose. The functions of a user id
-- (app.org_ids(uid, …), app.is_org_member(uid, org) …) answer for anyone, so only the server's own
-- service paths may call them (realtime authorises one change for many subscribers with them); requests
-- get the current-user wrappers, which can only ever answer about the caller.
--
-- Policies compare columns with arrays computed once per statement, `organization_id = any ((select
-- app.my_org_ids())::uuid[])`, so PostgreSQL evaluates the helper once (an InitPlan), not once per row,
-- and can use the organization_id indexes. (The cast makes it an array expression, not ANY (subquery).)

grant usage on schema app to anon, authenticated, service_role;
alter default privileges in schema app revoke execute on functions from public;
alter default privileges in schema public revoke execute on functions from public;

-- ---------------------------------------------------------------------------------------------------
-- Functions of a user id (service paths only)
-- ---------------------------------------------------------------------------------------------------
create function app.org_ids(uid uuid, roles public."OrgRole"[] default null) returns uuid[]
language sql stable security definer set search_path = ''
as $$
    select coalesce(array_agg(m.organization_id order by m.organization_id), '{}')
    from public.organization_members m
    where m.user_id = uid and (roles is null or m.role = any (roles))
$$;

create function app.org_role(uid uuid, org uuid) returns public."OrgRole"
language sql stable security definer set search_path = ''
as $$
    select m.role from public.organization_members m where m.user_id = uid and m.organization_id = org
$$;

create function app.is_org_member(uid uuid, org uuid) returns boolean
language sql stable security definer set search_path = ''
as $$
    select exists (select 1 from public.organization_members m where m.user_id = uid and m.organization_id = org)
$$;

create function app.is_org_admin(uid uuid, org uuid) returns boolean
language sql stable security definer set search_path = ''
as $$
    select coalesce(app.org_role(uid, org) in ('OWNER', 'ADMIN'), false)
$$;

create function app.is_org_owner(uid uuid, org uuid) returns boolean
language sql stable security definer set search_path = ''
as $$
    select coalesce(app.org_role(uid, org) = 'OWNER', false)
$$;

create function app.is_platform_admin(uid uuid) returns boolean
language sql stable security definer set search_path = ''
as $$
    select exists (
        select 1 from public.users u where u.id = uid and u.is_active and u.role in ('ADMIN', 'MODERATOR')
    )
$$;

-- The active organization: the one the token names (app_metadata.organization_id) when the user belongs
-- to it, else the one they joined first. Never an arbitrary row (the original's LIMIT 1 without order).
create function app.current_user_org(uid uuid, claims jsonb) returns uuid
language sql stable security definer set search_path = ''
as $$
    select coalesce(
        (
            select m.organization_id from public.organization_members m
            where m.user_id = uid
              and m.organization_id::text = claims -> 'app_metadata' ->> 'organization_id'
        ),
        (
            select m.organization_id from public.organization_members m
            where m.user_id = uid
            order by m.joined_at, m.organization_id
            limit 1
        )
    )
$$;

create function app.colleague_ids(uid uuid) returns uuid[]
language sql stable security definer set search_path = ''
as $$
    select coalesce(array_agg(distinct other.user_id), '{}')
    from public.organization_members mine
    join public.organization_members other on other.organization_id = mine.organization_id
    where mine.user_id = uid
$$;

create function app.managed_project_ids(uid uuid) returns uuid[]
language sql stable security definer set search_path = ''
as $$
    select coalesce(array_agg(p.id), '{}') from public.projects p where p.project_manager_id = uid
$$;

-- ---------------------------------------------------------------------------------------------------
-- Current-user wrappers (what policies and requests use). SECURITY DEFINER so that requests need no
-- right to the functions of a user id above.
-- ---------------------------------------------------------------------------------------------------
create function app.my_org_ids() returns uuid[]
language sql stable security definer set search_path = ''
as $$ select app.org_ids(auth.uid()) $$;

create function app.my_writer_org_ids() returns uuid[]
language sql stable security definer set search_path = ''
as $$ select app.org_ids(auth.uid(), array['OWNER', 'ADMIN', 'MEMBER']::public."OrgRole"[]) $$;

create function app.my_admin_org_ids() returns uuid[]
language sql stable security definer set search_path = ''
as $$ select app.org_ids(auth.uid(), array['OWNER', 'ADMIN']::public."OrgRole"[]) $$;

create function app.my_owner_org_ids() returns uuid[]
language sql stable security definer set search_path = ''
as $$ select app.org_ids(auth.uid(), array['OWNER']::public."OrgRole"[]) $$;

create function app.my_colleague_ids() returns uuid[]
language sql stable security definer set search_path = ''
as $$ select app.colleague_ids(auth.uid()) $$;

create function app.my_managed_project_ids() returns uuid[]
language sql stable security definer set search_path = ''
as $$ select app.managed_project_ids(auth.uid()) $$;

create function app.current_user_org() returns uuid
language sql stable security definer set search_path = ''
as $$ select app.current_user_org(auth.uid(), auth.jwt()) $$;

create function app.is_admin() returns boolean
language sql stable security definer set search_path = ''
as $$ select app.is_platform_admin(auth.uid()) $$;

create function app.is_org_member(org uuid) returns boolean
language sql stable security definer set search_path = ''
as $$ select app.is_org_member(auth.uid(), org) $$;

create function app.org_role(org uuid) returns public."OrgRole"
language sql stable security definer set search_path = ''
as $$ select app.org_role(auth.uid(), org) $$;

create function app.is_org_admin(org uuid) returns boolean
language sql stable security definer set search_path = ''
as $$ select app.is_org_admin(auth.uid(), org) $$;

create function app.is_org_owner(org uuid) returns boolean
language sql stable security definer set search_path = ''
as $$ select app.is_org_owner(auth.uid(), org) $$;

revoke execute on all functions in schema app from public;
grant execute on function
    app.my_org_ids(), app.my_writer_org_ids(), app.my_admin_org_ids(), app.my_owner_org_ids(),
    app.my_colleague_ids(), app.my_managed_project_ids(), app.current_user_org(), app.is_admin(),
    app.is_org_member(uuid), app.org_role(uuid), app.is_org_admin(uuid), app.is_org_owner(uuid)
to anon, authenticated, service_role;
grant execute on function
    app.org_ids(uuid, public."OrgRole"[]), app.org_role(uuid, uuid), app.is_org_member(uuid, uuid),
    app.is_org_admin(uuid, uuid), app.is_org_owner(uuid, uuid), app.is_platform_admin(uuid),
    app.current_user_org(uuid, jsonb), app.colleague_ids(uuid), app.managed_project_ids(uuid)
to service_role;

-- ---------------------------------------------------------------------------------------------------
-- Onboarding: the only way to create an organization; the caller becomes its OWNER.
-- ---------------------------------------------------------------------------------------------------
create function public.create_organization(name text, slug text) returns public.organizations
language plpgsql volatile security definer set search_path = ''
as $$
declare
    caller uuid := auth.uid();
    created public.organizations;
begin
    if caller is null or auth.role() is distinct from 'authenticated' then
        raise exception 'sign in to create an organization' using errcode = '42501';
    end if;
    insert into public.organizations (name, slug) values (create_organization.name, create_organization.slug)
    returning * into created;
    insert into public.organization_members (user_id, organization_id, role) values (caller, created.id, 'OWNER');
    return created;
end
$$;
revoke execute on function public.create_organization(text, text) from public;
grant execute on function public.create_organization(text, text) to authenticated;

-- ---------------------------------------------------------------------------------------------------
-- Invariants
-- ---------------------------------------------------------------------------------------------------

-- No row moves to another organization: not by a user, not by the service.
create function app.forbid_organization_change() returns trigger
language plpgsql set search_path = ''
as $$
begin
    if new.organization_id is distinct from old.organization_id then
        raise exception '%.organization_id cannot change: a row never moves to another organization', tg_table_name
            using errcode = '42501';
    end if;
    return new;
end
$$;

-- The user named by a column (assignee, recipient, manager) must belong to the row's organization.
create function app.require_member_column() returns trigger
language plpgsql security definer set search_path = ''
as $$
declare
    member uuid := (to_jsonb(new) ->> tg_argv[0])::uuid;
begin
    if member is not null and not app.is_org_member(member, new.organization_id) then
        raise exception '%.% must be a member of the row''s organization', tg_table_name, tg_argv[0]
            using errcode = '23503';
    end if;
    return new;
end
$$;

-- A reference to another org-scoped table (argument 1: table, argument 2: column) stays in the row's
-- organization.
create function app.require_same_organization() returns trigger
language plpgsql security definer set search_path = ''
as $$
declare
    referenced uuid := (to_jsonb(new) ->> tg_argv[1])::uuid;
    its_org uuid;
begin
    if referenced is null then
        return new;
    end if;
    execute format('select organization_id from public.%I where id = $1', tg_argv[0]) into its_org using referenced;
    if its_org is distinct from new.organization_id then
        raise exception '%.% must refer to a row of the same organization', tg_table_name, tg_argv[1]
            using errcode = '23503';
    end if;
    return new;
end
$$;

-- A task's organization is its project's (the composite foreign key enforces it); callers may omit it.
create function app.fill_task_organization() returns trigger
language plpgsql security definer set search_path = ''
as $$
begin
    if new.organization_id is null then
        select p.organization_id into new.organization_id from public.projects p where p.id = new.project_id;
    end if;
    return new;
end
$$;

-- Memberships: only owners grant, change or remove OWNER (an owner may leave on their own); no
-- membership moves to another user; an organization always keeps an OWNER. The organization row is
-- locked so two concurrent demotions cannot both see "another owner remains".
create function app.guard_membership() returns trigger
language plpgsql security definer set search_path = ''
as $$
declare
    org uuid := coalesce(new.organization_id, old.organization_id);
    caller uuid := auth.uid();
    is_user_request boolean := auth.role() = 'authenticated';
    touches_owner boolean;
    self_leave boolean;
begin
    -- The organization itself is being deleted (this is its cascade): nothing left to protect.
    perform 1 from public.organizations o where o.id = org for update;
    if not found then
        return coalesce(new, old);
    end if;

    if tg_op = 'UPDATE' and new.user_id is distinct from old.user_id then
        raise exception 'organization_members.user_id cannot change; remove the membership and add another'
            using errcode = '42501';
    end if;

    touches_owner := (tg_op <> 'DELETE' and new.role = 'OWNER') or (tg_op <> 'INSERT' and old.role = 'OWNER');
    self_leave := tg_op = 'DELETE' and old.user_id = caller;
    if is_user_request and touches_owner and not self_leave
       and not app.is_org_owner(caller, org)
       and exists (select 1 from public.organization_members m where m.organization_id = org and m.role = 'OWNER')
    then
        raise exception 'only an OWNER of the organization can grant, change or remove the OWNER role'
            using errcode = '42501';
    end if;

    if tg_op <> 'INSERT' and old.role = 'OWNER' and (tg_op = 'DELETE' or new.role <> 'OWNER')
       and not exists (
           select 1 from public.organization_members m
           where m.organization_id = org and m.role = 'OWNER' and m.id <> old.id
       )
    then
        raise exception 'an organization must keep an OWNER: make another member OWNER first, or delete the organization'
            using errcode = '23514';
    end if;

    return coalesce(new, old);
end
$$;

create trigger guard_membership before insert or update or delete on public.organization_members
for each row execute function app.guard_membership();

create trigger fill_organization before insert on public.tasks
for each row execute function app.fill_task_organization();

do $invariants$
declare
    t record;
    c record;
begin
    for t in
        select cls.relname
        from pg_catalog.pg_class cls
        join pg_catalog.pg_namespace n on n.oid = cls.relnamespace
        join pg_catalog.pg_attribute a on a.attrelid = cls.oid and a.attname = 'organization_id' and not a.attisdropped
        where cls.relkind = 'r' and n.nspname = 'public'
    loop
        execute format(
            'create trigger forbid_organization_change before update of organization_id on public.%I '
            'for each row execute function app.forbid_organization_change()', t.relname);
    end loop;

    for c in
        select * from (values
            ('notifications', 'user_id'),
            ('tasks', 'assigned_to'),
            ('customers', 'assigned_to'),
            ('appointments', 'assigned_to'),
            ('projects', 'project_manager_id')
        ) as v(tab, col)
    loop
        execute format(
            'create trigger %I before insert or update of %I on public.%I '
            'for each row execute function app.require_member_column(%L)',
            'require_member_' || c.col, c.col, c.tab, c.col);
    end loop;

    for c in
        select * from (values ('projects', 'customers', 'customer_id'), ('appointments', 'customers', 'customer_id'))
            as v(tab, ref, col)
    loop
        execute format(
            'create trigger %I before insert or update of %I on public.%I '
            'for each row execute function app.require_same_organization(%L, %L)',
            'same_organization_' || c.col, c.col, c.tab, c.ref, c.col);
    end loop;
end
$invariants$;

-- ---------------------------------------------------------------------------------------------------
-- Row-level security: enabled and forced on every public table
-- ---------------------------------------------------------------------------------------------------
do $rls$
declare
    t record;
begin
    for t in select tablename from pg_catalog.pg_tables where schemaname = 'public' loop
        execute format('alter table public.%I enable row level security', t.tablename);
        execute format('alter table public.%I force row level security', t.tablename);
    end loop;
end
$rls$;

-- organizations
create policy organizations_select on public.organizations for select to authenticated
    using (id = any ((select app.my_org_ids())::uuid[]));
create policy organizations_update on public.organizations for update to authenticated
    using (id = any ((select app.my_admin_org_ids())::uuid[]))
    with check (id = any ((select app.my_admin_org_ids())::uuid[]));
create policy organizations_delete on public.organizations for delete to authenticated
    using (id = any ((select app.my_owner_org_ids())::uuid[]));

-- organization_members
create policy organization_members_select on public.organization_members for select to authenticated
    using (organization_id = any ((select app.my_org_ids())::uuid[]));
create policy organization_members_insert on public.organization_members for insert to authenticated
    with check (organization_id = any ((select app.my_admin_org_ids())::uuid[]));
create policy organization_members_update on public.organization_members for update to authenticated
    using (organization_id = any ((select app.my_admin_org_ids())::uuid[]))
    with check (organization_id = any ((select app.my_admin_org_ids())::uuid[]));
create policy organization_members_delete on public.organization_members for delete to authenticated
    using (organization_id = any ((select app.my_admin_org_ids())::uuid[]) or user_id = (select auth.uid()));

-- users (no insert policy: the sign-up trigger creates rows; updatable columns are limited by grants)
create policy users_select on public.users for select to authenticated
    using (id = (select auth.uid()) or id = any ((select app.my_colleague_ids())::uuid[]) or (select app.is_admin()));
create policy users_update on public.users for update to authenticated
    using (id = (select auth.uid()))
    with check (id = (select auth.uid()));
create policy users_delete on public.users for delete to authenticated
    using ((select app.is_admin()));

-- customers
create policy customers_select on public.customers for select to authenticated
    using (organization_id = any ((select app.my_org_ids())::uuid[]));
create policy customers_insert on public.customers for insert to authenticated
    with check (organization_id = any ((select app.my_writer_org_ids())::uuid[]));
create policy customers_update on public.customers for update to authenticated
    using (organization_id = any ((select app.my_writer_org_ids())::uuid[]))
    with check (organization_id = any ((select app.my_writer_org_ids())::uuid[]));
create policy customers_delete on public.customers for delete to authenticated
    using (organization_id = any ((select app.my_admin_org_ids())::uuid[]));

-- appointments
create policy appointments_select on public.appointments for select to authenticated
    using (organization_id = any ((select app.my_org_ids())::uuid[]));
create policy appointments_insert on public.appointments for insert to authenticated
    with check (organization_id = any ((select app.my_writer_org_ids())::uuid[]));
create policy appointments_update on public.appointments for update to authenticated
    using (
        organization_id = any ((select app.my_admin_org_ids())::uuid[])
        or (assigned_to = (select auth.uid()) and organization_id = any ((select app.my_writer_org_ids())::uuid[]))
    )
    with check (organization_id = any ((select app.my_writer_org_ids())::uuid[]));
create policy appointments_delete on public.appointments for delete to authenticated
    using (organization_id = any ((select app.my_admin_org_ids())::uuid[]));

-- projects
create policy projects_select on public.projects for select to authenticated
    using (organization_id = any ((select app.my_org_ids())::uuid[]));
create policy projects_insert on public.projects for insert to authenticated
    with check (
        organization_id = any ((select app.my_admin_org_ids())::uuid[])
        or (organization_id = any ((select app.my_writer_org_ids())::uuid[]) and project_manager_id = (select auth.uid()))
    );
create policy projects_update on public.projects for update to authenticated
    using (
        organization_id = any ((select app.my_admin_org_ids())::uuid[])
        or (organization_id = any ((select app.my_writer_org_ids())::uuid[]) and project_manager_id = (select auth.uid()))
    )
    with check (organization_id = any ((select app.my_writer_org_ids())::uuid[]));
create policy projects_delete on public.projects for delete to authenticated
    using (organization_id = any ((select app.my_admin_org_ids())::uuid[]));

-- tasks
create policy tasks_select on public.tasks for select to authenticated
    using (organization_id = any ((select app.my_org_ids())::uuid[]));
create policy tasks_insert on public.tasks for insert to authenticated
    with check (organization_id = any ((select app.my_writer_org_ids())::uuid[]) and created_by = (select auth.uid()));
create policy tasks_update on public.tasks for update to authenticated
    using (
        organization_id = any ((select app.my_admin_org_ids())::uuid[])
        or (
            organization_id = any ((select app.my_writer_org_ids())::uuid[])
            and (
                assigned_to = (select auth.uid())
                or created_by = (select auth.uid())
                or project_id = any ((select app.my_managed_project_ids())::uuid[])
            )
        )
    )
    with check (organization_id = any ((select app.my_writer_org_ids())::uuid[]));
create policy tasks_delete on public.tasks for delete to authenticated
    using (
        organization_id = any ((select app.my_admin_org_ids())::uuid[])
        or (
            organization_id = any ((select app.my_writer_org_ids())::uuid[])
            and (created_by = (select auth.uid()) or project_id = any ((select app.my_managed_project_ids())::uuid[]))
        )
    );

-- notifications (recipients must be members: trigger require_member_user_id)
create policy notifications_select on public.notifications for select to authenticated
    using (user_id = (select auth.uid()));
create policy notifications_insert on public.notifications for insert to authenticated
    with check (organization_id = any ((select app.my_writer_org_ids())::uuid[]));
create policy notifications_update on public.notifications for update to authenticated
    using (user_id = (select auth.uid()))
    with check (user_id = (select auth.uid()));
create policy notifications_delete on public.notifications for delete to authenticated
    using (user_id = (select auth.uid()));

-- attachments
create policy attachments_select on public.attachments for select to authenticated
    using (organization_id = any ((select app.my_org_ids())::uuid[]));
create policy attachments_insert on public.attachments for insert to authenticated
    with check (organization_id = any ((select app.my_writer_org_ids())::uuid[]) and uploaded_by_id = (select auth.uid()));
create policy attachments_update on public.attachments for update to authenticated
    using (uploaded_by_id = (select auth.uid()) and organization_id = any ((select app.my_writer_org_ids())::uuid[]))
    with check (uploaded_by_id = (select auth.uid()) and organization_id = any ((select app.my_writer_org_ids())::uuid[]));
create policy attachments_delete on public.attachments for delete to authenticated
    using (
        (uploaded_by_id = (select auth.uid()) and organization_id = any ((select app.my_org_ids())::uuid[]))
        or organization_id = any ((select app.my_admin_org_ids())::uuid[])
    );

-- ai_conversations
create policy ai_conversations_select on public.ai_conversations for select to authenticated
    using (
        (user_id = (select auth.uid()) and organization_id = any ((select app.my_org_ids())::uuid[]))
        or organization_id = any ((select app.my_admin_org_ids())::uuid[])
    );
create policy ai_conversations_insert on public.ai_conversations for insert to authenticated
    with check (user_id = (select auth.uid()) and organization_id = any ((select app.my_org_ids())::uuid[]));
create policy ai_conversations_update on public.ai_conversations for update to authenticated
    using (user_id = (select auth.uid()) and organization_id = any ((select app.my_org_ids())::uuid[]))
    with check (user_id = (select auth.uid()) and organization_id = any ((select app.my_org_ids())::uuid[]));
create policy ai_conversations_delete on public.ai_conversations for delete to authenticated
    using (user_id = (select auth.uid()) and organization_id = any ((select app.my_org_ids())::uuid[]));

-- content (published pages are public)
create policy content_select_published on public.content for select to anon, authenticated
    using (status = 'PUBLISHED');
create policy content_select on public.content for select to authenticated
    using (organization_id = any ((select app.my_org_ids())::uuid[]));
create policy content_insert on public.content for insert to authenticated
    with check (organization_id = any ((select app.my_writer_org_ids())::uuid[]) and author_id = (select auth.uid()));
create policy content_update on public.content for update to authenticated
    using (
        organization_id = any ((select app.my_admin_org_ids())::uuid[])
        or (author_id = (select auth.uid()) and organization_id = any ((select app.my_writer_org_ids())::uuid[]))
    )
    with check (organization_id = any ((select app.my_writer_org_ids())::uuid[]));
create policy content_delete on public.content for delete to authenticated
    using (organization_id = any ((select app.my_admin_org_ids())::uuid[]));

-- activity_logs (append-only: no update or delete grants at all)
create policy activity_logs_select on public.activity_logs for select to authenticated
    using (organization_id = any ((select app.my_admin_org_ids())::uuid[]));
create policy activity_logs_insert on public.activity_logs for insert to authenticated
    with check (organization_id = any ((select app.my_org_ids())::uuid[]) and user_id = (select auth.uid()));

-- conversations
create policy conversations_select on public.conversations for select to authenticated
    using (organization_id = any ((select app.my_org_ids())::uuid[]));
create policy conversations_insert on public.conversations for insert to authenticated
    with check (organization_id = any ((select app.my_org_ids())::uuid[]));
create policy conversations_update on public.conversations for update to authenticated
    using (organization_id = any ((select app.my_admin_org_ids())::uuid[]))
    with check (organization_id = any ((select app.my_admin_org_ids())::uuid[]));
create policy conversations_delete on public.conversations for delete to authenticated
    using (organization_id = any ((select app.my_admin_org_ids())::uuid[]));

-- subscriptions, usage_tracking (written by the service only)
create policy subscriptions_select on public.subscriptions for select to authenticated
    using (organization_id = any ((select app.my_admin_org_ids())::uuid[]));
create policy usage_tracking_select on public.usage_tracking for select to authenticated
    using (
        organization_id = any ((select app.my_admin_org_ids())::uuid[])
        or (user_id = (select auth.uid()) and organization_id = any ((select app.my_org_ids())::uuid[]))
    );

-- global catalogues
create policy ai_tools_select on public.ai_tools for select to authenticated using (true);
create policy ai_tools_insert on public.ai_tools for insert to authenticated with check ((select app.is_admin()));
create policy ai_tools_update on public.ai_tools for update to authenticated
    using ((select app.is_admin())) with check ((select app.is_admin()));
create policy ai_tools_delete on public.ai_tools for delete to authenticated using ((select app.is_admin()));

create policy example_conversations_select on public.example_conversations for select to authenticated using (true);
create policy example_conversations_insert on public.example_conversations for insert to authenticated
    with check ((select app.is_admin()));
create policy example_conversations_update on public.example_conversations for update to authenticated
    using ((select app.is_admin())) with check ((select app.is_admin()));
create policy example_conversations_delete on public.example_conversations for delete to authenticated
    using ((select app.is_admin()));

-- product analytics: platform admins read, the service writes
do $analytics$
declare
    t text;
begin
    foreach t in array array['page_views', 'user_sessions', 'analytics_events', 'web_vitals_metrics',
                             'analytics_goals', 'goal_conversions']
    loop
        execute format(
            'create policy %I on public.%I for select to authenticated using ((select app.is_admin()))',
            t || '_select', t);
    end loop;
end
$analytics$;

-- ---------------------------------------------------------------------------------------------------
-- Grants: what each role may attempt at all (policies then decide which rows)
-- ---------------------------------------------------------------------------------------------------
revoke all on all tables in schema public from public, anon, authenticated, service_role;

grant select, insert, update, delete on all tables in schema public to service_role;
revoke update, delete on public.activity_logs from service_role;

grant select on public.content to anon;

grant select, insert, update, delete on
    public.organizations, public.organization_members, public.customers, public.projects, public.tasks,
    public.attachments, public.appointments, public.ai_conversations, public.content, public.conversations,
    public.ai_tools, public.example_conversations
to authenticated;
grant select, delete, update (name, avatar_url) on public.users to authenticated;
grant select, insert, delete, update (read) on public.notifications to authenticated;
grant select, insert on public.activity_logs to authenticated;
grant select on
    public.subscriptions, public.usage_tracking, public.page_views, public.user_sessions,
    public.analytics_events, public.web_vitals_metrics, public.analytics_goals, public.goal_conversions
to authenticated;
