"""The authorization server's answers to an adversarial review, tried as an attacker would.

Each section is one finding: no scope grants what it lacks, secrets only for who could set
them, unknown users cost the same scrypt work, real logout confirmation, consent for
claimable redirect URIs, no anonymous session rows, revocation that revokes, RFC details.
"""

from __future__ import annotations

import hashlib
from typing import Any

import httpx
import jwt
import pytest
from starlette.applications import Starlette

from examples.authz_server import Settings, create_app
from examples.authz_server import security as security_module
from examples.authz_server.services import Domain
from examples.authz_server.store import Store

from .support import (
    CALENDAR,
    CALENDAR_CB,
    DEMO_EMAIL,
    DEMO_PASSWORD,
    MANAGEMENT,
    ORGANIZER,
    ORIGIN,
    SPA_CB,
    WEB,
    Browser,
    FakeClock,
    callback_params,
    hidden_fields,
    pkce_pair,
    token_request,
)

pytestmark = pytest.mark.anyio
ADMIN_ID = "auth0|admin"
CALENDAR_READ = {
    "response_type": "code",
    "client_id": "calendar-app",
    "redirect_uri": CALENDAR_CB,
    "scope": "openid read:appointments",
    "audience": ORGANIZER,
    "state": "st",
}


async def management_client(
    app: Starlette, http: httpx.AsyncClient, tenant: Domain, *scopes: str
) -> httpx.AsyncClient:
    """A Management API caller (World Mappers) holding exactly *scopes*."""
    grant = tenant.client_grants.find("world-mappers", MANAGEMENT)
    if grant is None:
        tenant.client_grants.create("world-mappers", MANAGEMENT, list(scopes))
    else:
        tenant.client_grants.update(grant.id, list(scopes))
    answer = await token_request(
        http,
        grant_type="client_credentials",
        audience=MANAGEMENT,
        client_id="world-mappers",
        client_secret="world-mappers-dev-secret",
    )
    assert answer.status_code == 200, answer.text
    return httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app),
        base_url=ORIGIN,
        headers={"Authorization": f"Bearer {answer.json()['access_token']}"},
    )


# ----------------------------------------------- 10. no scope grants what it lacks


def _powerful_client(tenant: Domain) -> None:
    """Organizer Web gets Management API scopes that the attacker's token lacks."""
    tenant.client_grants.create("organizer-web", MANAGEMENT, ["delete:users", "create:users"])


SIDEWAYS = [
    pytest.param(
        ["create:users"],
        "POST",
        "/api/v2/users",
        {
            "email": "mallory@evil.example",
            "password": "long-password",
            "app_metadata": {"is_admin": True},
        },
        id="create-users-makes-an-admin",
    ),
    pytest.param(
        ["update:users"],
        "PATCH",
        "/api/v2/users/auth0|demo",
        {"app_metadata": {"is_admin": True}},
        id="update-users-makes-an-admin",
    ),
    pytest.param(
        ["update:users"],
        "PATCH",
        "/api/v2/users/auth0|demo",
        {"is_admin": True},
        id="update-users-is-admin-field",
    ),
    pytest.param(
        ["update:users"],
        "PATCH",
        f"/api/v2/users/{ADMIN_ID}",
        {"password": "attacker-chosen-password"},
        id="update-users-takes-over-an-admin-password",
    ),
    pytest.param(
        ["update:users"],
        "PATCH",
        f"/api/v2/users/{ADMIN_ID}",
        {"email": "mallory@evil.example"},
        id="update-users-takes-over-an-admin-email",
    ),
    pytest.param(
        ["create:client_grants"],
        "POST",
        "/api/v2/client-grants",
        {"client_id": "calendar-app", "audience": MANAGEMENT, "scope": ["create:users"]},
        id="create-client-grants-grants-management-scopes",
    ),
    pytest.param(
        ["update:client_grants"],
        "PATCH",
        "/api/v2/client-grants/{world_mappers_management_grant}",
        {"scope": ["update:client_grants", "create:signing_keys"]},
        id="update-client-grants-widens-its-own-grant",
    ),
    pytest.param(
        ["update:clients"],
        "POST",
        "/api/v2/clients/organizer-web/rotate-secret",
        None,
        id="rotate-secret-of-a-more-powerful-client",
    ),
    pytest.param(
        ["update:clients"],
        "PATCH",
        "/api/v2/clients/organizer-web",
        {"name": "Owned"},
        id="update-a-more-powerful-client",
    ),
]


