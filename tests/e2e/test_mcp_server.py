"""examples.mcp_server over real sockets, with the MCP SDK's own client and the bundled server."""

from __future__ import annotations

from urllib.parse import urljoin, urlsplit

import httpx
import pytest

from examples.demo.mcp_client import call_tools
from examples.demo.servers import Stack
from examples.demo.walk import DEMO_USER, ORGANIZER, ORGANIZER_WEB, world_mappers_token

pytestmark = pytest.mark.e2e

NEW = {"title": "Haircut", "at": "2026-12-03T10:00:00Z"}


def user_token(stack: Stack, scope: str) -> str:
    """A token for the demo user through the trusted first-party app."""
    client_id, secret = ORGANIZER_WEB
    response = httpx.post(
        urljoin(stack.issuer, "oauth/token"),
        data={
            "grant_type": "password",
            "client_id": client_id,
            "client_secret": secret,
            "username": DEMO_USER[0],
            "password": DEMO_USER[1],
            "audience": ORGANIZER,
            "scope": scope,
        },
    )
    response.raise_for_status()
    token: str = response.json()["access_token"]
    return token


def test_no_token_is_401_pointing_at_the_metadata(stack: Stack) -> None:
    """Without a token the MCP endpoint answers 401 with resource_metadata, and it is served."""
    response = httpx.post(
        stack.mcp.url + "/mcp", json={"jsonrpc": "2.0", "id": 1, "method": "ping"}
    )
    assert response.status_code == 401
    challenge = response.headers["www-authenticate"]
    metadata_url = challenge.partition('resource_metadata="')[2].partition('"')[0]
    assert metadata_url == "https://organizer.example/.well-known/oauth-protected-resource/api"
    metadata = httpx.get(stack.mcp.url + urlsplit(metadata_url).path).json()
    assert metadata["resource"] == ORGANIZER
    assert metadata["authorization_servers"] == [stack.issuer]
    assert {"read:appointments", "create:appointments"} <= set(metadata["scopes_supported"])


def test_a_token_from_the_bundled_server_lists_and_calls_tools(stack: Stack) -> None:
    """A user token with both scopes lists the tools, creates an appointment and sees it."""
    token = user_token(stack, "read:appointments create:appointments")
    tools, results = call_tools(
        stack.mcp.url + "/mcp",
        token,
        [("create_appointment", NEW), ("list_appointments", {})],
    )
    assert {"list_appointments", "create_appointment"} <= set(tools)
    created, listed = results
    assert not created.is_error
    assert '"Haircut"' in created.text
    assert not listed.is_error
    assert "Haircut" in listed.text


def test_a_token_lacking_the_scope_is_refused_for_that_tool(stack: Stack) -> None:
    """World Mappers may read appointments but not create them: that one call is refused."""
    token = world_mappers_token(stack.issuer)
    _, (listed, created) = call_tools(
        stack.mcp.url + "/mcp",
        token,
        [("list_appointments", {}), ("create_appointment", NEW)],
    )
    assert not listed.is_error
    assert created.is_error
    assert "create:appointments" in created.text
