"""64 worker processes share a real Redis key store: one fetch per document, one per rotation.

The workers (tests/e2e/key_store_pool.py) are real OS processes, forked as a pre-fork
server forks them, each with its own validator, trusting an issuer served over a loopback
socket whose request counter says how often it was asked for its documents.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from apiguard.testing import LocalIssuer, serve_issuer

pytestmark = pytest.mark.e2e

WORKERS = 64
AUDIENCE = "https://organizer.example/api"
POOL = Path(__file__).with_name("key_store_pool.py")


class Pool:
    """The worker processes, driven over their pool's stdin and stdout."""

    def __init__(self, process: subprocess.Popen[str]) -> None:
        self.process = process

    def validate(self, token: str, workers: range | list[int]) -> list[str]:
        """Hand ``token`` to these workers at once; what each answered."""
        assert self.process.stdin is not None
        assert self.process.stdout is not None
        self.process.stdin.write(json.dumps({"token": token, "workers": list(workers)}) + "\n")
        self.process.stdin.flush()
        answers: list[str] = json.loads(self.process.stdout.readline())["answers"]
        return answers


@pytest.fixture
def issuer() -> Iterator[LocalIssuer]:
    with serve_issuer(audience=AUDIENCE) as served:
        yield served


@pytest.fixture
def pool(issuer: LocalIssuer, redis_url: str) -> Iterator[Pool]:
    """WORKERS processes with a key store on the session's Redis (a prefix of their own)."""
    prefix = f"test-pool-{time.monotonic_ns()}:"
    arguments = [str(WORKERS), issuer.issuer, AUDIENCE, redis_url, prefix]
    with subprocess.Popen(
        [sys.executable, str(POOL), *arguments],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    ) as process:
        try:
            assert process.stdout is not None
            assert process.stdout.readline().strip() == "ready"
            yield Pool(process)
        finally:
            assert process.stdin is not None
            process.stdin.close()  # the pool's workers stop at the end of its input
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()


def fetches(issuer: LocalIssuer) -> tuple[int, int]:
    """How often the issuer was asked for discovery and for its JWKS."""
    return (
        issuer.requests["/.well-known/openid-configuration"],
        issuer.requests["/.well-known/jwks.json"],
    )


def test_workers_fetch_once_per_rotation(pool: Pool, issuer: LocalIssuer) -> None:
    """64 cold workers handed a token at once fetch each document once between them; a
    rotation, met by all of them at once, is one more JWKS fetch, not 64."""
    token = issuer.token()
    assert pool.validate(token, range(WORKERS)) == ["ok"] * WORKERS
    assert fetches(issuer) == (1, 1)

    time.sleep(1.1)  # the fetching worker's cooldown (1 s in the pool) is over
    issuer.rotate()
    rotated = issuer.token()
    assert pool.validate(rotated, range(WORKERS)) == ["ok"] * WORKERS
    assert fetches(issuer) == (1, 2)
    # Tokens of the previous key still pass everywhere (it is still published), and a
    # worker alone meets nothing new.
    assert pool.validate(token, range(WORKERS)) == ["ok"] * WORKERS
    assert pool.validate(rotated, [0]) == ["ok"]
    assert fetches(issuer) == (1, 2)
