-- Sign-in with external providers (GitHub, Google, any OpenID Connect issuer), as GoTrue offers it.
--
-- auth.oauth_states: one row per browser flow between GET /authorize and GET /callback. The `state` the
-- provider carries back is signed and names a row; the callback deletes the row as it reads it, so a state
-- works once, on any instance, and only until it expires. It holds what must not travel through the browser:
-- the nonce expected in the ID token and the PKCE verifier of Strive's own exchange with the provider.
--
-- auth.flow_state gains GoTrue's provider columns: a PKCE sign-in with a provider hands the app an auth
-- code, and exchanging it answers the provider's tokens (provider_token) beside the session.
--
-- auth.sync_email_identity: a user created by a provider (app_metadata.provider other than 'email') has
-- no 'email' identity: they cannot sign in with the address until they set a password or change it, which
-- makes one.

create table auth.oauth_states (
    id uuid primary key default gen_random_uuid(),
    provider text not null,
    redirect_to text not null,
    nonce text,
    code_verifier text not null,
    flow_state_id uuid references auth.flow_state (id) on delete cascade,
    linking_user_id uuid references auth.users (id) on delete cascade,
    expires_at timestamptz not null,
    created_at timestamptz not null default now()
);
create index oauth_states_expires_at_idx on auth.oauth_states (expires_at);

alter table auth.oauth_states enable row level security;
alter table auth.oauth_states force row level security;
revoke all on auth.oauth_states from public, anon, authenticated;
grant select, insert, update, delete on auth.oauth_states to service_role;

alter table auth.flow_state
    add column provider_type text,
    add column provider_access_token text,
    add column provider_refresh_token text;

create or replace function auth.sync_email_identity() returns trigger
language plpgsql set search_path = ''
as $$
begin
    if new.email is null then
        delete from auth.identities where user_id = new.id and provider = 'email';
        return new;
    end if;
    if tg_op = 'INSERT' then
        -- BEFORE INSERT fires ahead of ON CONFLICT's check: a sign-up with a taken address writes nothing.
        if exists (select 1 from auth.users u where u.email = new.email) then
            return new;
        end if;
        if coalesce(new.raw_app_meta_data ->> 'provider', 'email') <> 'email' then
            return new;
        end if;
    end if;
    if tg_op = 'UPDATE' then
        if new.email is not distinct from old.email
            and new.email_confirmed_at is not distinct from old.email_confirmed_at
            and new.last_sign_in_at is not distinct from old.last_sign_in_at
            and new.encrypted_password is not distinct from old.encrypted_password then
            return new;
        end if;
        -- A provider's user keeps no email identity until their address changes or they set a password.
        if new.email is not distinct from old.email and new.encrypted_password is null
            and not exists (select 1 from auth.identities i where i.user_id = new.id and i.provider = 'email') then
            return new;
        end if;
    end if;
    insert into auth.identities as i (provider_id, user_id, provider, identity_data, last_sign_in_at)
    values (new.id::text, new.id, 'email',
            jsonb_build_object('sub', new.id::text, 'email', new.email,
                               'email_verified', new.email_confirmed_at is not null, 'phone_verified', false),
            new.last_sign_in_at)
    on conflict (provider_id, provider) do update
        set identity_data = i.identity_data || excluded.identity_data,
            last_sign_in_at = coalesce(excluded.last_sign_in_at, i.last_sign_in_at),
            updated_at = now();
    return new;
end
$$;
revoke all on function auth.sync_email_identity() from public;

-- A password set later makes the email identity too.
drop trigger sync_email_identity on auth.users;
create trigger sync_email_identity
before insert or update of email, email_confirmed_at, last_sign_in_at, encrypted_password on auth.users
for each row execute function auth.sync_email_identity();
