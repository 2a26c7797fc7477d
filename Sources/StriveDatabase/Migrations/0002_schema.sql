-- The Strive schema (SPEC §3): auth's own tables, the 23 public tables, their enums, constraints,
-- foreign keys, indexes and bookkeeping triggers. Security (helpers, policies, grants, invariants) comes
-- in the next migrations; until they land nothing here is granted to the request roles.

-- Helpers and policies are SECURITY DEFINER functions owned by whoever runs the migrations. Tables force
-- row-level security even on their owner, so that owner must bypass it or every helper would see nothing.
do $owner$
begin
    if not exists (
        select 1 from pg_catalog.pg_roles where rolname = current_user and (rolsuper or rolbypassrls)
    ) then
        raise exception 'the role running Strive''s migrations (%) must be a superuser or have BYPASSRLS', current_user
            using hint = 'ALTER ROLE ' || quote_ident(current_user) || ' BYPASSRLS; (as a superuser), or migrate as one';
    end if;
end
$owner$;

-- Extensions live outside public so the data API never exposes their functions; requests get no access.
create schema if not exists extensions;
revoke all on schema extensions from public;
create extension if not exists pgcrypto with schema extensions;

-- ---------------------------------------------------------------------------------------------------
-- auth: accounts, sessions and refresh tokens. Only the server (service_role) reads or writes them.
-- ---------------------------------------------------------------------------------------------------
create table auth.users (
    id uuid primary key default gen_random_uuid(),
    aud text not null default 'authenticated',
    role text not null default 'authenticated',
    email text,
    encrypted_password text,
    email_confirmed_at timestamptz,
    last_sign_in_at timestamptz,
    raw_app_meta_data jsonb not null default '{}',
    raw_user_meta_data jsonb not null default '{}',
    is_anonymous boolean not null default false,
    banned_until timestamptz,
    created_at timestamptz not null default now(),
    updated_at timestamptz not null default now(),
    constraint users_email_normalised check (email is null or email = lower(btrim(email)))
);
create unique index users_email_key on auth.users (email) where email is not null;

create table auth.sessions (
    id uuid primary key default gen_random_uuid(),
    user_id uuid not null references auth.users (id) on delete cascade,
    aal text not null default 'aal1',
    user_agent text,
    ip inet,
    not_after timestamptz,
    refreshed_at timestamptz,
    created_at timestamptz not null default now(),
    updated_at timestamptz not null default now()
);
create index sessions_user_id_idx on auth.sessions (user_id);

create table auth.refresh_tokens (
    id bigint generated always as identity primary key,
    -- SHA-256 of the token, hex: a leaked table does not hand out sessions.
    token_hash text not null unique,
    user_id uuid not null references auth.users (id) on delete cascade,
    session_id uuid not null references auth.sessions (id) on delete cascade,
    parent_hash text,
    revoked boolean not null default false,
    created_at timestamptz not null default now(),
    updated_at timestamptz not null default now()
);
create index refresh_tokens_user_id_idx on auth.refresh_tokens (user_id);
create index refresh_tokens_session_id_idx on auth.refresh_tokens (session_id);
create index refresh_tokens_parent_hash_idx on auth.refresh_tokens (parent_hash);

alter table auth.users enable row level security;
alter table auth.users force row level security;
alter table auth.sessions enable row level security;
alter table auth.sessions force row level security;
alter table auth.refresh_tokens enable row level security;
alter table auth.refresh_tokens force row level security;
revoke all on auth.users, auth.sessions, auth.refresh_tokens from public, anon, authenticated;
grant select, insert, update, delete on auth.users, auth.sessions, auth.refresh_tokens to service_role;

