-- Notifications (SPEC §7): the data API's rpc functions, and notifying people when someone else assigns
-- them a task or a customer. The functions run as the caller (SECURITY INVOKER), so the notifications
-- policies decide what they may touch; only the assignment triggers write as the owner, because the
-- assigner may not read the recipient's notifications.

create function public.mark_notifications_read(ids uuid[]) returns integer
language plpgsql volatile set search_path = ''
as $$
declare
    wanted integer := (select count(distinct id) from unnest(ids) as id);
    marked integer;
begin
    if ids is null or cardinality(ids) = 0 or cardinality(ids) > 100 then
        raise exception 'ids must hold between 1 and 100 notification ids' using errcode = '22023';
    end if;
    update public.notifications set read = true where id = any (ids) and user_id = (select auth.uid());
    get diagnostics marked = row_count;
    if marked <> wanted then
        -- Raising undoes the update: all of them or none.
        raise exception '% of the % notifications do not exist or are not yours; none were marked read',
            wanted - marked, wanted
            using errcode = 'P0002', hint = 'list your notifications with GET /rest/v1/notifications';
    end if;
    return marked;
end
$$;

create function public.mark_all_notifications_read() returns integer
language plpgsql volatile set search_path = ''
as $$
declare
    marked integer;
begin
    update public.notifications set read = true where user_id = (select auth.uid()) and not read;
    get diagnostics marked = row_count;
    return marked;
end
$$;

create function public.unread_notification_count() returns integer
language sql stable set search_path = ''
as $$
    select count(*)::integer from public.notifications where user_id = (select auth.uid()) and not read
$$;

revoke execute on function public.mark_notifications_read(uuid[]), public.mark_all_notifications_read(),
    public.unread_notification_count() from public;
grant execute on function public.mark_notifications_read(uuid[]), public.mark_all_notifications_read(),
    public.unread_notification_count() to authenticated, service_role;

-- Assignment notifications. Only a person assigning someone else notifies: no notification for assigning
-- yourself, and none for work done without a caller (seeding, migrations, the service's own jobs).
create function app.notify_assignment() returns trigger
language plpgsql security definer set search_path = ''
as $$
declare
    assigner uuid := auth.uid();
    what text := case tg_table_name when 'tasks' then 'task' else 'customer' end;
    label text := case tg_table_name when 'tasks' then (to_jsonb(new) ->> 'title') else (to_jsonb(new) ->> 'name') end;
begin
    if new.assigned_to is null or assigner is null or new.assigned_to = assigner then
        return new;
    end if;
    if tg_op = 'UPDATE' and new.assigned_to is not distinct from old.assigned_to then
        return new;
    end if;
    insert into public.notifications (user_id, organization_id, type, title, message, entity_type, entity_id)
    values (
        new.assigned_to, new.organization_id, 'INFO',
        left('New ' || what || ': ' || label, 100),
        left('A ' || what || ' was assigned to you: ' || label, 500),
        what, new.id
    );
    return new;
end
$$;

create trigger notify_assignment after insert or update of assigned_to on public.tasks
for each row execute function app.notify_assignment();
create trigger notify_assignment after insert or update of assigned_to on public.customers
for each row execute function app.notify_assignment();
