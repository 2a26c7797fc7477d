-- Asymmetric JWT signing keys, as Supabase's JWT signing keys: ES256 or RS256 key pairs with a key id
-- (`kid`), shared by every instance through this table. One key is `current` (it signs new tokens); the
-- ones it replaced are `previous` (they still verify, so no token in flight fails during a rotation)
-- until they are `revoked`. GET /auth/v1/.well-known/jwks.json publishes the public halves of the
-- current and previous keys. private_key is the PEM sealed with AES-GCM under a key derived from the JWT
-- secret, so a copy of this table alone signs nothing. Without a row here, tokens are HS256 as before.

create table auth.signing_keys (
    id text primary key check (id ~ '^[A-Za-z0-9_-]{1,64}$'),
    algorithm text not null check (algorithm in ('ES256', 'RS256')),
    status text not null check (status in ('current', 'previous', 'revoked')),
    private_key bytea not null,
    public_jwk jsonb not null,
    created_at timestamptz not null default now(),
    retired_at timestamptz,
    revoked_at timestamptz
);
create unique index signing_keys_one_current on auth.signing_keys ((status)) where status = 'current';

alter table auth.signing_keys enable row level security;
alter table auth.signing_keys force row level security;
revoke all on auth.signing_keys from public, anon, authenticated;
grant select, insert, update, delete on auth.signing_keys to service_role;
