#!/usr/bin/env bash
# Fuzzes Strive's HTTP API with schemathesis 4 against its own /openapi.json, every check on
# (`--checks all`: no server errors, every status/header/body as declared, schema-valid requests
# accepted, schema-violating ones refused, 405 + Allow for other methods), as two callers in turn:
# the service role and a signed-in member of an organization. Exit status 0 only with 0 failures.
#
#   Scripts/fuzz-api.sh [SECONDS_PER_CALLER]     # default 300: 10 minutes in all
#
# It starts the release build (building it if missing; STRIVE_BINARY overrides) on a throwaway data
# directory with the demo seed, and installs schemathesis from PyPI when it is missing. Reports land in
# $FUZZ_REPORT_DIR (default .build/fuzz-api). Scripts/schemathesis.toml says which statuses a few
# operations may answer by protocol; Scripts/schemathesis_hooks.py keeps generated rows inside the
# CHECKs over two columns that JSON Schema cannot state.
set -euo pipefail
cd "$(dirname "$0")/.."

seconds="${1:-300}"
binary="${STRIVE_BINARY:-.build/release/strive}"
reports="${FUZZ_REPORT_DIR:-.build/fuzz-api}"

if [ ! -x "$binary" ]; then
    swift build -c release --product strive
fi
if ! python3 -c 'import schemathesis, sys; sys.exit(0 if schemathesis.__version__.startswith("4.") else 1)' 2>/dev/null; then
    python3 -m pip install --quiet 'schemathesis>=4,<5'
fi

work="$(mktemp -d)"
# The embedded PostgreSQL runs as an unprivileged user when this runs as root: it must reach the data.
chmod 755 "$work"
server_pid=""
cleanup() {
    if [ -n "$server_pid" ]; then
        kill "$server_pid" 2>/dev/null || true
        wait "$server_pid" 2>/dev/null || true
    fi
    rm -rf "$work"
}
trap cleanup EXIT

port="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
base="http://127.0.0.1:$port"
export STRIVE_DATA_DIR="$work/data" STRIVE_ENV=development STRIVE_LOG_LEVEL=warning
"$binary" seed --scale 1 > "$work/seed.txt"
"$binary" serve --port "$port" > "$work/server.log" 2>&1 &
server_pid=$!

for _ in $(seq 1 120); do
    curl -sf "$base/ready" > /dev/null && break
    kill -0 "$server_pid" 2>/dev/null || { cat "$work/server.log"; exit 1; }
    sleep 0.5
done
anon_key="$(awk '/anon key:/ {print $3}' "$work/server.log")"
service_key="$(awk '/service role key:/ {print $4}' "$work/server.log")"
if [ -z "$anon_key" ] || [ -z "$service_key" ]; then
    echo "fuzz-api: could not read the API keys from the server's log" >&2
    exit 1
fi
member_token="$(curl -sf -X POST "$base/auth/v1/token?grant_type=password" -H "apikey: $anon_key" \
    -H 'Content-Type: application/json' -d '{"email":"member@acme.example","password":"strive-demo-password"}' |
    python3 -c 'import json, sys; print(json.load(sys.stdin)["access_token"])')"

mkdir -p "$reports"
status=0
run() {
    local caller="$1" key="$2" token="$3"
    echo "== schemathesis as $caller, ${seconds}s"
    SCHEMATHESIS_HOOKS=Scripts.schemathesis_hooks PYTHONPATH=. \
        st --config-file Scripts/schemathesis.toml run "$base/openapi.json" \
        --checks all --max-time "$seconds" --workers 2 \
        -H "apikey: $key" -H "Authorization: Bearer $token" \
        --report junit --report-dir "$reports/$caller" > "$reports/$caller.log" 2>&1 || status=1
    sed -n '/=== SUMMARY ===/,$p' "$reports/$caller.log"
}
run service_role "$service_key" "$service_key"
run member "$anon_key" "$member_token"
if [ "$status" -ne 0 ]; then
    echo "fuzz-api: failures; details in $reports/*.log" >&2
fi
exit "$status"
