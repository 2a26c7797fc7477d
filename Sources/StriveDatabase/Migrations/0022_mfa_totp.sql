-- Multi-factor authentication with TOTP (GoTrue's /factors): a user enrolls an authenticator app, a
-- challenge and a right code raise the session to aal2, and policies can demand it.
--
-- auth.mfa_factors.secret is the TOTP secret sealed with a key derived from the JWT secret (ChaCha20-
-- Poly1305), so the table alone does not produce codes. last_step is the time step of the last code
-- accepted: a code works once.
create table auth.mfa_factors (
    id uuid primary key default gen_random_uuid(),
    user_id uuid not null references auth.users (id) on delete cascade,
    friendly_name text check (friendly_name is null or char_length(friendly_name) between 1 and 100),
    factor_type text not null default 'totp' check (factor_type = 'totp'),
    status text not null default 'unverified' check (status in ('unverified', 'verified')),
    secret text not null,
    last_step bigint,
    created_at timestamptz not null default now(),
    updated_at timestamptz not null default now(),
    unique (user_id, friendly_name)
);
create index mfa_factors_user_id_idx on auth.mfa_factors (user_id);

create table auth.mfa_challenges (
    id uuid primary key default gen_random_uuid(),
    factor_id uuid not null references auth.mfa_factors (id) on delete cascade,
    ip inet,
    created_at timestamptz not null default now(),
    verified_at timestamptz
);
create index mfa_challenges_factor_id_idx on auth.mfa_challenges (factor_id);

alter table auth.mfa_factors enable row level security;
alter table auth.mfa_factors force row level security;
alter table auth.mfa_challenges enable row level security;
alter table auth.mfa_challenges force row level security;
revoke all on auth.mfa_factors, auth.mfa_challenges from public, anon, authenticated;
grant select, insert, update, delete on auth.mfa_factors, auth.mfa_challenges to service_role;

-- The caller's authenticator assurance level: 'aal2' after a second factor in this session, else 'aal1'.
create function auth.aal() returns text
language sql stable set search_path = ''
as $$
    select coalesce(auth.jwt() ->> 'aal', 'aal1')
$$;

-- True when the caller has done what their account requires: aal2, or no verified factor to use. A
-- policy that protects sensitive rows adds `and (select auth.mfa_satisfied())`.
create function auth.mfa_satisfied() returns boolean
language sql stable security definer set search_path = ''
as $$
    select auth.aal() = 'aal2'
        or not exists (select 1 from auth.mfa_factors f where f.user_id = auth.uid() and f.status = 'verified')
$$;

revoke all on function auth.aal(), auth.mfa_satisfied() from public;
grant execute on function auth.aal(), auth.mfa_satisfied() to anon, authenticated, service_role;
