"""The Organizer API example (examples/flask_api): in-process, and over a real socket."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from apiguard.testing import LocalIssuer, serve_issuer
from examples.demo.servers import Service, free_port
from examples.flask_api.app import DEFAULT_AUDIENCE, create_app

ROOT = Path(__file__).resolve().parents[2]

# Each protected route of the example with the scope it needs (None: any valid token).
ROUTES = [
    pytest.param("GET", "/api/private", None, id="private"),
    pytest.param("GET", "/api/appointments", "read:appointments", id="read-appointments"),
    pytest.param("POST", "/api/appointments", "create:appointments", id="create-appointment"),
    pytest.param("GET", "/api/contacts", "read:contacts", id="contacts"),
    pytest.param("GET", "/api/tasks", "read:tasks", id="tasks"),
]
NEW_APPOINTMENT = {"title": "Dentist", "at": "2030-02-01T10:00:00Z"}

METADATA_URL = "https://organizer.example/.well-known/oauth-protected-resource/api"


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def forge(token: str) -> str:
    """The token with every scope added after signing."""
    header, payload, signature = token.split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    claims["scope"] = "read:appointments create:appointments read:contacts read:tasks"
    forged = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode()
    return f"{header}.{forged}.{signature}"


def test_defaults_point_at_the_local_authorization_server(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Without environment settings the example trusts the local server's Organizer API."""
    monkeypatch.delenv("APIGUARD_ISSUER", raising=False)
    monkeypatch.delenv("APIGUARD_AUDIENCE", raising=False)
    app = create_app()
    validator = app.extensions["apiguard"].validator
    assert (validator.issuer, validator.audiences) == (
        "http://127.0.0.1:9000/",
        frozenset({"https://organizer.example/api"}),
    )
    validator.close()


def test_example_in_process(local_issuer_factory: Any) -> None:
    """create_app() takes a ready validator, so the example is testable with the test client."""
    issuer: LocalIssuer = local_issuer_factory(audience=DEFAULT_AUDIENCE)
    with issuer.validator() as validator:
        client = create_app(validator=validator).test_client()
        token = issuer.token(scope="create:appointments")
        created = client.post("/api/appointments", headers=bearer(token), json=NEW_APPOINTMENT)
        assert created.status_code == 201
        assert created.get_json() == {**NEW_APPOINTMENT, "id": 3}
        bad = client.post("/api/appointments", headers=bearer(token), json={"when": "now"})
        assert bad.status_code == 400


# -- over a real socket ----------------------------------------------------------------------


@pytest.fixture(scope="module")
def http_issuer() -> Iterator[LocalIssuer]:
    """A LocalIssuer served over HTTP on 127.0.0.1 from a thread."""
    with serve_issuer(audience=DEFAULT_AUDIENCE) as issuer:
        yield issuer


@pytest.fixture(scope="module")
def example(http_issuer: LocalIssuer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """``python -m examples.flask_api`` running on a free port; yields its base URL."""
    env = {"APIGUARD_ISSUER": http_issuer.issuer, "APIGUARD_AUDIENCE": DEFAULT_AUDIENCE}
    service = Service("Flask API", "examples.flask_api", free_port(), "/api/public", env)
    try:
        service.start(tmp_path_factory.mktemp("flask_api"), timeout=20)
        yield service.url
    finally:
        service.stop()


@pytest.fixture
def client(example: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=example, timeout=10) as http:
        yield http


def call(client: httpx.Client, method: str, path: str, token: str | None) -> httpx.Response:
    headers = bearer(token) if token is not None else {}
    body = NEW_APPOINTMENT if method == "POST" else None
    return client.request(method, path, headers=headers, json=body)


pytestmark = pytest.mark.e2e


def test_public_route_needs_no_token(client: httpx.Client) -> None:
    """GET /api/public answers 200 to anyone, over a real socket."""
    response = client.get("/api/public")
    assert response.status_code == 200
    assert "public" in response.json()["message"]


@pytest.mark.parametrize(("method", "path", "scope"), ROUTES)
def test_valid_token_per_route(
    client: httpx.Client, http_issuer: LocalIssuer, method: str, path: str, scope: str | None
) -> None:
    """Each protected route answers a valid token that has its scope with success."""
    response = call(client, method, path, http_issuer.token(scope=scope or "read:nothing"))
    assert response.status_code == (201 if method == "POST" else 200)


@pytest.mark.parametrize(("method", "path", "scope"), ROUTES)
def test_no_token_per_route(
    client: httpx.Client, method: str, path: str, scope: str | None
) -> None:
    """Each protected route answers a request without a token with 401 and a bare challenge."""
    response = call(client, method, path, None)
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"] == (
        f'Bearer realm="{DEFAULT_AUDIENCE}", resource_metadata="{METADATA_URL}"'
    )


@pytest.mark.parametrize(
    ("method", "path", "scope"), [route for route in ROUTES if route.values[2] is not None]
)
def test_missing_scope_per_route(
    client: httpx.Client, http_issuer: LocalIssuer, method: str, path: str, scope: str
) -> None:
    """Each scoped route answers a valid token without its scope with 403 naming the scope."""
    others = "read:appointments create:appointments read:contacts read:tasks".replace(scope, "")
    response = call(client, method, path, http_issuer.token(scope=others))
    assert response.status_code == 403
    assert response.headers["WWW-Authenticate"].endswith(
        f', scope="{scope}", resource_metadata="{METADATA_URL}"'
    )
    assert response.json()["scope"] == scope


@pytest.mark.parametrize(
    ("claims", "forged", "description"),
    [
        pytest.param({"expires_in": -120}, False, "The access token expired", id="expired"),
        pytest.param(
            {"aud": "https://other.example/api"},
            False,
            "The access token is not meant for this API",
            id="wrong-audience",
        ),
        pytest.param({}, True, "The access token signature is invalid", id="forged"),
    ],
)
def test_bad_tokens_are_refused(
    client: httpx.Client,
    http_issuer: LocalIssuer,
    claims: dict[str, Any],
    forged: bool,
    description: str,
) -> None:
    """An expired, foreign-audience or forged token gets 401 invalid_token from the example."""
    token = http_issuer.token(scope="read:appointments", **claims)
    response = call(client, "GET", "/api/appointments", forge(token) if forged else token)
    assert response.status_code == 401
    assert response.json() == {"error": "invalid_token", "error_description": description}
    assert response.headers["WWW-Authenticate"] == (
        f'Bearer realm="{DEFAULT_AUDIENCE}", error="invalid_token", '
        f'error_description="{description}", resource_metadata="{METADATA_URL}"'
    )
