"""Authorization code flow with PKCE: redirect URIs, state, iss, code binding and replay."""

from __future__ import annotations

import asyncio
import re

import httpx
import jwt
import pytest

from examples.authz_server.services import Domain

from .support import (
    CALENDAR,
    CALENDAR_CB,
    ISSUER,
    MANAGEMENT,
    ORGANIZER,
    TEXTAPP_CB,
    Browser,
    FakeClock,
    Validate,
    callback_params,
    pkce_pair,
    token_request,
)

pytestmark = pytest.mark.anyio


def calendar_request(challenge: str, **extra: str) -> dict[str, str]:
    """A CalendarApp authorization request for the Organizer API."""
    return {
        "response_type": "code",
        "client_id": "calendar-app",
        "redirect_uri": CALENDAR_CB,
        "scope": "openid profile email read:appointments offline_access",
        "audience": ORGANIZER,
        "state": "s-1",
        "nonce": "n-1",
        "code_challenge": challenge,
        "code_challenge_method": "S256",
    } | extra


async def redeem(
    http: httpx.AsyncClient, code: str, verifier: str, overrides: dict[str, str] | None = None
) -> httpx.Response:
    """CalendarApp redeems a code."""
    data = {
        "grant_type": "authorization_code",
        "code": code,
        "redirect_uri": CALENDAR_CB,
        "code_verifier": verifier,
        **CALENDAR,
    }
    return await token_request(http, **(data | (overrides or {})))


async def test_code_flow_end_to_end(
    http: httpx.AsyncClient, browser: Browser, validate: Validate
) -> None:
    """Login, consent and redemption give an AT, ID token and RT that validate as Auth0's do."""
    verifier, challenge = pkce_pair()
    params = await browser.code(**calendar_request(challenge))
    assert set(params) == {"code", "state", "iss"}
    assert params["state"] == "s-1"
    assert params["iss"] == ISSUER
    response = await redeem(http, params["code"], verifier)
    assert response.status_code == 200, response.text
    body = response.json()
    assert set(body) == {
        "access_token",
        "id_token",
        "refresh_token",
        "scope",
        "expires_in",
        "token_type",
    }
    token = await validate(body["access_token"])
    assert token.subject == "auth0|demo"
    assert token.audience == (ORGANIZER, f"{ISSUER}userinfo")
    assert token.claims["azp"] == "calendar-app"
    assert "gty" not in token.claims
    assert token.scopes == {"openid", "profile", "email", "read:appointments", "offline_access"}
    # The ID token is checked with PyJWT: it is not an access token.
    keys = (await http.get("/.well-known/jwks.json")).json()
    key = jwt.PyJWK(keys["keys"][0]).key
    id_token = jwt.decode(body["id_token"], key, algorithms=["RS256"], audience="calendar-app")
    assert id_token["iss"] == ISSUER
    assert id_token["nonce"] == "n-1"
    assert id_token["email"] == "demo@organizer.example"


async def test_id_token_is_refused_by_the_api(
    http: httpx.AsyncClient, browser: Browser, validate: Validate
) -> None:
    """An ID token presented to the Organizer API is refused by apiguard."""
    from apiguard import InvalidToken

    verifier, challenge = pkce_pair()
    params = await browser.code(**calendar_request(challenge))
    body = (await redeem(http, params["code"], verifier)).json()
    with pytest.raises(InvalidToken):
        await validate(body["id_token"])


REGISTERED = "https://calendarapp.example/callback"


@pytest.mark.parametrize(
    "redirect_uri",
    [
        pytest.param(REGISTERED + "/", id="trailing-slash"),
        pytest.param(REGISTERED + "?x=1", id="extra-query"),
        pytest.param(REGISTERED + "#f", id="fragment"),
        pytest.param("https://CALENDARAPP.example/callback", id="host-case"),
        pytest.param("https://calendarapp.example:443/callback", id="explicit-port"),
        pytest.param("https://calendarapp.example.evil.com/callback", id="suffix-host"),
        pytest.param("https://calendarapp.example@evil.com/callback", id="userinfo"),
        pytest.param("https://calendarapp.example/callback/../x", id="dot-dot"),
        pytest.param("https://calendarapp.example/%2e%2e/callback", id="encoded-dots"),
        pytest.param("http://calendarapp.example/callback", id="http"),
        pytest.param("https://calendar\u0430pp.example/callback", id="homoglyph"),
        pytest.param("http://localhost:8101/callback", id="localhost-for-127"),
        pytest.param("http://127.0.0.1:8101/callback?x", id="loopback-query"),
        pytest.param("javascript:alert(1)", id="javascript"),
    ],
)
async def test_unregistered_redirect_uris_never_redirect(
    browser: Browser, redirect_uri: str
) -> None:
    """Any variant of a registered URI gets an error page and no Location header."""
    _, challenge = pkce_pair()
    response = await browser.authorize(**calendar_request(challenge, redirect_uri=redirect_uri))
    assert response.status_code == 400
    assert "location" not in response.headers
    assert "redirect_uri is not registered" in response.text


