-- Auth sessions as the request path sees them. Every request transaction of a user's token asks, in its
-- first statement, whether the token's session is still active, so a signed-out or revoked session is
-- refused by every surface (data, storage, realtime) the moment it ends, not when the token expires.

create function app.require_active_session(session_id uuid) returns boolean
language plpgsql stable security definer set search_path = ''
as $$
begin
    if not exists (
        select 1 from auth.sessions s
        where s.id = session_id and (s.not_after is null or s.not_after > now())
    ) then
        raise exception 'session_not_found' using errcode = 'ST401',
            detail = 'the session of this access token has ended; sign in again';
    end if;
    return true;
end
$$;

-- The request pool's login calls it before it has switched roles.
revoke execute on function app.require_active_session(uuid) from public;
grant usage on schema app to authenticator;
grant execute on function app.require_active_session(uuid) to authenticator, anon, authenticated, service_role;

create index sessions_not_after_idx on auth.sessions (not_after) where not_after is not null;