@pytest.mark.parametrize(("held", "method", "path", "body"), SIDEWAYS)
async def test_no_management_scope_grants_a_scope_it_does_not_hold(
    app: Starlette,
    http: httpx.AsyncClient,
    tenant: Domain,
    held: list[str],
    method: str,
    path: str,
    body: dict[str, Any] | None,
) -> None:
    """Each way a scope could reach a scope (or admin status) it lacks answers 403."""
    _powerful_client(tenant)
    async with await management_client(app, http, tenant, *held) as caller:
        grant = tenant.client_grants.find("world-mappers", MANAGEMENT)
        assert grant is not None
        url = path.format(world_mappers_management_grant=grant.id)
        response = await caller.request(method, url, json=body)
    assert response.status_code == 403, response.text
    assert response.json()["statusCode"] == 403
    assert not any(u.is_admin for u in tenant.users.all() if u.user_id != ADMIN_ID)
    admin = tenant.users.get(ADMIN_ID)
    assert admin.email == "admin@organizer.example"
    assert tenant.users.authenticate(admin.email, "organizer-admin-password") is not None
    assert tenant.client_grants.management_scopes_of("calendar-app") == frozenset()
    assert tenant.client_grants.management_scopes_of("world-mappers") == frozenset(held)


ALLOWED = [
    pytest.param(
        ["create:client_grants", "read:users"],
        "POST",
        "/api/v2/client-grants",
        {"client_id": "calendar-app", "audience": MANAGEMENT, "scope": ["read:users"]},
        201,
        id="grant-a-scope-one-holds",
    ),
    pytest.param(
        ["create:client_grants"],
        "POST",
        "/api/v2/client-grants",
        {"client_id": "calendar-app", "audience": ORGANIZER, "scope": ["read:appointments"]},
        201,
        id="grant-scopes-of-another-api",
    ),
    pytest.param(
        ["update:clients"],
        "POST",
        "/api/v2/clients/calendar-app/rotate-secret",
        None,
        200,
        id="rotate-secret-of-a-client-without-management-scopes",
    ),
    pytest.param(
        ["update:users"],
        "PATCH",
        "/api/v2/users/auth0|demo",
        {"password": "a-new-demo-password"},
        200,
        id="change-a-non-admin-password",
    ),
]


@pytest.mark.parametrize(("held", "method", "path", "body", "status"), ALLOWED)
async def test_the_same_calls_within_the_callers_scopes_work(
    app: Starlette,
    http: httpx.AsyncClient,
    tenant: Domain,
    held: list[str],
    method: str,
    path: str,
    body: dict[str, Any] | None,
    status: int,
) -> None:
    """What stays within the caller's own scopes is still allowed."""
    async with await management_client(app, http, tenant, *held) as caller:
        response = await caller.request(method, path, json=body)
    assert response.status_code == status, response.text


