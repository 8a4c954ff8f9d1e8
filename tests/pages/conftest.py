"""Fixtures for the dashboard and portal pages: an in-process server per test, signed-in clients."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette

from examples.authz_server import Settings, create_app
from examples.authz_server.models import ResourceServer
from examples.authz_server.services import Domain
from examples.authz_server.store import Store

from .support import ADMIN, ORGANIZER, ORIGIN, Pages


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(scope="session")
def seeded_store() -> Store:
    """A seeded store built once (keys, seed); each test gets a copy."""
    store = Store(":memory:")
    Domain(store, Settings(db_path=":memory:")).initialise()
    return store


@pytest.fixture
def app(seeded_store: Store) -> Starlette:
    return create_app(Settings(db_path=":memory:"), store=Store.copy_of(seeded_store))


@pytest.fixture
def tenant(app: Starlette) -> Domain:
    bundle: Any = app.state.services
    result: Domain = bundle.domain
    return result


@pytest.fixture
def organizer(tenant: Domain) -> ResourceServer:
    return tenant.apis.get(ORGANIZER)


@pytest.fixture
async def new_client(app: Starlette) -> AsyncIterator[Callable[[], httpx.AsyncClient]]:
    """Make browser-like clients (each with its own cookie jar) on the in-process app."""
    opened: list[httpx.AsyncClient] = []

    def make() -> httpx.AsyncClient:
        client = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=ORIGIN)
        opened.append(client)
        return client

    yield make
    for client in opened:
        await client.aclose()


@pytest.fixture
async def admin(new_client: Callable[[], httpx.AsyncClient]) -> Pages:
    """The seeded admin, signed in."""
    pages = Pages(new_client())
    await pages.sign_in(*ADMIN)
    return pages


@pytest.fixture
async def anonymous(new_client: Callable[[], httpx.AsyncClient]) -> Pages:
    """A visitor who has not signed in."""
    return Pages(new_client())
