"""Refresh tokens (rotation, reuse, scope), the password grant and the implicit grant."""

from __future__ import annotations

import asyncio

import httpx
import jwt
import pytest

from examples.authz_server.security import half_hash
from examples.authz_server.services import Domain

from .support import (
    CALENDAR,
    CALENDAR_CB,
    ISSUER,
    ORGANIZER,
    SPA_CB,
    WEB,
    Browser,
    FakeClock,
    Validate,
    callback_params,
    pkce_pair,
    token_request,
)

pytestmark = pytest.mark.anyio
OFFLINE_SCOPE = "openid read:appointments read:contacts offline_access"


async def calendar_tokens(http: httpx.AsyncClient, browser: Browser, scope: str) -> dict[str, str]:
    """Run CalendarApp's code flow and return the token response."""
    verifier, challenge = pkce_pair()
    params = await browser.code(
        response_type="code",
        client_id="calendar-app",
        redirect_uri=CALENDAR_CB,
        scope=scope,
        audience=ORGANIZER,
        code_challenge=challenge,
        code_challenge_method="S256",
    )
    response = await token_request(
        http,
        grant_type="authorization_code",
        code=params["code"],
        redirect_uri=CALENDAR_CB,
        code_verifier=verifier,
        **CALENDAR,
    )
    assert response.status_code == 200, response.text
    body: dict[str, str] = response.json()
    return body


async def refresh(http: httpx.AsyncClient, token: str, **extra: str) -> httpx.Response:
    """CalendarApp uses a refresh token."""
    return await token_request(
        http, grant_type="refresh_token", refresh_token=token, **(CALENDAR | extra)
    )


async def test_refresh_rotates_and_keeps_the_original_scope(
    http: httpx.AsyncClient, browser: Browser, validate: Validate
) -> None:
    """A subset scope gives a narrower AT; the new RT still carries the original scope."""
    first = await calendar_tokens(http, browser, OFFLINE_SCOPE)
    narrowed = await refresh(http, first["refresh_token"], scope="read:contacts")
    assert narrowed.status_code == 200, narrowed.text
    body = narrowed.json()
    assert body["refresh_token"] != first["refresh_token"]
    token = await validate(body["access_token"])
    assert token.scopes == {"read:contacts"}
    assert token.audience == (ORGANIZER,)
    assert "id_token" not in body
    full = await refresh(http, body["refresh_token"])
    assert full.status_code == 200
    assert set(full.json()["scope"].split()) == set(OFFLINE_SCOPE.split())
    assert "id_token" in full.json()


async def test_refresh_scope_cannot_grow(http: httpx.AsyncClient, browser: Browser) -> None:
    """Asking for a scope beyond the original grant gives invalid_scope."""
    first = await calendar_tokens(http, browser, OFFLINE_SCOPE)
    response = await refresh(http, first["refresh_token"], scope="read:contacts create:tasks")
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_scope"


async def test_refresh_reuse_revokes_the_family(http: httpx.AsyncClient, browser: Browser) -> None:
    """Using RT1 after rotation fails and also kills RT2."""
    first = await calendar_tokens(http, browser, OFFLINE_SCOPE)
    rotated = (await refresh(http, first["refresh_token"])).json()
    reused = await refresh(http, first["refresh_token"])
    assert reused.json()["error"] == "invalid_grant"
    assert (await refresh(http, rotated["refresh_token"])).json()["error"] == "invalid_grant"


async def test_concurrent_refreshes_succeed_at_most_once(
    http: httpx.AsyncClient, browser: Browser
) -> None:
    """Two concurrent uses of one refresh token: at most one succeeds."""
    first = await calendar_tokens(http, browser, OFFLINE_SCOPE)
    results = await asyncio.gather(*(refresh(http, first["refresh_token"]) for _ in range(3)))
    assert [r.status_code for r in results].count(200) <= 1


@pytest.mark.parametrize(
    ("client", "error", "status"),
    [
        pytest.param(
            {"client_id": "mytodos-io", "client_secret": "x"}, "invalid_client", 401, id="bad-auth"
        ),
        pytest.param({"client_secret": "wrong"}, "invalid_client", 401, id="wrong-secret"),
        pytest.param(
            {"client_id": "textapp-io", "client_secret": ""},
            "invalid_client",
            401,
            id="public-client-with-secret",
        ),
    ],
)
async def test_refresh_needs_the_owning_client(
    http: httpx.AsyncClient,
    browser: Browser,
    client: dict[str, str],
    error: str,
    status: int,
) -> None:
    """Client authentication is enforced on refresh."""
    first = await calendar_tokens(http, browser, OFFLINE_SCOPE)
    response = await refresh(http, first["refresh_token"], **client)
    assert response.status_code == status
    assert response.json()["error"] == error


