"""Fixtures for the ASGI and FastAPI layers: apps protected by a local issuer's validator."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from asgi_support import TestClient, whoami, ws_whoami
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.routing import Route, WebSocketRoute

from apiguard.asgi import BearerAuthMiddleware
from apiguard.testing import LocalIssuer


@pytest.fixture
def anyio_backend() -> str:
    """Run async tests on asyncio only."""
    return "asyncio"


@pytest.fixture
def make_app(local_issuer: LocalIssuer) -> Callable[..., Starlette]:
    """Build a Starlette app with ``/whoami``, ``/health`` and ``/ws`` behind the middleware."""

    def make(routes: list[Any] | None = None, **options: Any) -> Starlette:
        if "issuer" not in options and "validator" not in options:
            options["validator"] = local_issuer.async_validator()
        base = [
            Route("/whoami", whoami),
            Route("/health", whoami),
            Route("/static/{name}", whoami),
            WebSocketRoute("/ws", ws_whoami),
        ]
        return Starlette(
            routes=[*base, *(routes or [])],
            middleware=[Middleware(BearerAuthMiddleware, **options)],
        )

    return make


@pytest.fixture
def client(make_app: Callable[..., Starlette]) -> Iterator[TestClient]:
    """A test client (lifespan running) for the default app: tokens optional, realm "api"."""
    with TestClient(make_app(realm="api")) as test_client:
        yield test_client
