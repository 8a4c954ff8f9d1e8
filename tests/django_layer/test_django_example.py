"""The Django Organizer API in-process: each route's protection, and a bad body's answer."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from django.test import Client, override_settings

from apiguard import django as dj
from apiguard.testing import LocalIssuer
from examples.django_api import settings as example

AUDIENCE = "https://organizer.example/api"


@pytest.fixture
def client(local_issuer_factory: Any) -> Iterator[tuple[Client, LocalIssuer]]:
    """A client for the example's URLs, protected as its settings say, by a local issuer."""
    issuer: LocalIssuer = local_issuer_factory(audience=AUDIENCE)
    # The layer's own settings; the validator's come from the issuer (DPoP stays off).
    own = {k.lower(): v for k, v in example.APIGUARD.items() if k in ("EXCLUDE_PATHS",)}
    own["resource"] = AUDIENCE
    with override_settings(ROOT_URLCONF=example.ROOT_URLCONF), dj.use_issuer(issuer, **own):
        yield Client(), issuer


def bearer(issuer: LocalIssuer, scope: str = "") -> dict[str, str]:
    return {"HTTP_AUTHORIZATION": f"Bearer {issuer.token(scope=scope)}"}


@pytest.mark.parametrize(
    ("method", "path", "scope", "status"),
    [
        pytest.param("get", "/api/public", None, 200, id="public"),
        pytest.param("get", "/api/private", None, 401, id="private-anonymous"),
        pytest.param("get", "/api/private", "", 200, id="private-token"),
        pytest.param("get", "/api/appointments", "read:tasks", 403, id="appointments-scope"),
        pytest.param("get", "/api/appointments", "read:appointments", 200, id="appointments"),
        pytest.param("post", "/api/appointments", "read:appointments", 403, id="create-scope"),
        pytest.param("get", "/api/contacts", "read:contacts", 200, id="contacts"),
        pytest.param("get", "/api/tasks", "read:contacts", 403, id="tasks-scope"),
        pytest.param("delete", "/api/appointments", "read:appointments", 405, id="no-delete"),
        pytest.param("delete", "/api/appointments/1", "delete:appointments", 403, id="no-role"),
        pytest.param("get", "/api/security", "", 401, id="no-step-up"),
    ],
)
def test_each_route_asks_for_its_scope(
    client: tuple[Client, LocalIssuer], method: str, path: str, scope: str | None, status: int
) -> None:
    """Every route answers as the other Organizer examples do for the same token."""
    http, issuer = client
    headers = bearer(issuer, scope) if scope is not None else {}
    assert getattr(http, method)(path, **headers).status_code == status


def test_metadata_names_the_organizer_api(client: tuple[Client, LocalIssuer]) -> None:
    """The example serves its RFC 9728 metadata, with the scopes its views declare."""
    http, issuer = client
    document = http.get("/.well-known/oauth-protected-resource/api").json()
    assert document["resource"] == AUDIENCE
    assert document["authorization_servers"] == [issuer.issuer]
    assert document["scopes_supported"] == [
        "create:appointments",
        "delete:appointments",
        "read:appointments",
        "read:contacts",
        "read:tasks",
    ]
    refused = http.get("/api/private")
    assert refused.headers["WWW-Authenticate"].endswith(
        'resource_metadata="https://organizer.example/.well-known/oauth-protected-resource/api"'
    )


def test_public_route_ignores_a_bad_token(client: tuple[Client, LocalIssuer]) -> None:
    """The public route is not inspected: a broken token still gets the public answer."""
    http, _ = client
    assert http.get("/api/public", HTTP_AUTHORIZATION="Bearer a.b.c").status_code == 200


def test_creating_an_appointment(client: tuple[Client, LocalIssuer]) -> None:
    """A good body is stored (201); a bad one gets the examples' invalid_body answer."""
    http, issuer = client
    headers = bearer(issuer, "create:appointments read:appointments")
    created = http.post(
        "/api/appointments",
        {"title": "Dentist again", "at": "2026-12-24T10:00:00Z"},
        content_type="application/json",
        **headers,
    )
    assert created.status_code == 201
    assert created.json()["title"] == "Dentist again"
    bad = http.post("/api/appointments", "[]", content_type="application/json", **headers)
    assert bad.status_code == 400
    assert bad.json()["error"] == "invalid_body"
