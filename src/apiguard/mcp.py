"""Protect an MCP server with apiguard: the MCP Python SDK's token verifier, and FastMCP's.

The MCP authorization specification makes an MCP server an OAuth 2.0 protected resource:
it answers 401 with ``resource_metadata="..."`` (RFC 9728), serves that document, and
accepts only access tokens issued for it. :class:`McpAuth` does all three with an
:class:`~apiguard.AsyncValidator` (issuers, audiences, algorithms, every check apiguard
makes) for the SDK's ``MCPServer``; :class:`FastMCPAuth` is the same as a FastMCP auth
provider (``pip install apiguard[fastmcp]``).

>>> from mcp.server.mcpserver import MCPServer
>>> from apiguard import AsyncValidator
>>> validator = AsyncValidator(issuer="https://tenant.example/", audience="https://mcp.example/mcp")
>>> auth = McpAuth(validator, resource="https://mcp.example/mcp")
>>> server = MCPServer("Organizer", token_verifier=auth, auth=auth.settings)
>>> @server.tool()
... @auth.requires_scope("read:appointments")
... async def list_appointments() -> list[str]:
...     return ["Dentist"]
>>> app = auth.app(server)  # an ASGI app: uvicorn.run(app, host="127.0.0.1", port=8003)

Every request to the MCP endpoint is checked the way apiguard's other layers check theirs
(RFC 6750 answers with the same challenges and bodies, 503 when the issuer's keys cannot be
had); a tool guarded with :meth:`McpAuth.requires_scope` refuses a token without its scopes
with a tool error naming them. :func:`current_token` gives a tool the validated
:class:`~apiguard.AccessToken`.
"""

from __future__ import annotations

import contextlib
import contextvars
import functools
import hmac
import inspect
import logging
from collections.abc import AsyncIterator, Callable, Iterable
from typing import TYPE_CHECKING, Any, Final, TypeVar

from mcp.server.auth.middleware.auth_context import get_access_token
from mcp.server.auth.provider import AccessToken as SdkAccessToken
from mcp.server.auth.settings import AuthSettings
from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from pydantic import AnyHttpUrl, PrivateAttr
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

from ._request import ANY_TOKEN, RequestView, Requirement, guard, is_preflight, run_async
from ._rules import Rule
from .asgi import _encode_headers, _with_dpop
from .bearer import DEFAULT_REALM, extract_token, pick_realm, render_error
from .claims import AccessToken, check_scope_names
from .errors import (
    ApiguardError,
    BearerError,
    ConfigurationError,
    InsufficientScope,
    MissingToken,
    ServiceUnavailable,
)
from .metadata import ProtectedResource, ResourceMetadata
from .validator import AsyncValidator

if TYPE_CHECKING:
    from ._fastmcp import FastMCPAuth

__all__ = ["FastMCPAuth", "McpAuth", "McpToken", "current_token"]

logger = logging.getLogger("apiguard.mcp")

F = TypeVar("F", bound=Callable[..., Any])

_AUTHORIZATION: Final = b"authorization"
# The token ChallengeMiddleware decided on, for the SDK's verify_token() call in the same
# request (set and reset around the inner app, so it never outlives the request).
_DECIDED: contextvars.ContextVar[tuple[str, AccessToken] | None] = contextvars.ContextVar(
    "apiguard_mcp_decided", default=None
)


class McpToken(SdkAccessToken):
    """The SDK's access-token model, carrying the :class:`~apiguard.AccessToken` behind it.

    ``client_id``, ``scopes``, ``expires_at``, ``subject``, ``resource`` and ``claims`` are
    filled from the validated token, so the SDK's own session binding and FastMCP's checks
    read them as usual.
    """

    _apiguard_token: AccessToken | None = PrivateAttr(default=None)

    @property
    def access_token(self) -> AccessToken:
        """The validated apiguard token."""
        if self._apiguard_token is None:  # pragma: no cover - always set by apiguard
            raise RuntimeError("this McpToken was not made by apiguard")
        return self._apiguard_token


def to_mcp_token(
    token: AccessToken, raw: str, resource: str, model: type[McpToken] = McpToken
) -> McpToken:
    """The SDK model of a validated token (``model`` may be a subclass, e.g. FastMCP's)."""
    audience = token.audience
    audiences = (audience,) if isinstance(audience, str) else tuple(audience or ())
    expires_at = token.expires_at
    converted = model(
        token=raw,
        client_id=token.client_id or token.subject or "",
        scopes=sorted(token.scopes),
        expires_at=int(expires_at) if expires_at is not None else None,
        # The SDK's resource check compares this with the configured resource.
        resource=resource if resource in audiences else (audiences[0] if audiences else None),
        subject=token.subject,
        claims=dict(token.claims),
    )
    converted._apiguard_token = token
    return converted


