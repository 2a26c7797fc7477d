#!/usr/bin/env bash
# Storage throughput against the disk it stands on: a SIZE_MIB object (default 256) uploaded and then
# downloaded over loopback (curl, raw body as storage-js sends a Buffer) versus `cp` of the same file on
# the same disk, and the server's memory during it (VmRSS before, VmHWM after: the peak).
#
# Uploads are fsynced before they are acknowledged; plain `cp` is not, so `cp` + `sync` is printed too.
#
# Prerequisites:
#   swift build -c release
#   .build/release/strive serve &                    # note the service role key it prints
#   STRIVE_SERVICE_KEY=<service key> Benchmarks/storage-throughput.sh [BASE_URL] [SIZE_MIB]
set -euo pipefail
cd "$(dirname "$0")/.."

base="${1:-http://127.0.0.1:54321}"
size_mib="${2:-256}"
key="${STRIVE_SERVICE_KEY:?set STRIVE_SERVICE_KEY to the service role key strive serve printed}"
strive=".build/release/strive"
[ -x "$strive" ] || strive=".build/debug/strive"
pid="${STRIVE_PID:-$(pgrep -f "$strive serve" | head -1)}"
storage="${STRIVE_STORAGE_DIR:-${STRIVE_DATA_DIR:-.strive}/storage}"
mkdir -p "$storage"
work="$(mktemp -d "$storage/../bench.XXXXXX")"   # same file system as the blob store
trap 'rm -rf "$work"; curl -s -X POST "$base/storage/v1/bucket/bench/empty" -H "apikey: $key" -H "Authorization: Bearer $key" >/dev/null; curl -s -X DELETE "$base/storage/v1/bucket/bench" -H "apikey: $key" -H "Authorization: Bearer $key" >/dev/null' EXIT

auth=(-H "apikey: $key" -H "Authorization: Bearer $key")
curl -s -X POST "$base/storage/v1/bucket" "${auth[@]}" -H 'Content-Type: application/json' -d '{"name":"bench","public":false}' >/dev/null

head -c "$((size_mib * 1024 * 1024))" /dev/urandom > "$work/source"
sync
rss_kib() { awk -v field="$1" '$1 == field":" {print $2}' "/proc/$pid/status"; }
seconds() { python3 -c "import sys; print(f'{float(sys.argv[1]):.3f}')" "$1"; }
rate() { python3 -c "import sys; print(f'{$size_mib / float(sys.argv[1]):.0f}')" "$1"; }

start=$(date +%s.%N); cp "$work/source" "$work/copy"; end=$(date +%s.%N)
cp_time=$(python3 -c "print($end - $start)")
rm -f "$work/copy"; sync
start=$(date +%s.%N); cp "$work/source" "$work/copy"; sync; end=$(date +%s.%N)
cp_sync_time=$(python3 -c "print($end - $start)")
rm -f "$work/copy"

rss_before=$(rss_kib VmRSS)
upload_time=$(curl -s -o "$work/upload.json" -w '%{time_total}' -X POST "$base/storage/v1/object/bench/big.bin" "${auth[@]}" \
    -H 'Content-Type: application/octet-stream' --data-binary "@$work/source")
grep -q '"Key"' "$work/upload.json" || { echo "upload failed: $(cat "$work/upload.json")"; exit 1; }
download_time=$(curl -s -o "$work/download" -w '%{time_total}' "$base/storage/v1/object/bench/big.bin" "${auth[@]}")
cmp -s "$work/source" "$work/download" || { echo "downloaded bytes differ"; exit 1; }
rss_peak=$(rss_kib VmHWM)

printf 'object: %s MiB; server pid %s\n' "$size_mib" "$pid"
printf '%-28s %8s s  %6s MiB/s\n' "cp" "$(seconds "$cp_time")" "$(rate "$cp_time")"
printf '%-28s %8s s  %6s MiB/s\n' "cp + sync" "$(seconds "$cp_sync_time")" "$(rate "$cp_sync_time")"
printf '%-28s %8s s  %6s MiB/s  ratio to cp %s, to cp+sync %s\n' "upload (POST, fsynced)" "$(seconds "$upload_time")" "$(rate "$upload_time")" \
    "$(python3 -c "print(f'{$cp_time / $upload_time:.2f}')")" "$(python3 -c "print(f'{$cp_sync_time / $upload_time:.2f}')")"
printf '%-28s %8s s  %6s MiB/s  ratio to cp %s\n' "download (GET)" "$(seconds "$download_time")" "$(rate "$download_time")" \
    "$(python3 -c "print(f'{$cp_time / $download_time:.2f}')")"
printf 'server RSS before %s MiB, peak (VmHWM) after %s MiB: grew %s MiB\n' "$((rss_before / 1024))" "$((rss_peak / 1024))" "$(((rss_peak - rss_before) / 1024))"
