"""Fixtures for the local authorization server: an in-process app per test, a browser."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette

from apiguard import AccessToken, AsyncValidator
from examples.authz_server import Settings, create_app
from examples.authz_server.services import Domain
from examples.authz_server.store import Store

from .support import ISSUER, ORGANIZER, ORIGIN, Browser, FakeClock, Validate


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
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def settings(clock: FakeClock) -> Settings:
    return Settings(db_path=":memory:", clock=clock)


@pytest.fixture
def app(settings: Settings, seeded_store: Store) -> Starlette:
    return create_app(settings, store=Store.copy_of(seeded_store))


@pytest.fixture
def tenant(app: Starlette) -> Domain:
    bundle: Any = app.state.services
    result: Domain = bundle.domain
    return result


@pytest.fixture
async def http(app: Starlette) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url=ORIGIN) as client:
        yield client


@pytest.fixture
def browser(http: httpx.AsyncClient) -> Browser:
    return Browser(http)


@pytest.fixture
async def validate(http: httpx.AsyncClient, clock: FakeClock) -> AsyncIterator[Validate]:
    """Validate a token with apiguard against the server's own discovery and JWKS."""
    validators: list[AsyncValidator] = []

    async def run(token: str, audience: str = ORGANIZER, **options: Any) -> AccessToken:
        validator = AsyncValidator(
            issuer=ISSUER, audience=audience, http_client=http, clock=clock, **options
        )
        validators.append(validator)
        return await validator.validate(token)

    yield run
    for validator in validators:
        await validator.aclose()