async def verify(
    validator: AsyncValidator, token: str, resource: str, model: type[McpToken] = McpToken
) -> McpToken | None:
    """Validate the token the SDK read from the header; None when it is refused.

    The SDK takes whatever follows ``Bearer `` as the token, so the RFC 6750 form is checked
    here as in every layer before the validator sees it.

    Raises:
        KeySetUnavailable: the issuer's keys cannot be had.
    """
    try:
        raw = extract_token("Bearer " + token)
        decided = _DECIDED.get()
        if decided is not None and hmac.compare_digest(decided[0], raw):
            validated = decided[1]
        else:
            validated = await validator.validate(raw)
    except BearerError as exc:
        logger.debug("MCP request refused: %s", exc.reason)
        return None
    return to_mcp_token(validated, raw, resource, model)


def checked_validator(validator: object) -> AsyncValidator:
    """``validator`` if it is an AsyncValidator (the SDKs verify in their event loop).

    Raises:
        ConfigurationError: it is not.
    """
    if not isinstance(validator, AsyncValidator):
        raise ConfigurationError("validator: must be an apiguard.AsyncValidator")
    return validator


def current_token() -> AccessToken | None:
    """The validated :class:`~apiguard.AccessToken` of the MCP request being handled.

    None outside a request, or when the request was not authenticated by apiguard.

    >>> token = current_token()  # doctest: +SKIP
    >>> token.subject  # doctest: +SKIP
    'auth0|user-1'
    """
    token = get_access_token()
    found = getattr(token, "_apiguard_token", None)
    return found if isinstance(found, AccessToken) else None


def refusal(requirement: Requirement, clock: Callable[[], float] | None = None) -> str | None:
    """Why the current request may not run a tool with ``requirement``, or None if it may."""
    try:
        requirement.check(current_token(), clock)
    except MissingToken:
        return "The request carries no access token validated by apiguard"
    except InsufficientScope as exc:
        which = "all of" if exc.match == "all" else "one of"
        return f"{exc.description}: this tool needs {which} the scopes {' '.join(exc.required)}"
    except BearerError as exc:
        # A rule's own fixed text (roles, permissions, claims, step-up): never a claim value.
        return exc.description
    return None


