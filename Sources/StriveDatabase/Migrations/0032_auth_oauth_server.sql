-- Strive as an OAuth 2.1 authorization server (Supabase Auth's OAuth server): the clients of 0030 send a
-- user to /oauth/authorize; the site's consent page approves or denies; the client exchanges the code at
-- /oauth/token for a session of its own.
--
-- auth.oauth_authorizations: one request from a client, from /oauth/authorize until its code is exchanged
-- (or it is denied or expires). Its id is what the consent page is given; the code is kept as a hash.
-- auth.oauth_consents: what a user granted a client, so a later request for no more scopes skips the page;
-- revoking it ends the client's sessions.
-- auth.sessions gains the client and scopes of a session a client holds: its tokens carry `client_id` and
-- `scope`, and only that client may refresh it.

create table auth.oauth_authorizations (
    id text primary key check (id ~ '^[A-Za-z0-9]{32}$'),
    client_id uuid not null references auth.oauth_clients (id) on delete cascade,
    user_id uuid references auth.users (id) on delete cascade,
    redirect_uri text not null,
    scope text not null,
    state text,
    nonce text,
    resource text,
    code_challenge text not null,
    code_challenge_method text not null check (code_challenge_method in ('s256', 'plain')),
    status text not null default 'pending' check (status in ('pending', 'approved', 'denied')),
    code_hash text unique,
    created_at timestamptz not null default now(),
    expires_at timestamptz not null
);
create index oauth_authorizations_expires_at_idx on auth.oauth_authorizations (expires_at);
create index oauth_authorizations_user_id_idx on auth.oauth_authorizations (user_id);
create index oauth_authorizations_client_id_idx on auth.oauth_authorizations (client_id);

create table auth.oauth_consents (
    id uuid primary key default gen_random_uuid(),
    user_id uuid not null references auth.users (id) on delete cascade,
    client_id uuid not null references auth.oauth_clients (id) on delete cascade,
    scopes text[] not null,
    granted_at timestamptz not null default now(),
    revoked_at timestamptz,
    unique (user_id, client_id)
);
create index oauth_consents_client_id_idx on auth.oauth_consents (client_id);

alter table auth.oauth_authorizations enable row level security;
alter table auth.oauth_authorizations force row level security;
alter table auth.oauth_consents enable row level security;
alter table auth.oauth_consents force row level security;
revoke all on auth.oauth_authorizations, auth.oauth_consents from public, anon, authenticated;
grant select, insert, update, delete on auth.oauth_authorizations, auth.oauth_consents to service_role;

alter table auth.sessions
    add column oauth_client_id uuid references auth.oauth_clients (id) on delete cascade,
    add column scopes text;
create index sessions_oauth_client_id_idx on auth.sessions (oauth_client_id);

-- 0031's pending browser flows: deleting a user or a flow state finds its rows by index.
create index oauth_states_flow_state_id_idx on auth.oauth_states (flow_state_id);
create index oauth_states_linking_user_id_idx on auth.oauth_states (linking_user_id);
