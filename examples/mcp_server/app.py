"""The Organizer tools as an MCP server: list appointments, create one, each with its scope.

``create_app()`` reads ``APIGUARD_ISSUER``, ``APIGUARD_AUDIENCE``, ``APIGUARD_DPOP``,
``APIGUARD_REPLAY_STORE`` and ``APIGUARD_KEY_STORE`` from the environment, as the example
APIs do (and, for opaque tokens, ``APIGUARD_TOKEN_MODE`` with
``APIGUARD_INTROSPECTION_CLIENT_ID`` and ``_SECRET``), with defaults that point at the local
authorization server (``python -m examples.authz_server``) and its Organizer API. The
audience is also the server's resource identifier in its protected-resource metadata (RFC
9728): a client asks the authorization server for a token for it.
"""

from __future__ import annotations

import itertools
import os
from datetime import datetime
from typing import Any

from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from starlette.applications import Starlette

from apiguard import AsyncValidator, Introspection
from apiguard.mcp import McpAuth, current_token

DEFAULT_ISSUER = "http://127.0.0.1:9000/"
DEFAULT_AUDIENCE = "https://organizer.example/api"


class Organizer:
    """The sample data of one server, in memory (a real one would have a database)."""

    def __init__(self) -> None:
        self.ids = itertools.count(3)
        self.appointments: list[dict[str, Any]] = [
            {"id": 1, "title": "Dentist", "at": "2026-12-01T09:00:00Z"},
            {"id": 2, "title": "Team sync", "at": "2026-12-02T14:30:00Z"},
        ]


def create_app(validator: AsyncValidator | None = None) -> Starlette:
    """Build the MCP server's ASGI app (streamable HTTP at ``/mcp``).

    Args:
        validator: the validator to use (tests pass their own); by default one built from
            ``APIGUARD_ISSUER`` and ``APIGUARD_AUDIENCE``, closed when the app stops.
    """
    audience = os.environ.get("APIGUARD_AUDIENCE", DEFAULT_AUDIENCE)
    owned = validator is None
    if validator is None:
        validator = AsyncValidator(
            # One issuer URL, or several separated by spaces: each is trusted on its own.
            issuers=os.environ.get("APIGUARD_ISSUER", DEFAULT_ISSUER).split(),
            audience=audience,
            dpop=os.environ.get("APIGUARD_DPOP", "off"),  # type: ignore[arg-type]
            replay_store=os.environ.get("APIGUARD_REPLAY_STORE") or None,
            key_store=os.environ.get("APIGUARD_KEY_STORE") or None,
            # Opaque tokens: jwt (the default), introspection or auto, with the API's client.
            token_mode=os.environ.get("APIGUARD_TOKEN_MODE", "jwt"),
            introspection=Introspection.from_env(),
        )
    auth = McpAuth(validator, resource=audience, resource_name="Organizer MCP server")
    organizer = Organizer()

    server = MCPServer(
        "Organizer",
        instructions="Read and create appointments in the user's Organizer.",
        token_verifier=auth,
        auth=auth.settings,
    )

    @server.tool()
    @auth.requires_scope("read:appointments")
    async def list_appointments() -> list[dict[str, Any]]:
        """List the appointments in the Organizer."""
        return organizer.appointments

    @server.tool()
    @auth.requires_scope("create:appointments")
    async def create_appointment(title: str, at: str) -> dict[str, Any]:
        """Create an appointment: a title (up to 200 characters) and an ISO 8601 time."""
        if not title or len(title) > 200:
            raise ToolError("title must be 1 to 200 characters")
        try:
            datetime.fromisoformat(at)
        except ValueError:
            raise ToolError('"at" must be an ISO 8601 date and time') from None
        appointment = {"id": next(organizer.ids), "title": title, "at": at}
        organizer.appointments.append(appointment)
        return appointment

    @server.tool()
    async def who_am_i() -> dict[str, Any]:
        """Who the access token speaks for: its subject, client and scopes."""
        token = current_token()
        if token is None:  # pragma: no cover - the MCP endpoint always has one
            raise ToolError("no access token")
        return {
            "subject": token.subject,
            "client_id": token.client_id,
            "scopes": sorted(token.scopes),
        }

    return auth.app(server, close_validator=owned)
