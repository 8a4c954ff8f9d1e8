"""The one seam where the Management API is protected by apiguard's ASGI layer.

``protect(app, validator)`` requires a valid access token for the Management API audience
on every request; ``requires_scope`` guards each endpoint with RFC 6750 answers
(401 ``invalid_token``, 403 ``insufficient_scope``).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp

from apiguard import AsyncValidator
from apiguard.asgi import BearerAuthMiddleware
from apiguard.asgi import requires_scope as _requires_scope

Endpoint = Callable[[Request], Awaitable[Response]]
REALM = "management-api"


def protect(app: ASGIApp, validator: AsyncValidator) -> ASGIApp:
    """Require a valid Management API token on every request to *app*."""
    return BearerAuthMiddleware(app, validator=validator, required=True, realm=REALM)


def requires_scope(*scopes: str) -> Callable[[Endpoint], Endpoint]:
    """Require all of *scopes* on the request's token."""
    decorator: Callable[[Endpoint], Endpoint] = _requires_scope(*scopes)
    return decorator
