"""RBAC shaped like Auth0's (roles, permissions, scope = requested ∩ permitted) and step-up.

The Management API endpoints in Auth0's shapes, what a user's access token then carries,
and the authentication context: ``auth_time``/``acr``/``amr``, ``max_age``, ``prompt=login``
and ``acr_values`` with a one-time code as the second factor.
"""

from __future__ import annotations

import logging
import re
from typing import Any
from urllib.parse import quote

import httpx
import jwt
import pytest

from examples.authz_server.models import ACR_MFA, ACR_PASSWORD
from examples.authz_server.services import Domain

from .support import (
    CALENDAR,
    CALENDAR_CB,
    ORGANIZER,
    WEB,
    WEB_CB,
    Browser,
    FakeClock,
    callback_params,
    hidden_fields,
    management_token,
    pkce_pair,
    token_request,
)

pytestmark = pytest.mark.anyio
ROLES_CLAIM = "https://organizer.example/roles"
DEMO = "auth0|demo"
ALL = [
    "read:appointments",
    "create:appointments",
    "delete:appointments",
    "read:contacts",
    "create:contacts",
    "read:tasks",
    "create:tasks",
]
ASSISTANT = [p for p in ALL if p != "delete:appointments"]


def claims(token: str) -> dict[str, Any]:
    decoded: dict[str, Any] = jwt.decode(token, options={"verify_signature": False})
    return decoded


def perm(name: str, audience: str = ORGANIZER) -> dict[str, str]:
    return {"resource_server_identifier": audience, "permission_name": name}


async def password_token(http: httpx.AsyncClient, scope: str, **extra: str) -> httpx.Response:
    """The trusted first-party app signs the demo user in with the password grant."""
    return await token_request(
        http,
        grant_type="password",
        username="demo@organizer.example",
        password="organizer-demo-password",
        audience=ORGANIZER,
        scope=scope,
        **WEB,
        **extra,
    )


# -- tokens under RBAC -------------------------------------------------------------------


async def test_scope_is_requested_and_permitted_permissions_all_of_the_users(
    http: httpx.AsyncClient,
) -> None:
    """RBAC on: scope drops what the user may not do; permissions lists all the user may."""
    response = await password_token(http, "openid read:appointments delete:appointments")
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["scope"] == "openid read:appointments"
    access = claims(body["access_token"])
    assert access["scope"] == "openid read:appointments"
    assert access["permissions"] == sorted(ASSISTANT)
    assert access[ROLES_CLAIM] == ["assistant"]
    assert (access["acr"], access["amr"]) == (ACR_PASSWORD, ["pwd"])
    assert isinstance(access["auth_time"], int)
    id_token = claims(body["id_token"])
    assert id_token[ROLES_CLAIM] == ["assistant"]
    assert (id_token["acr"], id_token["auth_time"]) == (ACR_PASSWORD, access["auth_time"])


async def test_a_role_given_through_the_management_api_reaches_the_next_token(
    http: httpx.AsyncClient, tenant: Domain
) -> None:
    """Assigning organizer-admin to the user adds delete:appointments and the role name."""
    admin = tenant.rbac.get("organizer-admin")
    token = await management_token(http, tenant, "update:users", "read:users", "read:roles")
    headers = {"Authorization": f"Bearer {token}"}
    user = quote(DEMO, safe="")
    assigned = await http.post(
        f"/api/v2/users/{user}/roles", json={"roles": [admin.id]}, headers=headers
    )
    assert assigned.status_code == 204, assigned.text
    roles = await http.get(f"/api/v2/users/{user}/roles", headers=headers)
    assert sorted(r["name"] for r in roles.json()) == ["assistant", "organizer-admin"]
    body = (await password_token(http, "delete:appointments")).json()
    access = claims(body["access_token"])
    assert access["scope"] == "delete:appointments"
    assert access[ROLES_CLAIM] == ["assistant", "organizer-admin"]
    assert access["permissions"] == sorted(ALL)