async def test_refresh_token_is_bound_to_its_client(
    http: httpx.AsyncClient, browser: Browser, tenant: Domain
) -> None:
    """Another authenticated client presenting the RT gets invalid_grant."""
    other, secret = tenant.clients.create(name="Other", callbacks=["https://o.example/cb"])
    assert secret is not None
    first = await calendar_tokens(http, browser, OFFLINE_SCOPE)
    response = await token_request(
        http,
        grant_type="refresh_token",
        refresh_token=first["refresh_token"],
        client_id=other.client_id,
        client_secret=secret,
    )
    assert response.json()["error"] == "invalid_grant"


async def test_no_refresh_token_without_offline_access(
    http: httpx.AsyncClient, browser: Browser, tenant: Domain
) -> None:
    """No RT without offline_access, nor when the API does not allow offline access."""
    plain = await calendar_tokens(http, browser, "openid read:appointments")
    assert "refresh_token" not in plain
    tenant.apis.update(ORGANIZER, {"allow_offline_access": False})
    offline = await calendar_tokens(http, browser, OFFLINE_SCOPE)
    assert "refresh_token" not in offline


async def test_refresh_stops_when_offline_access_is_turned_off(
    http: httpx.AsyncClient, browser: Browser, tenant: Domain
) -> None:
    """Existing refresh tokens stop working once the API disallows offline access."""
    first = await calendar_tokens(http, browser, OFFLINE_SCOPE)
    tenant.apis.update(ORGANIZER, {"allow_offline_access": False})
    assert (await refresh(http, first["refresh_token"])).json()["error"] == "invalid_grant"


async def test_withdrawn_consent_revokes_refresh_tokens(
    http: httpx.AsyncClient, browser: Browser, tenant: Domain
) -> None:
    """Deleting the user grant makes its refresh tokens fail."""
    first = await calendar_tokens(http, browser, OFFLINE_SCOPE)
    grant = tenant.consents.all(user_id="auth0|demo", client_id="calendar-app")[0]
    tenant.consents.revoke(grant.id)
    assert (await refresh(http, first["refresh_token"])).json()["error"] == "invalid_grant"


async def test_password_change_revokes_refresh_tokens(
    http: httpx.AsyncClient, browser: Browser, tenant: Domain
) -> None:
    """Changing the user's password makes their refresh tokens fail."""
    first = await calendar_tokens(http, browser, OFFLINE_SCOPE)
    tenant.users.update("auth0|demo", {"password": "a-brand-new-password"})
    assert (await refresh(http, first["refresh_token"])).json()["error"] == "invalid_grant"


async def test_refresh_tokens_expire_when_idle(
    http: httpx.AsyncClient, browser: Browser, clock: FakeClock
) -> None:
    """A refresh token unused for longer than the idle lifetime fails."""
    first = await calendar_tokens(http, browser, OFFLINE_SCOPE)
    clock.advance(15 * 24 * 3600 + 1)
    assert (await refresh(http, first["refresh_token"])).json()["error"] == "invalid_grant"


async def test_refresh_tokens_are_stored_hashed(
    http: httpx.AsyncClient, browser: Browser, tenant: Domain
) -> None:
    """The store holds no usable refresh token."""
    first = await calendar_tokens(http, browser, OFFLINE_SCOPE)
    assert first["refresh_token"] not in "\n".join(tenant.store._conn.iterdump())


async def test_revocation_endpoint_revokes_the_family(
    http: httpx.AsyncClient, browser: Browser
) -> None:
    """POST /oauth/revoke with the RT answers 200 and the RT stops working."""
    first = await calendar_tokens(http, browser, OFFLINE_SCOPE)
    response = await http.post("/oauth/revoke", data={"token": first["refresh_token"], **CALENDAR})
    assert response.status_code == 200
    assert (await refresh(http, first["refresh_token"])).json()["error"] == "invalid_grant"


async def test_revocation_rules(http: httpx.AsyncClient, browser: Browser) -> None:
    """Unknown tokens answer 200; another client's token is refused; no token is 400."""
    first = await calendar_tokens(http, browser, OFFLINE_SCOPE)
    unknown = await http.post("/oauth/revoke", data={"token": "nope", **CALENDAR})
    assert unknown.status_code == 200
    other = await http.post(
        "/oauth/revoke",
        data={"token": first["refresh_token"], "client_id": "textapp-io"},
    )
    assert other.json()["error"] == "invalid_grant"
    assert (await refresh(http, first["refresh_token"])).status_code == 200
    missing = await http.post("/oauth/revoke", data=CALENDAR)
    assert missing.json()["error"] == "invalid_request"
    bad_client = await http.post("/oauth/revoke", data={"token": "x", "client_id": "nobody"})
    assert bad_client.status_code == 401


# ------------------------------------------------------------------- password


