"""Readiness probes in every layer: 200 once every issuer's keys can serve, 503 before."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from flask import Flask
from starlette.applications import Starlette
from starlette.routing import Route
from starlette.testclient import TestClient

from apiguard import ConfigurationError
from apiguard.asgi import readiness_endpoint
from apiguard.fastapi import readiness_endpoint as fastapi_readiness
from apiguard.flask import ApiGuard, readiness_view
from apiguard.testing import LocalIssuer


def flask_probe(issuer: LocalIssuer) -> Callable[[], httpx.Response | Any]:
    app = Flask(__name__)
    ApiGuard(app, validator=issuer.validator())
    app.add_url_rule("/ready", view_func=readiness_view)
    client = app.test_client()
    return lambda: client.get("/ready")


def starlette_probe(issuer: LocalIssuer) -> Callable[[], httpx.Response | Any]:
    app = Starlette(routes=[Route("/ready", readiness_endpoint(issuer.async_validator()))])
    client = TestClient(app)
    return lambda: client.get("/ready")


def fastapi_probe(issuer: LocalIssuer) -> Callable[[], httpx.Response | Any]:
    app = FastAPI()
    app.add_route("/ready", fastapi_readiness(issuer.async_validator()))
    client = TestClient(app)
    return lambda: client.get("/ready")


LAYERS = [
    pytest.param(flask_probe, id="flask"),
    pytest.param(starlette_probe, id="starlette"),
    pytest.param(fastapi_probe, id="fastapi"),
]


def body(response: Any) -> Any:
    return response.get_json() if hasattr(response, "get_json") else response.json()


@pytest.mark.parametrize("make", LAYERS)
def test_the_first_probe_fetches_the_keys_and_answers_ready(make: Any) -> None:
    """A cold validator is warmed by the probe: 200, each issuer fresh, no-store."""
    issuer = LocalIssuer()
    probe = make(issuer)
    answer = probe()
    assert answer.status_code == 200
    assert body(answer) == {
        "status": "ready",
        "issuers": {issuer.issuer: {"state": "fresh", "keys": 1}},
    }
    assert answer.headers["Cache-Control"] == "no-store"
    probe()
    assert issuer.requests["/.well-known/jwks.json"] == 1  # fresh keys: no refetch


@pytest.mark.parametrize("make", LAYERS)
def test_missing_keys_answer_503_without_the_fetch_error(make: Any) -> None:
    """No usable keys (the JWKS is down): 503 naming the issuer as missing, not the error."""
    issuer = LocalIssuer()
    issuer.jwks_override = httpx.Response(500, text="internal detail")
    answer = make(issuer)()
    assert answer.status_code == 503
    assert body(answer) == {
        "status": "unavailable",
        "issuers": {issuer.issuer: {"state": "missing", "keys": 0}},
    }
    text = answer.get_data(as_text=True) if hasattr(answer, "get_data") else answer.text
    assert "HTTP 500" not in text


def test_stale_keys_still_serve_so_the_probe_is_ready() -> None:
    """Keys past their freshness but within max_stale keep the API ready through an outage."""
    now = [1_800_000_000.0]
    issuer = LocalIssuer(clock=lambda: now[0])
    app = Flask(__name__)
    ApiGuard(app, validator=issuer.validator())
    app.add_url_rule("/ready", view_func=readiness_view)
    client = app.test_client()
    assert client.get("/ready").status_code == 200
    issuer.jwks_override = httpx.Response(503)
    now[0] += 3600
    answer = client.get("/ready")
    assert (answer.status_code, answer.get_json()["issuers"][issuer.issuer]["state"]) == (
        200,
        "stale",
    )


def test_the_asgi_endpoint_needs_an_async_validator() -> None:
    """A sync validator is refused when the endpoint is built, not per probe."""
    with pytest.raises(ConfigurationError, match="AsyncValidator"):
        readiness_endpoint(LocalIssuer().validator())  # type: ignore[arg-type]
