#!/usr/bin/env bash
# Storage throughput against the disk it stands on: a SIZE_MIB object (default 256) uploaded and then
# downloaded over loopback (raw body, as storage-js sends a Buffer) versus `cp` of the same file on the
# same disk, and the server's memory during it (VmRSS before, VmHWM after: the peak).
#
# The client is a few lines of Python: sendfile(2) for the upload, recv_into a file for the download.
# curl is not used because it is itself the bottleneck (its upload tops out near 210 MiB/s here even
# into a socket that discards everything).
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
cat > "$work/client.py" <<'PY'
import socket, sys, time, os
mode, url, key, path = sys.argv[1:5]
host, port_path = url.split("//", 1)[1].split(":", 1)
port, _, prefix = port_path.partition("/")
target = "/" + (prefix + "/" if prefix else "") + "storage/v1/object/bench/big.bin"
s = socket.create_connection((host, int(port)))
head = f"{'POST' if mode == 'upload' else 'GET'} {target} HTTP/1.1\r\nHost: {host}\r\napikey: {key}\r\nAuthorization: Bearer {key}\r\nConnection: close\r\n"
start = time.perf_counter()
if mode == "upload":
    size = os.path.getsize(path)
    s.sendall((head + f"Content-Type: application/octet-stream\r\nContent-Length: {size}\r\n\r\n").encode())
    with open(path, "rb") as f:
        s.sendfile(f)
    reply = b""
    while chunk := s.recv(65536):
        reply += chunk
    status = reply.split(b"\r\n", 1)[0]
else:
    s.sendall((head + "\r\n").encode())
    buffer = bytearray(1 << 20); view = memoryview(buffer); received = b""
    with open(path, "wb") as f:
        while b"\r\n\r\n" not in received:
            received += s.recv(65536)
        header, _, rest = received.partition(b"\r\n\r\n")
        f.write(rest)
        while n := s.recv_into(buffer):
            f.write(view[:n])
    status = header.split(b"\r\n", 1)[0]
elapsed = time.perf_counter() - start
if b" 200 " not in status:
    sys.exit(f"{mode} failed: {status.decode()}")
print(f"{elapsed:.6f}")
PY
upload_time=$(python3 "$work/client.py" upload "$base" "$key" "$work/source")
download_time=$(python3 "$work/client.py" download "$base" "$key" "$work/download")
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
