"""Run a command with a Redis reachable at 127.0.0.1:6379, starting a private one if none is.

Usage: python .ci/with_redis.py COMMAND [ARG ...]. A Redis this script starts keeps nothing on
disk and is stopped when the command ends; the command's exit code is passed on.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import sys
import tempfile
import time

HOST, PORT = "127.0.0.1", 6379


def redis_answers() -> bool:
    """Whether something answers PING with PONG on HOST:PORT."""
    try:
        with socket.create_connection((HOST, PORT), timeout=1) as sock:
            sock.sendall(b"PING\r\n")
            return sock.recv(64).startswith(b"+PONG")
    except OSError:
        return False


def start_redis() -> subprocess.Popen[bytes]:
    """Start a throwaway redis-server on HOST:PORT and wait until it answers."""
    binary = shutil.which("redis-server")
    if binary is None:
        sys.exit(
            "error: no Redis answers on 127.0.0.1:6379 and redis-server is not installed "
            "(install it, e.g. `apt-get install redis-server`, or start a Redis there)"
        )
    workdir = tempfile.mkdtemp(prefix="zq-redis-")
    server = subprocess.Popen(
        [binary, "--bind", HOST, "--port", str(PORT), "--save", "", "--appendonly", "no",
         "--dir", workdir],
        stdout=subprocess.DEVNULL,
    )  # fmt: skip
    deadline = time.monotonic() + 15
    while not redis_answers():
        if server.poll() is not None or time.monotonic() > deadline:
            sys.exit("error: could not start redis-server on 127.0.0.1:6379")
        time.sleep(0.1)
    print(f"started a private Redis on {HOST}:{PORT}", file=sys.stderr)
    return server


def main() -> int:
    """Run the command given on the command line with a Redis available."""
    server = None if redis_answers() else start_redis()
    try:
        return subprocess.call(sys.argv[1:])
    finally:
        if server is not None:
            server.terminate()
            server.wait(timeout=10)


if __name__ == "__main__":
    sys.exit(main())
