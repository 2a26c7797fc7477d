-- Live schema reload: every DDL statement (a migration, psql, an ORM's db push) notifies `strive_schema`
-- when its transaction commits, and every running Strive reloads its schema cache when it hears it.
-- SIGHUP still reloads by hand.
--
-- Event triggers can only be created by a superuser. Where the owner is not one (some hosted
-- databases), this creates the function but no trigger, and reloads stay on SIGHUP.

create function app.notify_schema_change() returns event_trigger
language plpgsql
as $$
begin
    perform pg_notify('strive_schema', tg_tag);
end
$$;

revoke all on function app.notify_schema_change() from public;

do $$
begin
    if (select rolsuper from pg_roles where rolname = current_user) then
        create event trigger strive_schema_changed on ddl_command_end execute function app.notify_schema_change();
    end if;
end
$$;
