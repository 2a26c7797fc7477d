-- The rest of the helpers policies and requests call become PL/pgSQL, as 0015 did for the membership
-- helpers: same bodies, same privileges, but their plans are kept per session instead of being made
-- again in every query that calls them (a SECURITY DEFINER SQL function is never inlined).

create or replace function app.org_role(uid uuid, org uuid) returns public."OrgRole"
language plpgsql stable security definer set search_path = ''
as $$
begin
    return (select m.role from public.organization_members m where m.user_id = uid and m.organization_id = org);
end
$$;

create or replace function app.is_org_admin(uid uuid, org uuid) returns boolean
language plpgsql stable security definer set search_path = ''
as $$ begin return coalesce(app.org_role(uid, org) in ('OWNER', 'ADMIN'), false); end $$;

create or replace function app.is_org_owner(uid uuid, org uuid) returns boolean
language plpgsql stable security definer set search_path = ''
as $$ begin return coalesce(app.org_role(uid, org) = 'OWNER', false); end $$;

create or replace function app.is_platform_admin(uid uuid) returns boolean
language plpgsql stable security definer set search_path = ''
as $$
begin
    return exists (select 1 from public.users u where u.id = uid and u.is_active and u.role in ('ADMIN', 'MODERATOR'));
end
$$;

create or replace function app.current_user_org(uid uuid, claims jsonb) returns uuid
language plpgsql stable security definer set search_path = ''
as $$
begin
    return coalesce(
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
        ));
end
$$;

create or replace function app.colleague_ids(uid uuid) returns uuid[]
language plpgsql stable security definer set search_path = ''
as $$
begin
    return (
        select coalesce(array_agg(distinct other.user_id), '{}')
        from public.organization_members mine
        join public.organization_members other on other.organization_id = mine.organization_id
        where mine.user_id = uid);
end
$$;

create or replace function app.managed_project_ids(uid uuid) returns uuid[]
language plpgsql stable security definer set search_path = ''
as $$
begin
    return (select coalesce(array_agg(p.id), '{}') from public.projects p where p.project_manager_id = uid);
end
$$;

create or replace function app.my_colleague_ids() returns uuid[]
language plpgsql stable security definer set search_path = ''
as $$ begin return app.colleague_ids(auth.uid()); end $$;

create or replace function app.my_managed_project_ids() returns uuid[]
language plpgsql stable security definer set search_path = ''
as $$ begin return app.managed_project_ids(auth.uid()); end $$;

create or replace function app.current_user_org() returns uuid
language plpgsql stable security definer set search_path = ''
as $$ begin return app.current_user_org(auth.uid(), auth.jwt()); end $$;

create or replace function app.is_admin() returns boolean
language plpgsql stable security definer set search_path = ''
as $$ begin return app.is_platform_admin(auth.uid()); end $$;

create or replace function app.org_role(org uuid) returns public."OrgRole"
language plpgsql stable security definer set search_path = ''
as $$ begin return app.org_role(auth.uid(), org); end $$;

create or replace function app.is_org_admin(org uuid) returns boolean
language plpgsql stable security definer set search_path = ''
as $$ begin return app.is_org_admin(auth.uid(), org); end $$;

create or replace function app.is_org_owner(org uuid) returns boolean
language plpgsql stable security definer set search_path = ''
as $$ begin return app.is_org_owner(auth.uid(), org); end $$;
