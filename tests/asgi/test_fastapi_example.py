"""examples.fastapi_api: the Starlette example's route tables, in-process and over a socket."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
from asgi_support import TestClient, bearer
from test_starlette_example import APPOINTMENTS, NEW, PUBLIC, REFUSALS, ROUTES

from apiguard.testing import LocalIssuer, serve_issuer
from examples.demo.servers import Service, free_port
from examples.fastapi_api.app import BAD_BODY, create_app

AUDIENCE = "https://organizer.example/api"


@pytest.fixture
def organizer_issuer(local_issuer_factory: Callable[..., LocalIssuer]) -> LocalIssuer:
    """A local issuer minting tokens for the Organizer API."""
    return local_issuer_factory(audience=AUDIENCE)


@pytest.fixture
def app_client(organizer_issuer: LocalIssuer) -> Iterator[TestClient]:
    """The example app in-process, validating with the local issuer."""
    with TestClient(create_app(validator=organizer_issuer.async_validator())) as client:
        yield client


def _call(client: Any, method: str, path: str, token: str | None, body: Any = None) -> Any:
    headers = bearer(token) if token is not None else {}
    return client.request(method, path, headers=headers, json=body)


@pytest.mark.parametrize(("method", "path", "scope", "body", "status", "answer"), ROUTES)
def test_routes_answer_in_process(
    app_client: TestClient,
    organizer_issuer: LocalIssuer,
    method: str,
    path: str,
    scope: str | None,
    body: Any,
    status: int,
    answer: dict[str, Any],
) -> None:
    """Each route answers the Starlette example's status and body to a token with its scope."""
    token = None if scope is None else organizer_issuer.token(scope=scope, sub="auth0|ada")
    response = _call(app_client, method, path, token, body)
    assert (response.status_code, response.json()) == (status, answer)


@pytest.mark.parametrize(("method", "path", "make_token", "status", "error"), REFUSALS)
def test_refusals_in_process(
    app_client: TestClient,
    organizer_issuer: LocalIssuer,
    method: str,
    path: str,
    make_token: Callable[[LocalIssuer], str | None],
    status: int,
    error: str | None,
) -> None:
    """Missing, insufficient, expired, foreign and forged tokens get their RFC 6750 answer."""
    response = _call(app_client, method, path, make_token(organizer_issuer))
    assert response.status_code == status
    assert response.json().get("error") == error
    challenge = response.headers["www-authenticate"]
    assert challenge.startswith('Bearer realm="https://organizer.example/api"')
    assert (f'error="{error}"' in challenge) == (error is not None)


def test_created_appointment_is_listed(
    app_client: TestClient, organizer_issuer: LocalIssuer
) -> None:
    """An appointment created by POST shows up in the list, with the next id."""
    token = organizer_issuer.token(scope="read:appointments create:appointments")
    created = _call(app_client, "POST", "/api/appointments", token, NEW)
    listed = _call(app_client, "GET", "/api/appointments", token)
    assert created.status_code == 201
    assert listed.json() == {"appointments": [*APPOINTMENTS, {"id": 3, **NEW}]}


@pytest.mark.parametrize(
    "content",
    [
        pytest.param(b"not json", id="not-json"),
        pytest.param(b"\xff\xfe", id="not-utf8"),
        pytest.param(b"[]", id="array"),
        pytest.param(b'{"title": 7, "at": "2026-12-03T10:00:00Z"}', id="title-not-string"),
        pytest.param(b'{"title": "Haircut", "at": "tomorrow"}', id="at-not-a-date"),
    ],
)
def test_bad_appointment_body_is_400_not_422(
    app_client: TestClient, organizer_issuer: LocalIssuer, content: bytes
) -> None:
    """A bad POST body gets the other examples' 400 JSON error, not FastAPI's 422."""
    headers = {
        **bearer(organizer_issuer.token(scope="create:appointments")),
        "Content-Type": "application/json",
    }
    response = app_client.post("/api/appointments", content=content, headers=headers)
    assert (response.status_code, response.json()) == (400, BAD_BODY)


def test_bad_body_without_the_scope_is_403(
    app_client: TestClient, organizer_issuer: LocalIssuer
) -> None:
    """The scope is checked before the body is read, as in the other examples."""
    headers = bearer(organizer_issuer.token(scope="read:appointments"))
    response = app_client.post("/api/appointments", content=b"garbage", headers=headers)
    assert response.status_code == 403


def test_public_route_ignores_a_bad_token(app_client: TestClient) -> None:
    """The public route answers 200 even when a garbage token is sent."""
    response = app_client.get("/api/public", headers=bearer("garbage"))
    assert (response.status_code, response.json()) == (200, PUBLIC)


def test_openapi_names_the_scopes_of_each_route(app_client: TestClient) -> None:
    """The OpenAPI document marks each protected route with its scopes, the public one not."""
    paths = app_client.get("/openapi.json").json()["paths"]
    assert "security" not in paths["/api/public"]["get"]
    assert paths["/api/private"]["get"]["security"] == [{"bearerAuth": []}]
    assert paths["/api/appointments"]["post"]["security"] == [
        {"bearerAuth": ["create:appointments"]}
    ]


@pytest.mark.e2e
def test_runs_as_a_module_and_stops_cleanly(tmp_path_factory: pytest.TempPathFactory) -> None:
    """``python -m examples.fastapi_api`` serves the routes on its PORT and shuts down cleanly."""
    with serve_issuer(audience=AUDIENCE) as issuer:
        env = {"APIGUARD_ISSUER": issuer.issuer, "APIGUARD_AUDIENCE": AUDIENCE}
        service = Service("FastAPI API", "examples.fastapi_api", free_port(), "/api/public", env)
        try:
            service.start(tmp_path_factory.mktemp("fastapi_api"), timeout=20)
            with httpx.Client(base_url=service.url) as client:
                token = issuer.token(scope="read:tasks", sub="auth0|ada")
                tasks = client.get("/api/tasks", headers=bearer(token))
                refused = client.get("/api/contacts", headers=bearer(token))
        finally:
            service.stop()
    assert tasks.status_code == 200
    assert refused.status_code == 403
    log = service.log_tail(lines=200)
    assert service.process is not None
    assert service.process.returncode == 0, log
    assert "Application shutdown complete" in log
    assert "Traceback" not in log