async def test_unknown_client_never_redirects(browser: Browser) -> None:
    """An unknown client_id gets an error page and no redirect."""
    _, challenge = pkce_pair()
    response = await browser.authorize(**calendar_request(challenge, client_id="nobody"))
    assert response.status_code == 400
    assert "location" not in response.headers


async def test_loopback_ip_redirect_may_use_any_port(browser: Browser) -> None:
    """http://127.0.0.1/callback registered allows any port on 127.0.0.1 (RFC 8252 §7.3)."""
    _, challenge = pkce_pair()
    params = calendar_request(
        challenge, client_id="textapp-io", redirect_uri="http://127.0.0.1:51004/callback"
    )
    response = await browser.authorize(**params)
    assert response.status_code == 302
    assert response.headers["location"].startswith("/login?interaction=")


async def test_redirect_uri_required_when_several_are_registered(browser: Browser) -> None:
    """Omitting redirect_uri with two registered URIs is an error page, not a redirect."""
    _, challenge = pkce_pair()
    params = calendar_request(challenge)
    del params["redirect_uri"]
    response = await browser.authorize(**params)
    assert response.status_code == 400
    assert "location" not in response.headers


async def test_redirect_uri_may_be_omitted_with_one_registered(
    http: httpx.AsyncClient, browser: Browser, tenant: Domain
) -> None:
    """With one registered URI it may be omitted, and then also at the token endpoint."""
    client, secret = tenant.clients.create(
        name="One", is_first_party=False, callbacks=["https://one.example/cb"]
    )
    assert secret is not None
    verifier, challenge = pkce_pair()
    params = calendar_request(challenge, client_id=client.client_id)
    del params["redirect_uri"]
    response = await browser.run(**params)
    assert response.headers["location"].startswith("https://one.example/cb?code=")
    code = callback_params(response.headers["location"])["code"]
    redeemed = await token_request(
        http,
        grant_type="authorization_code",
        code=code,
        code_verifier=verifier,
        client_id=client.client_id,
        client_secret=secret,
    )
    assert redeemed.status_code == 200, redeemed.text


@pytest.mark.parametrize(
    "state",
    [
        pytest.param("a&b=c%d e+f", id="reserved-characters"),
        pytest.param("\u00fcn\u00efc\u00f8d\u00e9 \u2603", id="unicode"),
    ],
)
async def test_state_comes_back_byte_identical(browser: Browser, state: str) -> None:
    """state survives the round trip unchanged, URL-encoded correctly."""
    _, challenge = pkce_pair()
    params = await browser.code(**calendar_request(challenge, state=state))
    assert params["state"] == state


async def test_no_state_means_none_returned(browser: Browser) -> None:
    """Without state in the request, the response has none."""
    _, challenge = pkce_pair()
    request = calendar_request(challenge)
    del request["state"]
    params = await browser.code(**request)
    assert "state" not in params
    assert params["iss"] == ISSUER


