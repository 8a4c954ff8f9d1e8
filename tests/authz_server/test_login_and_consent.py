"""Login and consent pages: consent rules, prompt, CSRF, clickjacking, sessions, limits."""

from __future__ import annotations

import httpx
import pytest
from starlette.applications import Starlette

from examples.authz_server.services import Domain

from .support import (
    CALENDAR_CB,
    ISSUER,
    ORGANIZER,
    ORIGIN,
    SPA_CB,
    WEB_CB,
    Browser,
    callback_params,
    hidden_fields,
    pkce_pair,
)

pytestmark = pytest.mark.anyio


def request_for(client_id: str, redirect_uri: str, scope: str, **extra: str) -> dict[str, str]:
    """An authorization-code request for the Organizer API with a fresh PKCE challenge."""
    _, challenge = pkce_pair()
    return {
        "response_type": "code",
        "client_id": client_id,
        "redirect_uri": redirect_uri,
        "scope": scope,
        "audience": ORGANIZER,
        "state": "st",
        "code_challenge": challenge,
        "code_challenge_method": "S256",
    } | extra


CALENDAR_READ = request_for("calendar-app", CALENDAR_CB, "openid read:appointments")


async def signed_in(browser: Browser) -> None:
    """Sign the demo user in through a standalone login."""
    response = await browser.login("/login")
    assert response.status_code == 303


async def test_third_party_consent_is_remembered(browser: Browser, tenant: Domain) -> None:
    """CalendarApp asks once; the second authorization skips the consent page."""
    first = await browser.run(**CALENDAR_READ)
    assert "code" in callback_params(first.headers["location"])
    grant = tenant.consents.all(user_id="auth0|demo", client_id="calendar-app")[0]
    assert set(grant.scope) == {"openid", "read:appointments"}
    again = await browser.authorize(**request_for("calendar-app", CALENDAR_CB, "read:appointments"))
    assert again.status_code == 302
    assert "code" in callback_params(again.headers["location"])


async def test_consent_asked_again_when_scopes_grow(browser: Browser) -> None:
    """A request for a scope beyond the remembered ones shows consent, marking it new."""
    await browser.run(**CALENDAR_READ)
    grown = request_for("calendar-app", CALENDAR_CB, "openid read:appointments create:appointments")
    response = await browser.authorize(**grown)
    assert response.headers["location"].startswith("/consent?interaction=")
    page = await browser.http.get(response.headers["location"])
    assert "Create appointments in your calendar" in page.text
    assert page.text.count('class="badge">new') == 1


async def test_prompt_consent_forces_the_page(browser: Browser) -> None:
    """prompt=consent shows the consent page even with remembered consent."""
    await browser.run(**CALENDAR_READ)
    response = await browser.authorize(**(CALENDAR_READ | {"prompt": "consent"}))
    assert response.headers["location"].startswith("/consent")


async def test_declining_returns_access_denied(browser: Browser) -> None:
    """Decline sends access_denied with state and iss, by a 303, and remembers nothing."""
    response = await browser.run(decision="deny", **CALENDAR_READ)
    assert response.status_code == 303
    params = callback_params(response.headers["location"])
    assert params == {
        "error": "access_denied",
        "error_description": "The user declined the request",
        "state": "st",
        "iss": ISSUER,
    }


async def test_first_party_skips_consent_off_localhost(browser: Browser) -> None:
    """Organizer Web on its https callback skips consent; the API allows it."""
    request = request_for("organizer-web", "https://organizer.example/callback", "read:tasks")
    response = await browser.run(**request)
    assert response.status_code == 303
    assert response.headers["location"].startswith("https://organizer.example/callback?code=")


