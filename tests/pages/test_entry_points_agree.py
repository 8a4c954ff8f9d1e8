"""The dashboard, the Management API, the CLI and the portal agree on every input rule.

One table of values per rule (API identifier, scope name, callback URL, client name) goes
through every entry point that takes such a value; each one accepts or refuses it alike.
"""

from __future__ import annotations

import argparse
from collections.abc import Awaitable, Callable
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette

from examples.authz_server.__main__ import run_admin
from examples.authz_server.rules import RULES, TenantError
from examples.authz_server.services import MANAGEMENT_SCOPES, Domain

from .support import ORGANIZER, ORIGIN, Pages
from .test_portal import developer

pytestmark = pytest.mark.anyio
MANAGEMENT = "http://127.0.0.1:9000/api/v2/"

CASES = [
    pytest.param("api_identifier", "https://api.example/v1", True, id="identifier-https"),
    pytest.param("api_identifier", "urn:example:api", True, id="identifier-urn"),
    pytest.param("api_identifier", "organizer", False, id="identifier-not-a-uri"),
    pytest.param("api_identifier", "https://a.example/x y", False, id="identifier-space"),
    pytest.param("api_identifier", "https://a.example/" + "x" * 600, False, id="identifier-long"),
    pytest.param("scope_name", "read:things", True, id="scope"),
    pytest.param("scope_name", "read things", False, id="scope-space"),
    pytest.param("scope_name", 'read"x', False, id="scope-quote"),
    pytest.param("scope_name", "read\\x", False, id="scope-backslash"),
    pytest.param("callback_url", "https://app.example/cb", True, id="callback-https"),
    pytest.param("callback_url", "http://127.0.0.1/cb", True, id="callback-loopback"),
    pytest.param("callback_url", "com.example.app:/cb", True, id="callback-native"),
    pytest.param("callback_url", "http://app.example/cb", False, id="callback-plain-http"),
    pytest.param("callback_url", "https://app.example/cb#f", False, id="callback-fragment"),
    pytest.param("callback_url", "https://*.example/cb", False, id="callback-wildcard"),
    pytest.param("callback_url", "javascript:alert(1)", False, id="callback-javascript"),
    pytest.param("client_name", "Shiny App", True, id="name"),
    pytest.param("client_name", "x" * 201, False, id="name-long"),
    pytest.param("client_name", "bad\x07name", False, id="name-control"),
]

Check = Callable[[str], Awaitable[bool]]


def accepted_by_rule(rule: str, value: str) -> bool:
    try:
        RULES[rule](value)
    except TenantError:
        return False
    return True


async def management(app: Starlette, tenant: Domain) -> httpx.AsyncClient:
    tenant.client_grants.create("world-mappers", MANAGEMENT, sorted(MANAGEMENT_SCOPES))
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url=ORIGIN) as http:
        answer = await http.post(
            "/oauth/token",
            data={
                "grant_type": "client_credentials",
                "audience": MANAGEMENT,
                "client_id": "world-mappers",
                "client_secret": "world-mappers-dev-secret",
            },
        )
    token = answer.json()["access_token"]
    return httpx.AsyncClient(
        transport=transport, base_url=ORIGIN, headers={"Authorization": f"Bearer {token}"}
    )


def cli(tenant: Domain, command: str, **options: Any) -> bool:
    try:
        run_admin(tenant, argparse.Namespace(command=command, **options))
    except TenantError:
        return False
    return True


def cli_client(**overrides: Any) -> dict[str, Any]:
    options = {
        "name": "Shiny App",
        "app_type": "regular_web",
        "third_party": False,
        "callback": ["https://app.example/cb"],
        "grant": None,
        "auth_method": None,
    }
    return options | overrides


@pytest.mark.parametrize(("rule", "value", "valid"), CASES)
async def test_every_entry_point_applies_the_same_rule(
    app: Starlette,
    tenant: Domain,
    admin: Pages,
    new_client: Callable[[], httpx.AsyncClient],
    rule: str,
    value: str,
    valid: bool,
) -> None:
    """The rule table, the dashboard, the Management API, the CLI and the portal agree."""
    assert accepted_by_rule(rule, value) is valid
    api = await management(app, tenant)
    organizer = tenant.apis.get(ORGANIZER)
    outcomes: dict[str, bool] = {}
    async with api:
        if rule == "api_identifier":
            await admin.get("/dashboard/apis/new")
            form = {"name": "New", "identifier": value, "signing_alg": "RS256"}
            outcomes["dashboard"] = (await admin.post("/dashboard/apis", form)).status_code == 303
            body = {"name": "New API", "identifier": value + "/m"}
            if not valid:
                body["identifier"] = value
            answer = await api.post("/api/v2/resource-servers", json=body)
            outcomes["management"] = answer.status_code == 201
            outcomes["cli"] = cli(
                tenant,
                "create-api",
                name="New",
                identifier=value + "/c" if valid else value,
                alg="RS256",
                lifetime=86400,
                offline=False,
                dialect="access_token",
                token_format="jwt",
                introspection_client=[],
            )
        elif rule == "scope_name":
            await admin.get(f"/dashboard/apis/{organizer.id}/scopes")
            form = {"value": value, "description": "A scope"}
            answer = await admin.post(f"/dashboard/apis/{organizer.id}/scopes", form)
            outcomes["dashboard"] = answer.status_code == 303
            body = {"identifier": "urn:scoped", "scopes": [{"value": value, "description": "d"}]}
            answer = await api.post("/api/v2/resource-servers", json=body)
            outcomes["management"] = answer.status_code == 201
            outcomes["cli"] = cli(
                tenant, "add-scope", api=ORGANIZER, scope=value + "2", description=""
            )
        elif rule == "callback_url":
            await admin.get("/dashboard/applications/new")
            form = {"name": "Shiny", "app_type": "regular_web", "callbacks": value}
            answer = await admin.post("/dashboard/applications", form)
            outcomes["dashboard"] = answer.status_code == 201
            body = {"name": "Shiny", "app_type": "regular_web", "callbacks": [value]}
            answer = await api.post("/api/v2/clients", json=body)
            outcomes["management"] = answer.status_code == 201
            outcomes["cli"] = cli(tenant, "create-client", **cli_client(callback=[value]))
            ada = await developer(new_client, "ada@dev.example")
            form = {"name": "Shiny", "kind": "web", "redirect_uris": value}
            outcomes["portal"] = (await ada.post("/portal/apps", form)).status_code == 201
        else:
            await admin.get("/dashboard/applications/new")
            form = {"name": value, "app_type": "non_interactive", "callbacks": ""}
            answer = await admin.post("/dashboard/applications", form)
            outcomes["dashboard"] = answer.status_code == 201
            body = {"name": value, "app_type": "non_interactive"}
            answer = await api.post("/api/v2/clients", json=body)
            outcomes["management"] = answer.status_code == 201
            outcomes["cli"] = cli(
                tenant, "create-client", **cli_client(name=value, app_type="non_interactive")
            )
            ada = await developer(new_client, "ada@dev.example")
            form = {"name": value, "kind": "m2m", "redirect_uris": ""}
            outcomes["portal"] = (await ada.post("/portal/apps", form)).status_code == 201
    assert outcomes == dict.fromkeys(outcomes, valid)
