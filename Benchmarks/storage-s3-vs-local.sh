#!/usr/bin/env bash
# Storage throughput of the two blob stores side by side, in one run: a release `strive serve` with the
# local store and one with STRIVE_STORAGE_BACKEND=s3 against moto's S3 server on loopback (the one the
# tests use), each measured by Benchmarks/storage-throughput.sh (SIZE_MIB up, then down; server RSS
# before and at its peak). moto keeps objects in Python memory: the S3 numbers measure Strive's S3
# path plus moto, a lower bound for a real S3-compatible store.
#
#   swift build -c release --product strive
#   Benchmarks/storage-s3-vs-local.sh [SIZE_MIB=256] [PART_MIB=8]
set -euo pipefail
cd "$(dirname "$0")/.."

size_mib="${1:-256}"
part_mib="${2:-8}"
strive="$(pwd)/.build/release/strive"
[ -x "$strive" ] || { echo "build first: swift build -c release --product strive" >&2; exit 1; }
python=.build-venv/bin/python
[ -x "$python" ] || { echo "run Scripts/test once: it prepares .build-venv with moto" >&2; exit 1; }
source Benchmarks/lib.sh
bench_work strive-s3-bench

moto_port="$(free_port)"
sleep infinity | "$python" Scripts/test-s3-server.py --port "$moto_port" > "$work/moto.out" 2>&1 &
pids+=($!)
for _ in $(seq 1 100); do grep -q ready "$work/moto.out" 2> /dev/null && break; sleep 0.1; done
curl -sf -X PUT "http://127.0.0.1:$moto_port/strive-bench" > /dev/null

for backend in local s3; do
    port="$(free_port)"
    environment=(STRIVE_LOG_LEVEL=warning)
    if [ "$backend" = s3 ]; then
        environment+=(STRIVE_STORAGE_BACKEND=s3 "STRIVE_S3_ENDPOINT=http://127.0.0.1:$moto_port" STRIVE_S3_BUCKET=strive-bench
            STRIVE_S3_ACCESS_KEY_ID=bench STRIVE_S3_SECRET_ACCESS_KEY=bench-secret STRIVE_S3_FORCE_PATH_STYLE=true
            "STRIVE_S3_PART_SIZE_MB=$part_mib")
    fi
    env "${environment[@]}" "$strive" serve --data-dir "$work/$backend" --port "$port" > "$work/$backend.out" 2> "$work/$backend.err" &
    server=$!
    pids+=($server)
    wait_ready "$work/$backend.out" || { cat "$work/$backend.err" >&2; exit 1; }
    key="$(awk '/service role key:/ {print $4}' "$work/$backend.out")"
    echo "== $backend store$([ "$backend" = s3 ] && echo " (moto, parts of $part_mib MiB)")"
    STRIVE_PID="$server" STRIVE_STORAGE_DIR="$work/$backend/storage" STRIVE_SERVICE_KEY="$key" \
        Benchmarks/storage-throughput.sh "http://127.0.0.1:$port" "$size_mib" | grep -v '^cp'
    kill "$server"
    wait "$server" 2> /dev/null || true
done
