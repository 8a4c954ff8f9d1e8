"""The application factory: ``create_app(settings)`` returns the Starlette app."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.routing import BaseRoute, Mount
from starlette.staticfiles import StaticFiles
from starlette.templating import Jinja2Templates
from starlette.types import ASGIApp, Receive, Scope, Send

from apiguard import AsyncValidator
from apiguard.dpop import NonceIssuer

from .dpop import TokenEndpointProofs
from .grants import Grants
from .routes import authorize, dashboard, discovery, oauth, portal, second_factor
from .routes.management import management_app
from .security import RateLimiter
from .services import Domain
from .settings import RateLimit, Settings
from .store import Store
from .tokens import TokenMinter
from .web import (
    STATIC_DIR,
    TEMPLATES_DIR,
    HostCheckMiddleware,
    SecurityHeadersMiddleware,
    Services,
    SessionManager,
)


class _SelfApp:
    """Forwards to the application once it exists (the Management API validator fetches
    the JWKS from this very app in-process, without opening a socket)."""

    def __init__(self) -> None:
        self.target: ASGIApp | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        assert self.target is not None
        await self.target(scope, receive, send)


def build_services(settings: Settings, store: Store | None = None) -> Services:
    """Open the store, initialise the tenant (keys, seed) and bundle the services."""
    domain = Domain(store or Store(settings.db_path), settings)
    domain.initialise()
    minter = TokenMinter(domain)

    def limiter(rate: RateLimit) -> RateLimiter:
        return RateLimiter(rate.limit, rate.window, settings.clock, settings.rate_limiter_max_keys)

    return Services(
        settings=settings,
        domain=domain,
        minter=minter,
        grants=Grants(domain, minter),
        sessions=SessionManager(domain),
        templates=Jinja2Templates(directory=TEMPLATES_DIR),
        login_limiter=limiter(settings.login_rate),
        token_failure_limiter=limiter(settings.token_failure_rate),
        registration_limiter=limiter(settings.registration_rate),
        dpop=TokenEndpointProofs(
            settings.url("oauth/token"),
            nonces=NonceIssuer(settings.dpop_nonce_secret) if settings.dpop_nonce_secret else None,
            clock=domain.now,
        ),
    )


def create_app(settings: Settings | None = None, *, store: Store | None = None) -> Starlette:
    """Build the authorization server.

    Args:
        settings: the configuration (``Settings.from_env()`` when omitted).
        store: an open store to use instead of opening ``settings.db_path`` (tests pass a
            copy of a seeded in-memory store).
    """
    settings = settings or Settings.from_env()
    bundle = build_services(settings, store)
    self_app = _SelfApp()
    jwks_client = httpx.AsyncClient(
        transport=httpx.ASGITransport(app=self_app), base_url=settings.issuer
    )
    validator = AsyncValidator(
        issuer=settings.issuer,
        audience=settings.management_audience,
        jwks_uri=settings.url(".well-known/jwks.json"),
        algorithms=["RS256"],
        http_client=jwks_client,
    )

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        yield
        await validator.aclose()
        await jwks_client.aclose()

    routes: list[BaseRoute] = [
        *discovery.routes,
        *authorize.routes,
        *second_factor.routes,
        *oauth.routes,
        *dashboard.routes,
        *portal.routes,
        Mount("/api/v2", app=management_app(validator)),
        Mount("/static", app=StaticFiles(directory=STATIC_DIR), name="static"),
    ]
    app = Starlette(
        routes=routes,
        middleware=[
            Middleware(SecurityHeadersMiddleware),
            Middleware(HostCheckMiddleware, settings=settings),
        ],
        lifespan=lifespan,
        max_body_size=settings.max_body_bytes,
    )
    app.state.services = bundle
    self_app.target = app
    return app