@pytest.mark.parametrize(
    ("client_id", "redirect_uri"),
    [
        pytest.param("organizer-web", WEB_CB, id="first-party-on-127.0.0.1"),
        pytest.param("organizer-spa", SPA_CB, id="first-party-on-localhost"),
    ],
)
async def test_first_party_on_localhost_still_asks(
    browser: Browser, client_id: str, redirect_uri: str
) -> None:
    """Consent cannot be skipped when the callback is on localhost (as at Auth0)."""
    await signed_in(browser)
    response = await browser.authorize(**request_for(client_id, redirect_uri, "read:tasks"))
    assert response.headers["location"].startswith("/consent")


async def test_first_party_asks_when_the_api_disallows_skipping(
    browser: Browser, tenant: Domain
) -> None:
    """With skip_consent_for_verifiable_first_party_clients off, first-party apps ask too."""
    tenant.apis.update(ORGANIZER, {"skip_consent_for_verifiable_first_party_clients": False})
    await signed_in(browser)
    request = request_for("organizer-web", "https://organizer.example/callback", "read:tasks")
    response = await browser.authorize(**request)
    assert response.headers["location"].startswith("/consent")


async def test_prompt_none_errors(browser: Browser) -> None:
    """prompt=none answers login_required, then consent_required, then a code."""
    none = CALENDAR_READ | {"prompt": "none"}
    response = await browser.authorize(**none)
    assert callback_params(response.headers["location"])["error"] == "login_required"
    await signed_in(browser)
    response = await browser.authorize(**none)
    assert callback_params(response.headers["location"])["error"] == "consent_required"
    await browser.run(**CALENDAR_READ)
    response = await browser.authorize(**none)
    assert "code" in callback_params(response.headers["location"])


async def test_prompt_login_asks_again(browser: Browser) -> None:
    """prompt=login shows the login form even to a signed-in user."""
    await signed_in(browser)
    response = await browser.authorize(**(CALENDAR_READ | {"prompt": "login"}))
    assert response.headers["location"].startswith("/login?interaction=")


async def test_consent_page_shows_who_asks_for_what(browser: Browser) -> None:
    """The page names the client, the API, the redirect host and each scope's description."""
    response = await browser.authorize(**CALENDAR_READ)
    response = await browser.login(response.headers["location"])
    page = await browser.http.get(response.headers["location"])
    assert "Authorize CalendarApp" in page.text
    assert "(a third-party application)" in page.text
    assert "Organizer API" in page.text
    assert ORGANIZER in page.text
    assert "127.0.0.1:8101" in page.text
    assert "Read your appointments" in page.text
    assert "registered itself" not in page.text


async def test_dynamic_clients_get_a_warning(browser: Browser, tenant: Domain) -> None:
    """A dynamically registered client's consent page warns that it is unreviewed."""
    registered = tenant.clients.register(
        {"client_name": "Fresh", "redirect_uris": ["https://fresh.example/cb"]}
    )
    request = request_for(registered.client.client_id, "https://fresh.example/cb", "read:tasks")
    response = await browser.authorize(**request)
    response = await browser.login(response.headers["location"])
    page = await browser.http.get(response.headers["location"])
    assert "registered itself" in page.text
    assert "fresh.example" in page.text


async def test_dynamic_client_errors_do_not_redirect_automatically(
    browser: Browser, tenant: Domain
) -> None:
    """An error for a dynamically registered client is a page with a link, not a 302."""
    registered = tenant.clients.register(
        {"client_name": "Fresh", "redirect_uris": ["https://fresh.example/cb"]}
    )
    request = request_for(registered.client.client_id, "https://fresh.example/cb", "bogus")
    response = await browser.authorize(**request)
    assert response.status_code == 400
    assert "location" not in response.headers
    assert "https://fresh.example/cb?error=invalid_scope" in response.text


# --------------------------------------------------------------------------- CSRF


async def consent_form(browser: Browser) -> dict[str, str]:
    """Reach the consent page for CalendarApp and return its hidden fields."""
    response = await browser.authorize(**CALENDAR_READ)
    response = await browser.login(response.headers["location"])
    page = await browser.http.get(response.headers["location"])
    return hidden_fields(page.text)


