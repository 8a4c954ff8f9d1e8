"""examples.starlette_api: the Organizer routes in-process and over a real loopback socket."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from asgi_support import TestClient, bearer

from apiguard.testing import LocalIssuer, serve_issuer
from examples.demo.servers import Service, free_port
from examples.starlette_api.app import BAD_BODY, create_app

ROOT = Path(__file__).resolve().parents[2]
AUDIENCE = "https://organizer.example/api"
PUBLIC = {
    "message": "Hello from a public endpoint! You don't need to be authenticated to see this."
}
PRIVATE = "Hello from a private endpoint! You need to be authenticated to see this."
APPOINTMENTS = [
    {"id": 1, "title": "Dentist", "at": "2026-12-01T09:00:00Z"},
    {"id": 2, "title": "Team sync", "at": "2026-12-02T14:30:00Z"},
]
CONTACTS = [{"id": 1, "name": "Ada Lovelace", "email": "ada@example.com"}]
TASKS = [{"id": 1, "title": "Buy milk", "done": False}]
NEW = {"title": "Haircut", "at": "2026-12-03T10:00:00Z"}

# (method, path, scope granted, JSON body sent, status, JSON body answered)
ROUTES = [
    pytest.param("GET", "/api/public", None, None, 200, PUBLIC, id="public-no-token"),
    pytest.param(
        "GET",
        "/api/private",
        "",
        None,
        200,
        {"message": PRIVATE, "subject": "auth0|ada"},
        id="private-any-token",
    ),
    pytest.param(
        "GET",
        "/api/appointments",
        "read:appointments",
        None,
        200,
        {"appointments": APPOINTMENTS},
        id="appointments-read",
    ),
    pytest.param(
        "POST",
        "/api/appointments",
        "create:appointments",
        NEW,
        201,
        {"id": 3, **NEW},
        id="appointments-create",
    ),
    pytest.param(
        "GET", "/api/contacts", "read:contacts", None, 200, {"contacts": CONTACTS}, id="contacts"
    ),
    pytest.param("GET", "/api/tasks", "read:tasks", None, 200, {"tasks": TASKS}, id="tasks"),
]

# (method, path, token maker, status, error)
REFUSALS = [
    pytest.param("GET", "/api/private", lambda i: None, 401, None, id="private-no-token"),
    pytest.param(
        "GET",
        "/api/appointments",
        lambda i: i.token(scope="read:contacts"),
        403,
        "insufficient_scope",
        id="appointments-missing-scope",
    ),
    pytest.param(
        "POST",
        "/api/appointments",
        lambda i: i.token(scope="read:appointments"),
        403,
        "insufficient_scope",
        id="create-needs-create-scope",
    ),
    pytest.param(
        "GET",
        "/api/tasks",
        lambda i: i.token(scope="read:tasks", expires_in=-120),
        401,
        "invalid_token",
        id="expired",
    ),
    pytest.param(
        "GET",
        "/api/contacts",
        lambda i: i.token(scope="read:contacts", aud="https://other.example/api"),
        401,
        "invalid_token",
        id="wrong-audience",
    ),
    pytest.param(
        "GET",
        "/api/contacts",
        lambda i: _forged(i, "read:contacts"),
        401,
        "invalid_token",
        id="forged",
    ),
]


def _forged(issuer: LocalIssuer, scope: str) -> str:
    """A token signed for no scope whose payload was then swapped for one with ``scope``."""
    header, _, signature = issuer.token(scope="").split(".")
    claims = json.dumps(issuer.claims(scope=scope)).encode()
    return f"{header}.{base64.urlsafe_b64encode(claims).rstrip(b'=').decode()}.{signature}"


def _call(
    client: httpx.Client | TestClient,
    issuer: LocalIssuer,
    method: str,
    path: str,
    token: str | None,
    body: Any = None,
) -> httpx.Response:
    headers = bearer(token) if token is not None else {}
    return client.request(method, path, headers=headers, json=body)


# -- in-process -------------------------------------------------------------------------------


@pytest.fixture
def organizer_issuer(local_issuer_factory: Callable[..., LocalIssuer]) -> LocalIssuer:
    """A local issuer minting tokens for the Organizer API."""
    return local_issuer_factory(audience=AUDIENCE)


@pytest.fixture
def app_client(organizer_issuer: LocalIssuer) -> Iterator[TestClient]:
    """The example app in-process, validating with the local issuer."""
    app = create_app(validator=organizer_issuer.async_validator())
    with TestClient(app) as client:
        yield client


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
    """Each route answers its status and body to a token with its scope."""
    token = None if scope is None else organizer_issuer.token(scope=scope, sub="auth0|ada")
    response = _call(app_client, organizer_issuer, method, path, token, body)
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
    response = _call(app_client, organizer_issuer, method, path, make_token(organizer_issuer))
    assert response.status_code == status
    assert response.json().get("error") == error
    assert response.headers["www-authenticate"].startswith("Bearer")


def test_created_appointment_is_listed(
    app_client: TestClient, organizer_issuer: LocalIssuer
) -> None:
    """An appointment created by POST shows up in the list, with the next id."""
    token = organizer_issuer.token(scope="read:appointments create:appointments")
    created = _call(app_client, organizer_issuer, "POST", "/api/appointments", token, NEW)
    listed = _call(app_client, organizer_issuer, "GET", "/api/appointments", token)
    assert created.status_code == 201
    assert listed.json() == {"appointments": [*APPOINTMENTS, {"id": 3, **NEW}]}


@pytest.mark.parametrize(
    "content",
    [
        pytest.param(b"not json", id="not-json"),
        pytest.param(b"\xff\xfe", id="not-utf8"),
        pytest.param(b"[]", id="array"),
        pytest.param(b'{"at": "2026-12-03T10:00:00Z"}', id="no-title"),
        pytest.param(b'{"title": "", "at": "2026-12-03T10:00:00Z"}', id="empty-title"),
        pytest.param(b'{"title": 7, "at": "2026-12-03T10:00:00Z"}', id="title-not-string"),
        pytest.param(
            json.dumps({"title": "x" * 201, "at": "2026-12-03T10:00:00Z"}).encode(),
            id="title-too-long",
        ),
        pytest.param(b'{"title": "Haircut"}', id="no-at"),
        pytest.param(b'{"title": "Haircut", "at": "tomorrow"}', id="at-not-a-date"),
        pytest.param(b'{"title": "Haircut", "at": 1800000000}', id="at-a-number"),
    ],
)
def test_bad_appointment_body_is_400(
    app_client: TestClient, organizer_issuer: LocalIssuer, content: bytes
) -> None:
    """A POST body that is not a valid appointment gets 400 with a JSON error."""
    response = app_client.post(
        "/api/appointments",
        content=content,
        headers={
            **bearer(organizer_issuer.token(scope="create:appointments")),
            "Content-Type": "application/json",
        },
    )
    assert (response.status_code, response.json()) == (400, BAD_BODY)


def test_public_route_ignores_a_bad_token(app_client: TestClient) -> None:
    """The public route answers 200 even when a garbage token is sent."""
    response = app_client.get("/api/public", headers=bearer("garbage"))
    assert (response.status_code, response.json()) == (200, PUBLIC)


# -- over a real socket -----------------------------------------------------------------------


@pytest.fixture(scope="module")
def live(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[httpx.Client, LocalIssuer]]:
    """The example started as ``python -m examples.starlette_api`` against a local issuer."""
    with serve_issuer(audience=AUDIENCE) as issuer:
        env = {"APIGUARD_ISSUER": issuer.issuer, "APIGUARD_AUDIENCE": AUDIENCE}
        service = Service(
            "Starlette API", "examples.starlette_api", free_port(), "/api/public", env
        )
        try:
            service.start(tmp_path_factory.mktemp("starlette_api"), timeout=20)
            with httpx.Client(base_url=service.url) as client:
                yield client, issuer
        finally:
            service.stop()
    # A clean shutdown runs the lifespan, which closes the validator's HTTP client.
    log = service.log_tail(lines=200)
    assert service.process is not None
    assert service.process.returncode == 0, log
    assert "Application shutdown complete" in log
    assert "Traceback" not in log
    assert "ERROR" not in log


@pytest.mark.e2e
@pytest.mark.parametrize(("method", "path", "scope", "body", "status", "answer"), ROUTES)
def test_routes_over_a_socket(
    live: tuple[httpx.Client, LocalIssuer],
    method: str,
    path: str,
    scope: str | None,
    body: Any,
    status: int,
    answer: dict[str, Any],
) -> None:
    """Over a real socket each route answers its status and body to a token with its scope."""
    client, issuer = live
    token = None if scope is None else issuer.token(scope=scope, sub="auth0|ada")
    response = _call(client, issuer, method, path, token, body)
    if method == "POST":
        # Ids count up per process; the module's other tests may have created some.
        assert response.json().pop("id") >= 3
        answer = {k: v for k, v in answer.items() if k != "id"}
        assert {k: v for k, v in response.json().items() if k != "id"} == answer
        assert response.status_code == status
        return
    assert (response.status_code, response.json()) == (status, answer)


@pytest.mark.e2e
@pytest.mark.parametrize(("method", "path", "make_token", "status", "error"), REFUSALS)
def test_refusals_over_a_socket(
    live: tuple[httpx.Client, LocalIssuer],
    method: str,
    path: str,
    make_token: Callable[[LocalIssuer], str | None],
    status: int,
    error: str | None,
) -> None:
    """Over a real socket bad tokens get their status, challenge and JSON error."""
    client, issuer = live
    response = _call(client, issuer, method, path, make_token(issuer))
    assert response.status_code == status
    assert response.json().get("error") == error
    challenge = response.headers["www-authenticate"]
    assert challenge.startswith("Bearer")
    assert (f'error="{error}"' in challenge) == (error is not None)


@pytest.mark.e2e
def test_keys_fetched_once_over_the_socket(live: tuple[httpx.Client, LocalIssuer]) -> None:
    """The running example fetched the issuer's discovery document and keys at most once."""
    client, issuer = live
    response = client.get("/api/private", headers=bearer(issuer.token()))
    assert response.status_code == 200
    assert issuer.requests["/.well-known/jwks.json"] == 1
    assert issuer.requests["/.well-known/openid-configuration"] == 1
