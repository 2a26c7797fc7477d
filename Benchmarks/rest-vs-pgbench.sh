#!/usr/bin/env bash
# The data API against the database it stands on: requests/s and p50/p99 latency at CONNECTIONS
# concurrent connections (wrk, loopback) for
#   (a) GET /rest/v1/tasks?project_id=eq.X&order=position&limit=50            as an org member
#   (b) the same with select=*,project:projects(name)
#   (c) a single-row PATCH of one task
# and, in the same run, pgbench throughput of the SQL transaction the API runs for (a) (the same
# set_config context statement, then the query) at the same concurrency. Prints the ratio API/pgbench.
#
# Prerequisites (Debian: apt-get install wrk postgresql-contrib):
#   swift build -c release
#   .build/release/strive seed --scale 500          # 1000 organizations, 100000 tasks
#   .build/release/strive serve &                    # on http://127.0.0.1:54321; note its anon key
#   STRIVE_ANON_KEY=<anon key> \
#   Benchmarks/rest-vs-pgbench.sh [BASE_URL] [DURATION_SECONDS] [CONNECTIONS]
set -euo pipefail
cd "$(dirname "$0")/.."

base="${1:-http://127.0.0.1:54321}"
duration="${2:-15}"
connections="${3:-32}"
strive=".build/release/strive"
[ -x "$strive" ] || strive=".build/debug/strive"

database_url="${DATABASE_URL:-$("$strive" db url)}"
anon_key="${STRIVE_ANON_KEY:?set STRIVE_ANON_KEY to the anon key strive serve printed}"

project="$(psql "$database_url" -XAtc "select md5('strive-seed/project/1/1')::uuid")"
task="$(psql "$database_url" -XAtc "select md5('strive-seed/task/1/1/1')::uuid")"
counts="$(psql "$database_url" -XAtc "select (select count(*) from public.organizations) || ' organizations, ' || (select count(*) from public.tasks) || ' tasks'")"

session="$(curl -s -X POST "$base/auth/v1/token?grant_type=password" -H "apikey: $anon_key" \
    -H 'Content-Type: application/json' -d '{"email":"member@acme.example","password":"strive-demo-password"}')"
token="$(python3 -c 'import json,sys; print(json.load(sys.stdin)["access_token"])' <<<"$session")"
claims="$(python3 -c 'import base64,json,sys; p=sys.argv[1].split(".")[1]; print(base64.urlsafe_b64decode(p+"="*(-len(p)%4)).decode())' "$token")"
session_id="$(python3 -c 'import json,sys; print(json.loads(sys.argv[1])["session_id"])' "$claims")"

echo "database: $counts; $connections connections, ${duration}s per run"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

cat > "$work/patch.lua" <<LUA
wrk.method = "PATCH"
wrk.body = '{"status":"IN_PROGRESS"}'
wrk.headers["Content-Type"] = "application/json"
LUA

run_wrk() {
    local label="$1" url="$2" script="${3:-}"
    local args=(-t2 -c"$connections" -d"${duration}s" --latency -H "apikey: $anon_key" -H "Authorization: Bearer $token")
    [ -n "$script" ] && args+=(-s "$script")
    wrk "${args[@]}" "$url" > "$work/$label.txt"
    local rps p50 p99 errors
    rps="$(awk '/Requests\/sec/ {print $2}' "$work/$label.txt")"
    p50="$(awk '$1 == "50%" {print $2}' "$work/$label.txt")"
    p99="$(awk '$1 == "99%" {print $2}' "$work/$label.txt")"
    errors="$(awk '/Non-2xx/ {print $4}' "$work/$label.txt")"
    printf '%-44s %10s req/s   p50 %-9s p99 %-9s non-2xx %s\n' "$label" "$rps" "$p50" "$p99" "${errors:-0}"
    echo "$rps" > "$work/$label.rps"
}

run_wrk "(a) tasks of a project, limit 50" "$base/rest/v1/tasks?project_id=eq.$project&order=position&limit=50"
run_wrk "(b) same + project:projects(name)" "$base/rest/v1/tasks?select=*,project:projects(name)&project_id=eq.$project&order=position&limit=50"
run_wrk "(c) PATCH one task" "$base/rest/v1/tasks?id=eq.$task" "$work/patch.lua"

# pgbench reads ":name" as a variable, and JSON claims contain such text: pass them base64-encoded.
claims_base64="$(printf '%s' "$claims" | base64 -w0)"
cat > "$work/a.sql" <<SQL
BEGIN;
SELECT set_config('role', 'authenticated', true), set_config('request.jwt.claims', convert_from(decode('$claims_base64', 'base64'), 'utf8'), true),
       set_config('request.method', 'GET', true), set_config('request.path', '/rest/v1/tasks', true),
       app.require_active_session('$session_id');
SELECT coalesce(json_agg(r), '[]'::json)::text, (json_agg(r) -> 0)::text, count(r.*)::int, null::int
FROM (SELECT t0.* FROM public.tasks AS t0 WHERE t0.project_id = '$project'::uuid ORDER BY t0.position ASC LIMIT 50 OFFSET 0) AS r;
COMMIT;
SQL
if ! pgbench "$database_url" -n -M prepared -c "$connections" -j 2 -T "$duration" -f "$work/a.sql" > "$work/pgbench.txt" 2>&1; then
    cat "$work/pgbench.txt" >&2
    exit 1
fi
tps="$(awk '/^tps/ {print $3; exit}' "$work/pgbench.txt")"
printf '%-44s %10s tx/s\n' "pgbench: the SQL of (a)" "$tps"
python3 -c 'import sys; a=float(sys.argv[1]); b=float(sys.argv[2]); print(f"ratio (a)/pgbench: {a/b:.2f}  (goal >= 0.6)")' "$(cat "$work/(a) tasks of a project, limit 50.rps")" "$tps"
