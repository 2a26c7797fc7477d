#!/usr/bin/env python3
"""An S3-compatible server for Strive's tests: moto's, on 127.0.0.1:PORT (path-style, any credentials).

Prints "ready" once it listens; exits when its standard input closes (the test process ended), so a
crashed test run leaves no server behind.
"""
import argparse
import sys

from moto.server import ThreadedMotoServer


def main() -> None:
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
