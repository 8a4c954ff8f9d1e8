"""Two worker processes of each example API share the fetched keys through a real Redis.

Each worker is ``python -m examples.<api>`` on a port of its own, with
``APIGUARD_KEY_STORE`` naming a redis-server this session started; both trust an issuer
served over a loopback socket that counts how often its documents are fetched.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from apiguard.testing import LocalIssuer, serve_issuer
from examples.demo.servers import Service
from tests.e2e.workers import two_workers

pytestmark = pytest.mark.e2e

AUDIENCE = "https://organizer.example/api"
APIS = [
    "examples.flask_api",
    "examples.starlette_api",
    "examples.fastapi_api",
    "examples.django_api",
]


@pytest.fixture
def issuer() -> Iterator[LocalIssuer]:
    with serve_issuer(audience=AUDIENCE) as served:
        yield served


@pytest.fixture(params=APIS)
def workers(
    request: pytest.FixtureRequest, issuer: LocalIssuer, redis_url: str, tmp_path: Path
) -> Iterator[list[Service]]:
    """Two processes of one example API with APIGUARD_KEY_STORE set."""
    env = {"APIGUARD_ISSUER": issuer.issuer, "APIGUARD_AUDIENCE": AUDIENCE}
    env["APIGUARD_KEY_STORE"] = redis_url
    with two_workers(request.param, env, tmp_path) as started:
        yield started


def test_the_second_worker_fetches_nothing(workers: list[Service], issuer: LocalIssuer) -> None:
    """The first worker fetches the JWKS; the second validates with the keys from Redis.

    (Discovery is not counted: the FastAPI example also reads it for its OpenAPI document.)
    """
    headers = {"Authorization": f"Bearer {issuer.token(scope='read:appointments')}"}
    for worker in workers:
        answer = httpx.get(f"{worker.url}/api/appointments", headers=headers, timeout=10)
        assert answer.status_code == 200, answer.text
    assert issuer.requests["/.well-known/jwks.json"] == 1