-- ---------------------------------------------------------------------------------------------------
-- Enums: the original's names and values.
-- ---------------------------------------------------------------------------------------------------
create type public."UserRole" as enum ('ADMIN', 'MODERATOR', 'EMPLOYEE', 'CLIENT');
create type public."OrgRole" as enum ('OWNER', 'ADMIN', 'MEMBER', 'VIEWER');
create type public."SubscriptionTier" as enum ('FREE', 'BASIC', 'PRO', 'ENTERPRISE');
create type public."SubscriptionStatus" as enum ('ACTIVE', 'INACTIVE', 'TRIAL', 'PAST_DUE', 'CANCELLED');
create type public."CustomerStatus" as enum ('LEAD', 'PROSPECT', 'ACTIVE', 'CHURNED');
create type public."CustomerSource" as enum ('WEBSITE', 'REFERRAL', 'SOCIAL', 'EMAIL', 'OTHER');
create type public."ProjectStatus" as enum ('PLANNING', 'ACTIVE', 'ON_HOLD', 'COMPLETED', 'CANCELLED');
create type public."TaskStatus" as enum ('TODO', 'IN_PROGRESS', 'REVIEW', 'DONE', 'CANCELLED');
create type public."Priority" as enum ('LOW', 'MEDIUM', 'HIGH', 'CRITICAL');
create type public."NotificationType" as enum ('INFO', 'SUCCESS', 'WARNING', 'ERROR');
create type public."AppointmentStatus" as enum ('SCHEDULED', 'CONFIRMED', 'COMPLETED', 'CANCELLED', 'NO_SHOW');
create type public."ContentType" as enum ('PAGE', 'BLOG_POST', 'DOCUMENTATION', 'TEMPLATE');
create type public."ContentStatus" as enum ('DRAFT', 'PUBLISHED', 'ARCHIVED');
create type public."AIContextType" as enum ('GENERAL', 'PROJECT', 'CUSTOMER', 'TASK');
create type public."AIModel" as enum ('OPENAI_GPT4', 'CLAUDE_SONNET', 'GEMINI', 'GROK', 'KIMIK2');
create type public."ToolType" as enum ('CHATBOT', 'ANALYSIS', 'AUTOMATION', 'INTEGRATION');
create type public."ResourceType" as enum ('AI_TOKENS', 'API_CALLS', 'STORAGE', 'SEATS');

-- ---------------------------------------------------------------------------------------------------
-- Tenancy
-- ---------------------------------------------------------------------------------------------------
create table public.users (
    id uuid primary key references auth.users (id) on delete cascade,
    email text not null unique,
    name text check (char_length(name) <= 200),
    avatar_url text check (char_length(avatar_url) <= 2048),
    role public."UserRole" not null default 'EMPLOYEE',
    subscription_tier public."SubscriptionTier" not null default 'FREE',
    is_active boolean not null default true,
    created_at timestamptz not null default now(),
    updated_at timestamptz not null default now()
);
create index users_role_idx on public.users (role) where role in ('ADMIN', 'MODERATOR');

create table public.organizations (
    id uuid primary key default gen_random_uuid(),
    name text not null check (char_length(btrim(name)) between 1 and 200),
    slug text not null unique check (slug ~ '^[a-z0-9][a-z0-9-]{0,62}$'),
    description text,
    settings jsonb not null default '{}',
    subscription_status public."SubscriptionStatus" not null default 'TRIAL',
    billing_email text,
    created_at timestamptz not null default now(),
    updated_at timestamptz not null default now()
);

create table public.organization_members (
    id uuid primary key default gen_random_uuid(),
    user_id uuid not null references public.users (id) on delete cascade,
    organization_id uuid not null references public.organizations (id) on delete cascade,
    role public."OrgRole" not null default 'MEMBER',
    permissions jsonb not null default '{}',
    joined_at timestamptz not null default now(),
    created_at timestamptz not null default now(),
    updated_at timestamptz not null default now(),
    unique (user_id, organization_id)
);
create index organization_members_organization_id_idx on public.organization_members (organization_id, role);

-- ---------------------------------------------------------------------------------------------------
-- CRM and work
-- ---------------------------------------------------------------------------------------------------
create table public.customers (
    id uuid primary key default gen_random_uuid(),
    organization_id uuid not null references public.organizations (id) on delete cascade,
    name text not null check (char_length(btrim(name)) between 1 and 200),
    email text,
    phone text,
    company text,
    status public."CustomerStatus" not null default 'LEAD',
    source public."CustomerSource" not null default 'WEBSITE',
    tags text[] not null default '{}',
    custom_fields jsonb not null default '{}',
    assigned_to uuid references public.users (id) on delete set null,
    created_at timestamptz not null default now(),
    updated_at timestamptz not null default now(),
    unique (id, organization_id)
);
create index customers_organization_id_idx on public.customers (organization_id, created_at desc);
create index customers_assigned_to_idx on public.customers (assigned_to);

