-- Auth flows that go through mail: confirmation, recovery, magic links and codes, PKCE.
--
-- auth.flow_state: one PKCE flow (RFC 7636). A link's verification issues an auth code (stored hashed)
--   that POST /token?grant_type=pkce exchanges, with the verifier, for a session.
-- auth.one_time_tokens: what a mail carries. token_hash is SHA-256 of the link's token; code_hash is an
--   HMAC (keyed with the JWT secret) of the address and the 6-digit code, so neither can be used by whoever
--   reads this table. Single use (deleted when used), expiring, and a code allows few wrong attempts.
-- auth.mail_outbox: mail to send, written in the transaction that issues the token so a mail exists iff
--   its token does; any instance delivers it (SKIP LOCKED), retrying with back-off. variables hold the
--   link and code only until delivery. Its rows of the last hour are also the send limits, shared by all
--   instances.

create table auth.flow_state (
    id uuid primary key default gen_random_uuid(),
    user_id uuid references auth.users (id) on delete cascade,
    code_challenge text not null,
    code_challenge_method text not null check (code_challenge_method in ('s256', 'plain')),
    authentication_method text not null,
    auth_code_hash text unique,
    auth_code_issued_at timestamptz,
    created_at timestamptz not null default now()
);
create index flow_state_user_id_idx on auth.flow_state (user_id);
create index flow_state_created_at_idx on auth.flow_state (created_at);

create table auth.one_time_tokens (
    id uuid primary key default gen_random_uuid(),
    user_id uuid not null references auth.users (id) on delete cascade,
    purpose text not null check (purpose in ('signup', 'recovery', 'magiclink')),
    token_hash text not null unique,
    code_hash text not null,
    relates_to text not null,
    redirect_to text,
    flow_state_id uuid references auth.flow_state (id) on delete cascade,
    failed_attempts int not null default 0,
    expires_at timestamptz not null,
    created_at timestamptz not null default now(),
    unique (user_id, purpose)
);
create index one_time_tokens_code_hash_idx on auth.one_time_tokens (code_hash);
create index one_time_tokens_flow_state_id_idx on auth.one_time_tokens (flow_state_id);
create index one_time_tokens_expires_at_idx on auth.one_time_tokens (expires_at);

create table auth.mail_outbox (
    id bigint generated always as identity primary key,
    recipient text not null,
    template text not null,
    variables jsonb,
    attempts int not null default 0,
    next_attempt_at timestamptz not null default now(),
    last_error text,
    created_at timestamptz not null default now(),
    sent_at timestamptz,
    failed_at timestamptz
);
create index mail_outbox_due_idx on auth.mail_outbox (next_attempt_at) where sent_at is null and failed_at is null;
create index mail_outbox_recipient_idx on auth.mail_outbox (recipient, created_at desc);
create index mail_outbox_created_at_idx on auth.mail_outbox (created_at);

alter table auth.flow_state enable row level security;
alter table auth.flow_state force row level security;
alter table auth.one_time_tokens enable row level security;
alter table auth.one_time_tokens force row level security;
alter table auth.mail_outbox enable row level security;
alter table auth.mail_outbox force row level security;
revoke all on auth.flow_state, auth.one_time_tokens, auth.mail_outbox from public, anon, authenticated;
grant select, insert, update, delete on auth.flow_state, auth.one_time_tokens, auth.mail_outbox to service_role;
-- service_role bypasses row-level security, as for the other auth tables; nobody else has any right here.

-- Wakes the instances' mail delivery when a mail is queued (they also poll, for retries).
create function auth.notify_mail_queued() returns trigger
language plpgsql set search_path = ''
as $$
begin
    perform pg_notify('strive_mail', '');
    return null;
end
$$;
revoke all on function auth.notify_mail_queued() from public;
create trigger mail_outbox_queued after insert on auth.mail_outbox
    for each statement execute function auth.notify_mail_queued();
