"""The login and consent pages as a person sees them."""

from __future__ import annotations

import re
from collections.abc import Callable
from html import unescape

import httpx
import pytest

from examples.authz_server.services import Domain

from .support import DEMO, ORGANIZER, Pages, assert_frame_protected

pytestmark = pytest.mark.anyio

CHALLENGE = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"


async def consent_page(
    new_client: Callable[[], httpx.AsyncClient], client_id: str, redirect_uri: str, scope: str
) -> httpx.Response:
    """Start an authorization, sign in as the demo user, and return the consent page."""
    pages = Pages(new_client())
    params = {
        "response_type": "code",
        "client_id": client_id,
        "redirect_uri": redirect_uri,
        "scope": scope,
        "audience": ORGANIZER,
        "code_challenge": CHALLENGE,
        "code_challenge_method": "S256",
        "prompt": "consent",
    }
    start = await pages.http.get("/authorize", params=params)
    login = await pages.get(start.headers["location"])
    assert login.status_code == 200
    interaction = re.search(r'name="interaction" value="([^"]+)"', login.text)
    assert interaction is not None
    signed_in = await pages.post(
        "/login", {"interaction": interaction.group(1), "email": DEMO[0], "password": DEMO[1]}
    )
    assert signed_in.headers["location"].startswith("/consent?")
    return await pages.get(signed_in.headers["location"])


def groups(html: str) -> dict[str, list[str]]:
    """The consent page's scope groups: heading -> scope values."""
    sections = re.findall(
        r'<section class="scope-group".*?<h2>(.*?)</h2>(.*?)</section>', html, re.S
    )
    return {unescape(h): re.findall(r"<code>([^<]+)</code>", body) for h, body in sections}


async def test_consent_groups_scopes_by_api(new_client: Callable[[], httpx.AsyncClient]) -> None:
    """Account scopes and the API's scopes are listed apart, each with its description."""
    page = await consent_page(
        new_client,
        "calendar-app",
        "http://127.0.0.1:8101/callback",
        "openid profile read:appointments create:tasks",
    )
    assert page.status_code == 200
    assert_frame_protected(page)
    assert groups(page.text) == {
        "Your account": ["openid", "profile"],
        "Organizer API": ["read:appointments", "create:tasks"],
    }
    assert "Read your appointments" in page.text
    assert "Create tasks in your to-do list" in page.text
    assert "Read your name" in page.text
    assert 'value="deny">Decline</button>' in page.text
    assert 'value="allow" class="primary">Accept</button>' in page.text
    assert "at <strong>127.0.0.1:8101</strong>" in page.text


@pytest.mark.parametrize(
    ("client_id", "redirect_uri", "warning"),
    [
        pytest.param(
            "calendar-app",
            "http://127.0.0.1:8101/callback",
            "is not made by the Organizer",
            id="third-party",
        ),
        pytest.param("organizer-web", "http://127.0.0.1:5050/callback", None, id="first-party"),
        pytest.param("dynamic", "https://dyn.example/cb", "registered itself", id="dynamic"),
    ],
)
async def test_consent_warns_about_untrusted_clients(
    new_client: Callable[[], httpx.AsyncClient],
    tenant: Domain,
    client_id: str,
    redirect_uri: str,
    warning: str | None,
) -> None:
    """Third-party and self-registered clients get a warning; first-party ones do not."""
    if client_id == "dynamic":
        client_id = tenant.clients.register(
            {"client_name": "Dyn", "redirect_uris": [redirect_uri]}, dynamic=True
        ).client.client_id
    page = await consent_page(new_client, client_id, redirect_uri, "read:tasks")
    warnings = re.findall(r'<p class="warning" role="note">(.*?)</p>', page.text, re.S)
    if warning is None:
        assert warnings == []
    else:
        assert len(warnings) == 1
        assert warning in warnings[0]


async def test_login_page_offers_portal_sign_up(anonymous: Pages) -> None:
    """The login page reached from the portal links to the developer sign-up, with labels."""
    page = await anonymous.get("/login?next=/portal")
    assert page.status_code == 200
    assert_frame_protected(page)
    assert 'href="/portal/signup"' in page.text
    assert '<label for="email">' in page.text
    assert '<label for="password">' in page.text
