#!/usr/bin/env bash
# What /metrics costs the data API: starts `strive serve` (release) on a fresh data directory with
# `strive seed`, then runs wrk against a list endpoint ROUNDS times without and with a scraper reading
# /metrics every SCRAPE_INTERVAL seconds (Prometheus's default is 15 s; 1 s is a heavy case), alternating
# so drift on this noisy machine hits both alike. Prints req/s and p99 of each run and the mean ratio.
#
#   swift build -c release --product strive
#   Benchmarks/metrics-overhead.sh [ROUNDS=3] [SECONDS=10] [SCRAPE_INTERVAL=1]
set -euo pipefail
cd "$(dirname "$0")/.."

rounds="${1:-3}"
seconds="${2:-10}"
interval="${3:-1}"
strive="${STRIVE_BINARY:-.build/release/strive}"
[ -x "$strive" ] || { echo "build first: swift build -c release --product strive" >&2; exit 1; }
command -v wrk > /dev/null || { echo "needs wrk (apt-get install wrk)" >&2; exit 1; }
work="$(mktemp -d /tmp/strive-metrics-overhead.XXXXXX)"
chmod 755 "$work"
cleanup() {
    [ -n "${scraper:-}" ] && kill "$scraper" 2> /dev/null
    [ -n "${server:-}" ] && kill "$server" 2> /dev/null && wait "$server" 2> /dev/null
    rm -rf "$work"
}
trap cleanup EXIT

port="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')"
token="metrics-overhead-token-0123456789"
STRIVE_LOG_LEVEL=warning STRIVE_METRICS_TOKEN="$token" "$strive" serve --data-dir "$work/data" --port "$port" \
    > "$work/out" 2> "$work/err" &
server=$!
for _ in $(seq 1 600); do grep -q "Strive is ready" "$work/out" 2> /dev/null && break; sleep 0.1; done
service_key="$(awk '/service role key:/ {print $4}' "$work/out")"
"$strive" seed --data-dir "$work/data" --scale 20 > /dev/null
url="http://127.0.0.1:$port/rest/v1/customers?select=id,name,email&order=name&limit=20"

run() {
    wrk -t2 -c32 -d"${seconds}s" --latency -H "apikey: $service_key" -H "Authorization: Bearer $service_key" "$url" > "$work/wrk"
    local rps p99
    rps="$(awk '/Requests\/sec/ {print $2}' "$work/wrk")"
    p99="$(awk '$1 == "99%" {print $2}' "$work/wrk")"
    echo "$1: $rps req/s, p99 $p99"
    echo "$rps" >> "$work/$1"
}

wrk -t2 -c32 -d3s -H "apikey: $service_key" -H "Authorization: Bearer $service_key" "$url" > /dev/null  # warm-up
for round in $(seq 1 "$rounds"); do
    run without
    ( while true; do curl -s -o /dev/null -H "Authorization: Bearer $token" "http://127.0.0.1:$port/metrics"; sleep "$interval"; done ) &
    scraper=$!
    run with
    kill "$scraper"; wait "$scraper" 2> /dev/null || true; scraper=""
done
size="$(curl -s -H "Authorization: Bearer $token" "http://127.0.0.1:$port/metrics" | wc -c)"
python3 - "$work/without" "$work/with" "$size" << 'PY'
import statistics, sys
without = [float(x) for x in open(sys.argv[1])]
with_ = [float(x) for x in open(sys.argv[2])]
print(f"mean without scraping {statistics.mean(without):.0f} req/s, with {statistics.mean(with_):.0f} req/s: "
      f"ratio {statistics.mean(with_) / statistics.mean(without):.3f}; one scrape is {int(sys.argv[3])} bytes")
PY
