"""Spoiled dashboard and portal forms get a page (2xx, 3xx or 4xx), never a server error.

Each case posts a form that would succeed, with one field at a time replaced by junk,
missing, or repeated; the signed-in person and the CSRF token are valid, so every request
reaches the handler.
"""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
from starlette.applications import Starlette

from examples.authz_server import Settings, create_app
from examples.authz_server.settings import RateLimit
from examples.authz_server.store import Store

from .support import ADMIN, DEMO, ORGANIZER, ORIGIN, Pages

pytestmark = pytest.mark.anyio

Form = dict[str, str | list[str]]
JUNK = [
    "",
    "\x00",
    "%ff",
    "\u00e9\u0301",
    "x" * 5000,
    "-1",
    "99999999999999999999999",
    "http://[::1",
    "http://xn--/",
    "http://127.0.0.1:99999/",
    "javascript:alert(1)",
    "https://a.example/cb\nhttp://evil.example/cb",
]


@pytest.fixture
def app(seeded_store: Store) -> Starlette:
    """Relaxed rate limits (so every form reaches its handler) and a probe target in-process."""
    relaxed = RateLimit(limit=100_000)
    settings = Settings(db_path=":memory:", registration_rate=relaxed, login_rate=relaxed)
    server = create_app(settings, store=Store.copy_of(seeded_store))
    server.state.probe_transport = httpx.MockTransport(lambda request: httpx.Response(401))
    return server


async def signed_in(app: Starlette, email: str, password: str, form_page: str) -> Pages:
    """A signed-in browser whose server errors come back as 500 answers, holding a CSRF token."""
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    pages = Pages(httpx.AsyncClient(transport=transport, base_url=ORIGIN))
    await pages.sign_in(email, password)
    await pages.get(form_page)
    return pages


def spoiled(base: dict[str, str], fields: list[str]) -> Iterator[Form]:
    """*base* with one field removed, repeated, or replaced by each junk value."""
    for name in fields:
        yield {k: v for k, v in base.items() if k != name}
        yield base | {name: [base.get(name, "x"), "y"]}
        for value in JUNK:
            yield base | {name: value}


API = "/dashboard/apis/{api}"
DASHBOARD_FORMS = [
    pytest.param(
        "/dashboard/apis",
        {"name": "Fuzz", "identifier": "https://fuzz.example/", "signing_alg": "RS256"},
        id="create-api",
    ),
    pytest.param(
        f"{API}/settings",
        {"name": "Organizer API", "token_lifetime": "3600", "allow_offline_access": "on"},
        id="api-settings",
    ),
    pytest.param(f"{API}/scopes", {"value": "fuzz:it", "description": "Fuzz"}, id="add-scope"),
    pytest.param(f"{API}/scopes/remove", {"value": "read:tasks"}, id="remove-scope"),
    pytest.param(
        f"{API}/m2m",
        {"client_id": "world-mappers", "action": "save", "scope": "read:tasks"},
        id="m2m",
    ),
    pytest.param(
        f"{API}/test", {"client_id": "world-mappers", "url": "https://api.example/x"}, id="test"
    ),
    pytest.param(
        "/dashboard/applications",
        {"name": "Fuzz", "app_type": "regular_web", "callbacks": "https://fuzz.example/cb"},
        id="create-application",
    ),
    pytest.param(
        "/dashboard/applications/calendar-app",
        {
            "name": "CalendarApp",
            "callbacks": "https://calendarapp.example/callback",
            "grant_types": "authorization_code",
        },
        id="application-settings",
    ),
]


@pytest.mark.parametrize(("path", "base"), DASHBOARD_FORMS)
async def test_dashboard_forms_never_crash(app: Starlette, path: str, base: dict[str, str]) -> None:
    """Every spoiled dashboard form posted by the admin is answered below 500."""
    admin = await signed_in(app, *ADMIN, "/dashboard/keys")
    api_id = app.state.services.domain.apis.get(ORGANIZER).id
    crashes = []
    sent = 0
    for form in spoiled(base, [*base, "first_party", "description"]):
        response = await admin.post(path.format(api=api_id), form)
        sent += 1
        if response.status_code >= 500:
            crashes.append(f"{path} {str(form)[:200]} -> {response.status_code}")
    await admin.http.aclose()
    assert crashes == []
    assert sent > 40


@pytest.mark.parametrize(
    ("path", "base"),
    [
        pytest.param(
            "/portal/apps",
            {"name": "Fuzz", "kind": "web", "redirect_uris": "https://fuzz.example/cb"},
            id="register-app",
        ),
        pytest.param("/portal/apps/nope/delete", {}, id="delete-app"),
        pytest.param("/portal/authorized/nope/revoke", {}, id="revoke-authorization"),
    ],
)
async def test_portal_forms_never_crash(app: Starlette, path: str, base: dict[str, str]) -> None:
    """Every spoiled portal form posted by a developer is answered below 500."""
    developer = await signed_in(app, *DEMO, "/portal/apps/new")
    crashes = []
    for form in spoiled(base, [*base, "x"]):
        response = await developer.post(path, form)
        if response.status_code >= 500:
            crashes.append(f"{path} {str(form)[:200]} -> {response.status_code}")
    await developer.http.aclose()
    assert crashes == []
