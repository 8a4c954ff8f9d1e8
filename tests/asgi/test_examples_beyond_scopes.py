"""Every example API's two routes beyond scopes: deleting needs a role, security a step-up.

The Flask, Starlette and FastAPI examples answer each request here with the same status,
challenge and body, in-process, validating with a local issuer.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from asgi_support import TestClient

from apiguard import MULTI_FACTOR
from apiguard.testing import LocalIssuer
from examples.fastapi_api.app import create_app as fastapi_app
from examples.flask_api.app import create_app as flask_app
from examples.starlette_api.app import create_app as starlette_app

AUDIENCE = "https://organizer.example/api"
ROLES = "https://organizer.example/roles"
REALM = f'Bearer realm="{AUDIENCE}"'
#: Every challenge of the examples names their protected-resource metadata (RFC 9728).
METADATA = (
    ', resource_metadata="https://organizer.example/.well-known/oauth-protected-resource/api"'
)
Answer = tuple[int, str | None, Any]


class FlaskClient:
    def __init__(self, issuer: LocalIssuer) -> None:
        self.validator = issuer.validator()
        self.client = flask_app(validator=self.validator).test_client()

    def send(self, method: str, path: str, token: str) -> Answer:
        response = self.client.open(
            path, method=method, headers={"Authorization": f"Bearer {token}"}
        )
        body = response.get_json(silent=True) if response.data else None
        return response.status_code, response.headers.get("WWW-Authenticate"), body

    def close(self) -> None:
        self.validator.close()


class AsgiClient:
    def __init__(self, app: Any) -> None:
        self.client = TestClient(app)
        self.client.__enter__()

    def send(self, method: str, path: str, token: str) -> Answer:
        response = self.client.request(method, path, headers={"Authorization": f"Bearer {token}"})
        body = response.json() if response.content else None
        return response.status_code, response.headers.get("www-authenticate"), body

    def close(self) -> None:
        self.client.__exit__(None, None, None)


@pytest.fixture
def organizer_issuer(local_issuer_factory: Callable[..., LocalIssuer]) -> LocalIssuer:
    return local_issuer_factory(audience=AUDIENCE)


@pytest.fixture
def examples(organizer_issuer: LocalIssuer) -> Iterator[dict[str, Any]]:
    """The three example APIs, each with its own validator of the local issuer."""
    clients = {
        "flask": FlaskClient(organizer_issuer),
        "starlette": AsgiClient(starlette_app(validator=organizer_issuer.async_validator())),
        "fastapi": AsgiClient(fastapi_app(validator=organizer_issuer.async_validator())),
    }
    yield clients
    for client in clients.values():
        client.close()


def forbidden(description: str, scope: str = "") -> str:
    scope = f', scope="{scope}"' if scope else ""
    return (
        f'{REALM}, error="insufficient_scope", error_description="{description}"{scope}{METADATA}'
    )


def step_up(description: str) -> str:
    return (
        f'{REALM}, error="insufficient_user_authentication", error_description="{description}", '
        f'acr_values="{MULTI_FACTOR}", max_age="600"{METADATA}'
    )


ADMIN = {ROLES: ["organizer-admin"]}
CASES = [
    pytest.param(
        "DELETE",
        "/api/appointments/1",
        {"scope": "delete:appointments", **ADMIN},
        (204, None, None),
        id="delete-with-scope-and-role",
    ),
    pytest.param(
        "DELETE",
        "/api/appointments/99",
        {"scope": "delete:appointments", **ADMIN},
        (404, None, {"error": "not_found", "error_description": "No such appointment"}),
        id="delete-unknown",
    ),
    pytest.param(
        "DELETE",
        "/api/appointments/1",
        {"scope": "delete:appointments", ROLES: ["assistant"]},
        (
            403,
            forbidden("The access token lacks a required role"),
            {
                "error": "insufficient_scope",
                "error_description": "The access token lacks a required role",
            },
        ),
        id="delete-without-the-role",
    ),
    pytest.param(
        "DELETE",
        "/api/appointments/1",
        {"scope": "read:appointments", **ADMIN},
        (
            403,
            forbidden("The access token lacks a required scope", "delete:appointments"),
            {
                "error": "insufficient_scope",
                "error_description": "The access token lacks a required scope",
                "scope": "delete:appointments",
            },
        ),
        id="delete-role-without-the-scope",
    ),
    pytest.param(
        "DELETE",
        "/api/appointments/1",
        {
            "scope": "delete:appointments",
            "permissions": ["delete:appointments"],
            "roles": ["organizer-admin"],
        },
        (403, forbidden("The access token lacks a required role"), None),
        id="delete-role-in-another-claim",
    ),
    pytest.param(
        "GET",
        "/api/security",
        {"acr": "http://schemas.openid.net/pape/policies/2007/06/none", "auth_time": -5},
        (
            401,
            step_up("A different authentication level is required"),
            {
                "error": "insufficient_user_authentication",
                "error_description": "A different authentication level is required",
                "acr_values": MULTI_FACTOR,
                "max_age": "600",
            },
        ),
        id="security-password-only",
    ),
    pytest.param(
        "GET",
        "/api/security",
        {"acr": MULTI_FACTOR, "auth_time": -700},
        (401, step_up("More recent authentication is required"), None),
        id="security-sign-in-too-old",
    ),
    pytest.param(
        "GET",
        "/api/security",
        {"acr": MULTI_FACTOR},
        (401, step_up("More recent authentication is required"), None),
        id="security-no-auth-time",
    ),
]


@pytest.mark.parametrize(("method", "path", "claims", "expected"), CASES)
def test_every_example_answers_the_same(
    examples: dict[str, Any],
    organizer_issuer: LocalIssuer,
    method: str,
    path: str,
    claims: dict[str, Any],
    expected: Answer,
) -> None:
    """The request gets the expected status and challenge (and body) from every example."""
    claims = dict(claims)
    if "auth_time" in claims:
        claims["auth_time"] += organizer_issuer.clock()
    token = organizer_issuer.token(**claims)
    for name, client in examples.items():
        status, challenge, body = client.send(method, path, token)
        assert (status, challenge) == expected[:2], name
        if expected[2] is not None or status == 204:
            assert body == expected[2], name


def test_security_answers_a_recent_multi_factor_sign_in(
    examples: dict[str, Any], organizer_issuer: LocalIssuer
) -> None:
    """A multi-factor sign-in of five seconds ago opens the security page in every example."""
    auth_time = int(organizer_issuer.clock()) - 5
    token = organizer_issuer.token(acr=MULTI_FACTOR, auth_time=auth_time)
    for name, client in examples.items():
        status, _, body = client.send("GET", "/api/security", token)
        assert status == 200, name
        assert (body["acr"], body["auth_time"]) == (MULTI_FACTOR, auth_time), name


def test_metadata_names_the_scopes_of_every_route(examples: dict[str, Any]) -> None:
    """Every example's RFC 9728 document lists delete:appointments, asked of a derived
    FastAPI dependency too, and the three documents are the same."""
    documents = {}
    for name, client in examples.items():
        if isinstance(client, FlaskClient):
            response = client.client.get("/.well-known/oauth-protected-resource/api")
            documents[name] = response.get_json()
        else:
            documents[name] = client.client.get("/.well-known/oauth-protected-resource/api").json()
    assert "delete:appointments" in documents["fastapi"]["scopes_supported"]
    assert documents["flask"] == documents["starlette"] == documents["fastapi"]
