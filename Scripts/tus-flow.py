#!/usr/bin/env python3
"""A 100 MiB resumable upload with the real TUS client (PyPI `tuspy`) against two `strive serve`
instances sharing one database and one storage directory. Run by
Tests/StriveCLITests/ResumableUploadServerTests.swift:

    tus-flow.py URL_A PID_A URL_B SERVICE_KEY

6 MiB chunks as supabase-js sends them; interrupted and resumed; instance A killed with SIGKILL in the
middle of a PATCH; the upload resumed and finished on instance B; the object checked byte for byte.
Prints one line per step ("ok <step>"); any failure raises and exits non-zero.
"""
import hashlib
import http.client
import os
import signal
import sys
import tempfile
import time
import urllib.parse

import httpx
from tusclient import client as tus

URL_A, PID_A, URL_B, KEY = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
CHUNK = 6 * 1024 * 1024
SIZE = 100 * 1024 * 1024
HEADERS = {"apikey": KEY, "Authorization": f"Bearer {KEY}", "x-upsert": "true"}


def main():
    bucket = f"tus{os.getpid()}"
    created = httpx.post(f"{URL_A}/storage/v1/bucket", headers=HEADERS, json={"id": bucket, "name": bucket, "public": False})
    assert created.status_code == 200, created.text

    with tempfile.NamedTemporaryFile(delete=False) as handle:
        handle.write(os.urandom(SIZE))
        path = handle.name
    with open(path, "rb") as handle:
        digest = hashlib.sha256(handle.read()).hexdigest()
    metadata = {"bucketName": bucket, "objectName": "videos/big.bin", "contentType": "application/octet-stream",
                "cacheControl": "3600"}

    first = tus.TusClient(f"{URL_A}/storage/v1/upload/resumable", headers=HEADERS)
    uploader = first.uploader(file_path=path, chunk_size=CHUNK, metadata=metadata)
    uploader.upload(stop_at=6 * CHUNK)
    assert uploader.offset == 6 * CHUNK, uploader.offset
    location = urllib.parse.urlsplit(uploader.url).path
    print("ok 36 MiB in 6 MiB chunks", flush=True)

    # A client that went away comes back with nothing but the URL.
    again = first.uploader(file_path=path, chunk_size=CHUNK, url=uploader.url)
    assert again.offset == 6 * CHUNK, again.offset
    again.upload(stop_at=8 * CHUNK)
    print("ok interrupted and resumed from the server's offset", flush=True)

    # Instance A dies (SIGKILL) while a PATCH is half sent.
    target = urllib.parse.urlsplit(URL_A)
    connection = http.client.HTTPConnection(target.hostname, target.port, timeout=30)
    connection.putrequest("PATCH", location)
    for name, value in {**HEADERS, "Tus-Resumable": "1.0.0", "Upload-Offset": str(8 * CHUNK),
                        "Content-Type": "application/offset+octet-stream", "Content-Length": str(CHUNK)}.items():
        connection.putheader(name, value)
    connection.endheaders()
    with open(path, "rb") as handle:
        handle.seek(8 * CHUNK)
        connection.send(handle.read(CHUNK // 2))
    time.sleep(0.5)
    os.kill(PID_A, signal.SIGKILL)
    print("ok instance A killed mid-PATCH", flush=True)

    # Instance B knows the upload; the half-sent part never counted.
    second = tus.TusClient(f"{URL_B}/storage/v1/upload/resumable", headers=HEADERS)
    resumed = second.uploader(file_path=path, chunk_size=CHUNK, url=URL_B + location)
    assert resumed.offset == 8 * CHUNK, resumed.offset
    resumed.upload()
    assert resumed.offset == SIZE, resumed.offset
    print("ok resumed and finished on instance B", flush=True)

    downloaded = hashlib.sha256()
    with httpx.stream("GET", f"{URL_B}/storage/v1/object/{bucket}/videos/big.bin", headers=HEADERS, timeout=120) as response:
        assert response.status_code == 200, response.status_code
        for chunk in response.iter_bytes():
            downloaded.update(chunk)
    assert downloaded.hexdigest() == digest, "the object is the file, byte for byte"
    assert httpx.head(URL_B + location, headers={**HEADERS, "Tus-Resumable": "1.0.0"}).status_code == 404
    os.unlink(path)
    print("ok 100 MiB object matches", flush=True)


main()
