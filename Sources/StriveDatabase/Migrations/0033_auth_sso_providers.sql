-- Single sign-on by email domain over OpenID Connect (GoTrue's /sso, with OIDC instead of SAML): an
-- administrator registers which configured external provider serves which domains; POST /sso with a
-- domain or a provider id starts that provider's browser flow.

create table auth.sso_providers (
    id uuid primary key default gen_random_uuid(),
    provider text not null check (provider ~ '^[a-z][a-z0-9_]{0,39}$'),
    resource_id text unique,
    disabled boolean not null default false,
    created_at timestamptz not null default now(),
    updated_at timestamptz not null default now()
);

create table auth.sso_domains (
    id uuid primary key default gen_random_uuid(),
    sso_provider_id uuid not null references auth.sso_providers (id) on delete cascade,
    domain text not null unique check (domain = lower(domain) and domain ~ '^[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)+$'),
    created_at timestamptz not null default now(),
    updated_at timestamptz not null default now()
);
create index sso_domains_sso_provider_id_idx on auth.sso_domains (sso_provider_id);

alter table auth.sso_providers enable row level security;
alter table auth.sso_providers force row level security;
alter table auth.sso_domains enable row level security;
alter table auth.sso_domains force row level security;
revoke all on auth.sso_providers, auth.sso_domains from public, anon, authenticated;
grant select, insert, update, delete on auth.sso_providers, auth.sso_domains to service_role;