@pytest.mark.parametrize(
    ("extra", "error"),
    [
        pytest.param({"response_type": "id_token"}, "unsupported_response_type", id="id_token"),
        pytest.param({"response_type": "code id_token"}, "unsupported_response_type", id="hybrid"),
        pytest.param({"response_type": "token"}, "unauthorized_client", id="implicit-not-on"),
        pytest.param({"scope": "openid delete:everything"}, "invalid_scope", id="unknown-scope"),
        pytest.param({"audience": "https://unknown.example"}, "invalid_target", id="unknown-aud"),
        pytest.param({"resource": "https://other.example"}, "invalid_request", id="aud-resource"),
        pytest.param({"audience": MANAGEMENT}, "invalid_target", id="management-api"),
        pytest.param({"prompt": "none login"}, "invalid_request", id="prompt-none-and-login"),
        pytest.param({"prompt": "select_account"}, "invalid_request", id="prompt-unknown"),
        pytest.param({"response_mode": "form_post"}, "invalid_request", id="form-post"),
        pytest.param({"code_challenge_method": "plain"}, "invalid_request", id="pkce-plain"),
        pytest.param({"code_challenge": "a" * 42}, "invalid_request", id="challenge-42"),
        pytest.param({"code_challenge": "a" * 129}, "invalid_request", id="challenge-129"),
        pytest.param({"code_challenge": "\u00e9" * 43}, "invalid_request", id="challenge-utf8"),
    ],
)
async def test_request_errors_redirect_with_state_and_iss(
    browser: Browser, extra: dict[str, str], error: str
) -> None:
    """Errors after the client and URI are known go back to the client with state and iss."""
    _, challenge = pkce_pair()
    response = await browser.authorize(**calendar_request(challenge, **extra))
    assert response.status_code == 302
    location = response.headers["location"]
    assert location.startswith(CALENDAR_CB)
    params = callback_params(location)
    assert params["error"] == error
    assert params["state"] == "s-1"
    assert params["iss"] == ISSUER


async def test_challenge_without_method_is_refused(browser: Browser) -> None:
    """A code_challenge without code_challenge_method (which would mean plain) is refused."""
    _, challenge = pkce_pair()
    request = calendar_request(challenge)
    del request["code_challenge_method"]
    response = await browser.authorize(**request)
    assert callback_params(response.headers["location"])["error"] == "invalid_request"


async def test_public_client_must_use_pkce(browser: Browser) -> None:
    """A public client without code_challenge gets invalid_request at its redirect URI."""
    response = await browser.authorize(
        response_type="code",
        client_id="textapp-io",
        redirect_uri=TEXTAPP_CB,
        audience=ORGANIZER,
        scope="read:contacts",
    )
    assert callback_params(response.headers["location"])["error"] == "invalid_request"


async def test_repeated_parameter_is_refused(http: httpx.AsyncClient) -> None:
    """A repeated parameter gets invalid_request (a repeated client_id an error page)."""
    response = await http.get(
        f"/authorize?client_id=calendar-app&redirect_uri={CALENDAR_CB}"
        "&response_type=code&scope=openid&scope=email"
    )
    assert callback_params(response.headers["location"])["error"] == "invalid_request"
    page = await http.get("/authorize?client_id=calendar-app&client_id=mytodos-io")
    assert page.status_code == 400
    assert "location" not in page.headers


# ------------------------------------------------------------------- redemption


async def test_code_replay_fails_and_revokes_what_it_issued(
    http: httpx.AsyncClient, browser: Browser
) -> None:
    """Redeeming a code twice fails, and the refresh token from the first use is revoked."""
    verifier, challenge = pkce_pair()
    code = (await browser.code(**calendar_request(challenge)))["code"]
    first = await redeem(http, code, verifier)
    assert first.status_code == 200
    second = await redeem(http, code, verifier)
    assert second.status_code == 400
    assert second.json()["error"] == "invalid_grant"
    refreshed = await token_request(
        http,
        grant_type="refresh_token",
        refresh_token=first.json()["refresh_token"],
        **CALENDAR,
    )
    assert refreshed.json()["error"] == "invalid_grant"


async def test_parallel_redemptions_succeed_once(http: httpx.AsyncClient, browser: Browser) -> None:
    """Two concurrent redemptions of one code: exactly one succeeds."""
    verifier, challenge = pkce_pair()
    code = (await browser.code(**calendar_request(challenge)))["code"]
    results = await asyncio.gather(*(redeem(http, code, verifier) for _ in range(4)))
    assert sorted(r.status_code for r in results) == [200, 400, 400, 400]


