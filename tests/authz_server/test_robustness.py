"""Bad input anywhere gets a clear 4xx, never a 500."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from starlette.applications import Starlette

from examples.authz_server.web import signed_in_user

from .support import ORIGIN, Browser

pytestmark = pytest.mark.anyio


@pytest.fixture
async def lenient(app: Starlette) -> httpx.AsyncClient:
    """A client that reports server errors as 500 answers instead of raising them."""
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    return httpx.AsyncClient(transport=transport, base_url=ORIGIN)


@pytest.mark.parametrize(
    ("method", "url", "kwargs"),
    [
        pytest.param("GET", "/authorize?client_id=%00", {}, id="nul-client"),
        pytest.param(
            "GET",
            "/authorize?client_id=calendar-app&redirect_uri=http://[::1/cb",
            {},
            id="bad-ipv6",
        ),
        pytest.param(
            "GET",
            "/authorize?client_id=textapp-io&redirect_uri=http://127.0.0.1:99999/callback",
            {},
            id="bad-port",
        ),
        pytest.param("POST", "/login", {"files": {"email": ("a", b"x")}}, id="login-multipart"),
        pytest.param(
            "POST",
            "/login",
            {
                "content": b"\xff\xfe",
                "headers": {"content-type": "application/x-www-form-urlencoded"},
            },
            id="login-bytes",
        ),
        pytest.param("POST", "/consent", {"data": {"interaction": "x"}}, id="consent-no-session"),
        pytest.param(
            "POST",
            "/oauth/token",
            {
                "content": b"a=" + b"x" * 200_000,
                "headers": {"content-type": "application/x-www-form-urlencoded"},
            },
            id="huge-body",
        ),
        pytest.param(
            "POST",
            "/oauth/token",
            {
                "data": {
                    "grant_type": "authorization_code",
                    "client_id": "textapp-io",
                    "code": "x",
                    "code_verifier": "\u00e9" * 50,
                }
            },
            id="non-ascii-verifier",
        ),
        pytest.param(
            "GET", "/userinfo", {"headers": {"Authorization": "Bearer e30.e30.e30"}}, id="ui-junk"
        ),
        pytest.param(
            "POST",
            "/oidc/register",
            {"json": {"redirect_uris": ["https://a.example/cb"], "client_name": ["x"]}},
            id="dcr-name-list",
        ),
    ],
)
async def test_bad_input_is_a_4xx(
    lenient: httpx.AsyncClient, method: str, url: str, kwargs: dict[str, Any]
) -> None:
    """Each malformed request is answered with a 4xx status."""
    async with lenient:
        response = await lenient.request(method, url, **kwargs)
    assert 400 <= response.status_code < 500, response.text


async def test_signed_in_user_helper(browser: Browser, app: Starlette) -> None:
    """signed_in_user reads the session cookie; the seeded admin has the admin flag."""
    from starlette.requests import Request

    await browser.login("/login", "admin@organizer.example", "organizer-admin-password")
    cookie = browser.http.cookies["authz_session"]
    scope = {
        "type": "http",
        "app": app,
        "headers": [(b"cookie", f"authz_session={cookie}".encode())],
    }
    user = signed_in_user(Request(scope))
    assert user is not None
    assert user.is_admin
    assert signed_in_user(Request({"type": "http", "app": app, "headers": []})) is None
