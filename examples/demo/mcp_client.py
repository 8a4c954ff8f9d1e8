"""An MCP client (the MCP Python SDK's own) that lists the Organizer tools and calls them."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import anyio
import httpx2
from mcp import Client
from mcp.client.streamable_http import streamable_http_client

__all__ = ["ToolCall", "call_tools"]


@dataclass(frozen=True)
class ToolCall:
    """One tool call and what the server answered."""

    name: str
    is_error: bool
    text: str


async def _session(url: str, token: str, calls: list[tuple[str, dict[str, Any]]]) -> Any:
    headers = {"Authorization": f"Bearer {token}"}
    async with (
        httpx2.AsyncClient(headers=headers, timeout=10.0) as http,
        Client(streamable_http_client(url, http_client=http)) as client,
    ):
        listed = await client.list_tools()
        results = []
        for name, arguments in calls:
            result = await client.call_tool(name, arguments)
            text = " ".join(part.text for part in result.content if hasattr(part, "text"))
            results.append(ToolCall(name, bool(result.is_error), text))
        return [tool.name for tool in listed.tools], results


def call_tools(
    url: str, token: str, calls: list[tuple[str, dict[str, Any]]]
) -> tuple[list[str], list[ToolCall]]:
    """Connect to the MCP server at ``url`` with ``token``; list the tools, make ``calls``.

    Raises:
        Exception: what the SDK raises when the server refuses the connection.
    """
    tools, results = anyio.run(_session, url, token, calls)
    return tools, results
