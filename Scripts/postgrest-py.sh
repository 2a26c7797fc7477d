#!/usr/bin/env bash
# Runs postgrest-py's own integration suite (github supabase/supabase-py, src/postgrest/tests, fixture
# src/postgrest/infra/init.sql) unchanged against a Strive build, configured as upstream's docker-compose
# configures PostgREST (db-plan-enabled, db-tx-end = commit-allow-override). Nothing of supabase-py is
# kept in this repository: the tests and the fixture are read from a checkout at run time.
#
#   Scripts/postgrest-py.sh SUPABASE_PY_GIT_DIR [pytest args]     # e.g. a clone's .git, or a bare mirror
#
# Env: STRIVE_BINARY (default .build/release/strive, built when missing), PYTHON (a python with
# supabase==2.34.1, pytest and pytest-asyncio; default .build-venv/bin/python, prepared when missing),
# PEER_REV (the commit to take the tests from; default HEAD). Ends with "N passed, M failed"; exit 0
# only when all pass.
set -euo pipefail
cd "$(dirname "$0")/.."

git_dir="${1:?usage: Scripts/postgrest-py.sh SUPABASE_PY_GIT_DIR [pytest args]}"
shift
binary="${STRIVE_BINARY:-.build/release/strive}"
python="${PYTHON:-.build-venv/bin/python}"
[ -x "$binary" ] || swift build -c release --product strive
if ! "$python" -c "import postgrest, pytest, pytest_asyncio" 2>/dev/null; then
    [ -x "$python" ] || python3 -m venv .build-venv
    python=".build-venv/bin/python"
    "$python" -m pip install -q supabase==2.34.1 pytest pytest-asyncio
fi
python="$(cd "$(dirname "$python")" && pwd)/$(basename "$python")"

work="$(mktemp -d /tmp/postgrest-py.XXXXXX)"
chmod 755 "$work" # the embedded PostgreSQL runs as an unprivileged user when this runs as root
server_pid=""
cleanup() {
    if [ -n "$server_pid" ]; then kill "$server_pid" 2>/dev/null || true; wait "$server_pid" 2>/dev/null || true; fi
    rm -rf "$work"
}
trap cleanup EXIT

git --git-dir="$git_dir" archive "${PEER_REV:-HEAD}" src/postgrest | tar -x -C "$work"
tests="$work/src/postgrest"

# The fixture as a project migration. Strive's own public.users steps aside for the fixture's, and the
# fixture's tables and functions get the grants Supabase gives by default (upstream runs every request
# as postgres; Strive as anon, authenticated or service_role). Row-level security stays off, as upstream.
mkdir "$work/migrations"
{
    echo "alter table public.users rename to strive_users;"
    cat "$tests/infra/init.sql"
    echo "grant all on all tables in schema public to anon, authenticated, service_role;"
    echo "grant execute on all functions in schema public to anon, authenticated, service_role;"
} > "$work/migrations/20000101000000_postgrest_py_fixture.sql"

# Upstream's tests build clients for http://127.0.0.1:3000 without credentials; this points them at
# Strive with the anon key, as supabase-py sends it. No test body changes.
cat > "$tests/conftest.py" <<'PY'
import functools, os
import postgrest
from tests._async import client as async_client
from tests._sync import client as sync_client

key = os.environ["STRIVE_TEST_KEY"]
headers = {**postgrest.DEFAULT_POSTGREST_CLIENT_HEADERS, "apikey": key, "Authorization": f"Bearer {key}"}
sync_client.REST_URL = async_client.REST_URL = os.environ["STRIVE_TEST_REST_URL"]
sync_client.SyncPostgrestClient = functools.partial(postgrest.SyncPostgrestClient, headers=headers)
async_client.AsyncPostgrestClient = functools.partial(postgrest.AsyncPostgrestClient, headers=headers)
PY

port="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
base="http://127.0.0.1:$port"
STRIVE_DATA_DIR="$work/data" STRIVE_ENV=development STRIVE_LOG_LEVEL=warning STRIVE_MIGRATIONS_DIR="$work/migrations" \
    STRIVE_DB_PLAN_ENABLED=true STRIVE_DB_TX_END=commit-allow-override \
    "$binary" serve --port "$port" > "$work/server.log" 2>&1 &
server_pid=$!
for _ in $(seq 1 240); do
    curl -sf "$base/ready" > /dev/null && break
    kill -0 "$server_pid" 2>/dev/null || { cat "$work/server.log"; exit 1; }
    sleep 0.5
done
anon_key="$(awk '/anon key:/ {print $3}' "$work/server.log")"
[ -n "$anon_key" ] || { echo "postgrest-py: no anon key in the server's log" >&2; cat "$work/server.log"; exit 1; }

(cd "$tests" && STRIVE_TEST_KEY="$anon_key" STRIVE_TEST_REST_URL="$base/rest/v1" \
    "$python" -m pytest -q -p no:cacheprovider --junitxml="$work/junit.xml" \
    tests/_sync/test_filter_request_builder_integration.py tests/_async/test_filter_request_builder_integration.py "$@") || true

python3 - "$work/junit.xml" <<'PY'
import sys, xml.etree.ElementTree as ET
cases = list(ET.parse(sys.argv[1]).getroot().iter("testcase"))
bad = sum(c.find("failure") is not None or c.find("error") is not None for c in cases)
print(f"{len(cases) - bad} passed, {bad} failed")
sys.exit(1 if bad or not cases else 0)
PY
