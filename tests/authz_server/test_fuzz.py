"""Hostile input on every endpoint gets a clear 4xx (or the documented 2xx/3xx), never a 5xx.

Each case takes a request that would succeed and spoils one field at a time with values of
the wrong type, junk text, huge values, unpaired surrogates and repeated parameters; the
whole table is fixed, so a failure names the exact request that broke.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator
from typing import Any
from urllib.parse import urlencode

import httpx
import pytest
from starlette.applications import Starlette

from examples.authz_server import Settings
from examples.authz_server.services import MANAGEMENT_SCOPES, Domain
from examples.authz_server.settings import RateLimit

from .support import (
    ORGANIZER,
    ORIGIN,
    Browser,
    FakeClock,
    hidden_fields,
    management_token,
    pkce_pair,
)

pytestmark = pytest.mark.anyio

CALLBACK = "https://fuzz.example/cb"
# Values of every JSON type, plus text that has broken servers before.
JSON_VALUES: list[Any] = [
    None,
    7,
    -(10**30),
    1.5,
    True,
    [],
    ["x"],
    [7],
    {},
    {"value": 1},
    "",
    "\ud800",
    "\x00",
    "%ff%00",
    "x" * 5000,
    "http://[::1",
]
# Text a form, a query string or a header can carry.
TEXT_VALUES = ["", "\x00", "%ff", "\u00e9\u0301", "x" * 5000, "http://[::1", "a b", "../..", "<b>"]
# Bodies that are not a JSON object of sane depth.
RAW_JSON = [
    b"[" * 5000,
    b'{"a":' * 5000,
    b"\xff\xfe",
    b"{",
    b"null",
    b'"\\ud800"',
    b'{"a":"\\udc00"}',
]


@pytest.fixture
def settings(clock: FakeClock) -> Settings:
    """Rate limits high enough that the spoiled requests reach the code behind the limiter."""
    relaxed = RateLimit(limit=100_000)
    return Settings(
        db_path=":memory:",
        clock=clock,
        login_rate=relaxed,
        token_failure_rate=relaxed,
        registration_rate=relaxed,
    )


@pytest.fixture
async def lenient(app: Starlette) -> AsyncIterator[httpx.AsyncClient]:
    """A client that receives a crash as a 500 answer instead of an exception."""
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url=ORIGIN) as client:
        yield client


@pytest.fixture
def fuzz_client(tenant: Domain) -> dict[str, str]:
    """A first-party confidential client allowed every grant (a fast SHA-256 secret)."""
    client, secret = tenant.clients.create(
        name="Fuzz",
        callbacks=[CALLBACK],
        grant_types=["authorization_code", "refresh_token", "client_credentials", "password"],
    )
    tenant.client_grants.create(client.client_id, ORGANIZER, ["read:tasks"])
    assert secret is not None
    return {"client_id": client.client_id, "client_secret": secret}


def spoiled(base: dict[str, Any], fields: list[str], values: list[Any]) -> Iterator[dict[str, Any]]:
    """*base* with one field replaced by each value, and with the field removed."""
    for name in fields:
        yield {k: v for k, v in base.items() if k != name}
        for value in values:
            yield base | {name: value}


def as_json(body: Any) -> dict[str, Any]:
    """Request arguments for a JSON body (escaped, so unpaired surrogates travel too)."""
    return {"content": json.dumps(body).encode(), "headers": {"content-type": "application/json"}}


class Crashes:
    """Collects the requests that were answered with a 5xx."""

    def __init__(self, http: httpx.AsyncClient) -> None:
        self.http = http
        self.found: list[str] = []
        self.sent = 0

    async def send(self, method: str, url: str, **kwargs: Any) -> httpx.Response:
        response = await self.http.request(method, url, **kwargs)
        self.sent += 1
        if response.status_code >= 500:
            self.found.append(f"{method} {url[:80]} {str(kwargs)[:160]} -> {response.status_code}")
        return response


TOKEN_BASES = [
    pytest.param(
        {"grant_type": "client_credentials", "audience": ORGANIZER, "scope": "read:tasks"},
        ["grant_type", "client_id", "client_secret", "audience", "resource", "scope"],
        id="client-credentials",
    ),
    pytest.param(
        {"grant_type": "authorization_code", "code": "c" * 43, "redirect_uri": CALLBACK},
        ["code", "redirect_uri", "code_verifier"],
        id="authorization-code",
    ),
    pytest.param(
        {"grant_type": "refresh_token", "refresh_token": "r" * 43},
        ["refresh_token", "scope"],
        id="refresh-token",
    ),
    pytest.param(
        {"grant_type": "password", "username": "nobody@organizer.example", "password": "pw"},
        ["username", "password", "audience", "scope"],
        id="password",
    ),
]


@pytest.mark.parametrize(("base", "fields"), TOKEN_BASES)
async def test_token_endpoint_never_crashes(
    lenient: httpx.AsyncClient,
    fuzz_client: dict[str, str],
    base: dict[str, str],
    fields: list[str],
) -> None:
    """Every spoiled token request, form or JSON encoded, gets a 4xx."""
    crashes = Crashes(lenient)
    for body in spoiled(fuzz_client | base, fields, JSON_VALUES):
        await crashes.send("POST", "/oauth/token", **as_json(body))
        if all(isinstance(v, str) and v != "\ud800" for v in body.values()):
            await crashes.send("POST", "/oauth/token", data=body)
    for raw in RAW_JSON:
        await crashes.send(
            "POST", "/oauth/token", content=raw, headers={"content-type": "application/json"}
        )
    pairs = [*(fuzz_client | base).items(), ("grant_type", base["grant_type"])]
    form = {"content-type": "application/x-www-form-urlencoded"}
    await crashes.send("POST", "/oauth/token", content=urlencode(pairs), headers=form)
    await crashes.send(
        "POST", "/oauth/token", content=urlencode(pairs[:-1]) + "&%ff=%fe&=", headers=form
    )
    await crashes.send("POST", "/oauth/token", data=dict(pairs[:-1]), params={"x": "1"})
    assert crashes.found == []
    assert crashes.sent > 50


async def test_revocation_and_basic_auth_never_crash(
    lenient: httpx.AsyncClient, fuzz_client: dict[str, str]
) -> None:
    """Spoiled revocation requests and malformed Basic credentials get a 4xx."""
    crashes = Crashes(lenient)
    base = fuzz_client | {"token": "t" * 43}
    for body in spoiled(base, ["token", "client_id", "client_secret"], JSON_VALUES):
        await crashes.send("POST", "/oauth/revoke", **as_json(body))
    for raw in RAW_JSON:
        await crashes.send(
            "POST", "/oauth/revoke", content=raw, headers={"content-type": "application/json"}
        )
    for header in [
        b"Basic",
        b"Basic ###",
        b"Basic /w==",
        b"Basic Og==",
        b"Basic \xff",
        b"Digest x",
    ]:
        await crashes.send(
            "POST",
            "/oauth/token",
            data={"grant_type": "client_credentials"},
            headers={"Authorization": header},
        )
    assert crashes.found == []


async def test_registration_never_crashes(lenient: httpx.AsyncClient) -> None:
    """Every spoiled RFC 7591 registration gets a 201 or a 400, never a 5xx."""
    crashes = Crashes(lenient)
    base = {"client_name": "Fuzz", "redirect_uris": [CALLBACK]}
    fields = [
        "client_name",
        "redirect_uris",
        "grant_types",
        "response_types",
        "token_endpoint_auth_method",
        "application_type",
        "logo_uri",
        "policy_uri",
        "client_id",
    ]
    values = [*JSON_VALUES, ["\ud800"], ["http://[::1"], [None]]
    for body in spoiled(base, fields, values):
        await crashes.send("POST", "/oidc/register", **as_json(body))
    for raw in RAW_JSON:
        await crashes.send(
            "POST", "/oidc/register", content=raw, headers={"content-type": "application/json"}
        )
    assert crashes.found == []


async def test_userinfo_never_crashes(lenient: httpx.AsyncClient) -> None:
    """Junk bearer tokens at /userinfo get a 401 or 403."""
    crashes = Crashes(lenient)
    headers = [
        b"Bearer",
        b"Bearer \xff",
        b"Bearer a.b.c",
        b"Bearer e30.e30.e30",
        b"Bearer eyJhbGciOiJIUzI1NiJ9.eyJhdWQiOlsxLHt9XX0.x",
        b"Bearer eyJhbGciOiJSUzI1NiIsImtpZCI6WzFdfQ.e30.x",
        b"Basic x",
    ]
    for header in headers:
        for method in ("GET", "POST"):
            await crashes.send(method, "/userinfo", headers={"Authorization": header})
    assert crashes.found == []


async def test_front_channel_never_crashes(
    lenient: httpx.AsyncClient, fuzz_client: dict[str, str]
) -> None:
    """Spoiled /authorize queries and login and consent forms get an error page or a redirect."""
    crashes = Crashes(lenient)
    _, challenge = pkce_pair()
    query = {
        "client_id": fuzz_client["client_id"],
        "redirect_uri": CALLBACK,
        "response_type": "code",
        "scope": "openid read:tasks",
        "audience": ORGANIZER,
        "state": "s",
        "code_challenge": challenge,
        "code_challenge_method": "S256",
    }
    for params in spoiled(query, [*query, "prompt", "response_mode", "nonce"], TEXT_VALUES):
        await crashes.send("GET", "/authorize", params=params)
    for name in query:
        await crashes.send("GET", "/authorize", params=[*query.items(), (name, query[name])])

    started = await lenient.get("/authorize", params=query)
    login_page = await lenient.get(started.headers["location"])
    form = hidden_fields(login_page.text) | {"email": "nobody@organizer.example", "password": "x"}
    for body in spoiled(form, [*form, "next"], TEXT_VALUES):
        await crashes.send("POST", "/login", data=body)
    for path in ("/login", "/consent"):
        for params in [{"interaction": v} for v in TEXT_VALUES] + [
            {"next": v} for v in TEXT_VALUES
        ]:
            await crashes.send("GET", path, params=params)

    browser = Browser(lenient)
    third_party = {"client_id": "calendar-app", "redirect_uri": "http://127.0.0.1:8101/callback"}
    signed_in = await browser.login(
        (await browser.authorize(**query | third_party)).headers["location"]
    )
    consent_page = await lenient.get(signed_in.headers["location"])
    form = hidden_fields(consent_page.text) | {"decision": "deny"}
    for body in spoiled(form, list(form), TEXT_VALUES):
        await crashes.send("POST", "/consent", data=body)
    assert crashes.found == []
    assert crashes.sent > 100


MANAGEMENT_BASES = [
    pytest.param(
        "POST",
        "/api/v2/resource-servers",
        {"identifier": "https://fuzz.example/api", "name": "Fuzz", "scopes": []},
        ["identifier", "name", "signing_alg", "token_lifetime", "token_dialect", "scopes"],
        id="create-api",
    ),
    pytest.param(
        "PATCH",
        f"/api/v2/resource-servers/{ORGANIZER}",
        {"name": "Organizer"},
        ["name", "token_lifetime", "allow_offline_access", "token_dialect", "scopes", "x"],
        id="update-api",
    ),
    pytest.param(
        "POST",
        "/api/v2/clients",
        {"name": "Fuzz", "app_type": "regular_web", "callbacks": [CALLBACK]},
        ["name", "app_type", "callbacks", "grant_types", "token_endpoint_auth_method"],
        id="create-client",
    ),
    pytest.param(
        "PATCH",
        "/api/v2/clients/calendar-app",
        {"name": "CalendarApp"},
        ["name", "description", "callbacks", "grant_types", "app_type", "is_first_party"],
        id="update-client",
    ),
    pytest.param(
        "POST",
        "/api/v2/client-grants",
        {"client_id": "mytodos-io", "audience": ORGANIZER, "scope": []},
        ["client_id", "audience", "scope"],
        id="create-client-grant",
    ),
    pytest.param(
        "POST",
        "/api/v2/users",
        {"email": "fuzz@organizer.example", "password": "long-enough-password"},
        ["email", "password", "name", "connection", "app_metadata"],
        id="create-user",
    ),
    pytest.param(
        "PATCH",
        "/api/v2/users/auth0|demo",
        {"name": "Demo"},
        ["name", "email", "app_metadata", "password", "x"],
        id="update-user",
    ),
]


@pytest.mark.parametrize(("method", "path", "base", "fields"), MANAGEMENT_BASES)
async def test_management_api_never_crashes(
    lenient: httpx.AsyncClient,
    tenant: Domain,
    method: str,
    path: str,
    base: dict[str, Any],
    fields: list[str],
) -> None:
    """Every spoiled Management API body, sent with a valid all-scopes token, gets a 2xx or 4xx."""
    token = await management_token(lenient, tenant, *MANAGEMENT_SCOPES)
    auth = {"Authorization": f"Bearer {token}"}
    crashes = Crashes(lenient)
    for body in spoiled(base, fields, [*JSON_VALUES, ["\ud800"], [{"value": 1}]]):
        request = as_json(body)
        await crashes.send(
            method, path, content=request["content"], headers=request["headers"] | auth
        )
    for raw in RAW_JSON:
        await crashes.send(method, path, content=raw, headers=auth)
    assert crashes.found == []
    assert crashes.sent > 20


@pytest.mark.parametrize(
    "path",
    [
        pytest.param("/api/v2/resource-servers/%ff%fe", id="api"),
        pytest.param("/api/v2/clients/%00", id="client"),
        pytest.param("/api/v2/client-grants/%ED%A0%80", id="client-grant"),
        pytest.param("/api/v2/users/%7C", id="user"),
        pytest.param("/api/v2/grants/x", id="grant"),
        pytest.param("/api/v2/keys/signing/%ff", id="key"),
    ],
)
async def test_management_api_unknown_ids_are_4xx(
    lenient: httpx.AsyncClient, tenant: Domain, path: str
) -> None:
    """Every method on an unknown or junk id answers 4xx."""
    token = await management_token(lenient, tenant, *MANAGEMENT_SCOPES)
    crashes = Crashes(lenient)
    for method in ("GET", "PATCH", "DELETE", "PUT", "POST"):
        response = await crashes.send(
            method, path, headers={"Authorization": f"Bearer {token}"}, json={}
        )
        assert 400 <= response.status_code < 500
    await crashes.send("PUT", f"{path}/revoke", headers={"Authorization": f"Bearer {token}"})
    await crashes.send(
        "GET",
        "/api/v2/grants",
        params=[("user_id", "\x00"), ("user_id", "%ff")],
        headers={"Authorization": f"Bearer {token}"},
    )
    assert crashes.found == []
