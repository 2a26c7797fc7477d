-- Realtime authorisation by reader sets. Asking "may user U read row R" for every subscriber of a change
-- costs one predicate call (and one membership lookup) per subscriber; asking "who may read R" costs one
-- lookup per change, and the subscribers are then a hash join. The predicates of 0008 stay as the
-- per-subscriber fallback (used only when a batch fails), so one failing subscriber costs only itself.
-- The test suite checks both forms against the tables' real policies for every kind of caller.

create function realtime.readers_tasks(r public.tasks) returns setof uuid
language sql stable security definer set search_path = ''
as $$ select m.user_id from public.organization_members m where m.organization_id = r.organization_id $$;

create function realtime.readers_customers(r public.customers) returns setof uuid
language sql stable security definer set search_path = ''
as $$ select m.user_id from public.organization_members m where m.organization_id = r.organization_id $$;

create function realtime.readers_projects(r public.projects) returns setof uuid
language sql stable security definer set search_path = ''
as $$ select m.user_id from public.organization_members m where m.organization_id = r.organization_id $$;

create function realtime.readers_notifications(r public.notifications) returns setof uuid
language sql stable security definer set search_path = ''
as $$ select r.user_id where r.user_id is not null $$;

-- Nobody, for tables without a reader function: nothing is delivered unless it is known to be readable.
create function realtime.readers(schema_name text, table_name text, record jsonb) returns setof uuid
language plpgsql stable security definer set search_path = ''
as $$
begin
    if schema_name <> 'public' then
        return;
    end if;
    case table_name
        when 'tasks' then return query select realtime.readers_tasks(jsonb_populate_record(null::public.tasks, record));
        when 'customers' then return query select realtime.readers_customers(jsonb_populate_record(null::public.customers, record));
        when 'projects' then return query select realtime.readers_projects(jsonb_populate_record(null::public.projects, record));
        when 'notifications' then return query select realtime.readers_notifications(jsonb_populate_record(null::public.notifications, record));
        else return;
    end case;
end
$$;

revoke all on function realtime.readers_tasks(public.tasks), realtime.readers_customers(public.customers),
    realtime.readers_projects(public.projects), realtime.readers_notifications(public.notifications),
    realtime.readers(text, text, jsonb) from public;
grant execute on function realtime.readers(text, text, jsonb) to service_role;