class McpAuth:
    """apiguard as the MCP Python SDK's token verifier, with RFC 9728 metadata served.

    Pass it as ``MCPServer(token_verifier=auth, auth=auth.settings)`` and serve
    :meth:`app`. It validates every token with ``validator`` and serves the
    protected-resource metadata at ``/.well-known/oauth-protected-resource`` (with the
    resource's path inserted, RFC 9728 §3.1).

    Args:
        validator: the :class:`~apiguard.AsyncValidator` that checks tokens. Close it when
            the server stops (or use the one :meth:`app` closes with ``close_validator``).
        resource: the MCP server's resource identifier (RFC 8707): the URL clients use,
            e.g. ``"https://mcp.example/mcp"``. It must be one of the validator's audiences.
        authorization_servers: the issuers to advertise. Default: the validator's issuers.
        scopes_supported: scopes to advertise besides those the tools declare with
            :meth:`requires_scope`.
        required_scopes: scopes every MCP request needs (checked by the SDK, 403).
        resource_name: a name for people, in the metadata.
        resource_documentation: a URL of the server's documentation, in the metadata.
        realm: the challenges' ``realm``. Default: the resource.

    Raises:
        ConfigurationError: ``validator`` is not an AsyncValidator, ``resource`` is not one of
            its audiences or not an https URL (http for loopback hosts), or a scope name is
            not an RFC 6749 scope token.

    Warning:
        Serve :meth:`app`, not ``server.streamable_http_app()`` alone: the SDK's own check
        answers every refusal with the same 401 and a key-set outage with a 500.
    """

    def __init__(
        self,
        validator: AsyncValidator,
        *,
        resource: str,
        authorization_servers: Iterable[str] | None = None,
        scopes_supported: Iterable[str] = (),
        required_scopes: Iterable[str] = (),
        resource_name: str | None = None,
        resource_documentation: str | None = None,
        realm: str | None = DEFAULT_REALM,
    ) -> None:
        self.validator = checked_validator(validator)
        self.required_scopes = check_scope_names(required_scopes, name="required_scopes")
        self.metadata: ResourceMetadata = ProtectedResource(
            resource,
            authorization_servers=(
                None if authorization_servers is None else tuple(authorization_servers)
            ),
            scopes_supported=(*check_scope_names(scopes_supported), *self.required_scopes),
            resource_name=resource_name,
            resource_documentation=resource_documentation,
        ).bind(self.validator)
        self.realm = pick_realm(realm, {resource})

    @property
    def resource(self) -> str:
        """The resource identifier."""
        return self.metadata.resource

    @property
    def settings(self) -> AuthSettings:
        """The SDK's ``AuthSettings`` for this resource (``MCPServer(auth=...)``)."""
        return AuthSettings(
            issuer_url=AnyHttpUrl(self.metadata.authorization_servers[0]),
            resource_server_url=AnyHttpUrl(self.resource),
            required_scopes=list(self.required_scopes) or None,
            # apiguard checks the audience itself (the resource is one of its audiences).
            validate_token_resource=False,
            service_documentation_url=(
                AnyHttpUrl(self.metadata.resource_documentation)
                if self.metadata.resource_documentation
                else None
            ),
        )

    async def verify_token(self, token: str) -> McpToken | None:
        """The SDK's ``TokenVerifier`` method: the validated token, or None when it is bad.

        Raises:
            KeySetUnavailable: the issuer's keys cannot be had (:meth:`app` answers 503).
        """
        return await verify(self.validator, token, self.resource)

    def requires_scope(self, *scopes: str, match: str = "all") -> Callable[[F], F]:
        """Guard an MCP tool: the request's token needs ``scopes`` (all, or any one).

        Put it below ``@server.tool()``. A token without them gets a tool error that names
        the scopes (the call is refused, the session goes on); the scopes are advertised in
        the metadata's ``scopes_supported``.

        Raises:
            ConfigurationError: ``match`` is wrong, or a scope is not an RFC 6749 scope token.
        """
        requirement = Requirement.declare(scopes, match)
        self.metadata = self.metadata.with_scopes(requirement.scopes)
        return tool_guard(requirement)

    def requires(self, *rules: Rule) -> Callable[[F], F]:
        """Guard an MCP tool with apiguard's rules: roles, permissions, claims, step-up.

        The same rules as every layer's ``requires`` (:func:`~apiguard.has_roles`,
        :func:`~apiguard.has_permissions`, :func:`~apiguard.claim_equals`,
        :func:`~apiguard.claim_includes`, :func:`~apiguard.claim_check`,
        :func:`~apiguard.step_up`); a refusal is a tool error with the rule's fixed text.

        Raises:
            ConfigurationError: an argument is not a rule.

        >>> @server.tool()  # doctest: +SKIP
        ... @auth.requires(has_roles("organizer-admin"))
        ... async def delete_appointment(id: int) -> str: ...
        """
        return tool_guard(Requirement.declare(rules=rules))

    def app(
        self, server: MCPServer[Any], *, close_validator: bool = False, **options: Any
    ) -> Starlette:
        """The server's streamable-HTTP ASGI app, protected by apiguard.

        Args:
            server: the ``MCPServer`` built with this object as its token verifier.
            close_validator: close the validator when the app's lifespan ends (for a
                validator made only for this app).
            **options: for ``server.streamable_http_app`` (``streamable_http_path``...).

        Raises:
            ConfigurationError: the server was not built with this object.
        """
        if getattr(server, "_token_verifier", None) is not self:
            raise ConfigurationError(
                "server: build it with MCPServer(token_verifier=auth, auth=auth.settings)"
            )
        app = server.streamable_http_app(**options)
        path = options.get("streamable_http_path", "/mcp")
        # The metadata first, so that the document served is apiguard's (every trusted
        # issuer, the tools' scopes) rather than the SDK's one-issuer version.
        app.router.routes[0:0] = metadata_routes(self.metadata)
        app.add_middleware(
            ChallengeMiddleware,
            validator=self.validator,
            paths=frozenset({path}),
            realm=self.realm,
            resource_metadata=self.metadata.url,
        )
        if close_validator:
            inner = app.router.lifespan_context
            validator = self.validator

            @contextlib.asynccontextmanager
            async def lifespan(app: Starlette) -> AsyncIterator[Any]:
                try:
                    async with inner(app) as state:
                        yield state
                finally:
                    await validator.aclose()

            app.router.lifespan_context = lifespan
        return app


