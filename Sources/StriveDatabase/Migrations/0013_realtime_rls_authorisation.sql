-- Realtime for any table, authorised by the table's own row-level security.
--
-- 0008 shipped four hand-written "who may read this row" functions beside the tables' policies, and a
-- Swift list of the four tables. Both are gone: `realtime.publish(table)` is all a table needs, and a
-- subscriber receives a change only if the table's SELECT policies, evaluated as that subscriber, let it
-- read the row (for a DELETE, the row as it was).
--
-- How a policy is evaluated for a row that may no longer exist: `realtime.compile(table)` reads the
-- table's policies from pg_policy (pg_get_expr, so the text is PostgreSQL's own rendering of what it
-- enforces) and writes a function, `realtime."authorize <schema>.<table>"`, whose one query applies the
-- same predicate to changed rows rebuilt from their JSON: permissive policies OR-ed, restrictive ones
-- AND-ed, each only for the roles it names, nothing readable without a permissive policy, the table's
-- SELECT privilege required, and every row readable when row-level security is off. The function runs
-- as the subscriber: for each group of changes it switches to the subscriber's role and JWT claims (as
-- a request does), so auth.uid(), auth.jwt() and the helper functions the policies call see exactly
-- what they see on the data API.
--
-- One query per batch of changes, whatever the number of subscribers: the feed sends every (subscriber
-- identity, table) group of the batch at once and `realtime.authorize` loops over them inside the
-- database; the statement inside each generated function is planned once per connection.
-- A policy that raises for one subscriber: the caller runs the batch again with `isolate` set, which
-- evaluates each group in its own subtransaction and reports the failing groups instead of raising.
--
-- Policies change without Strive's help (a migration, psql): each compiled function is stored with a
-- fingerprint of what it was compiled from (RLS switches, policies, columns, privileges), checked on every
-- batch; a stale one is compiled again before it is used, so a new policy applies from the next change.

create table realtime.authorizers (
    relation oid primary key,
    function_name text not null,
    fingerprint text not null,
    compiled_at timestamptz not null default now()
);
alter table realtime.authorizers enable row level security;
alter table realtime.authorizers force row level security;
create policy authorizers_service on realtime.authorizers for select to service_role using (true);
-- realtime.compile (security definer) writes it as the schema's owner.
create policy authorizers_owner on realtime.authorizers for all to current_user using (true) with check (true);
revoke all on realtime.authorizers from public, anon, authenticated;
grant select on realtime.authorizers to service_role;

-- The published tables: those with the capture trigger.
create view realtime.published with (security_barrier) as
    select n.nspname::text as schema_name, c.relname::text as table_name, c.oid as relation
    from pg_catalog.pg_trigger t
    join pg_catalog.pg_class c on c.oid = t.tgrelid
    join pg_catalog.pg_namespace n on n.oid = c.relnamespace
    where t.tgname = 'realtime_capture' and not t.tgisinternal;
revoke all on realtime.published from public;
grant select on realtime.published to service_role;

-- What an authorizer is compiled from; any difference means it must be compiled again.
create function realtime.policy_fingerprint(target oid) returns text
language sql stable set search_path = ''
as $$
    select md5(concat_ws(
        '|', c.relrowsecurity, c.relacl::text,
        (select string_agg(concat_ws(':', p.polname, p.polcmd, p.polpermissive, p.polroles::text, pg_catalog.pg_get_expr(p.polqual, p.polrelid)), ';' order by p.polname)
         from pg_catalog.pg_policy p where p.polrelid = c.oid),
        (select string_agg(a.attname || ' ' || pg_catalog.format_type(a.atttypid, a.atttypmod), ',' order by a.attnum)
         from pg_catalog.pg_attribute a where a.attrelid = c.oid and a.attnum > 0 and not a.attisdropped)))
    from pg_catalog.pg_class c where c.oid = target
$$;

-- The SELECT predicate of `target` for a reader role, as SQL over a row named like the table. Which
-- policies apply is decided here, once, as PostgreSQL decides it when it rewrites a query: a policy
-- applies to the roles it names (0: public) and their members. pg_get_expr renders column references
-- unqualified or qualified by the table's name, and with this function's empty search_path it
-- schema-qualifies every function and type.
create function realtime.select_predicate(target oid, reader text) returns text
language plpgsql stable set search_path = ''
as $$
declare
    permissive text;
    restrictive text;
