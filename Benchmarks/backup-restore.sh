#!/usr/bin/env bash
# Backup and restore at size: a release `strive serve` on a fresh data directory, `strive seed --scale
# SCALE`, then OBJECTS uploads of OBJECT_MIB MiB random bytes (1 GiB by default); times `strive backup`
# while the server serves, then `strive restore` into a new data directory, and checks the restored
# instance has the same row and object counts. Prints sizes and times.
#
#   swift build -c release --product strive
#   Benchmarks/backup-restore.sh [SCALE=500] [OBJECTS=128] [OBJECT_MIB=8]
set -euo pipefail
cd "$(dirname "$0")/.."

scale="${1:-500}"
objects="${2:-128}"
object_mib="${3:-8}"
strive="$(pwd)/${STRIVE_BINARY:-.build/release/strive}"
[ -x "$strive" ] || { echo "build first: swift build -c release --product strive" >&2; exit 1; }
work="$(mktemp -d /tmp/strive-backup-bench.XXXXXX)"
chmod 755 "$work"
cleanup() {
    [ -n "${server:-}" ] && kill "$server" 2> /dev/null && wait "$server" 2> /dev/null
    rm -rf "$work"
}
trap cleanup EXIT
now() { date +%s.%N; }
since() { python3 -c "import sys; print(f'{float(sys.argv[2]) - float(sys.argv[1]):.1f} s')" "$1" "$(now)"; }

serve() {
    port="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')"
    STRIVE_LOG_LEVEL=warning "$strive" serve --data-dir "$1" --port "$port" > "$work/out" 2> "$work/err" &
    server=$!
    for _ in $(seq 1 600); do grep -q "Strive is ready" "$work/out" 2> /dev/null && break; sleep 0.1; done
    service_key="$(awk '/service role key:/ {print $4}' "$work/out")"
}
counts() {
    psql "$("$strive" db url --data-dir "$1")" -X -A -t -c \
        "select (select count(*) from auth.users) || ' users, ' || (select count(*) from public.tasks) || ' tasks, '
                || (select count(*) from storage.objects) || ' objects'"
}

size() {
    psql "$("$strive" db url --data-dir "$1")" -X -A -t -c "select 'database ' || pg_size_pretty(pg_database_size(current_database()))"
}

serve "$work/source"
start="$(now)"; "$strive" seed --data-dir "$work/source" --scale "$scale" > /dev/null; echo "seed --scale $scale: $(since "$start")"
head -c "$((object_mib * 1024 * 1024))" /dev/urandom > "$work/blob.png"
start="$(now)"
for n in $(seq 1 "$objects"); do
    curl -sf -o /dev/null -X POST -H "apikey: $service_key" -H "Authorization: Bearer $service_key" -H "Content-Type: image/png" \
        --data-binary "@$work/blob.png" "http://127.0.0.1:$port/storage/v1/object/public-assets/bench/object-$n.png"
done
echo "uploaded $objects × $object_mib MiB: $(since "$start")"
before="$(counts "$work/source")"
echo "source: $before; $(size "$work/source")"

start="$(now)"; "$strive" backup --data-dir "$work/source" -o "$work/backup.tar" > /dev/null
echo "backup (while serving): $(since "$start"), archive $(du -h "$work/backup.tar" | cut -f1)"
kill "$server"; wait "$server" 2> /dev/null || true; server=""

start="$(now)"; "$strive" restore --data-dir "$work/restored" "$work/backup.tar" > /dev/null
echo "restore into an empty data directory: $(since "$start")"
serve "$work/restored"
after="$(counts "$work/restored")"
echo "restored: $after; $(size "$work/restored")"
[ "$before" = "$after" ] && echo "counts match" || { echo "COUNTS DIFFER" >&2; exit 1; }
