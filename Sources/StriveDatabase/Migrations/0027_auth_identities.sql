-- auth.identities as GoTrue keeps them: one row per way a user signs in (provider, and the provider's id
-- for the user), listed by GET /user and the admin API; external providers add their rows here. A user
-- with an address has an 'email' identity whose provider_id is the user's id; anonymous users have none.
--
-- The email identity follows its user through a BEFORE trigger on auth.users, so every write path (sign-up,
-- admin create and update, confirmation, email change, an operator's SQL) keeps it right. BEFORE, not
-- AFTER: the statements that write a user answer with RETURNING, which runs before AFTER triggers fire, and
-- auth.user_identities() (volatile, so it sees what the trigger wrote) reads them there. The user row does
-- not exist yet when the BEFORE INSERT trigger writes its identity, so the foreign key is checked at commit;
-- and that trigger fires before ON CONFLICT decides, so it skips an address that is already taken.
--
-- auth.users.invited_at: when an invitation was mailed (GoTrue's user field of that name).

create table auth.identities (
    id uuid primary key default gen_random_uuid(),
    provider_id text not null,
    user_id uuid not null references auth.users (id) on delete cascade deferrable initially deferred,
    identity_data jsonb not null,
    provider text not null,
    last_sign_in_at timestamptz,
    created_at timestamptz not null default now(),
    updated_at timestamptz not null default now(),
    email text generated always as (lower(identity_data ->> 'email')) stored,
    unique (provider_id, provider)
);
create index identities_user_id_idx on auth.identities (user_id);
create index identities_email_idx on auth.identities (email);

alter table auth.identities enable row level security;
alter table auth.identities force row level security;
revoke all on auth.identities from public, anon, authenticated;
grant select, insert, update, delete on auth.identities to service_role;

alter table auth.users add column invited_at timestamptz;

create function auth.sync_email_identity() returns trigger
language plpgsql set search_path = ''
as $$
begin
    if new.email is null then
        delete from auth.identities where user_id = new.id and provider = 'email';
        return new;
    end if;
    -- BEFORE INSERT fires ahead of ON CONFLICT's check: a sign-up with a taken address writes nothing.
    if tg_op = 'INSERT' and exists (select 1 from auth.users u where u.email = new.email) then
        return new;
    end if;
    if tg_op = 'UPDATE' and new.email is not distinct from old.email
        and new.email_confirmed_at is not distinct from old.email_confirmed_at
        and new.last_sign_in_at is not distinct from old.last_sign_in_at then
        return new;
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

create trigger sync_email_identity before insert or update of email, email_confirmed_at, last_sign_in_at on auth.users
for each row execute function auth.sync_email_identity();

-- Volatile on purpose: called from RETURNING, it must see the rows the trigger above just wrote.
create function auth.user_identities(user_id uuid) returns jsonb
language sql volatile set search_path = ''
as $$
    select coalesce(jsonb_agg(jsonb_build_object(
               'identity_id', i.id, 'id', i.provider_id, 'user_id', i.user_id, 'identity_data', i.identity_data,
               'provider', i.provider, 'last_sign_in_at', i.last_sign_in_at, 'created_at', i.created_at,
               'updated_at', i.updated_at, 'email', i.email)
           order by i.created_at, i.id), '[]'::jsonb)
    from auth.identities i where i.user_id = user_identities.user_id
$$;
revoke all on function auth.user_identities(uuid) from public;
grant execute on function auth.user_identities(uuid) to service_role;

-- Users who signed up before this migration get their email identity now.
insert into auth.identities (provider_id, user_id, provider, identity_data, last_sign_in_at, created_at)
select id::text, id, 'email',
       jsonb_build_object('sub', id::text, 'email', email, 'email_verified', email_confirmed_at is not null, 'phone_verified', false),
       last_sign_in_at, created_at
from auth.users where email is not null
on conflict do nothing;
