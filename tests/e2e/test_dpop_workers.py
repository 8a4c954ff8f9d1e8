"""Two worker processes of one example API share a real Redis: a proof is accepted once.

Each worker is ``python -m examples.<api>`` on a port of its own, with
``APIGUARD_DPOP=required`` and ``APIGUARD_REPLAY_STORE`` naming a redis-server this session
started; both trust a local issuer served over a real socket. Requests carry the same
``Host``, as a load balancer in front of both would pass it, so a proof names the same URI
at either worker: one accepted by the first is refused by the second.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from apiguard.testing import DPoPKey, LocalIssuer, serve_issuer
from examples.demo.servers import Service, free_port
from tests.e2e.workers import two_workers

pytestmark = pytest.mark.e2e

AUDIENCE = "https://organizer.example/api"
HOST = "api.organizer.test"
URL = f"http://{HOST}/api/appointments"


@pytest.fixture(scope="module")
def issuer() -> Iterator[LocalIssuer]:
    """A local issuer on a loopback port, which the worker processes fetch keys from."""
    with serve_issuer(audience=AUDIENCE) as served:
        yield served


@pytest.fixture(scope="module", params=["examples.starlette_api", "examples.flask_api"])
def workers(
    request: pytest.FixtureRequest,
    issuer: LocalIssuer,
    redis_url: str,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[list[Service]]:
    """Two processes of one example API, sharing the Redis replay store."""
    env = {
        "APIGUARD_ISSUER": issuer.issuer,
        "APIGUARD_AUDIENCE": AUDIENCE,
        "APIGUARD_DPOP": "required",
        "APIGUARD_REPLAY_STORE": redis_url,
    }
    module: str = request.param
    logs: Path = tmp_path_factory.mktemp("workers")
    with two_workers(module, env, logs) as started:
        yield started


def _get(worker: Service, token: str, proof: str) -> httpx.Response:
    headers = {"Host": HOST, "Authorization": f"DPoP {token}", "DPoP": proof}
    return httpx.get(f"{worker.url}/api/appointments", headers=headers, timeout=10)


def test_a_proof_accepted_by_one_worker_is_refused_by_the_other(
    workers: list[Service], issuer: LocalIssuer
) -> None:
    """The second worker sees the first one's jti in Redis: 401 dpop_proof_replayed."""
    first, second = workers
    key = DPoPKey()
    token = issuer.token(dpop_key=key, scope="read:appointments")
    proof = key.proof("GET", URL, access_token=token)
    accepted = _get(first, token, proof)
    assert accepted.status_code == 200, accepted.text
    replayed = _get(second, token, proof)
    assert replayed.status_code == 401
    assert replayed.json() == {
        "error": "invalid_dpop_proof",
        "error_description": "The DPoP proof was already used",
    }
    assert replayed.headers["www-authenticate"].startswith("DPoP ")
    # Each worker still takes fresh proofs, and refuses its own replays too.
    fresh = key.proof("GET", URL, access_token=token)
    assert _get(second, token, fresh).status_code == 200
    assert _get(second, token, fresh).status_code == 401
    assert _get(first, token, fresh).status_code == 401


def test_a_worker_without_its_redis_answers_503(
    workers: list[Service], issuer: LocalIssuer, tmp_path: Path
) -> None:
    """A worker whose Redis is unreachable refuses with 503 and never accepts the proof."""
    dead = Service(
        "worker without redis",
        workers[0].module,
        free_port(),
        "/api/public",
        {
            **workers[0].env,
            "APIGUARD_REPLAY_STORE": f"redis://127.0.0.1:{free_port()}/0",
        },
    )
    dead.start(tmp_path)
    try:
        key = DPoPKey()
        token = issuer.token(dpop_key=key, scope="read:appointments")
        answer = _get(dead, token, key.proof("GET", URL, access_token=token))
        assert answer.status_code == 503
        assert "retry-after" in answer.headers
    finally:
        dead.stop()