async def test_password_grant_for_the_trusted_app(
    http: httpx.AsyncClient, validate: Validate
) -> None:
    """Organizer Web exchanges the demo user's password for tokens with gty password."""
    response = await token_request(
        http,
        grant_type="password",
        username="demo@organizer.example",
        password="organizer-demo-password",
        audience=ORGANIZER,
        scope="openid read:tasks offline_access",
        **WEB,
    )
    assert response.status_code == 200, response.text
    body = response.json()
    token = await validate(body["access_token"])
    assert token.claims["gty"] == "password"
    assert token.subject == "auth0|demo"
    assert {"id_token", "refresh_token"} <= set(body)


@pytest.mark.parametrize(
    ("username", "password"),
    [
        pytest.param("demo@organizer.example", "nope-nope-nope", id="wrong-password"),
        pytest.param("ghost@organizer.example", "organizer-demo-password", id="unknown-user"),
    ],
)
async def test_password_grant_does_not_enumerate_users(
    http: httpx.AsyncClient, username: str, password: str
) -> None:
    """A wrong password and an unknown user get the same invalid_grant answer."""
    response = await token_request(
        http, grant_type="password", username=username, password=password, audience=ORGANIZER, **WEB
    )
    assert response.status_code == 400
    assert response.json() == {
        "error": "invalid_grant",
        "error_description": "Wrong email or password.",
    }


async def test_password_grant_only_where_enabled(http: httpx.AsyncClient, tenant: Domain) -> None:
    """CalendarApp (third-party, password not enabled) gets unauthorized_client."""
    response = await token_request(
        http,
        grant_type="password",
        username="demo@organizer.example",
        password="organizer-demo-password",
        audience=ORGANIZER,
        **CALENDAR,
    )
    assert response.json()["error"] == "unauthorized_client"
    from examples.authz_server.rules import ValidationError

    with pytest.raises(ValidationError):
        tenant.clients.update("calendar-app", {"grant_types": ["password"]})
    with pytest.raises(ValidationError):
        tenant.clients.update("organizer-spa", {"grant_types": ["password"]})


async def test_password_grant_is_rate_limited(http: httpx.AsyncClient) -> None:
    """Ten wrong passwords from one address lead to 429."""
    data = {
        "grant_type": "password",
        "username": "demo@organizer.example",
        "password": "wrong-wrong",
        "audience": ORGANIZER,
    } | WEB
    for _ in range(10):
        assert (await token_request(http, **data)).status_code == 400
    assert (await token_request(http, **data)).status_code == 429


# ------------------------------------------------------------------- implicit


async def test_implicit_id_token_token(
    http: httpx.AsyncClient, browser: Browser, validate: Validate
) -> None:
    """The SPA gets AT and ID token in the fragment: nonce, at_hash, state, no refresh token."""
    response = await browser.run(
        response_type="id_token token",
        client_id="organizer-spa",
        redirect_uri=SPA_CB,
        scope="openid read:tasks offline_access",
        audience=ORGANIZER,
        state="abc",
        nonce="n-0S6",
    )
    location = response.headers["location"]
    assert location.startswith(SPA_CB + "#")
    params = callback_params(location)
    assert params["state"] == "abc"
    assert params["iss"] == ISSUER
    assert params["token_type"] == "Bearer"
    assert "refresh_token" not in params
    assert "code" not in params
    assert int(params["expires_in"]) <= 7200
    token = await validate(params["access_token"])
    assert token.scopes == {"openid", "read:tasks"}
    keys = (await http.get("/.well-known/jwks.json")).json()["keys"]
    id_token = jwt.decode(
        params["id_token"], jwt.PyJWK(keys[0]).key, algorithms=["RS256"], audience="organizer-spa"
    )
    assert id_token["nonce"] == "n-0S6"
    assert id_token["at_hash"] == half_hash(params["access_token"])


async def test_implicit_token_only(browser: Browser, validate: Validate) -> None:
    """response_type=token returns just an access token in the fragment."""
    response = await browser.run(
        response_type="token",
        client_id="organizer-spa",
        redirect_uri=SPA_CB,
        scope="read:tasks",
        audience=ORGANIZER,
    )
    params = callback_params(response.headers["location"])
    assert "id_token" not in params
    assert (await validate(params["access_token"])).scopes == {"read:tasks"}


@pytest.mark.parametrize(
    ("extra", "error"),
    [
        pytest.param({"nonce": ""}, "invalid_request", id="id-token-without-nonce"),
        pytest.param({"response_mode": "query"}, "invalid_request", id="tokens-in-query"),
    ],
)
async def test_implicit_errors(browser: Browser, extra: dict[str, str], error: str) -> None:
    """Implicit requests need a nonce with id_token and never use the query."""
    request = {
        "response_type": "id_token token",
        "client_id": "organizer-spa",
        "redirect_uri": SPA_CB,
        "scope": "openid",
        "nonce": "n",
    } | extra
    response = await browser.authorize(**request)
    assert callback_params(response.headers["location"])["error"] == error
    assert "#" in response.headers["location"]
