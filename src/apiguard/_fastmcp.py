"""apiguard as a FastMCP auth provider (``pip install apiguard[fastmcp]``)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from fastmcp.server.auth import AccessToken as FastMCPAccessToken
from fastmcp.server.auth import RemoteAuthProvider
from fastmcp.server.auth import TokenVerifier as FastMCPTokenVerifier
from pydantic import AnyHttpUrl, PrivateAttr
from starlette.middleware import Middleware
from starlette.routing import Route
from starlette.types import ASGIApp

from .bearer import DEFAULT_REALM, pick_realm
from .claims import AccessToken, check_scope_names
from .mcp import ChallengeMiddleware, McpToken, checked_validator, metadata_routes, verify
from .metadata import ProtectedResource, ResourceMetadata
from .validator import AsyncValidator

__all__ = ["FastMCPAuth"]


class FastMCPToken(FastMCPAccessToken, McpToken):
    """FastMCP's access-token model, carrying the apiguard token behind it."""

    _apiguard_token: AccessToken | None = PrivateAttr(default=None)


class _Verifier(FastMCPTokenVerifier):
    def __init__(self, owner: FastMCPAuth, required_scopes: list[str]) -> None:
        super().__init__(required_scopes=required_scopes)
        self.owner = owner

    async def verify_token(self, token: str) -> FastMCPAccessToken | None:
        return await self.owner.verify_token(token)


class FastMCPAuth(RemoteAuthProvider):
    """A FastMCP auth provider that validates tokens with an apiguard validator.

    ``FastMCP("Organizer", auth=FastMCPAuth(validator, base_url="https://mcp.example"))``
    protects the server's HTTP transports; FastMCP's per-tool checks
    (``@mcp.tool(auth=require_scopes("read:appointments"))``) read the token's scopes as
    apiguard parsed them. The protected-resource metadata (RFC 9728) is apiguard's: every
    trusted issuer, ``scopes_supported``, ``bearer_methods_supported``.

    Args:
        validator: the :class:`~apiguard.AsyncValidator` that checks tokens.
        base_url: the server's public base URL; the resource is ``base_url`` + the MCP path
            (e.g. ``https://mcp.example/mcp``) and must be one of the validator's audiences.
        authorization_servers: the issuers to advertise. Default: the validator's issuers.
        scopes_supported: the scopes to advertise (the tools' scopes).
        required_scopes: scopes every MCP request needs.
        resource_name: a name for people, in the metadata.
        resource_documentation: a URL of the server's documentation.
        realm: the challenges' ``realm``. Default: the resource.

    Raises:
        ConfigurationError: ``validator`` is not an AsyncValidator, a scope name is wrong,
            or (when FastMCP builds its app) the resource is not one of the audiences.
    """

    def __init__(
        self,
        validator: AsyncValidator,
        *,
        base_url: str,
        authorization_servers: Iterable[str] | None = None,
        scopes_supported: Iterable[str] = (),
        required_scopes: Iterable[str] = (),
        resource_name: str | None = None,
        resource_documentation: str | None = None,
        realm: str | None = DEFAULT_REALM,
    ) -> None:
        self.validator = checked_validator(validator)
        required = list(check_scope_names(required_scopes, name="required_scopes"))
        servers = list(
            validator.issuers if authorization_servers is None else authorization_servers
        )
        super().__init__(
            token_verifier=_Verifier(self, required),
            authorization_servers=[AnyHttpUrl(server) for server in servers],
            base_url=base_url,
            scopes_supported=[*check_scope_names(scopes_supported), *required],
            resource_name=resource_name,
            resource_documentation=(
                AnyHttpUrl(resource_documentation) if resource_documentation else None
            ),
        )
        self.metadata: ResourceMetadata | None = None
        self.realm: str | None = None
        self._servers = servers
        self._documentation = resource_documentation
        self._realm_setting = realm

    def _metadata(self, mcp_path: str | None) -> ResourceMetadata:
        resource = self._get_resource_url(mcp_path)
        return ProtectedResource(
            str(resource).rstrip("/") if mcp_path else str(resource),
            authorization_servers=tuple(self._servers),
            scopes_supported=tuple(self.scopes_supported),
            resource_name=self.resource_name,
            resource_documentation=self._documentation,
        ).bind(self.validator)

    def set_mcp_path(self, mcp_path: str | None) -> None:
        """Learn the MCP path; the resource it makes must be one of the audiences."""
        super().set_mcp_path(mcp_path)
        self.metadata = self._metadata(mcp_path)
        self.realm = pick_realm(self._realm_setting, {self.metadata.resource})

    async def verify_token(self, token: str) -> FastMCPAccessToken | None:
        """Validate ``token`` with apiguard; None when it is refused."""
        resource = self.metadata.resource if self.metadata is not None else ""
        return await verify(self.validator, token, resource, FastMCPToken)  # type: ignore[return-value]

    def get_routes(self, mcp_path: str | None = None) -> list[Route]:
        """apiguard's metadata document, at the RFC 9728 §3.1 path and the bare one."""
        return metadata_routes(self._ready(mcp_path))

    def _ready(self, mcp_path: str | None) -> ResourceMetadata:
        self.set_mcp_path(mcp_path)
        assert self.metadata is not None  # set_mcp_path sets it
        return self.metadata

    def get_middleware(self) -> list[Any]:
        """FastMCP's authentication middleware, behind apiguard's RFC 6750 answers."""
        return [Middleware(_ProviderChallenge, provider=self), *super().get_middleware()]


class _ProviderChallenge(ChallengeMiddleware):
    # Starlette builds middleware on the first request, after FastMCP has told the
    # provider its MCP path (which it does only after asking for the middleware).
    def __init__(self, app: ASGIApp, *, provider: FastMCPAuth) -> None:
        metadata = provider.metadata or provider._ready(provider._mcp_path)
        super().__init__(
            app,
            validator=provider.validator,
            paths=frozenset({provider._mcp_path or "/mcp"}),
            realm=provider.realm,
            resource_metadata=metadata.url,
        )