@pytest.mark.parametrize(
    ("mutate", "headers"),
    [
        pytest.param(lambda f: f.pop("csrf_token"), {}, id="no-token"),
        pytest.param(lambda f: f.update(csrf_token="forged"), {}, id="wrong-token"),
        pytest.param(lambda f: None, {"Origin": "https://evil.example"}, id="cross-origin"),
        pytest.param(lambda f: None, {"Origin": "null"}, id="opaque-origin"),
        pytest.param(lambda f: None, {"Sec-Fetch-Site": "cross-site"}, id="cross-site-fetch"),
    ],
)
async def test_consent_post_needs_a_same_site_csrf_token(
    browser: Browser, tenant: Domain, mutate: object, headers: dict[str, str]
) -> None:
    """A consent POST without the right token or from another site grants nothing."""
    form = await consent_form(browser)
    assert callable(mutate)
    mutate(form)
    response = await browser.http.post(
        "/consent", data=form | {"decision": "allow"}, headers=headers
    )
    assert response.status_code == 403
    assert "location" not in response.headers
    assert tenant.consents.all(user_id="auth0|demo") == []


async def test_consent_post_from_our_own_page_is_accepted(browser: Browser) -> None:
    """The headers a browser sends with our own form under Referrer-Policy same-origin pass."""
    form = await consent_form(browser)
    headers = {"Origin": ORIGIN, "Sec-Fetch-Site": "same-origin"}
    response = await browser.http.post(
        "/consent", data=form | {"decision": "allow"}, headers=headers
    )
    assert response.status_code == 303
    assert response.headers["location"].startswith(CALENDAR_CB)


async def test_csrf_token_of_another_interaction_is_refused(browser: Browser) -> None:
    """A token is bound to its interaction: it does not approve a different one."""
    first = await consent_form(browser)
    second_start = await browser.authorize(**CALENDAR_READ)
    page = await browser.http.get(second_start.headers["location"])
    second = hidden_fields(page.text)
    assert second["interaction"] != first["interaction"]
    forged = second | {"csrf_token": first["csrf_token"], "decision": "allow"}
    assert (await browser.http.post("/consent", data=forged)).status_code == 403


async def test_consent_from_another_browser_is_refused(browser: Browser, app: Starlette) -> None:
    """An interaction belongs to the browser session that started it."""
    form = await consent_form(browser)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url=ORIGIN) as other:
        await Browser(other).login("/login")
        response = await other.post("/consent", data=form | {"decision": "allow"})
    assert response.status_code == 400
    assert "location" not in response.headers


async def test_get_on_consent_never_grants(browser: Browser, tenant: Domain) -> None:
    """A GET to the consent URL with decision=allow only shows the page."""
    form = await consent_form(browser)
    response = await browser.http.get(
        "/consent", params={"interaction": form["interaction"], "decision": "allow"}
    )
    assert response.status_code == 200
    assert tenant.consents.all(user_id="auth0|demo") == []


async def test_login_post_needs_the_csrf_token(browser: Browser) -> None:
    """A login POST without the CSRF token is refused and signs nobody in."""
    await browser.http.get("/login")
    response = await browser.http.post(
        "/login", data={"email": "demo@organizer.example", "password": "organizer-demo-password"}
    )
    assert response.status_code == 403


# ----------------------------------------------------------- pages and sessions


async def test_interactive_pages_forbid_framing(browser: Browser) -> None:
    """Authorize errors, login and consent pages all send the anti-framing headers."""
    error = await browser.authorize(client_id="nobody")
    login = await browser.http.get("/login")
    consent_start = await browser.authorize(**CALENDAR_READ)
    consent = await browser.login(consent_start.headers["location"])
    consent_page = await browser.http.get(consent.headers["location"])
    for page in (error, login, consent_page):
        assert page.headers["x-frame-options"] == "DENY"
        # A header, not a <meta> per page: under no-referrer browsers would post
        # "Origin: null"; under same-origin other sites get no Referer at all.
        assert page.headers["referrer-policy"] == "same-origin"
        assert 'name="referrer"' not in page.text
        assert "frame-ancestors 'none'" in page.headers["content-security-policy"]
        assert page.headers["cache-control"] == "no-store"


