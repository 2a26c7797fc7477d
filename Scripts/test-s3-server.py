#!/usr/bin/env python3
"""An S3-compatible server for Strive's tests: moto's, on 127.0.0.1:PORT (path-style, any credentials).

Prints "ready" once it listens; exits on SIGTERM, when its standard input closes or when its parent is
gone, so a crashed test run leaves no server behind.
"""
import argparse
import os
import signal
import sys
import threading
import time

from moto.server import ThreadedMotoServer


def exit_when_orphaned() -> None:
    parent = os.getppid()
    while os.getppid() == parent:
        time.sleep(1)
    os._exit(0)


def main() -> None:
    # A Swift test process ignores or blocks SIGTERM (ServiceLifecycle handles it); children inherit both.
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, [signal.SIGTERM])
    threading.Thread(target=exit_when_orphaned, daemon=True).start()
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    options = parser.parse_args()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=options.port, verbose=False)
    server.start()
    print("ready", flush=True)
    try:
        sys.stdin.read()
    finally:
        server.stop()


if __name__ == "__main__":
    main()