begin
    if not pg_catalog.has_table_privilege(reader, target, 'SELECT') then
        return 'false';
    end if;
    if not (select c.relrowsecurity from pg_catalog.pg_class c where c.oid = target) then
        return 'true';
    end if;
    -- Permissive policies let a row through when one holds, restrictive ones stop it unless all hold (a
    -- null counts as not holding, as in a WHERE clause); without a permissive policy nothing is readable.
    with applicable as (
        select p.polpermissive as is_permissive, pg_catalog.pg_get_expr(p.polqual, p.polrelid) as qual
        from pg_catalog.pg_policy p
        where p.polrelid = target and p.polcmd in ('r', '*') and p.polqual is not null
          and (0 = any (p.polroles) or exists (
              select 1 from pg_catalog.unnest(p.polroles) r where pg_catalog.pg_has_role(reader, r, 'member')))
    )
    select string_agg(format('(%s)', qual), ' or ' order by qual) filter (where is_permissive),
           string_agg(format('coalesce((%s), false)', qual), ' and ' order by qual) filter (where not is_permissive)
    into permissive, restrictive
    from applicable;
    return '(' || coalesce(permissive, 'false') || ')' || coalesce(' and ' || restrictive, '');
end
$$;

-- Writes (or reuses) the authorizer of `target` and returns its name. Runs as the schema owner: it
-- creates a function. The function it creates runs as its caller.
create function realtime.compile(target oid) returns text
language plpgsql security definer set search_path = ''
as $$
declare
    fingerprint text := realtime.policy_fingerprint(target);
    known realtime.authorizers;
    relation_name text;
    function_name text;
    alias text;
    -- The query of one group: its changes' rows, named like the table and its columns so the policies'
    -- text reads as it does on the table, filtered by the reader role's predicate.
    template constant text :=
        'select "realtime input"."realtime change", "realtime group", false '
        'from pg_catalog.unnest($5[$4["realtime group"] : $4["realtime group" + 1] - 1]) as "realtime input"("realtime change") '
        'cross join lateral pg_catalog.unnest("realtime rows"["realtime input"."realtime change" : "realtime input"."realtime change"]) as %I '
        'where %s';
