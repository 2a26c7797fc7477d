#!/usr/bin/env bash
# How long a DDL commit takes to reach the data API without a signal: starts `strive serve` (release) on a
# fresh data directory, then CHANGES times creates a table with psql and polls /rest/v1/<table> every
# 5 ms until it answers 200. Prints p50 and max, measured from psql's exit (the commit is done by then)
# to the first request that sees the table.
#
#   swift build -c release --product strive
#   Benchmarks/schema-reload.sh [CHANGES=50]
set -euo pipefail
cd "$(dirname "$0")/.."

changes="${1:-50}"
strive="${STRIVE_BINARY:-.build/release/strive}"
[ -x "$strive" ] || { echo "build first: swift build -c release --product strive" >&2; exit 1; }
work="$(mktemp -d /tmp/strive-schema-reload.XXXXXX)"
chmod 755 "$work"
cleanup() {
    [ -n "${server:-}" ] && kill "$server" 2> /dev/null && wait "$server" 2> /dev/null
    rm -rf "$work"
}
trap cleanup EXIT

port="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')"
STRIVE_LOG_LEVEL=warning "$strive" serve --data-dir "$work/data" --port "$port" > "$work/out" 2> "$work/err" &
server=$!
for _ in $(seq 1 600); do grep -q "Strive is ready" "$work/out" 2> /dev/null && break; sleep 0.1; done
anon_key="$(awk '/anon key:/ {print $NF}' "$work/out")"
database_url="$("$strive" db url --data-dir "$work/data")"

python3 - "$changes" "http://127.0.0.1:$port" "$anon_key" "$database_url" << 'PY'
import statistics, subprocess, sys, time, urllib.error, urllib.request
changes, base, key, url = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4]

def status(table):
    request = urllib.request.Request(f"{base}/rest/v1/{table}", headers={"apikey": key})
    try:
        with urllib.request.urlopen(request) as response:
            return response.status
    except urllib.error.HTTPError as error:
        return error.code

samples = []
for n in range(changes):
    table = f"reload_probe_{n}"
    subprocess.run(["psql", url, "-X", "-q", "-v", "ON_ERROR_STOP=1", "-c",
                    f"create table public.{table} (id int primary key); grant select on public.{table} to anon;"], check=True)
    committed = time.monotonic()
    while status(table) != 200:
        if time.monotonic() - committed > 10:
            sys.exit(f"{table} not visible after 10 s")
        time.sleep(0.005)
    samples.append((time.monotonic() - committed) * 1000)
samples.sort()
print(f"DDL commit → first request that sees it, {changes} changes: "
      f"p50 {statistics.median(samples):.0f} ms, max {samples[-1]:.0f} ms")
PY