def tool_guard(requirement: Requirement) -> Callable[[F], F]:
    """A decorator that refuses a tool call the requirement does not allow (a ToolError)."""

    def decorator(func: F) -> F:
        if inspect.iscoroutinefunction(func):

            @functools.wraps(func)
            async def async_tool(*args: Any, **kwargs: Any) -> Any:
                reason = refusal(requirement)
                if reason is not None:
                    raise ToolError(reason)
                return await func(*args, **kwargs)

            return async_tool  # type: ignore[return-value]

        @functools.wraps(func)
        def sync_tool(*args: Any, **kwargs: Any) -> Any:
            reason = refusal(requirement)
            if reason is not None:
                raise ToolError(reason)
            return func(*args, **kwargs)

        return sync_tool  # type: ignore[return-value]

    return decorator


def metadata_routes(metadata: ResourceMetadata) -> list[Route]:
    """Starlette routes that serve ``metadata`` at each of its paths (GET, HEAD)."""

    async def document(request: Request) -> Response:
        body, headers = metadata.render()
        return Response(body, 200, headers)

    return [Route(path, document, methods=["GET", "HEAD"]) for path in metadata.paths]


class ChallengeMiddleware:
    """Answers refused requests to the MCP endpoint as every apiguard layer does.

    The SDK's own check runs after it and finds the token valid (the validator's cache
    makes the second look cheap); this one gives clients the RFC 6750 answers: a bare
    challenge for a missing token, ``invalid_request`` (400), ``invalid_token`` with its
    reason, 503 with ``Retry-After`` when the keys cannot be had, each with
    ``resource_metadata``.
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        validator: AsyncValidator,
        paths: frozenset[str],
        realm: str | None,
        resource_metadata: str,
    ) -> None:
        self.app = app
        self.validator = validator
        self.paths = paths
        self.realm = realm
        self.resource_metadata = resource_metadata

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] not in self.paths:
            await self.app(scope, receive, send)
            return
        names = {name for name, _ in scope["headers"]}
        view = RequestView(
            method=scope["method"],
            path=scope["path"],
            authorization=tuple(
                v.decode("latin-1") for k, v in scope["headers"] if k == _AUTHORIZATION
            ),
            query=scope.get("query_string", b""),
            origin=b"origin" in names,
            preflight_method=b"access-control-request-method" in names,
        )
        if is_preflight(view):
            # It carries no credentials; the SDK (or a CORS middleware) answers it.
            await self.app(scope, receive, send)
            return
        gate = self.validator.dpop
        if gate is not None or self.validator.wants_request:
            # The full view (Host, peer...) for a DPoP proof, or for an issuer resolver.
            view = _with_dpop(view, scope)
        try:
            # The one request path of every layer. MCP messages are JSON, so no form body
            # is read for a repeated token (the SDK refuses a form-encoded body anyway).
            token = await run_async(
                guard(view, ANY_TOKEN, dpop=gate), self.validator.validate_credentials, _no_form
            )
        except (BearerError, ServiceUnavailable) as exc:
            await self._refuse(exc, send)
            return
        assert token is not None  # ANY_TOKEN: a request without one was refused above
        scheme, _, rest = view.authorization[0].strip(" \t").partition(" ")
        raw = rest.strip(" \t")
        inner = scope
        if scheme.lower() != "bearer":
            # The SDK reads "Bearer" credentials only: a DPoP request, its proof checked
            # above, goes on with the token as Bearer so that the SDK's check sees it.
            headers = [(k, v) for k, v in scope["headers"] if k != _AUTHORIZATION]
            bearer = (_AUTHORIZATION, b"Bearer " + raw.encode("latin-1"))
            inner = {**scope, "headers": [*headers, bearer]}
        # The SDK asks verify_token() about the same token within this request: it gets
        # this decision (proof included), not a second one made without the proof.
        marker = _DECIDED.set((raw, token))
        try:
            await self.app(inner, receive, send)
        finally:
            _DECIDED.reset(marker)

    async def _refuse(self, error: ApiguardError, send: Send) -> None:
        answer = render_error(error, self.realm, self.resource_metadata)
        start = {"type": "http.response.start", "status": answer.status_code}
        await send({**start, "headers": _encode_headers(answer)})
        await send({"type": "http.response.body", "body": answer.body})


async def _no_form() -> bytes:  # pragma: no cover - a view without a content type
    return b""


def __getattr__(name: str) -> Any:
    # FastMCP is a separate install (apiguard[fastmcp]): load its provider on first use.
    if name == "FastMCPAuth":
        from ._fastmcp import FastMCPAuth

        return FastMCPAuth
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
