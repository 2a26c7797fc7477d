-- Passkeys (WebAuthn credentials as a first factor), as GoTrue keeps them.
--
-- auth.webauthn_credentials: a user's registered credentials. The public key is the COSE_Key exactly as
-- the authenticator sent it; sign_count is the authenticator's counter, which must move forward (a clone
-- shows itself by going back).
-- auth.webauthn_challenges: the random challenge of one ceremony, used once (deleted as it is checked),
-- for a user (registration) or for whoever answers (sign-in with a discoverable credential).

create table auth.webauthn_credentials (
    id uuid primary key default gen_random_uuid(),
    user_id uuid not null references auth.users (id) on delete cascade,
    credential_id bytea not null unique check (octet_length(credential_id) between 1 and 1023),
    public_key bytea not null,
    attestation_type text not null default 'none',
    aaguid uuid,
    sign_count bigint not null default 0,
    transports jsonb not null default '[]',
    backup_eligible boolean not null default false,
    backed_up boolean not null default false,
    friendly_name text not null default '' check (char_length(friendly_name) <= 120),
    created_at timestamptz not null default now(),
    updated_at timestamptz not null default now(),
    last_used_at timestamptz
);
create index webauthn_credentials_user_id_idx on auth.webauthn_credentials (user_id);

create table auth.webauthn_challenges (
    id uuid primary key default gen_random_uuid(),
    user_id uuid references auth.users (id) on delete cascade,
    challenge_type text not null check (challenge_type in ('registration', 'authentication')),
    challenge bytea not null check (octet_length(challenge) = 32),
    created_at timestamptz not null default now(),
    expires_at timestamptz not null
);
create index webauthn_challenges_user_id_idx on auth.webauthn_challenges (user_id);
create index webauthn_challenges_expires_at_idx on auth.webauthn_challenges (expires_at);

alter table auth.webauthn_credentials enable row level security;
alter table auth.webauthn_credentials force row level security;
alter table auth.webauthn_challenges enable row level security;
alter table auth.webauthn_challenges force row level security;
revoke all on auth.webauthn_credentials, auth.webauthn_challenges from public, anon, authenticated;
grant select, insert, update, delete on auth.webauthn_credentials, auth.webauthn_challenges to service_role;