async def test_a_third_party_app_gets_only_what_was_consented(
    http: httpx.AsyncClient, browser: Browser
) -> None:
    """CalendarApp asked for read:appointments: scope says so, permissions lists the rest."""
    verifier, challenge = pkce_pair()
    params = await browser.code(
        response_type="code",
        client_id="calendar-app",
        redirect_uri=CALENDAR_CB,
        scope="read:appointments",
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
    access = claims(response.json()["access_token"])
    assert access["scope"] == "read:appointments"
    assert "create:contacts" in access["permissions"]


async def test_rbac_off_leaves_the_scopes_alone(http: httpx.AsyncClient, tenant: Domain) -> None:
    """Without RBAC a user gets what was asked, and permissions echoes the API scopes."""
    tenant.apis.update(ORGANIZER, {"enforce_policies": False})
    body = (await password_token(http, "openid delete:appointments")).json()
    access = claims(body["access_token"])
    assert access["scope"] == "openid delete:appointments"
    assert access["permissions"] == ["delete:appointments"]


async def test_permissions_only_with_the_authz_dialect(
    http: httpx.AsyncClient, tenant: Domain
) -> None:
    """ "Add permissions in the access token" off: no permissions claim, scope still cut."""
    tenant.apis.update(ORGANIZER, {"token_dialect": "access_token"})
    access = claims(
        (await password_token(http, "delete:appointments read:tasks")).json()["access_token"]
    )
    assert access["scope"] == "read:tasks"
    assert "permissions" not in access


async def test_machine_tokens_ignore_rbac(http: httpx.AsyncClient) -> None:
    """Client credentials follow the client grant, RBAC or not (as at Auth0)."""
    from .support import WORLD_MAPPERS

    response = await token_request(
        http, grant_type="client_credentials", audience=ORGANIZER, **WORLD_MAPPERS
    )
    access = claims(response.json()["access_token"])
    assert access["scope"] == "read:appointments read:contacts"
    assert ROLES_CLAIM not in access
    assert "auth_time" not in access


# -- the Management API -------------------------------------------------------------------


async def test_roles_and_permissions_in_auth0_shapes(
    http: httpx.AsyncClient, tenant: Domain
) -> None:
    """Create a role, give it permissions, assign it, read the user's permissions."""
    token = await management_token(
        http,
        tenant,
        "create:roles",
        "read:roles",
        "update:roles",
        "delete:roles",
        "read:users",
        "update:users",
    )
    headers = {"Authorization": f"Bearer {token}"}
    created = await http.post(
        "/api/v2/roles", json={"name": "auditor", "description": "Reads"}, headers=headers
    )
    assert created.status_code == 200, created.text
    role = created.json()
    assert set(role) == {"id", "name", "description"}
    added = await http.post(
        f"/api/v2/roles/{role['id']}/permissions",
        json={"permissions": [perm("read:tasks"), perm("read:contacts")]},
        headers=headers,
    )
    assert added.status_code == 201, added.text
    listed = (await http.get(f"/api/v2/roles/{role['id']}/permissions", headers=headers)).json()
    assert {p["permission_name"] for p in listed} == {"read:tasks", "read:contacts"}
    assert listed[0]["resource_server_name"] == "Organizer API"
    user = quote(DEMO, safe="")
    await http.post(f"/api/v2/users/{user}/roles", json={"roles": [role["id"]]}, headers=headers)
    direct = await http.post(
        f"/api/v2/users/{user}/permissions",
        json={"permissions": [perm("delete:appointments")]},
        headers=headers,
    )
    assert direct.status_code == 201
    held = (await http.get(f"/api/v2/users/{user}/permissions", headers=headers)).json()
    by_name = {p["permission_name"]: p for p in held}
    assert [s["source_type"] for s in by_name["delete:appointments"]["sources"]] == ["DIRECT"]
    tasks = {s["source_name"] for s in by_name["read:tasks"]["sources"]}
    assert tasks == {"assistant", "auditor"}
    users = (await http.get(f"/api/v2/roles/{role['id']}/users", headers=headers)).json()
    assert [u["user_id"] for u in users] == [DEMO]
    removed = await http.request(
        "DELETE", f"/api/v2/users/{user}/roles", json={"roles": [role["id"]]}, headers=headers
    )
    assert removed.status_code == 204
    deleted = await http.delete(f"/api/v2/roles/{role['id']}", headers=headers)
    assert deleted.status_code == 204
    assert (await http.get(f"/api/v2/roles/{role['id']}", headers=headers)).status_code == 404


@pytest.mark.parametrize(
    ("method", "path", "body", "status"),
    [
        pytest.param("POST", "/api/v2/roles", {"name": "assistant"}, 409, id="duplicate-name"),
        pytest.param("POST", "/api/v2/roles", {"name": ""}, 400, id="empty-name"),
        pytest.param("POST", "/api/v2/roles", {"name": "x", "admin": True}, 400, id="unknown"),
        pytest.param(
            "POST",
            "/api/v2/roles/assistant/permissions",
            {"permissions": [perm("fly:planes")]},
            400,
            id="not-a-scope-of-the-api",
        ),
        pytest.param(
            "POST",
            "/api/v2/roles/assistant/permissions",
            {"permissions": [perm("read:users", "http://127.0.0.1:9000/api/v2/")]},
            404,
            id="management-api-scope-sideways",
        ),
        pytest.param(
            "POST",
            "/api/v2/roles/assistant/permissions",
            {"permissions": [{"permission_name": "read:tasks"}]},
            400,
            id="permission-without-api",
        ),
        pytest.param(
            "POST", "/api/v2/roles/assistant/permissions", {"permissions": "x"}, 400, id="not-list"
        ),
        pytest.param(
            "POST",
            "/api/v2/roles/nope/permissions",
            {"permissions": [perm("read:tasks")]},
            404,
            id="unknown-role",
        ),
        pytest.param(
            "POST",
            f"/api/v2/users/{quote(DEMO, safe='')}/roles",
            {"roles": ["rol_nope"]},
            404,
            id="unknown-role-id",
        ),
        pytest.param(
            "POST",
            f"/api/v2/users/{quote(DEMO, safe='')}/roles",
            {"roles": []},
            400,
            id="no-roles",
        ),
        pytest.param(
            "POST",
            "/api/v2/users/auth0%7Cnobody/roles",
            {"roles": ["assistant"]},
            404,
            id="unknown-user",
        ),
    ],
)
async def test_management_api_refusals(
    http: httpx.AsyncClient,
    tenant: Domain,
    method: str,
    path: str,
    body: Any,
    status: int,
) -> None:
    """Bad RBAC requests get Auth0-shaped 4xx errors, never a 500."""
    token = await management_token(
        http, tenant, "create:roles", "update:roles", "update:users", "read:roles"
    )
    response = await http.request(
        method, path, json=body, headers={"Authorization": f"Bearer {token}"}
    )
    assert response.status_code == status, response.text
    assert response.json()["statusCode"] == status


async def test_rbac_endpoints_need_their_scopes(http: httpx.AsyncClient, tenant: Domain) -> None:
    """read:users alone cannot create roles nor assign them (403 insufficient_scope)."""
    token = await management_token(http, tenant, "read:users")
    headers = {"Authorization": f"Bearer {token}"}
    for method, path, body in [
        ("POST", "/api/v2/roles", {"name": "x"}),
        ("POST", f"/api/v2/users/{quote(DEMO, safe='')}/roles", {"roles": ["x"]}),
        ("GET", "/api/v2/roles", None),
    ]:
        response = await http.request(method, path, json=body, headers=headers)
        assert response.status_code == 403, (method, path)
        assert 'error="insufficient_scope"' in response.headers["www-authenticate"]


# -- authentication context ---------------------------------------------------------------


def web_request(challenge: str, **extra: str) -> dict[str, str]:
    return {
        "response_type": "code",
        "client_id": "organizer-web",
        "redirect_uri": WEB_CB,
        "scope": "openid read:appointments",
        "audience": ORGANIZER,
        "code_challenge": challenge,
        "code_challenge_method": "S256",
        **extra,
    }


async def redeem(http: httpx.AsyncClient, code: str, verifier: str) -> dict[str, Any]:
    response = await token_request(
        http,
        grant_type="authorization_code",
        code=code,
        redirect_uri=WEB_CB,
        code_verifier=verifier,
        **WEB,
    )
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def logged_code(records: list[logging.LogRecord]) -> str:
    messages = [r.getMessage() for r in records if "One-time code" in r.getMessage()]
    found = re.search(r"One-time code for [^:]+: (\d{6})", messages[-1])
    assert found is not None
    return found.group(1)


async def test_acr_values_asks_for_a_one_time_code(
    http: httpx.AsyncClient, browser: Browser, caplog: pytest.LogCaptureFixture
) -> None:
    """acr_values=multi-factor: after the password, a code from the log; acr changes."""
    caplog.set_level(logging.WARNING, "examples.authz_server")
    verifier, challenge = pkce_pair()
    response = await browser.authorize(**web_request(challenge, acr_values=ACR_MFA))
    response = await browser.login(response.headers["location"])
    location = response.headers["location"]
    assert location.startswith("/login/otp?interaction=")
    page = await http.get(location)
    assert page.status_code == 200
    assert "One-time code" in page.text
    form = hidden_fields(page.text)
    wrong = await http.post("/login/otp", data=form | {"code": "000000x"})
    assert wrong.status_code == 400
    assert "Wrong code" in wrong.text
    answer = await http.post("/login/otp", data=form | {"code": logged_code(caplog.records)})
    assert answer.status_code == 303, answer.text
    if answer.headers["location"].startswith("/consent"):
        answer = await browser.consent(answer.headers["location"])
    body = await redeem(http, callback_params(answer.headers["location"])["code"], verifier)
    access, id_token = claims(body["access_token"]), claims(body["id_token"])
    assert access["acr"] == id_token["acr"] == ACR_MFA
    assert access["amr"] == ["pwd", "otp", "mfa"]
    # The session is multi-factor now: the next request asks for nothing.
    verifier, challenge = pkce_pair()
    again = await browser.authorize(**web_request(challenge, acr_values=ACR_MFA))
    assert "code=" in again.headers["location"]


async def test_one_time_code_attempts_are_limited(
    http: httpx.AsyncClient, browser: Browser, caplog: pytest.LogCaptureFixture
) -> None:
    """Five wrong codes void the code: even the right one fails, and a new one is sent."""
    caplog.set_level(logging.WARNING, "examples.authz_server")
    _, challenge = pkce_pair()
    response = await browser.authorize(**web_request(challenge, acr_values=ACR_MFA))
    response = await browser.login(response.headers["location"])
    page = await http.get(response.headers["location"])
    form = hidden_fields(page.text)
    right = logged_code(caplog.records)
    sent = len([r for r in caplog.records if "One-time code" in r.getMessage()])
    for _ in range(5):
        await http.post("/login/otp", data=form | {"code": "123456" if right != "123456" else "1"})
    refused = await http.post("/login/otp", data=form | {"code": right})
    assert refused.status_code == 400
    assert "expired" in refused.text
    # A new code went to the log in place of the void one.
    assert len([r for r in caplog.records if "One-time code" in r.getMessage()]) == sent + 1


async def test_otp_form_needs_csrf_and_a_session(http: httpx.AsyncClient) -> None:
    """The code page refuses a request without a signed-in session or a CSRF token."""
    assert (await http.get("/login/otp?interaction=x")).status_code == 400
    posted = await http.post(
        "/login/otp",
        data={"interaction": "x", "code": "1", "csrf_token": "x"},
        headers={"Origin": "http://127.0.0.1:9000"},
    )
    assert posted.status_code in (400, 403)


async def test_max_age_and_prompt_login_ask_for_the_password_again(
    http: httpx.AsyncClient, browser: Browser, clock: FakeClock
) -> None:
    """A sign-in older than max_age, or prompt=login, goes back to the login page."""
    verifier, challenge = pkce_pair()
    first = await browser.run(**web_request(challenge))
    body = await redeem(http, callback_params(first.headers["location"])["code"], verifier)
    signed_in_at = claims(body["access_token"])["auth_time"]
    clock.advance(120)
    _, challenge = pkce_pair()
    fresh_enough = await browser.authorize(**web_request(challenge, max_age="600"))
    assert "code=" in fresh_enough.headers["location"]
    too_old = await browser.authorize(**web_request(challenge, max_age="60"))
    assert too_old.headers["location"].startswith("/login?interaction=")
    forced = await browser.authorize(**web_request(challenge, prompt="login"))
    assert forced.headers["location"].startswith("/login?interaction=")
    verifier, challenge = pkce_pair()
    again = await browser.run(**web_request(challenge, max_age="60"))
    renewed = await redeem(http, callback_params(again.headers["location"])["code"], verifier)
    assert claims(renewed["access_token"])["auth_time"] == signed_in_at + 120


@pytest.mark.parametrize("max_age", ["-1", "1.5", "abc", "9" * 12, "\u0661"])
async def test_bad_max_age_is_an_invalid_request(browser: Browser, max_age: str) -> None:
    """max_age that is not a non-negative integer is invalid_request at the client."""
    _, challenge = pkce_pair()
    response = await browser.authorize(**web_request(challenge, max_age=max_age))
    params = callback_params(response.headers["location"])
    assert params["error"] == "invalid_request"


async def test_prompt_none_with_acr_values_needs_interaction(
    http: httpx.AsyncClient, browser: Browser
) -> None:
    """A signed-in password session asked silently for multi-factor: interaction_required."""
    _, challenge = pkce_pair()
    await browser.run(**web_request(challenge))
    response = await browser.authorize(**web_request(challenge, acr_values=ACR_MFA, prompt="none"))
    assert callback_params(response.headers["location"])["error"] == "interaction_required"
