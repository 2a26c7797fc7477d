-- The product defines who is a platform admin (the console and /admin/v1 ask app.is_admin() under the
-- caller's identity). Without one, nobody is: only the service role administers. A team's migration may
-- replace this function (create or replace) with its own rule.
create function app.is_admin() returns boolean
language sql stable security definer set search_path = ''
as $$ select false $$;

revoke execute on all functions in schema app from public;
grant execute on function app.is_admin() to anon, authenticated, service_role;
