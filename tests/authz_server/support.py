"""Test helpers for the local authorization server: constants, a browser, PKCE pairs."""

from __future__ import annotations

import base64
import hashlib
import re
import secrets
import time
from collections.abc import Awaitable, Callable
from html import unescape
from urllib.parse import parse_qsl, urlsplit

import httpx

from apiguard import AccessToken
from examples.authz_server.services import Domain

ISSUER = "http://127.0.0.1:9000/"
ORIGIN = "http://127.0.0.1:9000"
ORGANIZER = "https://organizer.example/api"
MANAGEMENT = f"{ISSUER}api/v2/"
DEMO_EMAIL, DEMO_PASSWORD = "demo@organizer.example", "organizer-demo-password"
ADMIN_EMAIL, ADMIN_PASSWORD = "admin@organizer.example", "organizer-admin-password"
CALENDAR = {"client_id": "calendar-app", "client_secret": "calendar-app-dev-secret"}
CALENDAR_CB = "http://127.0.0.1:8101/callback"
MYTODOS_CB = "http://127.0.0.1:8102/callback"
WEB = {"client_id": "organizer-web", "client_secret": "organizer-web-dev-secret"}
WEB_CB = "http://127.0.0.1:5050/callback"
WORLD_MAPPERS = {"client_id": "world-mappers", "client_secret": "world-mappers-dev-secret"}
SPA_CB = "http://localhost:3000/callback"
TEXTAPP_CB = "http://127.0.0.1/callback"


class FakeClock:
    """A clock the tests move forward by hand."""

    def __init__(self) -> None:
        self.now = float(int(time.time()))

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def pkce_pair() -> tuple[str, str]:
    """A fresh (verifier, S256 challenge) pair."""
    verifier = secrets.token_urlsafe(48)
    digest = hashlib.sha256(verifier.encode()).digest()
    return verifier, base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def hidden_fields(html: str) -> dict[str, str]:
    """The hidden inputs of a page's form, as a browser would submit them."""
    fields = re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)">', html)
    return {name: unescape(value) for name, value in fields}


def callback_params(location: str) -> dict[str, str]:
    """The parameters a redirect carries to the client (query, or fragment for implicit)."""
    parts = urlsplit(location)
    return dict(parse_qsl(parts.fragment or parts.query, keep_blank_values=True))


class Browser:
    """Drives the front channel like a user agent: GET pages, post their forms."""

    def __init__(self, http: httpx.AsyncClient) -> None:
        self.http = http

    async def authorize(self, **params: str) -> httpx.Response:
        return await self.http.get("/authorize", params=params)

    async def login(
        self, location: str, email: str = DEMO_EMAIL, password: str = DEMO_PASSWORD
    ) -> httpx.Response:
        page = await self.http.get(location)
        assert page.status_code == 200, page.text
        form = hidden_fields(page.text) | {"email": email, "password": password}
        return await self.http.post("/login", data=form)

    async def consent(self, location: str, decision: str = "allow") -> httpx.Response:
        page = await self.http.get(location)
        assert page.status_code == 200, page.text
        return await self.http.post(
            "/consent", data=hidden_fields(page.text) | {"decision": decision}
        )

    async def run(
        self,
        *,
        email: str = DEMO_EMAIL,
        password: str = DEMO_PASSWORD,
        decision: str = "allow",
        **params: str,
    ) -> httpx.Response:
        """Start at /authorize and go through login and consent; return the last answer."""
        response = await self.authorize(**params)
        for _ in range(4):
            location = response.headers.get("location", "")
            if location.startswith("/login"):
                response = await self.login(location, email, password)
            elif location.startswith("/consent"):
                response = await self.consent(location, decision)
            else:
                break
        return response

    async def code(self, **params: str) -> dict[str, str]:
        """Run the flow and return the callback parameters (asserting a redirect)."""
        response = await self.run(**params)
        assert response.status_code in (302, 303), response.text
        return callback_params(response.headers["location"])


Validate = Callable[..., Awaitable[AccessToken]]


async def token_request(http: httpx.AsyncClient, **data: str) -> httpx.Response:
    """POST a form to the token endpoint."""
    return await http.post("/oauth/token", data=data)


async def management_token(http: httpx.AsyncClient, tenant: Domain, *scopes: str) -> str:
    """A client-credentials token for the Management API (World Mappers gets a grant)."""
    if tenant.client_grants.find("world-mappers", MANAGEMENT) is None:
        tenant.client_grants.create("world-mappers", MANAGEMENT, list(scopes))
    else:
        grant = tenant.client_grants.find("world-mappers", MANAGEMENT)
        assert grant is not None
        tenant.client_grants.update(grant.id, list(scopes))
    response = await token_request(
        http, grant_type="client_credentials", audience=MANAGEMENT, **WORLD_MAPPERS
    )
    assert response.status_code == 200, response.text
    token: str = response.json()["access_token"]
    return token
