#!/usr/bin/env bash
# What row-level security adds to a typical request query: "the 50 newest tasks of one project", as a
# member of the project's organization (policies apply) and as service_role (policies bypassed), each
# run RUNS times under EXPLAIN ANALYZE; prints the median planning and execution times and one plan.
#
#   swift run strive seed --scale 500          # 1000 organizations, 100000 tasks
#   Benchmarks/rls-cost.sh [DATABASE_URL] [RUNS]
# Without DATABASE_URL it uses the self-managed cluster in ./.strive (STRIVE_DATA_DIR), which must be
# running (strive db start, or a running strive serve).
set -euo pipefail
cd "$(dirname "$0")/.."

url="${1:-}"
runs="${2:-200}"
if [ -z "$url" ]; then
    url="$(swift run -q strive db url)"
fi

project="md5('strive-seed/project/1/1')::uuid"
member="md5('strive-seed/user/1/member')::text"
query="select id, title, status, priority, assigned_to, due_date, created_at from public.tasks
       where project_id = $project order by created_at desc limit 50"

counts="$(psql "$url" -X -At -c "select count(*) from public.organizations; select count(*) from public.tasks;" | paste -sd' ')"
echo "database: organizations and tasks = $counts; $runs runs per role"

measure() {
    local role_sql="$1"
    for _ in $(seq "$runs"); do
        echo "begin; $role_sql explain (analyze, timing off, summary on) $query; rollback;"
    done | psql "$url" -X -At -q 2>&1 | python3 -c '
import re, statistics, sys
text = sys.stdin.read()
plan = [float(x) for x in re.findall(r"Planning Time: ([0-9.]+) ms", text)]
run = [float(x) for x in re.findall(r"Execution Time: ([0-9.]+) ms", text)]
print(f"median planning {statistics.median(plan):.3f} ms, median execution {statistics.median(run):.3f} ms (n={len(run)})")
'
}

as_member="set local role authenticated; select set_config('request.jwt.claims', json_build_object('sub', $member, 'role', 'authenticated')::text, true) \\g /dev/null
"
as_service="set local role service_role; select set_config('request.jwt.claims', '{\"role\":\"service_role\"}', true) \\g /dev/null
"

echo -n "member (RLS):        "; measure "$as_member"
echo -n "service_role (none): "; measure "$as_service"

echo
echo "plan as member:"
psql "$url" -X -At -q <<SQL
begin;
$as_member
explain (analyze, costs off, summary off) $query;
rollback;
SQL
