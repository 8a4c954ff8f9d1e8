"""Dynamic client registration (RFC 7591) and the userinfo endpoint."""

from __future__ import annotations

from typing import Any

import httpx
import jwt
import pytest
from starlette.applications import Starlette

from examples.authz_server import wire
from examples.authz_server.services import Domain

from .support import (
    ORGANIZER,
    ORIGIN,
    WEB,
    WORLD_MAPPERS,
    Browser,
    callback_params,
    pkce_pair,
    token_request,
)

pytestmark = pytest.mark.anyio
GOOD: dict[str, Any] = {
    "client_name": "Trip Planner",
    "redirect_uris": ["https://trips.example/cb"],
    "grant_types": ["authorization_code", "refresh_token"],
    "response_types": ["code"],
    "token_endpoint_auth_method": "client_secret_post",
    "logo_uri": "https://trips.example/logo.png",
}


async def test_registration_creates_a_third_party_client(
    http: httpx.AsyncClient, tenant: Domain
) -> None:
    """The server assigns the id and a 256-bit+ secret, shown once and stored hashed."""
    response = await http.post("/oidc/register", json=GOOD | {"client_id": "chosen-by-me"})
    assert response.status_code == 201, response.text
    assert response.headers["cache-control"] == "no-store"
    body = response.json()
    assert body["client_id"] != "chosen-by-me"
    assert len(body["client_secret"]) >= 43
    assert body["client_secret_expires_at"] == 0
    assert body["redirect_uris"] == GOOD["redirect_uris"]
    assert body["logo_uri"] == GOOD["logo_uri"]
    client = tenant.clients.get(body["client_id"])
    assert client.is_dynamic
    assert not client.is_first_party
    assert body["client_secret"] not in "\n".join(tenant.store._conn.iterdump())
    assert not {"client_secret", "secret_hash"} & set(wire.client_json(client))


async def test_registered_client_completes_a_code_flow_with_consent(
    http: httpx.AsyncClient, browser: Browser
) -> None:
    """A freshly registered client goes through consent and redeems with its secret."""
    body = (await http.post("/oidc/register", json=GOOD)).json()
    verifier, challenge = pkce_pair()
    start = await browser.authorize(
        response_type="code",
        client_id=body["client_id"],
        redirect_uri="https://trips.example/cb",
        scope="read:tasks",
        audience=ORGANIZER,
        code_challenge=challenge,
        code_challenge_method="S256",
    )
    after_login = await browser.login(start.headers["location"])
    assert after_login.headers["location"].startswith("/consent")
    done = await browser.consent(after_login.headers["location"])
    code = callback_params(done.headers["location"])["code"]
    response = await token_request(
        http,
        grant_type="authorization_code",
        code=code,
        redirect_uri="https://trips.example/cb",
        code_verifier=verifier,
        client_id=body["client_id"],
        client_secret=body["client_secret"],
    )
    assert response.status_code == 200, response.text


async def test_public_registration_has_no_secret(http: httpx.AsyncClient) -> None:
    """token_endpoint_auth_method none registers a public client without a secret."""
    response = await http.post(
        "/oidc/register",
        json=GOOD | {"token_endpoint_auth_method": "none", "application_type": "native"},
    )
    assert response.status_code == 201
    assert "client_secret" not in response.json()


@pytest.mark.parametrize(
    "uri",
    [
        pytest.param("https://trips.example/cb#a", id="fragment"),
        pytest.param("http://trips.example/cb", id="http-non-loopback"),
        pytest.param("javascript:alert(1)", id="javascript"),
        pytest.param("data:text/html,hi", id="data"),
        pytest.param("https://*.trips.example/cb", id="wildcard"),
        pytest.param("/relative/cb", id="relative"),
        pytest.param("https://user:pw@trips.example/cb", id="credentials"),
        pytest.param("myapp:/cb", id="custom-scheme-without-dot"),
        pytest.param("https://trips.example:99999/cb", id="bad-port"),
        pytest.param(42, id="not-a-string"),
    ],
)
async def test_bad_redirect_uris_are_refused(http: httpx.AsyncClient, uri: object) -> None:
    """Redirect URIs must be absolute, exact, https or loopback, without fragment."""
    response = await http.post("/oidc/register", json=GOOD | {"redirect_uris": [uri]})
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_redirect_uri"


@pytest.mark.parametrize(
    "change",
    [
        pytest.param({"grant_types": ["implicit"]}, id="code-response-without-code-grant"),
        pytest.param({"response_types": ["token"]}, id="token-response-without-implicit"),
        pytest.param(
            {
                "token_endpoint_auth_method": "none",
                "grant_types": ["client_credentials"],
                "response_types": [],
            },
            id="public-client-credentials",
        ),
        pytest.param({"grant_types": ["authorization_code", "password"]}, id="password"),
        pytest.param({"token_endpoint_auth_method": "private_key_jwt"}, id="auth-method"),
        pytest.param({"logo_uri": "https://evil.example/logo.png"}, id="logo-other-host"),
        pytest.param({"tos_uri": "javascript:alert(1)"}, id="tos-javascript"),
        pytest.param({"client_name": ""}, id="empty-name"),
        pytest.param({"application_type": "desktop"}, id="application-type"),
        pytest.param({"grant_types": "authorization_code"}, id="grant-types-not-a-list"),
    ],
)
async def test_inconsistent_metadata_is_refused(
    http: httpx.AsyncClient, change: dict[str, Any]
) -> None:
    """Metadata that contradicts itself or asks for more than allowed is refused."""
    response = await http.post("/oidc/register", json=GOOD | change)
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_client_metadata"