create table public.projects (
    id uuid primary key default gen_random_uuid(),
    organization_id uuid not null references public.organizations (id) on delete cascade,
    customer_id uuid references public.customers (id) on delete set null,
    name text not null check (char_length(btrim(name)) between 1 and 200),
    description text,
    status public."ProjectStatus" not null default 'PLANNING',
    priority public."Priority" not null default 'MEDIUM',
    start_date timestamptz,
    due_date timestamptz,
    completion_date timestamptz,
    budget numeric(10, 2) check (budget >= 0),
    progress_percentage integer not null default 0 check (progress_percentage between 0 and 100),
    project_manager_id uuid default auth.uid() references public.users (id) on delete set null,
    created_at timestamptz not null default now(),
    updated_at timestamptz not null default now(),
    -- Tasks reference (id, organization_id) so a task's organization is always its project's.
    unique (id, organization_id),
    check (due_date is null or start_date is null or start_date <= due_date)
);
create index projects_organization_id_idx on public.projects (organization_id, created_at desc);
create index projects_customer_id_idx on public.projects (customer_id);
create index projects_project_manager_id_idx on public.projects (project_manager_id);

create table public.tasks (
    id uuid primary key default gen_random_uuid(),
    organization_id uuid not null references public.organizations (id) on delete cascade,
    project_id uuid not null,
    parent_task_id uuid,
    title text not null check (char_length(btrim(title)) between 1 and 500),
    description text,
    status public."TaskStatus" not null default 'TODO',
    priority public."Priority" not null default 'MEDIUM',
    assigned_to uuid references public.users (id) on delete set null,
    created_by uuid default auth.uid() references public.users (id) on delete set null,
    due_date timestamptz,
    estimated_hours numeric(5, 2) check (estimated_hours >= 0),
    actual_hours numeric(5, 2) check (actual_hours >= 0),
    tags text[] not null default '{}',
    position integer not null default 0,
    created_at timestamptz not null default now(),
    updated_at timestamptz not null default now(),
    unique (id, organization_id),
    foreign key (project_id, organization_id) references public.projects (id, organization_id) on delete cascade,
    -- A subtask lives in its parent's organization.
    foreign key (parent_task_id, organization_id) references public.tasks (id, organization_id) on delete cascade,
    check (parent_task_id is distinct from id)
);
create index tasks_organization_id_idx on public.tasks (organization_id);
create index tasks_project_id_idx on public.tasks (project_id, created_at desc);
create index tasks_parent_task_id_idx on public.tasks (parent_task_id);
create index tasks_assigned_to_idx on public.tasks (assigned_to);
create index tasks_created_by_idx on public.tasks (created_by);

create table public.notifications (
    id uuid primary key default gen_random_uuid(),
    user_id uuid not null references public.users (id) on delete cascade,
    organization_id uuid not null references public.organizations (id) on delete cascade,
    type public."NotificationType" not null default 'INFO',
    title text not null check (char_length(title) between 1 and 100),
    message text not null check (char_length(message) between 1 and 500),
    action_url text check (char_length(action_url) <= 2048),
    entity_type text check (char_length(entity_type) <= 50),
    entity_id uuid,
    read boolean not null default false,
    created_at timestamptz not null default now(),
    updated_at timestamptz not null default now()
);
create index notifications_user_id_idx on public.notifications (user_id, created_at desc);
create index notifications_unread_idx on public.notifications (user_id) where not read;
create index notifications_organization_id_idx on public.notifications (organization_id);

create table public.attachments (
    id uuid primary key default gen_random_uuid(),
    organization_id uuid not null references public.organizations (id) on delete cascade,
    entity_type text not null check (char_length(entity_type) between 1 and 50),
    entity_id uuid not null,
    file_name text not null check (char_length(file_name) between 1 and 255),
    file_size bigint not null check (file_size >= 0),
    mime_type text not null,
    file_path text not null check (char_length(file_path) between 1 and 1024),
    uploaded_by_id uuid default auth.uid() references public.users (id) on delete set null,
    created_at timestamptz not null default now(),
    updated_at timestamptz not null default now()
);
create index attachments_organization_id_idx on public.attachments (organization_id);
create index attachments_entity_idx on public.attachments (entity_type, entity_id);
create index attachments_uploaded_by_id_idx on public.attachments (uploaded_by_id);