@pytest.mark.parametrize(
    ("extra", "error"),
    [
        pytest.param(
            {"client_id": "mytodos-io", "client_secret": "mytodos-io-dev-secret"},
            "invalid_client",
            id="other-client-wrong-method",
        ),
        pytest.param({"redirect_uri": REGISTERED}, "invalid_grant", id="other-redirect-uri"),
        pytest.param({"redirect_uri": ""}, "invalid_grant", id="empty-redirect-uri"),
        pytest.param({"code_verifier": "x" * 43}, "invalid_grant", id="wrong-verifier"),
        pytest.param({"code_verifier": "a" * 42}, "invalid_grant", id="verifier-42"),
        pytest.param({"code_verifier": "a" * 129}, "invalid_grant", id="verifier-129"),
        pytest.param({"code": "not-a-code"}, "invalid_grant", id="unknown-code"),
    ],
)
async def test_code_is_bound_to_its_request(
    http: httpx.AsyncClient, browser: Browser, extra: dict[str, str], error: str
) -> None:
    """A code only works for its client, redirect URI and PKCE verifier."""
    verifier, challenge = pkce_pair()
    code = (await browser.code(**calendar_request(challenge)))["code"]
    response = await redeem(http, code, verifier, extra)
    assert response.json()["error"] == error
    assert (await redeem(http, code, verifier)).status_code == 200


async def test_code_is_bound_to_the_client(
    http: httpx.AsyncClient, browser: Browser, tenant: Domain
) -> None:
    """Another properly authenticated client cannot redeem the code."""
    client, secret = tenant.clients.create(name="Other", callbacks=[CALENDAR_CB])
    assert secret is not None
    verifier, challenge = pkce_pair()
    code = (await browser.code(**calendar_request(challenge)))["code"]
    overrides = {"client_id": client.client_id, "client_secret": secret}
    response = await redeem(http, code, verifier, overrides)
    assert response.json()["error"] == "invalid_grant"


async def test_missing_verifier_and_missing_redirect_uri(
    http: httpx.AsyncClient, browser: Browser
) -> None:
    """Leaving out the verifier or the redirect_uri that was sent gives invalid_grant."""
    verifier, challenge = pkce_pair()
    code = (await browser.code(**calendar_request(challenge)))["code"]
    base = {"grant_type": "authorization_code", "code": code, **CALENDAR}
    no_verifier = await token_request(http, **base, redirect_uri=CALENDAR_CB)
    assert no_verifier.json()["error"] == "invalid_grant"
    no_redirect = await token_request(http, **base, code_verifier=verifier)
    assert no_redirect.json()["error"] == "invalid_grant"


async def test_pkce_downgrade_is_refused(http: httpx.AsyncClient, browser: Browser) -> None:
    """A verifier sent for a code issued without a challenge is refused."""
    request = calendar_request("unused")
    del request["code_challenge"], request["code_challenge_method"]
    code = (await browser.code(**request))["code"]
    verifier, _ = pkce_pair()
    response = await redeem(http, code, verifier)
    assert response.json()["error"] == "invalid_grant"


async def test_public_client_redeems_with_pkce_only(
    http: httpx.AsyncClient, browser: Browser, validate: Validate
) -> None:
    """TextApp.io (public) redeems with client_id and code_verifier, no secret."""
    verifier, challenge = pkce_pair()
    params = await browser.code(
        **calendar_request(challenge, client_id="textapp-io", redirect_uri=TEXTAPP_CB)
    )
    response = await token_request(
        http,
        grant_type="authorization_code",
        client_id="textapp-io",
        code=params["code"],
        redirect_uri=TEXTAPP_CB,
        code_verifier=verifier,
    )
    assert response.status_code == 200, response.text
    assert (await validate(response.json()["access_token"])).claims["azp"] == "textapp-io"


async def test_code_expires_after_a_minute(
    http: httpx.AsyncClient, browser: Browser, clock: FakeClock
) -> None:
    """A code redeemed after its 60 s lifetime gives invalid_grant."""
    verifier, challenge = pkce_pair()
    code = (await browser.code(**calendar_request(challenge)))["code"]
    clock.advance(61)
    response = await redeem(http, code, verifier)
    assert response.json()["error"] == "invalid_grant"


async def test_code_is_long_random_and_stored_hashed(browser: Browser, tenant: Domain) -> None:
    """Codes carry 256 bits in base64url and the store holds only their digest."""
    _, challenge = pkce_pair()
    code = (await browser.code(**calendar_request(challenge)))["code"]
    assert re.fullmatch(r"[A-Za-z0-9_-]{43,}", code)
    dump = "\n".join(tenant.store._conn.iterdump())
    assert code not in dump