async def test_no_cors_on_authorize(http: httpx.AsyncClient) -> None:
    """The authorization endpoint sends no Access-Control-Allow-Origin."""
    headers = {"Origin": "https://evil.example", "Access-Control-Request-Method": "GET"}
    for method in ("OPTIONS", "GET"):
        response = await http.request(method, "/authorize", headers=headers)
        assert "access-control-allow-origin" not in response.headers


async def test_session_cookie_is_httponly_lax_and_rotated_at_login(browser: Browser) -> None:
    """The session cookie is HttpOnly and SameSite=Lax, and login issues a new session id."""
    page = await browser.http.get("/login")
    cookie = page.headers["set-cookie"]
    assert "HttpOnly" in cookie
    assert "SameSite=lax" in cookie.replace("Lax", "lax")
    before = browser.http.cookies["authz_session"]
    response = await browser.http.post(
        "/login",
        data=hidden_fields(page.text)
        | {"email": "demo@organizer.example", "password": "organizer-demo-password"},
    )
    assert response.status_code == 303
    assert browser.http.cookies["authz_session"] != before


@pytest.mark.parametrize(
    ("email", "password"),
    [
        pytest.param("demo@organizer.example", "wrong-password", id="bad-password"),
        pytest.param("nobody@organizer.example", "organizer-demo-password", id="unknown-user"),
    ],
)
async def test_bad_login_gives_one_generic_answer(
    browser: Browser, email: str, password: str
) -> None:
    """A wrong password and an unknown user get the same message (no enumeration)."""
    response = await browser.login("/login", email, password)
    assert response.status_code == 400
    assert "Wrong email or password." in response.text


async def test_login_is_rate_limited(browser: Browser) -> None:
    """After ten failed logins the form answers 429 with Retry-After, even for good ones."""
    for _ in range(10):
        assert (await browser.login("/login", password="wrong-password")).status_code == 400
    response = await browser.login("/login")
    assert response.status_code == 429
    assert int(response.headers["retry-after"]) > 0


@pytest.mark.parametrize(
    "target",
    [
        pytest.param("https://evil.example/", id="absolute"),
        pytest.param("//evil.example/", id="scheme-relative"),
        pytest.param("/\\evil.example", id="backslash"),
    ],
)
async def test_login_next_is_never_an_open_redirect(browser: Browser, target: str) -> None:
    """A foreign next target is replaced by /."""
    response = await browser.login(f"/login?next={target}")
    assert response.status_code == 303
    assert response.headers["location"] == "/"


async def test_login_next_keeps_local_paths(browser: Browser) -> None:
    """A local next path is kept (the dashboard will rely on it)."""
    response = await browser.login("/login?next=/dashboard/apis")
    assert response.headers["location"] == "/dashboard/apis"


async def test_logout_ends_the_session(browser: Browser) -> None:
    """After confirming /v2/logout the next authorization asks for login again, no redirect."""
    await browser.run(**CALENDAR_READ)
    response = await browser.http.get("/v2/logout", params={"returnTo": "https://evil.example"})
    assert response.status_code == 200
    assert "location" not in response.headers
    response = await browser.http.post("/v2/logout", data=hidden_fields(response.text))
    assert response.status_code == 200
    assert "location" not in response.headers
    again = await browser.authorize(**CALENDAR_READ)
    assert again.headers["location"].startswith("/login")


async def test_expired_interaction_shows_a_page(browser: Browser) -> None:
    """An unknown interaction id gets a clear page rather than an error."""
    response = await browser.http.get("/login", params={"interaction": "nope"})
    assert response.status_code == 400
    response = await browser.http.get("/consent", params={"interaction": "nope"})
    assert response.status_code == 400
