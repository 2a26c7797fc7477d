#!/usr/bin/env bash
# One instance against three on one machine: release `strive serve` A (running the database), B and C
# (DATABASE_URL to A's, the same JWT secret), `strive seed --scale SCALE`, then wrk at CONNECTIONS
# connections in total: all on A with B and C frozen (SIGSTOP: A alone), all on A with B and C idle but
# running, or a third on each of A, B and C (three wrk processes at once, their requests/s added).
# Workloads: the member's task list (GET, 50 rows) and creating a customer (POST).
# On one 2-core machine three instances share the same cores and the same PostgreSQL: expect no gain;
# the difference is what an instance costs (its pools, its realtime listener, its schema cache).
#
#   swift build -c release --product strive; apt-get install wrk
#   Benchmarks/instances.sh [SCALE=50] [CONNECTIONS=48] [DURATION=10] [ROUNDS=3]
set -euo pipefail
cd "$(dirname "$0")/.."

scale="${1:-50}"
connections="${2:-48}"
duration="${3:-10}"
rounds="${4:-3}"
strive="$(pwd)/.build/release/strive"
[ -x "$strive" ] || { echo "build first: swift build -c release --product strive" >&2; exit 1; }
command -v wrk > /dev/null || { echo "wrk is missing: apt-get install wrk" >&2; exit 1; }
source Benchmarks/lib.sh
bench_work strive-instances

# start NAME [VAR=VALUE…]: a release server on a free port; sets base_NAME.
start() {
    local name="$1" port
    shift
    port="$(free_port)"
    env STRIVE_LOG_LEVEL=warning "STRIVE_INSTANCE_ID=$name" "$@" "$strive" serve --data-dir "$work/$name" --port "$port" \
        > "$work/$name.out" 2> "$work/$name.err" &
    pids+=($!)
    wait_ready "$work/$name.out" || { cat "$work/$name.err" >&2; exit 1; }
    printf -v "base_$name" '%s' "http://127.0.0.1:$port"
}

start a
database_url="$("$strive" db url --data-dir "$work/a")"
secret="$(cat "$work/a/jwt-secret")"
start b "DATABASE_URL=$database_url" "STRIVE_JWT_SECRET=$secret"
peer_b=${pids[-1]}
start c "DATABASE_URL=$database_url" "STRIVE_JWT_SECRET=$secret"
peer_c=${pids[-1]}
anon_key="$(awk '/anon key:/ {print $3}' "$work/a.out")"
echo "seeding (scale $scale)…"
"$strive" seed --scale "$scale" --data-dir "$work/a" > /dev/null
project="$(psql "$database_url" -XAtc "select md5('strive-seed/project/1/1')::uuid")"
organization="$(psql "$database_url" -XAtc "select organization_id from public.projects where id = '$project'")"
token="$(curl -s -X POST "$base_a/auth/v1/token?grant_type=password" -H "apikey: $anon_key" -H 'Content-Type: application/json' \
    -d '{"email":"member@acme.example","password":"strive-demo-password"}' | python3 -c 'import json,sys; print(json.load(sys.stdin)["access_token"])')"
cat > "$work/create.lua" << LUA
wrk.method = "POST"
wrk.body = '{"organization_id":"$organization","name":"bench"}'
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Prefer"] = "return=minimal"
LUA
auth=(-H "apikey: $anon_key" -H "Authorization: Bearer $token")
list="/rest/v1/tasks?project_id=eq.$project&order=position&limit=50"

rps() { python3 -c 'import re,sys; print(sum(float(m) for f in sys.argv[1:] for m in re.findall(r"Requests/sec:\s+([\d.]+)", open(f).read())))' "$@"; }
# measure LABEL PATH [SCRIPT]: one round of A alone, A with idle peers, and three; appends "alone one three"
# to $work/LABEL.
measure() {
    local label="$1" path="$2" script="${3:-}" extra=()
    [ -n "$script" ] && extra=(-s "$script")
    kill -STOP "$peer_b" "$peer_c"
    sleep 2
    wrk -t2 -c"$connections" -d"${duration}s" "${extra[@]}" "${auth[@]}" "$base_a$path" > "$work/alone.txt"
    kill -CONT "$peer_b" "$peer_c"
    sleep 8
    wrk -t2 -c"$connections" -d"${duration}s" "${extra[@]}" "${auth[@]}" "$base_a$path" > "$work/one.txt"
    sleep 2
    local third=$((connections / 3)) files=() clients=()
    for name in a b c; do
        local base="base_$name"
        wrk -t1 -c"$third" -d"${duration}s" "${extra[@]}" "${auth[@]}" "${!base}$path" > "$work/three-$name.txt" &
        clients+=($!)
        files+=("$work/three-$name.txt")
    done
    wait "${clients[@]}"
    echo "$(rps "$work/alone.txt") $(rps "$work/one.txt") $(rps "${files[@]}")" >> "$work/$label"
}
echo "$connections connections, ${duration}s per run, $rounds rounds, $(nproc) cores for three servers, PostgreSQL and wrk"
for round in $(seq 1 "$rounds"); do
    echo "round $round/$rounds…"
    measure list "$list"
    measure create "/rest/v1/customers" "$work/create.lua"
done
for label in list create; do
    python3 - "$work/$label" "$label" << 'PY'
import statistics, sys
rows = [tuple(map(float, line.split())) for line in open(sys.argv[1])]
alone, one, three = (statistics.median(r[i] for r in rows) for i in range(3))
print(f"{sys.argv[2]:>7}: A alone {alone:6.0f}   A with two idle peers {one:6.0f} ({one / alone:.2f})   "
      f"three instances {three:6.0f} req/s ({three / alone:.2f} of alone)")
PY
done
for name in a b c; do
    pid="$(pgrep -f "serve --data-dir $work/$name " | head -1)"
    echo "instance $name RSS $(awk '/VmRSS/ {print int($2/1024)}' "/proc/$pid/status") MiB"
done
echo "PostgreSQL backends: $(psql "$database_url" -XAtc "select count(*) from pg_stat_activity where backend_type = 'client backend'")"
