#!/usr/bin/env bash
# Two Strive builds side by side in one run, on one database: the data API's reads (the list, the list
# with an exact count, the list with an embed of vs-pocketbase.sh), wrk at CONNECTIONS connections for
# DURATION seconds, the builds alternating ROUNDS times. For "is the new build slower than the old one"
# without the noise of two runs on this shared machine.
#
#   Benchmarks/rest-ab.sh OLD_BINARY NEW_BINARY [SCALE=500] [DURATION=10] [CONNECTIONS=32] [ROUNDS=3]
#
# OLD seeds the data and runs the cluster; NEW serves the same cluster through its DATABASE_URL, so both
# read the same rows and plans. Both must apply the same migrations (NEW adds none). Prerequisites: wrk.
set -euo pipefail
cd "$(dirname "$0")/.."

old="${1:?usage: Benchmarks/rest-ab.sh OLD_BINARY NEW_BINARY [SCALE] [DURATION] [CONNECTIONS] [ROUNDS]}"
new="${2:?usage: Benchmarks/rest-ab.sh OLD_BINARY NEW_BINARY [SCALE] [DURATION] [CONNECTIONS] [ROUNDS]}"
scale="${3:-500}"
duration="${4:-10}"
connections="${5:-32}"
rounds="${6:-3}"
password="strive-demo-password"
command -v wrk > /dev/null || { echo "wrk is missing: apt-get install wrk" >&2; exit 1; }

source Benchmarks/lib.sh
bench_work strive-rest-ab

echo "loading (strive seed --scale $scale)…"
"$old" seed --scale "$scale" --data-dir "$work/data" > /dev/null
old_port="$(free_port)"
STRIVE_LOG_LEVEL=warning "$old" serve --data-dir "$work/data" --port "$old_port" > "$work/old.out" 2> "$work/old.err" &
pids+=($!)
wait_ready "$work/old.out" || { cat "$work/old.err" >&2; exit 1; }
database_url="$("$old" db url --data-dir "$work/data")"
secret="$(cat "$work/data/jwt-secret")"
new_port="$(free_port)"
DATABASE_URL="$database_url" STRIVE_JWT_SECRET="$secret" STRIVE_LOG_LEVEL=warning STRIVE_INSTANCE_ID=new \
    "$new" serve --data-dir "$work/new" --port "$new_port" > "$work/new.out" 2> "$work/new.err" &
pids+=($!)
wait_ready "$work/new.out" || { cat "$work/new.err" >&2; exit 1; }

anon_key="$(awk '/anon key:/ {print $NF}' "$work/old.out")"
project="$(psql "$database_url" -XAtc "select md5('strive-seed/project/1/1')::uuid")"
token="$(curl -s -X POST "http://127.0.0.1:$old_port/auth/v1/token?grant_type=password" -H "apikey: $anon_key" \
    -H 'Content-Type: application/json' -d "{\"email\":\"member@acme.example\",\"password\":\"$password\"}" |
    python3 -c 'import json,sys; print(json.load(sys.stdin)["access_token"])')"
echo 'wrk.headers["Prefer"] = "count=exact"' > "$work/count.lua"
auth=(-H "apikey: $anon_key" -H "Authorization: Bearer $token")
list="/rest/v1/tasks?project_id=eq.$project&order=position&limit=50"

# run LABEL URL [SCRIPT]: one wrk run; appends "rps p99_ms non2xx" to $work/LABEL.
run() {
    local label="$1" url="$2" script="${3:-}"
    local args=(-t2 -c"$connections" -d"${duration}s" --latency "${auth[@]}")
    [ -n "$script" ] && args+=(-s "$script")
    sleep 2
    wrk "${args[@]}" "$url" > "$work/last.txt"
    python3 - "$work/last.txt" >> "$work/$label" << 'PY'
import re, sys
text = open(sys.argv[1]).read()
rps = float(re.search(r"Requests/sec:\s+([\d.]+)", text).group(1))
value, unit = re.search(r"\s99%\s+([\d.]+)(us|ms|s)", text).groups()
errors = re.search(r"Non-2xx or 3xx responses: (\d+)", text)
print(f"{rps:.0f} {float(value) * {'us': 0.001, 'ms': 1, 's': 1000}[unit]:.1f} {errors.group(1) if errors else 0}")
PY
}

echo "$connections connections, ${duration}s per run, $rounds rounds"
for round in $(seq 1 "$rounds"); do
    echo "round $round/$rounds…"
    for build in old new; do
        port=$old_port
        [ $build = new ] && port=$new_port
        run "$build-list" "http://127.0.0.1:$port$list"
        run "$build-count" "http://127.0.0.1:$port$list" "$work/count.lua"
        run "$build-embed" "http://127.0.0.1:$port$list&select=*,project:projects(name)"
    done
done

python3 - "$work" << 'PY'
import os, statistics, sys
work = sys.argv[1]
def load(label):
    runs = [line.split() for line in open(os.path.join(work, label)) if line.strip()]
    return sorted(float(r[0]) for r in runs), statistics.median(float(r[1]) for r in runs), sum(int(r[2]) for r in runs)
def cell(result):
    rps, p99, errors = result
    return f"{rps[0]:.0f}/{statistics.median(rps):.0f}/{rps[-1]:.0f} req/s {p99:7.1f} ms" + (f" ({errors} non-2xx)" if errors else "")
print()
print(f"{'workload':<12} {'old min/median/max, p99':>34}   {'new min/median/max, p99':>34}   new/old")
for name in ["list", "count", "embed"]:
    o, n = load(f"old-{name}"), load(f"new-{name}")
    print(f"{name:<12} {cell(o):>34}   {cell(n):>34}   {statistics.median(n[0]) / statistics.median(o[0]):.2f}x")
PY
