#!/usr/bin/env python3
"""A real SMTP server for Strive's tests (aiosmtpd): STARTTLS with a self-signed certificate for 127.0.0.1,
AUTH PLAIN/LOGIN required after TLS, and every accepted message written to FOLDER as a .eml file (with
X-Envelope-From/-To and X-TLS headers in front) for the test to read.

    test-smtp-server.py --port PORT --folder DIR --user U --password P [--delay SECONDS] [--plain]

Writes DIR/cert.pem (the certificate the client must trust), then, listening, DIR/ready and prints "ready". --delay holds every
DATA reply that long, to play a slow mail server. --plain offers neither STARTTLS nor AUTH (a local relay). Any recipient at
rejected.invalid is refused with 550, as a server refuses an address it does not know.
"""
import argparse
import asyncio
import os
import signal
import ssl
import subprocess
import sys
import time
import uuid

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword


class SaveToFolder:
    def __init__(self, folder, delay):
        self.folder = folder
        self.delay = delay

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if address.lower().endswith("@rejected.invalid"):
            return "550 5.1.1 no such mailbox here"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        if self.delay:
            await asyncio.sleep(self.delay)
        name = f"{time.time_ns()}-{uuid.uuid4().hex[:8]}.eml"
        partial = os.path.join(self.folder, name + ".partial")
        with open(partial, "wb") as message:
            message.write(b"X-Envelope-From: " + envelope.mail_from.encode() + b"\r\n")
            message.write(b"X-Envelope-To: " + ",".join(envelope.rcpt_tos).encode() + b"\r\n")
            message.write(b"X-TLS: " + (b"yes" if session.ssl else b"no") + b"\r\n")
            message.write(envelope.original_content)
        os.rename(partial, os.path.join(self.folder, name))
        return "250 OK: saved"


def password_check(user, password):
    def check(server, session, envelope, mechanism, auth_data):
        valid = (
            isinstance(auth_data, LoginPassword)
            and auth_data.login.decode() == user
            and auth_data.password.decode() == password
        )
        return AuthResult(success=valid, handled=False)

    return check


def main():
    # A Swift test process ignores or blocks SIGTERM (ServiceLifecycle handles it); children inherit both.
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, [signal.SIGTERM])
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--folder", required=True)
    parser.add_argument("--user", required=True)
    parser.add_argument("--password", required=True)
    parser.add_argument("--delay", type=float, default=0)
    parser.add_argument("--plain", action="store_true")
    options = parser.parse_args()

    os.makedirs(options.folder, exist_ok=True)
    cert = os.path.join(options.folder, "cert.pem")
    key = os.path.join(options.folder, "key.pem")
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", key, "-out", cert, "-days", "1",
         "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1"],
        check=True, capture_output=True)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)

    handler = SaveToFolder(options.folder, options.delay)
    if options.plain:
        controller = Controller(handler, hostname="127.0.0.1", port=options.port)
    else:
        controller = Controller(
            handler, hostname="127.0.0.1", port=options.port,
            tls_context=context, require_starttls=True,
            authenticator=password_check(options.user, options.password), auth_required=True, auth_require_tls=True)
    controller.start()
    open(os.path.join(options.folder, "ready"), "w").close()
    print("ready", flush=True)
    try:
        # Until the test closes standard input or kills the process.
        sys.stdin.read()
    finally:
        controller.stop()


if __name__ == "__main__":
    main()
