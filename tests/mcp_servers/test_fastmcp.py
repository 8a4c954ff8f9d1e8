"""apiguard.mcp.FastMCPAuth: a FastMCP server protected by apiguard, over a real socket."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import anyio
import httpx
import pytest
from fastmcp import Client, FastMCP
from fastmcp.client.transports import StreamableHttpTransport
from fastmcp.exceptions import ToolError
from fastmcp.server.auth import require_scopes

from apiguard import ConfigurationError
from apiguard.mcp import FastMCPAuth, current_token
from apiguard.testing import LocalIssuer

from .support import bound_socket, serving

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def served() -> Iterator[tuple[str, LocalIssuer]]:
    """A FastMCP server with a read and a write tool, each needing its scope."""
    sock = bound_socket()
    base = f"http://127.0.0.1:{sock.getsockname()[1]}"
    issuer = LocalIssuer(audience=base + "/mcp")
    auth = FastMCPAuth(
        issuer.async_validator(),
        base_url=base,
        scopes_supported=["read:appointments", "create:appointments"],
    )
    server = FastMCP("Organizer", auth=auth)

    @server.tool(auth=require_scopes("read:appointments"))
    def list_appointments() -> str:
        token = current_token()
        return f"Dentist, for {token.subject if token else None}"

    @server.tool(auth=require_scopes("create:appointments"))
    def create_appointment(title: str) -> str:
        return f"created {title}"

    with serving(server.http_app(path="/mcp"), sock):
        yield base, issuer
    anyio.run(auth.validator.aclose)


def test_no_token_is_401_with_resource_metadata(served: tuple[str, LocalIssuer]) -> None:
    """FastMCP answers apiguard's bare challenge, pointing at apiguard's metadata."""
    base, _ = served
    response = httpx.post(base + "/mcp", json={})
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == (
        f'Bearer realm="{base}/mcp", '
        f'resource_metadata="{base}/.well-known/oauth-protected-resource/mcp"'
    )


def test_expired_token_is_invalid_token(served: tuple[str, LocalIssuer]) -> None:
    """An expired token gets invalid_token with apiguard's description."""
    base, issuer = served
    headers = {"Authorization": f"Bearer {issuer.token(expires_in=-120)}"}
    response = httpx.post(base + "/mcp", json={}, headers=headers)
    assert response.status_code == 401
    assert response.json() == {
        "error": "invalid_token",
        "error_description": "The access token expired",
    }


def test_metadata_names_the_issuer_and_scopes(served: tuple[str, LocalIssuer]) -> None:
    """The RFC 9728 document is apiguard's: resource, issuer, scopes, bearer methods."""
    base, issuer = served
    response = httpx.get(base + "/.well-known/oauth-protected-resource/mcp")
    assert response.json() == {
        "resource": base + "/mcp",
        "authorization_servers": [issuer.issuer],
        "scopes_supported": ["create:appointments", "read:appointments"],
        "bearer_methods_supported": ["header"],
    }


def test_tools_follow_the_tokens_scopes(served: tuple[str, LocalIssuer]) -> None:
    """A read-only token sees and runs the read tool; the write tool is refused."""
    base, issuer = served
    token = issuer.token(scope="read:appointments", sub="auth0|ada")

    async def session() -> Any:
        transport = StreamableHttpTransport(
            base + "/mcp", headers={"Authorization": f"Bearer {token}"}
        )
        async with Client(transport) as client:
            tools = [tool.name for tool in await client.list_tools()]
            result = await client.call_tool("list_appointments", {})
            with pytest.raises(ToolError):
                await client.call_tool("create_appointment", {"title": "Haircut"})
            return tools, result.data

    tools, data = anyio.run(session)
    assert tools == ["list_appointments"]
    assert data == "Dentist, for auth0|ada"


def test_resource_must_be_an_audience() -> None:
    """FastMCP's resource (base URL + MCP path) must be one of the validator's audiences."""
    issuer = LocalIssuer(audience="https://mcp.example/api")
    auth = FastMCPAuth(issuer.async_validator(), base_url="https://mcp.example")
    with pytest.raises(ConfigurationError, match="audiences"):
        FastMCP("x", auth=auth).http_app(path="/mcp")