create table public.appointments (
    id uuid primary key default gen_random_uuid(),
    organization_id uuid not null references public.organizations (id) on delete cascade,
    customer_id uuid references public.customers (id) on delete set null,
    assigned_to uuid default auth.uid() references public.users (id) on delete set null,
    title text not null check (char_length(btrim(title)) between 1 and 200),
    description text,
    start_time timestamptz not null,
    end_time timestamptz not null,
    status public."AppointmentStatus" not null default 'SCHEDULED',
    location text,
    meeting_url text,
    reminders_sent jsonb not null default '[]',
    created_at timestamptz not null default now(),
    updated_at timestamptz not null default now(),
    check (start_time < end_time)
);
create index appointments_organization_id_idx on public.appointments (organization_id, start_time);
create index appointments_customer_id_idx on public.appointments (customer_id);
create index appointments_assigned_to_idx on public.appointments (assigned_to);

-- ---------------------------------------------------------------------------------------------------
-- AI, content, billing, audit
-- ---------------------------------------------------------------------------------------------------
create table public.ai_conversations (
    id uuid primary key default gen_random_uuid(),
    user_id uuid not null default auth.uid() references public.users (id) on delete cascade,
    organization_id uuid not null references public.organizations (id) on delete cascade,
    title text check (char_length(title) <= 200),
    context_type public."AIContextType" not null default 'GENERAL',
    context_id uuid,
    ai_model public."AIModel" not null default 'OPENAI_GPT4',
    conversation_data jsonb not null default '[]',
    usage_tokens integer not null default 0 check (usage_tokens >= 0),
    is_archived boolean not null default false,
    created_at timestamptz not null default now(),
    updated_at timestamptz not null default now()
);
create index ai_conversations_user_id_idx on public.ai_conversations (user_id);
create index ai_conversations_organization_id_idx on public.ai_conversations (organization_id);

create table public.ai_tools (
    id uuid primary key default gen_random_uuid(),
    name text not null unique check (char_length(btrim(name)) between 1 and 100),
    description text,
    tool_type public."ToolType" not null,
    required_tier public."SubscriptionTier" not null default 'FREE',
    configuration jsonb not null default '{}',
    is_active boolean not null default true,
    created_at timestamptz not null default now(),
    updated_at timestamptz not null default now()
);

create table public.subscriptions (
    id uuid primary key default gen_random_uuid(),
    organization_id uuid not null unique references public.organizations (id) on delete cascade,
    stripe_subscription_id text unique,
    stripe_customer_id text,
    status public."SubscriptionStatus" not null default 'TRIAL',
    tier public."SubscriptionTier" not null default 'FREE',
    current_period_start timestamptz,
    current_period_end timestamptz,
    cancel_at_period_end boolean not null default false,
    metadata jsonb not null default '{}',
    created_at timestamptz not null default now(),
    updated_at timestamptz not null default now()
);

create table public.usage_tracking (
    id uuid primary key default gen_random_uuid(),
    organization_id uuid not null references public.organizations (id) on delete cascade,
    user_id uuid references public.users (id) on delete set null,
    resource_type public."ResourceType" not null,
    resource_name text not null,
    usage_amount numeric not null default 0 check (usage_amount >= 0),
    billing_period text not null,
    metadata jsonb not null default '{}',
    created_at timestamptz not null default now(),
    updated_at timestamptz not null default now()
);
create index usage_tracking_organization_id_idx on public.usage_tracking (organization_id, billing_period);
create index usage_tracking_user_id_idx on public.usage_tracking (user_id);

create table public.content (
    id uuid primary key default gen_random_uuid(),
    organization_id uuid not null references public.organizations (id) on delete cascade,
    title text not null check (char_length(btrim(title)) between 1 and 300),
    slug text not null check (slug ~ '^[a-z0-9][a-z0-9-]{0,199}$'),
    content_type public."ContentType" not null default 'PAGE',
    content text not null default '',
    excerpt text,
    status public."ContentStatus" not null default 'DRAFT',
    author_id uuid default auth.uid() references public.users (id) on delete set null,
    published_at timestamptz,
    seo_meta jsonb not null default '{}',
    created_at timestamptz not null default now(),
    updated_at timestamptz not null default now(),
    unique (organization_id, slug)
);
create index content_status_idx on public.content (status) where status = 'PUBLISHED';
create index content_author_id_idx on public.content (author_id);

