"""No secret, token or password is logged, or echoed back (bar the one-time new client secret)."""

from __future__ import annotations

import logging
from typing import Any

import httpx
import pytest

from examples.authz_server.services import MANAGEMENT_SCOPES, Domain

from .support import (
    CALENDAR,
    CALENDAR_CB,
    DEMO_EMAIL,
    DEMO_PASSWORD,
    ORGANIZER,
    WEB,
    Browser,
    hidden_fields,
    management_token,
    pkce_pair,
    token_request,
)

pytestmark = pytest.mark.anyio

# A value no answer has a reason to contain, unless it echoes what it was sent.
CANARY = "Canary-5ecret-Value-9f3b"


def logged(caplog: pytest.LogCaptureFixture) -> str:
    """Everything the records say: formatted messages, raw arguments and exception text."""
    parts = [caplog.text]
    for record in caplog.records:
        parts += [record.getMessage(), repr(record.args), str(record.exc_text or "")]
    return "\n".join(parts)


async def test_a_full_flow_logs_no_secret(
    caplog: pytest.LogCaptureFixture,
    http: httpx.AsyncClient,
    browser: Browser,
    tenant: Domain,
) -> None:
    """At DEBUG, the logs of sign-in, every grant, registration and management hold no secret."""
    caplog.set_level(logging.DEBUG)
    secrets: dict[str, str] = {
        "password": DEMO_PASSWORD,
        "client secret": CALENDAR["client_secret"],
        "first-party secret": WEB["client_secret"],
    }
    verifier, challenge = pkce_pair()
    secrets["code verifier"] = verifier
    params = await browser.code(
        response_type="code",
        client_id="calendar-app",
        redirect_uri=CALENDAR_CB,
        scope="openid read:tasks offline_access",
        audience=ORGANIZER,
        code_challenge=challenge,
        code_challenge_method="S256",
    )
    secrets["code"] = params["code"]
    secrets["session"] = browser.http.cookies["authz_session"]
    issued = await token_request(
        http,
        grant_type="authorization_code",
        code=params["code"],
        redirect_uri=CALENDAR_CB,
        code_verifier=verifier,
        **CALENDAR,
    )
    tokens: dict[str, Any] = issued.json()
    secrets |= {name: tokens[name] for name in ("access_token", "id_token", "refresh_token")}
    rotated = await token_request(
        http, grant_type="refresh_token", refresh_token=tokens["refresh_token"], **CALENDAR
    )
    secrets["rotated refresh token"] = rotated.json()["refresh_token"]
    await token_request(
        http, grant_type="refresh_token", refresh_token=tokens["refresh_token"], **CALENDAR
    )
    userinfo = await http.get(
        "/userinfo", headers={"Authorization": f"Bearer {tokens['access_token']}"}
    )
    assert userinfo.status_code == 200
    password_grant = await token_request(
        http,
        grant_type="password",
        username=DEMO_EMAIL,
        password=DEMO_PASSWORD,
        audience=ORGANIZER,
        scope="read:tasks",
        **WEB,
    )
    secrets["password-grant token"] = password_grant.json()["access_token"]
    registered = await http.post(
        "/oidc/register",
        json={"client_name": "Leaky", "redirect_uris": ["https://leaky.example/cb"]},
    )
    secrets["registered secret"] = registered.json()["client_secret"]
    admin_token = await management_token(http, tenant, *MANAGEMENT_SCOPES)
    secrets["management token"] = admin_token
    created = await http.post(
        "/api/v2/clients",
        json={"name": "Logged", "app_type": "non_interactive"},
        headers={"Authorization": f"Bearer {admin_token}"},
    )
    secrets["created secret"] = created.json()["client_secret"]
    await http.post("/oauth/revoke", data={"token": rotated.json()["refresh_token"], **CALENDAR})

    assert caplog.records, "the flow logs something (the check below would be vacuous otherwise)"
    text = logged(caplog)
    leaked = [name for name, value in secrets.items() if value and value in text]
    assert leaked == []


ECHO_CASES = [
    pytest.param(
        "POST",
        "/oauth/token",
        {
            "data": {
                "grant_type": "client_credentials",
                "client_id": "world-mappers",
                "client_secret": CANARY,
                "audience": ORGANIZER,
            }
        },
        id="client-secret",
    ),
    pytest.param(
        "POST",
        "/oauth/token",
        {"data": {"grant_type": "password", "username": DEMO_EMAIL, "password": CANARY, **WEB}},
        id="password-grant",
    ),
    pytest.param(
        "POST",
        "/oauth/token",
        {"data": {"grant_type": "refresh_token", "refresh_token": CANARY, **CALENDAR}},
        id="refresh-token",
    ),
    pytest.param(
        "POST",
        "/oauth/token",
        {
            "data": {
                "grant_type": "authorization_code",
                "code": CANARY,
                "redirect_uri": CALENDAR_CB,
                **CALENDAR,
            }
        },
        id="code",
    ),
    pytest.param(
        "POST",
        "/oauth/token",
        {
            "json": {
                "grant_type": "authorization_code",
                "code": "x",
                "code_verifier": CANARY + "x" * 30,
                **CALENDAR,
            }
        },
        id="verifier",
    ),
    pytest.param(
        "POST",
        "/oauth/revoke",
        {"data": {"token": CANARY, "client_id": "calendar-app", "client_secret": CANARY}},
        id="revoke",
    ),
    pytest.param(
        "GET", "/userinfo", {"headers": {"Authorization": f"Bearer {CANARY}"}}, id="userinfo"
    ),
]


@pytest.mark.parametrize(("method", "url", "kwargs"), ECHO_CASES)
async def test_back_channel_never_echoes_credentials(
    http: httpx.AsyncClient, method: str, url: str, kwargs: dict[str, Any]
) -> None:
    """A refused credential does not come back in the answer's body or headers."""
    response = await http.request(method, url, **kwargs)
    assert 400 <= response.status_code < 500
    assert CANARY not in response.text
    assert CANARY not in str(response.headers)


async def test_login_page_never_echoes_the_password(
    browser: Browser, http: httpx.AsyncClient
) -> None:
    """After a wrong password the login page keeps the email but not the password."""
    page = await http.get("/login")
    form = hidden_fields(page.text) | {"email": DEMO_EMAIL, "password": CANARY}
    response = await http.post("/login", data=form)
    assert response.status_code == 400
    assert DEMO_EMAIL in response.text
    assert CANARY not in response.text


async def test_management_api_shows_a_client_secret_only_once(
    http: httpx.AsyncClient, tenant: Domain
) -> None:
    """The secret is in the creation answer, and in no later read of the client or the list."""
    token = await management_token(http, tenant, *MANAGEMENT_SCOPES)
    auth = {"Authorization": f"Bearer {token}"}
    created = await http.post(
        "/api/v2/clients", json={"name": "Once", "app_type": "non_interactive"}, headers=auth
    )
    secret = created.json()["client_secret"]
    client_id = created.json()["client_id"]
    one = await http.get(f"/api/v2/clients/{client_id}", headers=auth)
    every = await http.get("/api/v2/clients", headers=auth)
    assert one.status_code == every.status_code == 200
    assert secret not in one.text
    assert secret not in every.text
    assert "client_secret" not in one.json()
