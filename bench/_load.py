"""A bounded HTTP/1.1 load generator over keep-alive loopback connections (asyncio only).

Each connection sends its requests one after the other and reads each answer before the
next (no pipelining), as a client pool would. The run stops after ``total`` requests or
``max_seconds``, whichever comes first, so a slow server cannot hold the benchmark.
"""

from __future__ import annotations

import asyncio
import socket
import subprocess
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field


@dataclass
class LoadResult:
    """What one run measured."""

    requests: int
    seconds: float
    statuses: Counter[int] = field(default_factory=Counter)

    @property
    def per_second(self) -> float:
        """Answered requests per second."""
        return self.requests / self.seconds if self.seconds else 0.0


def request_bytes(
    port: int,
    path: str = "/",
    *,
    method: str = "GET",
    headers: Sequence[tuple[str, str]] = (),
    body: bytes = b"",
) -> bytes:
    """One HTTP/1.1 request, ready to write."""
    lines = [f"{method} {path} HTTP/1.1", f"Host: 127.0.0.1:{port}"]
    lines += [f"{name}: {value}" for name, value in headers]
    if body or method == "POST":
        lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


async def _read_answer(reader: asyncio.StreamReader) -> tuple[int, bool]:
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split(" ", 2)[1])
    length, close = 0, False
    for line in lines[1:]:
        name, _, value = line.partition(":")
        name = name.strip().lower()
        if name == "content-length":
            length = int(value)
        elif name == "connection" and value.strip().lower() == "close":
            close = True
        elif name == "transfer-encoding":
            raise RuntimeError("chunked answers are not expected from the benchmark apps")
    await reader.readexactly(length)
    return status, close


async def _run(
    port: int,
    make_request: Callable[[int], bytes],
    *,
    connections: int,
    total: int,
    max_seconds: float,
) -> LoadResult:
    counter = iter(range(total))
    statuses: Counter[int] = Counter()
    deadline = time.perf_counter() + max_seconds

    async def worker() -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        try:
            for index in counter:
                if time.perf_counter() > deadline:
                    return
                writer.write(make_request(index))
                status, close = await _read_answer(reader)
                statuses[status] += 1
                if close:  # the server ended keep-alive: open a new connection
                    writer.close()
                    reader, writer = await asyncio.open_connection("127.0.0.1", port)
        finally:
            writer.close()

    start = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(connections)))
    elapsed = time.perf_counter() - start
    return LoadResult(sum(statuses.values()), elapsed, statuses)


def run_load(
    port: int,
    make_request: Callable[[int], bytes],
    *,
    connections: int = 8,
    total: int = 4000,
    max_seconds: float = 10.0,
) -> LoadResult:
    """Send ``total`` requests (``make_request(i)`` for the i-th) over ``connections``."""
    return asyncio.run(
        _run(port, make_request, connections=connections, total=total, max_seconds=max_seconds)
    )


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nobody listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def wait_for_port(port: int, process: subprocess.Popen[bytes], timeout: float = 30.0) -> None:
    """Wait until something accepts connections on ``port``; fail if ``process`` died."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"server exited with status {process.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise TimeoutError(f"nothing listens on port {port} after {timeout} s")


def stop(process: subprocess.Popen[bytes]) -> None:
    """Stop a server process started by the benchmark."""
    process.terminate()
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