create table public.activity_logs (
    id uuid primary key default gen_random_uuid(),
    organization_id uuid not null references public.organizations (id) on delete cascade,
    user_id uuid default auth.uid() references public.users (id) on delete set null,
    action text not null check (char_length(action) between 1 and 100),
    resource_type text not null check (char_length(resource_type) between 1 and 100),
    resource_id uuid,
    old_data jsonb,
    new_data jsonb,
    ip_address inet,
    user_agent text,
    created_at timestamptz not null default now(),
    updated_at timestamptz not null default now()
);
create index activity_logs_organization_id_idx on public.activity_logs (organization_id, created_at desc);
create index activity_logs_user_id_idx on public.activity_logs (user_id);

create table public.conversations (
    id uuid primary key default gen_random_uuid(),
    organization_id uuid not null references public.organizations (id) on delete cascade,
    industry text not null default 'strive',
    session_id text not null,
    user_message text not null,
    assistant_response text not null,
    problem_detected text,
    solution_presented text,
    conversation_stage text,
    outcome text,
    conversion_score real check (conversion_score between 0 and 1),
    booking_completed boolean not null default false,
    response_time_ms integer check (response_time_ms >= 0),
    user_satisfaction integer check (user_satisfaction between 1 and 5),
    embedding real[],
    created_at timestamptz not null default now(),
    updated_at timestamptz not null default now()
);
create index conversations_organization_id_idx on public.conversations (organization_id, created_at desc);
create index conversations_session_id_idx on public.conversations (session_id);

create table public.example_conversations (
    id uuid primary key default gen_random_uuid(),
    industry text not null default 'strive',
    user_input text not null,
    assistant_response text not null,
    problem_type text,
    solution_type text,
    outcome text,
    conversion_score real check (conversion_score between 0 and 1),
    embedding real[],
    created_at timestamptz not null default now(),
    updated_at timestamptz not null default now()
);
create index example_conversations_industry_idx on public.example_conversations (industry);

-- ---------------------------------------------------------------------------------------------------
-- Product analytics (written by the service, read by platform admins)
-- ---------------------------------------------------------------------------------------------------
create table public.page_views (
    id uuid primary key default gen_random_uuid(),
    session_id text not null,
    user_id uuid references public.users (id) on delete set null,
    url text not null,
    path text not null,
    title text,
    referrer text,
    user_agent text,
    ip_address inet,
    device_type text,
    browser text,
    os text,
    country text,
    city text,
    duration_ms integer check (duration_ms >= 0),
    viewed_at timestamptz not null default now(),
    created_at timestamptz not null default now(),
    updated_at timestamptz not null default now()
);
create index page_views_session_id_idx on public.page_views (session_id);
create index page_views_user_id_idx on public.page_views (user_id);
create index page_views_viewed_at_idx on public.page_views (viewed_at);

create table public.user_sessions (
    id uuid primary key default gen_random_uuid(),
    session_id text not null unique,
    user_id uuid references public.users (id) on delete set null,
    started_at timestamptz not null default now(),
    ended_at timestamptz,
    duration_ms integer check (duration_ms >= 0),
    page_views integer not null default 0 check (page_views >= 0),
    events integer not null default 0 check (events >= 0),
    is_bounce boolean not null default false,
    entry_page text,
    exit_page text,
    referrer text,
    utm_source text,
    utm_medium text,
    utm_campaign text,
    device_type text,
    browser text,
    os text,
    country text,
    created_at timestamptz not null default now(),
    updated_at timestamptz not null default now(),
    check (ended_at is null or started_at <= ended_at)
);
create index user_sessions_user_id_idx on public.user_sessions (user_id);