begin
    if fingerprint is null then
        raise exception 'realtime: relation % does not exist', target using errcode = '42P01';
    end if;
    select * into known from realtime.authorizers a where a.relation = target;
    if found and known.fingerprint = fingerprint then
        return known.function_name;
    end if;
    -- Instances compiling the same table at once wait for each other, then reuse the result.
    perform pg_catalog.pg_advisory_xact_lock(pg_catalog.hashtext('realtime.compile'), pg_catalog.hashtext(target::text));
    select * into known from realtime.authorizers a where a.relation = target;
    if found and known.fingerprint = fingerprint then
        return known.function_name;
    end if;
    select format('%I.%I', n.nspname, c.relname), c.relname into relation_name, alias
    from pg_catalog.pg_class c join pg_catalog.pg_namespace n on n.oid = c.relnamespace where c.oid = target;
    function_name := format('realtime.%I', 'authorize ' || relation_name);
    -- The generated function names nothing a table's columns could collide with: its parameters are
    -- positional ($1 each change's relation, $2 roles, $3 claims, $4 starts, $5 changes, $6 records,
    -- $7 isolate) and
    -- its loop variable and output columns carry a space.
    execute format(
        $ddl$
        create or replace function %1$s(oid[], text[], text[], int[], int[], jsonb[], boolean)
        returns table ("realtime readable change" int, "realtime readable group" int, "realtime evaluation failed" boolean)
        language plpgsql volatile set search_path = ''
        as %2$L
        $ddl$,
        function_name,
        format(
            $body$
            #variable_conflict use_column
            declare
                "realtime group" int;
                "realtime role" text;
                -- Each changed row of this table is rebuilt from its JSON once, not once per group (the
                -- other tables' rows stay null: they would not fit this row type).
                "realtime rows" %1$s[] := array(
                    select case when $1[i] = %2$s then pg_catalog.jsonb_populate_record(null::%1$s, $6[i]) end
                    from pg_catalog.generate_subscripts($6, 1) as i);
            begin
                for "realtime group" in 1 .. coalesce(pg_catalog.array_length($2, 1), 0) loop
                    continue when $1[$5[$4["realtime group"]]] is distinct from %2$s;
                    if $2["realtime group"] not in ('anon', 'authenticated') then
                        raise exception 'realtime: subscribers read as anon or authenticated, not %%', $2["realtime group"];
                    end if;
                    -- Switching role looks the role up; groups come in runs of one role.
                    if $2["realtime group"] is distinct from "realtime role" then
                        perform pg_catalog.set_config('role', $2["realtime group"], true);
                        "realtime role" := $2["realtime group"];
                    end if;
                    perform pg_catalog.set_config('request.jwt.claims', $3["realtime group"], true);
                    if not $7 then
                        if $2["realtime group"] = 'authenticated' then return query %3$s; else return query %4$s; end if;
                        continue;
                    end if;
                    begin
                        if $2["realtime group"] = 'authenticated' then return query %3$s; else return query %4$s; end if;
                    exception when others then
                        return query select c, "realtime group", true
                            from pg_catalog.unnest($5[$4["realtime group"] : $4["realtime group" + 1] - 1]) c;
                    end;
                end loop;
            end
            $body$,
            relation_name, target,
            format(template, alias, realtime.select_predicate(target, 'authenticated')),
            format(template, alias, realtime.select_predicate(target, 'anon'))));
    execute format('revoke all on function %s(oid[], text[], text[], int[], int[], jsonb[], boolean) from public', function_name);
    execute format('grant execute on function %s(oid[], text[], text[], int[], int[], jsonb[], boolean) to service_role', function_name);
    insert into realtime.authorizers (relation, function_name, fingerprint) values (target, function_name, fingerprint)
    on conflict (relation) do update set function_name = excluded.function_name, fingerprint = excluded.fingerprint, compiled_at = now();
    return function_name;
end
$$;
revoke all on function realtime.compile(oid) from public;
grant execute on function realtime.compile(oid) to service_role;

-- Which changes each group may read. Change i is records[i], a row of the table (schemas[i],
-- tables[i]); group g is one subscriber identity (roles[g], claims[g]) and the changes
-- changes[starts[g] : starts[g + 1] - 1], all of one table. Returns the readable (change, group)
-- pairs, and with `isolate` also, instead of raising, the groups whose evaluation failed (failed =
-- true, one row per change). A table that no longer exists reads as nothing. The caller's role is
-- restored before returning.
create function realtime.authorize(
    schemas text[], tables text[], roles text[], claims text[], starts int[], changes int[], records jsonb[], isolate boolean
) returns table (change int, grp int, failed boolean)
language plpgsql volatile
as $$
declare
    caller text := current_user;
    relations oid[] := array(
        select pg_catalog.to_regclass(format('%I.%I', s, t))::oid from unnest(schemas, tables) as c(s, t));
    target oid;
begin
    for target in select distinct r from pg_catalog.unnest(relations) r where r is not null loop
        -- Each table's authorizer leaves the role of its last group behind.
        perform pg_catalog.set_config('role', caller, true);
        return query execute format('select * from %s($1, $2, $3, $4, $5, $6, $7)', realtime.compile(target))
            using relations, roles, claims, starts, changes, records, isolate;
    end loop;
    perform pg_catalog.set_config('role', caller, true);
end
$$;
revoke all on function realtime.authorize(text[], text[], text[], text[], int[], int[], jsonb[], boolean) from public;
grant execute on function realtime.authorize(text[], text[], text[], text[], int[], int[], jsonb[], boolean) to service_role;

-- Publishing a table: the capture trigger, and its authorizer compiled at once (a table whose policies
-- cannot be compiled is refused here, with the reason, rather than silently delivering nothing).
create or replace function realtime.publish(target regclass) returns void
language plpgsql set search_path = ''
as $$
begin
    execute format(
        'create or replace trigger realtime_capture after insert or update or delete on %s for each row execute function realtime.capture()',
        target);
    perform realtime.compile(target);
end
$$;

create function realtime.unpublish(target regclass) returns void
language plpgsql set search_path = ''
as $$
declare
    function_name text;
begin
    execute format('drop trigger if exists realtime_capture on %s', target);
    delete from realtime.authorizers a where a.relation = target returning a.function_name into function_name;
    if function_name is not null then
        execute format('drop function if exists %s(oid[], text[], text[], int[], int[], jsonb[], boolean)', function_name);
    end if;
end
$$;
revoke all on function realtime.unpublish(regclass) from public;

-- The four tables 0008 published become ordinary publications; their hand-written predicates go.
select realtime.publish(p.relation::regclass) from realtime.published p;

drop function realtime.readers(text, text, jsonb);
drop function realtime.readers_tasks(public.tasks), realtime.readers_customers(public.customers),
    realtime.readers_projects(public.projects), realtime.readers_notifications(public.notifications);
drop function realtime.can_read(text, text, uuid, jsonb);
drop function realtime.can_read_tasks(uuid, public.tasks), realtime.can_read_customers(uuid, public.customers),
    realtime.can_read_projects(uuid, public.projects), realtime.can_read_notifications(uuid, public.notifications);

-- For `strive verify`: why `target`'s authorizer cannot be compiled or run, or null when it can. It
-- compiles afresh and runs each reader role's query once (PL/pgSQL resolves a query's names when it
-- first runs it), then rolls all of that back.
create function realtime.authorizer_problem(target oid) returns text
language plpgsql set search_path = ''
as $$
declare
    schema_name text;
    table_name text;
begin
    select n.nspname, c.relname into schema_name, table_name
    from pg_catalog.pg_class c join pg_catalog.pg_namespace n on n.oid = c.relnamespace where c.oid = target;
    begin
        delete from realtime.authorizers a where a.relation = target;
        perform realtime.compile(target);
        perform realtime.authorize(
            array[schema_name], array[table_name], array['anon', 'authenticated'], array['{}', '{}'],
            array[1, 2, 3], array[1, 1], array['{}'::jsonb], false);
        raise exception 'realtime: authorizer check done' using errcode = 'ST999';
    exception
        when sqlstate 'ST999' then return null;
        when others then return sqlerrm;
    end;
end
$$;
revoke all on function realtime.authorizer_problem(oid) from public;
