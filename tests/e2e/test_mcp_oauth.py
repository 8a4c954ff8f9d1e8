"""The MCP SDK's own OAuth client against examples.mcp_server, from the server's URL alone.

The SDK follows the 401's resource_metadata to the server's RFC 9728 document, then to the
bundled server's metadata, registers itself (RFC 7591), runs code + PKCE with the RFC 8707
resource through the real login and consent pages, and calls the tools: over real sockets.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import httpx2
import pytest
from mcp import Client
from mcp.client.auth import OAuthClientProvider
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.auth import (
    AuthorizationCodeResult,
    OAuthClientInformationFull,
    OAuthClientMetadata,
    OAuthToken,
)

from examples.demo.browser import Browser, callback_params
from examples.demo.servers import Service, Stack, free_port
from examples.demo.walk import DEMO_USER, admin_cli

pytestmark = pytest.mark.e2e

CALLBACK = "http://127.0.0.1:8105/callback"


class Memory:
    """The SDK's token storage, in memory."""

    def __init__(self) -> None:
        self.tokens: OAuthToken | None = None
        self.client: OAuthClientInformationFull | None = None

    async def get_tokens(self) -> OAuthToken | None:
        return self.tokens

    async def set_tokens(self, tokens: OAuthToken) -> None:
        self.tokens = tokens

    async def get_client_info(self) -> OAuthClientInformationFull | None:
        return self.client

    async def set_client_info(self, client_info: OAuthClientInformationFull) -> None:
        self.client = client_info


def admin(stack: Stack, *args: str) -> None:
    """Run the authorization server's admin CLI on the stack's store."""
    result = admin_cli(stack.db, *args)
    assert result.returncode == 0, result.stderr


@pytest.fixture
def mcp_url(stack: Stack, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The MCP server on a free port, registered at the bundled server under its own URL."""
    port = free_port()
    resource = f"http://127.0.0.1:{port}/mcp"
    admin(stack, "create-api", "--name", f"Organizer MCP on {port}", "--identifier", resource)
    admin(stack, "add-scope", resource, "read:appointments", "Read your appointments")
    admin(stack, "add-scope", resource, "create:appointments", "Create appointments")
    env = {"APIGUARD_ISSUER": stack.issuer, "APIGUARD_AUDIENCE": resource}
    service = Service(
        "MCP server", "examples.mcp_server", port, "/.well-known/oauth-protected-resource", env
    )
    try:
        service.start(Path(tmp_path_factory.mktemp("mcp-oauth")), timeout=30)
        yield resource
    finally:
        service.stop()


def test_the_sdks_oauth_client_finds_its_way_in(stack: Stack, mcp_url: str) -> None:
    """From the MCP URL alone the SDK registers, signs the user in and calls the tools."""
    callbacks: list[dict[str, str]] = []
    resources: list[str | None] = []

    async def redirect(url: str) -> None:
        def sign_in() -> str:
            with Browser(stack.issuer) as browser:
                query = dict(httpx2.URL(url).params)
                resources.append(query.get("resource"))
                return browser.authorize(query, email=DEMO_USER[0], password=DEMO_USER[1])

        callbacks.append(callback_params(await anyio.to_thread.run_sync(sign_in)))

    async def callback() -> AuthorizationCodeResult:
        params = callbacks[-1]
        return AuthorizationCodeResult(
            code=params["code"], state=params.get("state"), iss=params.get("iss")
        )

    storage = Memory()
    auth = OAuthClientProvider(
        server_url=mcp_url,
        client_metadata=OAuthClientMetadata(
            client_name="MCP test client",
            redirect_uris=[CALLBACK],
            grant_types=["authorization_code"],
            response_types=["code"],
        ),
        storage=storage,
        redirect_handler=redirect,
        callback_handler=callback,
    )

    async def session() -> Any:
        async with (
            httpx2.AsyncClient(auth=auth, timeout=15) as http,
            Client(streamable_http_client(mcp_url, http_client=http)) as client,
        ):
            tools = [tool.name for tool in (await client.list_tools()).tools]
            created = await client.call_tool(
                "create_appointment", {"title": "Haircut", "at": "2026-12-03T10:00:00Z"}
            )
            listed = await client.call_tool("list_appointments", {})
            return tools, created, listed

    tools, created, listed = anyio.run(session)
    # The SDK registered itself (RFC 7591) and asked for the scopes the metadata lists.
    assert storage.client is not None
    assert storage.tokens is not None
    assert set((storage.tokens.scope or "").split()) == {"read:appointments", "create:appointments"}
    assert len(callbacks) == 1  # one sign-in, through the real login and consent pages
    assert resources == [mcp_url]  # RFC 8707: the token is asked for this very server
    assert {"list_appointments", "create_appointment"} <= set(tools)
    assert not created.is_error
    assert not listed.is_error
    assert "Haircut" in " ".join(getattr(part, "text", "") for part in listed.content)