@pytest.mark.parametrize(
    "content",
    [
        pytest.param(b"[]", id="array"),
        pytest.param(b"{", id="truncated"),
        pytest.param(b"\xff", id="bytes"),
    ],
)
async def test_malformed_registration_bodies(http: httpx.AsyncClient, content: bytes) -> None:
    """Bodies that are not a JSON object get invalid_client_metadata."""
    response = await http.post(
        "/oidc/register", content=content, headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_client_metadata"


async def test_registration_is_rate_limited(app: Starlette) -> None:
    """An address registering more than ten clients a minute gets 429 with Retry-After."""
    transport = httpx.ASGITransport(app=app, client=("10.1.1.1", 1))
    async with httpx.AsyncClient(transport=transport, base_url=ORIGIN) as http:
        statuses = [(await http.post("/oidc/register", json=GOOD)).status_code for _ in range(11)]
        assert statuses == [201] * 10 + [429]
        limited = await http.post("/oidc/register", json=GOOD)
        assert int(limited.headers["retry-after"]) > 0


# ------------------------------------------------------------------------ userinfo


async def password_token(http: httpx.AsyncClient, scope: str) -> str:
    """An access token for the demo user via the trusted app."""
    response = await token_request(
        http,
        grant_type="password",
        username="demo@organizer.example",
        password="organizer-demo-password",
        audience=ORGANIZER,
        scope=scope,
        **WEB,
    )
    token: str = response.json()["access_token"]
    return token


async def test_userinfo_returns_the_granted_claims(http: httpx.AsyncClient) -> None:
    """With openid profile email the user's name and email come back."""
    token = await password_token(http, "openid profile email")
    response = await http.get("/userinfo", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 200
    body = response.json()
    assert body["sub"] == "auth0|demo"
    assert body["email"] == "demo@organizer.example"
    assert body["name"] == "Demo User"


async def test_userinfo_releases_only_what_was_granted(http: httpx.AsyncClient) -> None:
    """With openid alone only sub comes back."""
    token = await password_token(http, "openid")
    response = await http.post("/userinfo", headers={"Authorization": f"Bearer {token}"})
    assert response.json() == {"sub": "auth0|demo"}


async def test_userinfo_refuses_other_tokens(http: httpx.AsyncClient) -> None:
    """No token, garbage, and an API-only token are refused with a Bearer challenge."""
    missing = await http.get("/userinfo")
    assert missing.status_code == 401
    assert missing.headers["www-authenticate"].startswith("Bearer")
    garbage = await http.get("/userinfo", headers={"Authorization": "Bearer a.b.c"})
    assert garbage.status_code == 401
    assert 'error="invalid_token"' in garbage.headers["www-authenticate"]
    m2m = await token_request(
        http, grant_type="client_credentials", audience=ORGANIZER, **WORLD_MAPPERS
    )
    api_only = await http.get(
        "/userinfo", headers={"Authorization": f"Bearer {m2m.json()['access_token']}"}
    )
    assert api_only.status_code == 401


async def test_userinfo_refuses_tokens_an_api_could_forge(
    http: httpx.AsyncClient, tenant: Domain
) -> None:
    """An HS256 API's shared secret cannot mint a token that reads any user's profile."""
    api = tenant.apis.create(name="Legacy", identifier="urn:legacy", signing_alg="HS256")
    assert api.signing_secret is not None
    now = int(tenant.now())
    forged = jwt.encode(
        {
            "iss": tenant.settings.issuer,
            "sub": "auth0|demo",
            "aud": ["urn:legacy", tenant.settings.url("userinfo")],
            "iat": now,
            "exp": now + 60,
            "scope": "openid profile email",
        },
        api.signing_secret.encode(),
        algorithm="HS256",
    )
    response = await http.get("/userinfo", headers={"Authorization": f"Bearer {forged}"})
    assert response.status_code == 401
    assert "demo@organizer.example" not in response.text


async def test_hs256_tokens_do_not_name_userinfo(http: httpx.AsyncClient, tenant: Domain) -> None:
    """A user token for an HS256 API has only the API as audience, even with openid."""
    tenant.apis.create(
        name="Legacy", identifier="urn:legacy", signing_alg="HS256", scopes=["read:x"]
    )
    response = await token_request(
        http,
        grant_type="password",
        username="demo@organizer.example",
        password="organizer-demo-password",
        audience="urn:legacy",
        scope="openid read:x",
        **WEB,
    )
    assert response.status_code == 200, response.text
    claims = jwt.decode(response.json()["access_token"], options={"verify_signature": False})
    assert claims["aud"] == "urn:legacy"
    userinfo = await http.get(
        "/userinfo", headers={"Authorization": f"Bearer {response.json()['access_token']}"}
    )
    assert userinfo.status_code == 401