create table public.analytics_events (
    id uuid primary key default gen_random_uuid(),
    session_id text not null,
    user_id uuid references public.users (id) on delete set null,
    event_name text not null check (char_length(event_name) between 1 and 100),
    event_category text,
    properties jsonb not null default '{}',
    url text,
    path text,
    occurred_at timestamptz not null default now(),
    created_at timestamptz not null default now(),
    updated_at timestamptz not null default now()
);
create index analytics_events_session_id_idx on public.analytics_events (session_id);
create index analytics_events_user_id_idx on public.analytics_events (user_id);
create index analytics_events_name_idx on public.analytics_events (event_name, occurred_at);

create table public.web_vitals_metrics (
    id uuid primary key default gen_random_uuid(),
    session_id text,
    user_id uuid references public.users (id) on delete set null,
    url text not null,
    path text not null,
    metric_name text not null check (metric_name in ('CLS', 'FCP', 'FID', 'INP', 'LCP', 'TTFB')),
    metric_value double precision not null,
    rating text check (rating in ('good', 'needs-improvement', 'poor')),
    metric_id text,
    measured_at timestamptz not null default now(),
    created_at timestamptz not null default now(),
    updated_at timestamptz not null default now()
);
create index web_vitals_metrics_user_id_idx on public.web_vitals_metrics (user_id);
create index web_vitals_metrics_name_idx on public.web_vitals_metrics (metric_name, measured_at);

create table public.analytics_goals (
    id uuid primary key default gen_random_uuid(),
    name text not null unique check (char_length(btrim(name)) between 1 and 100),
    description text,
    goal_type text not null check (goal_type in ('PAGE_VIEW', 'EVENT', 'DURATION', 'CONVERSION')),
    target_value double precision,
    conditions jsonb not null default '{}',
    is_active boolean not null default true,
    created_at timestamptz not null default now(),
    updated_at timestamptz not null default now()
);

create table public.goal_conversions (
    id uuid primary key default gen_random_uuid(),
    goal_id uuid not null references public.analytics_goals (id) on delete cascade,
    session_id text not null,
    user_id uuid references public.users (id) on delete set null,
    value double precision,
    metadata jsonb not null default '{}',
    converted_at timestamptz not null default now(),
    created_at timestamptz not null default now(),
    updated_at timestamptz not null default now()
);
create index goal_conversions_goal_id_idx on public.goal_conversions (goal_id, converted_at);
create index goal_conversions_user_id_idx on public.goal_conversions (user_id);

-- ---------------------------------------------------------------------------------------------------
-- Bookkeeping triggers
-- ---------------------------------------------------------------------------------------------------
create schema if not exists app;
revoke all on schema app from public;

create function app.touch_updated_at() returns trigger
language plpgsql
set search_path = ''
as $$
begin
    new.updated_at := now();
    return new;
end
$$;

do $touch$
declare
    t record;
begin
    for t in
        select n.nspname, c.relname
        from pg_catalog.pg_class c
        join pg_catalog.pg_namespace n on n.oid = c.relnamespace
        join pg_catalog.pg_attribute a on a.attrelid = c.oid and a.attname = 'updated_at' and not a.attisdropped
        where c.relkind = 'r' and n.nspname in ('public', 'auth')
    loop
        execute format(
            'create trigger touch_updated_at before update on %I.%I for each row execute function app.touch_updated_at()',
            t.nspname, t.relname
        );
    end loop;
end
$touch$;

-- Sign-up: every auth account has its public profile row, created here and nowhere else.
create function app.create_profile_for_new_user() returns trigger
language plpgsql
security definer
set search_path = ''
as $$
begin
    insert into public.users (id, email, name, avatar_url)
    values (
        new.id,
        coalesce(new.email, new.id::text || '@users.invalid'),
        coalesce(new.raw_user_meta_data ->> 'name', new.raw_user_meta_data ->> 'full_name'),
        new.raw_user_meta_data ->> 'avatar_url'
    );
    return new;
end
$$;

create trigger create_profile after insert on auth.users
for each row execute function app.create_profile_for_new_user();

create function app.sync_profile_email() returns trigger
language plpgsql
security definer
set search_path = ''
as $$
begin
    update public.users set email = new.email where id = new.id and new.email is not null;
    return new;
end
$$;

create trigger sync_profile_email after update of email on auth.users
for each row when (new.email is distinct from old.email) execute function app.sync_profile_email();
