#!/usr/bin/env python3
"""A webhook receiver for the tests (Sources/StriveTestSupport/TestWebhookReceiver.swift): it records
every request and checks its Standard Webhooks signature with the `standardwebhooks` package.

    webhook-receiver.py --port PORT --secret whsec_...

How it answers depends on the path:
  /ok        200 at once
  /flaky     503 to the first two attempts of each webhook-id, then 200
  /limited   429 with Retry-After: 1 to the first attempt of each webhook-id, then 200
  /slow      the first attempt of each webhook-id waits 60 s before answering (a sender killed meanwhile
             never hears back), later ones 200 at once
GET /_log answers the recorded requests as JSON. The script exits when its standard input closes.
"""
import argparse
import json
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from standardwebhooks import Webhook

parser = argparse.ArgumentParser()
parser.add_argument("--port", type=int, required=True)
parser.add_argument("--secret", required=True)
arguments = parser.parse_args()
verifier = Webhook(arguments.secret)
recorded = []
attempts = {}
lock = threading.Lock()


class Receiver(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def answer(self, status, body=b"ok", headers=()):
        self.send_response(status)
        for name, value in headers:
            self.send_header(name, value)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def handle_any(self):
        if self.command == "GET" and self.path == "/_log":
            with lock:
                body = json.dumps(recorded).encode()
            return self.answer(200, body)
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        try:
            # Bodies are not all JSON (a GET has none): the signature is over the bytes either way.
            verifier.verify(body, dict(self.headers.items()), json_parse=False)
            verified = True
        except Exception:
            verified = False
        delivery = self.headers.get("webhook-id", "")
        path = self.path.split("?")[0]
        with lock:
            attempt = attempts.get((path, delivery), 0) + 1
            attempts[(path, delivery)] = attempt
            recorded.append({
                "path": path, "query": self.path.partition("?")[2], "method": self.command, "id": delivery,
                "attempt": attempt, "verified": verified, "body": body.decode("utf-8", "replace"),
                "user_agent": self.headers.get("User-Agent", ""), "received": time.time(),
            })
        if path == "/flaky" and attempt <= 2:
            return self.answer(503, b"try again")
        if path == "/limited" and attempt == 1:
            return self.answer(429, b"slow down", [("Retry-After", "1")])
        if path == "/slow" and attempt == 1:
            time.sleep(60)
        return self.answer(200, json.dumps({"received": delivery}).encode(), [("X-Receiver", "test")])

    do_GET = do_POST = do_DELETE = do_PUT = handle_any


# Many senders connect at once: the default backlog of 5 would drop their SYNs (a second's retry each).
ThreadingHTTPServer.request_queue_size = 256
server = ThreadingHTTPServer(("127.0.0.1", arguments.port), Receiver)
server.daemon_threads = True
threading.Thread(target=server.serve_forever, daemon=True).start()
sys.stdin.read()
