-- OAuth 2.1 clients of Strive as an authorization server (Supabase Auth's OAuth server): the
-- applications that may send users to Strive to sign in. Managed through /auth/v1/admin/oauth/clients.
-- A confidential client's secret is kept only as its SHA-256 (shown once, at registration or
-- regeneration); a public client has none and must use PKCE.

create table auth.oauth_clients (
    id uuid primary key default gen_random_uuid(),
    client_name text not null check (length(client_name) between 1 and 1024),
    client_secret_hash text,
    client_type text not null check (client_type in ('public', 'confidential')),
    token_endpoint_auth_method text not null
        check (token_endpoint_auth_method in ('none', 'client_secret_basic', 'client_secret_post')),
    registration_type text not null default 'manual' check (registration_type in ('manual', 'dynamic')),
    client_uri text,
    logo_uri text,
    redirect_uris text[] not null check (cardinality(redirect_uris) between 1 and 100),
    grant_types text[] not null default array['authorization_code', 'refresh_token'],
    response_types text[] not null default array['code'],
    scope text,
    created_at timestamptz not null default now(),
    updated_at timestamptz not null default now(),
    constraint oauth_clients_secret_matches_type check ((client_type = 'confidential') = (client_secret_hash is not null))
);
create index oauth_clients_created_at_idx on auth.oauth_clients (created_at);

alter table auth.oauth_clients enable row level security;
alter table auth.oauth_clients force row level security;
revoke all on auth.oauth_clients from public, anon, authenticated;
grant select, insert, update, delete on auth.oauth_clients to service_role;
