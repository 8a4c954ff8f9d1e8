"""The one seam where the Management API is protected by apiguard.

``protect(app, validator)`` wraps an ASGI app so that every request needs a valid access
token for the Management API audience; ``requires_scope`` guards each endpoint. Both come
from ``apiguard.asgi`` when it is installed. The fallback below keeps the same contract
(``scope["auth"]`` with ``.scopes`` and ``.token``, RFC 6750 answers rendered by
``apiguard.bearer``) so the server also runs against an apiguard without the ASGI layer.
"""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable
from typing import Any

from starlette.authentication import AuthCredentials, SimpleUser
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send

from apiguard import AccessToken, ApiguardError, AsyncValidator, InsufficientScope
from apiguard.bearer import extract_token, render_error

Endpoint = Callable[[Request], Awaitable[Response]]
REALM = "management-api"


class TokenCredentials(AuthCredentials):
    """Starlette credentials that also carry the validated token."""

    def __init__(self, token: AccessToken) -> None:
        super().__init__(sorted(token.scopes))
        self.token = token


def _error_response(error: ApiguardError) -> Response:
    rendered = render_error(error, realm=REALM)
    return Response(
        rendered.body, rendered.status_code, rendered.headers, media_type=rendered.media_type
    )


class _FallbackBearerAuth:
    """Validate the bearer token of every request; fill ``scope["auth"]``/``scope["user"]``."""

    def __init__(self, app: ASGIApp, *, validator: AsyncValidator) -> None:
        self.app = app
        self.validator = validator

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        values = [v.decode("latin-1") for k, v in scope["headers"] if k == b"authorization"]
        try:
            token = await self.validator.validate(extract_token(values or None))
        except ApiguardError as error:
            await _error_response(error)(scope, receive, send)
            return
        scope["auth"] = TokenCredentials(token)
        scope["user"] = SimpleUser(token.subject or "")
        await self.app(scope, receive, send)


def _fallback_requires_scope(*scopes: str) -> Callable[[Endpoint], Endpoint]:
    def decorate(endpoint: Endpoint) -> Endpoint:
        @functools.wraps(endpoint)
        async def wrapper(request: Request) -> Response:
            granted = set(getattr(request.auth, "scopes", ()))
            if not set(scopes) <= granted:
                return _error_response(InsufficientScope(scopes))
            return await endpoint(request)

        return wrapper

    return decorate


try:  # the ASGI layer of apiguard, when present
    from apiguard.asgi import BearerAuthMiddleware
    from apiguard.asgi import requires_scope as _requires_scope

    def protect(app: ASGIApp, validator: AsyncValidator) -> ASGIApp:
        """Require a valid Management API token on every request to *app*."""
        return BearerAuthMiddleware(app, validator=validator, required=True, realm=REALM)

    def requires_scope(*scopes: str) -> Callable[[Endpoint], Endpoint]:
        """Require all of *scopes* (RFC 6750 403 ``insufficient_scope`` otherwise)."""
        decorator: Callable[[Endpoint], Endpoint] = _requires_scope(*scopes)
        return decorator

except ImportError:  # pragma: no cover - depends on the installed apiguard

    def protect(app: ASGIApp, validator: AsyncValidator) -> ASGIApp:
        """Require a valid Management API token on every request to *app*."""
        return _FallbackBearerAuth(app, validator=validator)

    def requires_scope(*scopes: str) -> Callable[[Endpoint], Endpoint]:
        """Require all of *scopes* (RFC 6750 403 ``insufficient_scope`` otherwise)."""
        return _fallback_requires_scope(*scopes)


def token_of(request: Request) -> Any:
    """The validated access token of a protected request."""
    return request.auth.token
