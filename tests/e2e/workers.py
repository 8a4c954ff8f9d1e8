"""Several worker processes of one example API, as a process manager would run them."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

from examples.demo.servers import Service, free_port


@contextmanager
def two_workers(module: str, env: Mapping[str, str], logs: Path) -> Iterator[list[Service]]:
    """``python -m module`` twice, each on a free port with ``env``, logging under ``logs``.

    Both are stopped when the block ends, also when the second one fails to start.
    """
    started: list[Service] = []
    try:
        for number in (1, 2):
            service = Service(f"worker {number}", module, free_port(), "/api/public", dict(env))
            (logs / str(number)).mkdir()
            service.start(logs / str(number))
            started.append(service)
        yield started
    finally:
        for service in started:
            service.stop()