def test_administrator_status_is_set_from_the_command_line(
    tenant: Domain, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """``set-admin`` is the way to make (and unmake) an administrator."""
    from examples.authz_server.__main__ import run_admin

    class Args:
        command = "set-admin"
        user = DEMO_EMAIL
        off = False

    assert run_admin(tenant, Args())["app_metadata"] == {"is_admin": True}
    Args.off = True
    assert run_admin(tenant, Args())["app_metadata"] == {"is_admin": False}


# ------------------------------------------------ 11. signing secrets for setters only


@pytest.mark.parametrize(
    ("held", "shown"),
    [
        pytest.param(["read:resource_servers"], False, id="read-only"),
        pytest.param(["read:resource_servers", "update:resource_servers"], True, id="updater"),
    ],
)
async def test_hs256_secret_is_read_only_by_who_could_set_it(
    app: Starlette, http: httpx.AsyncClient, tenant: Domain, held: list[str], shown: bool
) -> None:
    """``read:resource_servers`` alone never sees ``signing_secret``."""
    api = tenant.apis.create(name="Legacy", identifier="urn:legacy", signing_alg="HS256")
    assert api.signing_secret is not None
    async with await management_client(app, http, tenant, *held) as caller:
        one = await caller.get(f"/api/v2/resource-servers/{api.id}")
        listed = await caller.get("/api/v2/resource-servers")
    assert one.status_code == 200
    assert ("signing_secret" in one.json()) is shown
    assert (api.signing_secret in one.text) is shown
    assert api.signing_secret not in listed.text


# ---------------------------------------------------------- 12. email_verified


async def test_email_verified_is_only_true_for_verified_addresses(
    app: Starlette, http: httpx.AsyncClient, tenant: Domain
) -> None:
    """A user created without verification gets ``email_verified: false`` in ID tokens."""
    tenant.users.create(email="victim@corp.example", password="long-password")

    async def id_claims(email: str, password: str) -> dict[str, Any]:
        answer = await token_request(
            http,
            grant_type="password",
            username=email,
            password=password,
            scope="openid email",
            **WEB,
        )
        assert answer.status_code == 200, answer.text
        claims: dict[str, Any] = jwt.decode(
            answer.json()["id_token"], options={"verify_signature": False}
        )
        return claims

    assert (await id_claims("victim@corp.example", "long-password"))["email_verified"] is False
    assert (await id_claims(DEMO_EMAIL, DEMO_PASSWORD))["email_verified"] is True
    async with await management_client(app, http, tenant, "create:users") as caller:
        created = await caller.post(
            "/api/v2/users", json={"email": "api@corp.example", "password": "long-password"}
        )
    assert created.json()["email_verified"] is False


def test_changing_the_email_drops_its_verification(tenant: Domain) -> None:
    """A new address is unverified even if the old one was verified."""
    user = tenant.users.update("auth0|demo", {"email": "demo2@organizer.example"})
    assert not user.email_verified


# ------------------------------------------------------ 13. login timing (scrypt)


@pytest.fixture
def scrypt_calls(tenant: Domain, monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Count the scrypt derivations the server runs (after any one-time set-up)."""
    tenant.users.authenticate("warm-up@organizer.example", "wrong-password")
    calls: list[int] = []
    real = hashlib.scrypt

    def counting(*args: Any, **kwargs: Any) -> bytes:
        calls.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(security_module.hashlib, "scrypt", counting)
    return calls


@pytest.mark.parametrize(
    "email",
    [
        pytest.param(DEMO_EMAIL, id="known-user-wrong-password"),
        pytest.param("nobody@organizer.example", id="unknown-user"),
    ],
)
async def test_unknown_users_cost_the_same_scrypt_work(
    http: httpx.AsyncClient, scrypt_calls: list[int], email: str
) -> None:
    """A sign-in (page or password grant) runs exactly one scrypt whether or not the user exists."""
    page = await http.get("/login")
    form = hidden_fields(page.text) | {"email": email, "password": "wrong-password"}
    answer = await http.post("/login", data=form)
    assert answer.status_code == 400
    assert len(scrypt_calls) == 1
    grant = await token_request(
        http, grant_type="password", username=email, password="wrong-password", **WEB
    )
    assert grant.json()["error"] == "invalid_grant"
    assert len(scrypt_calls) == 2


# --------------------------------------------------- 14. no implicit self-service


@pytest.mark.parametrize(
    "metadata",
    [
        pytest.param({"grant_types": ["implicit"], "response_types": ["token"]}, id="token"),
        pytest.param(
            {"grant_types": ["implicit"], "response_types": ["id_token token"]}, id="id-token"
        ),
    ],
)
async def test_self_registered_clients_get_no_implicit_grant(
    app: Starlette, http: httpx.AsyncClient, tenant: Domain, metadata: dict[str, Any]
) -> None:
    """Open registration refuses the implicit grant; an administrator may enable it later."""
    phishing = {
        "client_name": "Organizer SPA",
        "redirect_uris": ["https://organizer.examp1e/callback"],
        "token_endpoint_auth_method": "none",
        **metadata,
    }
    refused = await http.post("/oidc/register", json=phishing)
    assert refused.status_code == 400
    assert refused.json()["error"] == "invalid_client_metadata"
    assert "implicit" in refused.json()["error_description"]
    code_only = phishing | {"grant_types": ["authorization_code"], "response_types": ["code"]}
    registered = await http.post("/oidc/register", json=code_only)
    assert registered.status_code == 201
    client_id = registered.json()["client_id"]
    async with await management_client(app, http, tenant, "update:clients") as caller:
        enabled = await caller.patch(
            f"/api/v2/clients/{client_id}", json={"grant_types": ["authorization_code", "implicit"]}
        )
    assert enabled.status_code == 200
    assert "implicit" in enabled.json()["grant_types"]


# ----------------------------------------------------------- 16. logout by CSRF


async def signed_in(browser: Browser) -> None:
    await browser.run(**CALENDAR_READ)
    again = await browser.authorize(**CALENDAR_READ)
    assert again.headers["location"].startswith(CALENDAR_CB)


async def still_signed_in(browser: Browser) -> bool:
    again = await browser.authorize(**CALENDAR_READ)
    return bool(again.headers["location"].startswith(CALENDAR_CB))


async def test_a_cross_site_get_does_not_log_out(browser: Browser) -> None:
    """An image or link on another site (a GET) shows a confirmation and ends nothing."""
    await signed_in(browser)
    answer = await browser.http.get(
        "/v2/logout",
        params={"client_id": "calendar-app", "returnTo": CALENDAR_CB},
        headers={"Sec-Fetch-Site": "cross-site", "Sec-Fetch-Dest": "image"},
    )
    assert answer.status_code == 200
    assert "location" not in answer.headers
    assert 'method="post"' in answer.text
    assert await still_signed_in(browser)


@pytest.mark.parametrize(
    ("headers", "csrf"),
    [
        pytest.param({"Origin": "https://evil.example"}, True, id="cross-origin"),
        pytest.param({"Sec-Fetch-Site": "cross-site"}, True, id="cross-site"),
        pytest.param({}, False, id="no-csrf-token"),
    ],
)
async def test_logout_post_needs_same_origin_and_csrf(
    browser: Browser, headers: dict[str, str], csrf: bool
) -> None:
    """A forged POST (other origin, or without the form's token) is refused with 403."""
    await signed_in(browser)
    page = await browser.http.get("/v2/logout")
    form = hidden_fields(page.text)
    if not csrf:
        form.pop("csrf_token")
    answer = await browser.http.post("/v2/logout", data=form, headers=headers)
    assert answer.status_code == 403
    assert await still_signed_in(browser)


@pytest.mark.parametrize(
    ("return_to", "redirected"),
    [
        pytest.param(CALENDAR_CB, True, id="registered"),
        pytest.param("https://evil.example/", False, id="foreign"),
        pytest.param(CALENDAR_CB + "/../evil", False, id="dot-segments"),
    ],
)
async def test_logout_returns_only_to_a_registered_url(
    browser: Browser, return_to: str, redirected: bool
) -> None:
    """After the confirmed logout, ``returnTo`` is followed only when the client registered it."""
    await signed_in(browser)
    page = await browser.http.get(
        "/v2/logout", params={"client_id": "calendar-app", "returnTo": return_to}
    )
    answer = await browser.http.post("/v2/logout", data=hidden_fields(page.text))
    if redirected:
        assert answer.status_code == 303
        assert answer.headers["location"] == return_to
    else:
        assert answer.status_code == 200
        assert "location" not in answer.headers
    assert not await still_signed_in(browser)


# ------------------------------------------------- 17. claimable native redirects


@pytest.mark.parametrize(
    ("callback", "asks"),
    [
        pytest.param("com.organizer.app:/callback", True, id="private-use-scheme"),
        pytest.param("http://127.0.0.1/callback", True, id="loopback"),
        pytest.param("https://organizer.example/native", False, id="https-claimed"),
    ],
)
async def test_first_party_native_apps_on_claimable_uris_ask_for_consent(
    browser: Browser, tenant: Domain, callback: str, asks: bool
) -> None:
    """Any app can claim a custom scheme or a loopback port, so first party skips nothing there."""
    tenant.clients.create(
        client_id="organizer-native",
        name="Organizer Mobile",
        app_type="native",
        is_first_party=True,
        callbacks=[callback],
    )
    _, challenge = pkce_pair()
    answer = await browser.run(
        decision="deny",
        response_type="code",
        client_id="organizer-native",
        redirect_uri=callback,
        scope="openid read:tasks",
        audience=ORGANIZER,
        code_challenge=challenge,
        code_challenge_method="S256",
    )
    params = callback_params(answer.headers["location"])
    assert ("error" in params) is asks
    assert ("code" in params) is not asks


# ---------------------------------------------------- 18. no anonymous session rows


@pytest.fixture
def capped(clock: FakeClock, seeded_store: Store) -> Starlette:
    return create_app(
        Settings(db_path=":memory:", clock=clock, max_interactions=5),
        store=Store.copy_of(seeded_store),
    )


def _count(app: Starlette, table: str) -> int:
    store: Store = app.state.services.domain.store
    row = store.one(f"SELECT COUNT(*) AS n FROM {table}")
    assert row is not None
    return int(row["n"])


async def test_cookieless_visits_write_no_session_rows(capped: Starlette) -> None:
    """Cookieless /login and /authorize visits leave no session row and few interactions."""
    transport = httpx.ASGITransport(app=capped)
    for _ in range(30):
        async with httpx.AsyncClient(transport=transport, base_url=ORIGIN) as fresh:
            assert (await fresh.get("/login")).status_code == 200
            assert (await fresh.get("/authorize", params=CALENDAR_READ)).status_code == 302
    assert _count(capped, "sessions") == 0
    assert _count(capped, "interactions") == 5


async def test_signing_in_still_works_and_expired_sessions_are_purged(
    capped: Starlette, clock: FakeClock
) -> None:
    """A session row appears only at sign-in; rows past their lifetime are deleted."""
    transport = httpx.ASGITransport(app=capped)
    async with httpx.AsyncClient(transport=transport, base_url=ORIGIN) as first:
        await Browser(first).run(**CALENDAR_READ)
    assert _count(capped, "sessions") == 1
    clock.advance(8 * 3600 + 1)
    async with httpx.AsyncClient(transport=transport, base_url=ORIGIN) as second:
        answer = await Browser(second).run(**CALENDAR_READ)
    assert answer.headers["location"].startswith(CALENDAR_CB)
    assert _count(capped, "sessions") == 1


async def test_codes_are_purged_a_day_after_they_expire(
    app: Starlette, browser: Browser, clock: FakeClock
) -> None:
    """Spent and expired codes do not pile up; they stay a day so a replay still revokes."""
    _, challenge = pkce_pair()
    flow = CALENDAR_READ | {"code_challenge": challenge, "code_challenge_method": "S256"}
    await browser.code(**flow)
    clock.advance(3600)
    await browser.code(**flow)
    assert _count(app, "auth_codes") == 2
    clock.advance(86400)
    await browser.code(**flow)
    assert _count(app, "auth_codes") == 2


# ----------------------------------------------- 20. revocation of access tokens


async def user_access_token(http: httpx.AsyncClient) -> str:
    answer = await token_request(
        http,
        grant_type="password",
        username=DEMO_EMAIL,
        password=DEMO_PASSWORD,
        scope="openid email",
        audience=ORGANIZER,
        **WEB,
    )
    assert answer.status_code == 200, answer.text
    token: str = answer.json()["access_token"]
    return token


async def test_a_revoked_access_token_stops_working_at_userinfo(http: httpx.AsyncClient) -> None:
    """/oauth/revoke with an access token answers 200 and /userinfo then refuses it."""
    token = await user_access_token(http)
    bearer = {"Authorization": f"Bearer {token}"}
    assert (await http.get("/userinfo", headers=bearer)).status_code == 200
    foreign = await http.post("/oauth/revoke", data={"token": token, **CALENDAR})
    assert foreign.status_code == 400
    assert (await http.get("/userinfo", headers=bearer)).status_code == 200
    revoked = await http.post("/oauth/revoke", data={"token": token, **WEB})
    assert revoked.status_code == 200
    refused = await http.get("/userinfo", headers=bearer)
    assert refused.status_code == 401
    assert 'error="invalid_token"' in refused.headers["www-authenticate"]


async def test_a_revoked_management_token_stops_working(
    app: Starlette, http: httpx.AsyncClient, tenant: Domain
) -> None:
    """The Management API refuses a token its holder revoked."""
    async with await management_client(app, http, tenant, "read:clients") as caller:
        assert (await caller.get("/api/v2/clients")).status_code == 200
        token = caller.headers["authorization"].split()[1]
        revoked = await http.post(
            "/oauth/revoke",
            data={
                "token": token,
                "client_id": "world-mappers",
                "client_secret": "world-mappers-dev-secret",
            },
        )
        assert revoked.status_code == 200
        refused = await caller.get("/api/v2/clients")
    assert refused.status_code == 401
    assert 'error="invalid_token"' in refused.headers["www-authenticate"]


# ------------------------------------------------------------ 21. RFC details


@pytest.mark.parametrize(
    "headers",
    [
        pytest.param({}, id="no-header"),
        pytest.param({"Authorization": "Basic dXNlcjpwdw=="}, id="other-scheme"),
    ],
)
async def test_userinfo_without_credentials_is_a_bare_challenge(
    http: httpx.AsyncClient, headers: dict[str, str]
) -> None:
    """No credentials: 401 and ``Bearer realm=...`` with no error code (RFC 6750 §3.1)."""
    answer = await http.get("/userinfo", headers=headers)
    assert answer.status_code == 401
    assert answer.headers["www-authenticate"] == 'Bearer realm="userinfo"'
    assert "error" not in answer.text


async def test_id_token_response_without_openid_issues_no_id_token(browser: Browser) -> None:
    """``id_token token`` without ``openid`` is an error to the client, never an ID token."""
    answer = await browser.run(
        response_type="id_token token",
        client_id="organizer-spa",
        redirect_uri=SPA_CB,
        scope="read:tasks",
        audience=ORGANIZER,
        nonce="n-0S6_WzA2Mj",
        state="st",
    )
    params = callback_params(answer.headers["location"])
    assert params["error"] == "invalid_request"
    assert "id_token" not in params
    assert "access_token" not in params


async def refresh_token_of_demo(http: httpx.AsyncClient, browser: Browser) -> str:
    verifier, challenge = pkce_pair()
    params = await browser.code(
        **CALENDAR_READ
        | {
            "scope": "openid read:appointments offline_access",
            "code_challenge": challenge,
            "code_challenge_method": "S256",
        }
    )
    answer = await token_request(
        http,
        grant_type="authorization_code",
        code=params["code"],
        redirect_uri=CALENDAR_CB,
        code_verifier=verifier,
        **CALENDAR,
    )
    token: str = answer.json()["refresh_token"]
    return token


@pytest.mark.parametrize(
    ("method", "body"),
    [
        pytest.param("PATCH", {"blocked": True}, id="blocked"),
        pytest.param("DELETE", None, id="deleted"),
    ],
)
async def test_blocking_or_deleting_a_user_revokes_their_refresh_tokens(
    app: Starlette,
    http: httpx.AsyncClient,
    browser: Browser,
    tenant: Domain,
    method: str,
    body: dict[str, Any] | None,
) -> None:
    """After an administrator blocks or deletes the user, refresh and sign-in both fail."""
    refresh_token = await refresh_token_of_demo(http, browser)
    scopes = ("update:users", "delete:users")
    async with await management_client(app, http, tenant, *scopes) as caller:
        answer = await caller.request(method, "/api/v2/users/auth0|demo", json=body)
    assert answer.status_code in (200, 204), answer.text
    refreshed = await token_request(
        http, grant_type="refresh_token", refresh_token=refresh_token, **CALENDAR
    )
    assert refreshed.json()["error"] == "invalid_grant"
    assert (
        not (await browser.authorize(**CALENDAR_READ)).headers["location"].startswith(CALENDAR_CB)
    )
    password = await token_request(
        http, grant_type="password", username=DEMO_EMAIL, password=DEMO_PASSWORD, **WEB
    )
    assert password.json()["error"] == "invalid_grant"
