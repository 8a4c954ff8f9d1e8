"""A real redis-server for the tests: started on a free loopback port, stopped afterwards.

Never a Redis that happens to run on the machine: each session starts its own, without
persistence, in a temporary directory. ``scripts/install-redis`` (run by ``scripts/test``)
installs Debian's package when it is missing; without it the Redis tests are skipped,
except in CI, where a missing server is a failure.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def _answers(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5) as conn:
            conn.sendall(b"PING\r\n")
            return conn.recv(16).startswith(b"+PONG")
    except OSError:
        return False


@contextlib.contextmanager
def running_redis(workdir: Path) -> Iterator[str]:
    """Run redis-server on 127.0.0.1 and a free port; yield its ``redis://`` URL.

    Skips the test when the server is not installed (fails in CI).
    """
    binary = shutil.which("redis-server")
    if binary is None:
        message = "redis-server is not installed (scripts/install-redis installs it)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    with redis_process(binary, workdir) as url:
        yield url


@contextlib.contextmanager
def redis_process(binary: str, workdir: Path) -> Iterator[str]:
    """Run ``binary`` (a redis-server) until the block ends; yield its URL."""
    for _attempt in range(5):  # the free port may be taken between the probe and the bind
        port = _free_port()
        options = {
            "bind": "127.0.0.1",
            "port": str(port),
            "save": "",
            "appendonly": "no",
            "dir": str(workdir),
            "daemonize": "no",
            "loglevel": "warning",
        }
        arguments = [part for name, value in options.items() for part in (f"--{name}", value)]
        process = subprocess.Popen(
            [binary, *arguments],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        while process.poll() is None and time.monotonic() < deadline:
            if _answers(port):
                break
            time.sleep(0.05)
        if process.poll() is None and _answers(port):
            break
        process.kill()
        process.wait()
    else:
        raise RuntimeError("redis-server did not start")
    try:
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
