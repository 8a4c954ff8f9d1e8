"""Phishing and sign-up abuse on the pages: look-alike hosts, unverified emails, one budget.

An attacker self-registers a client named like a first-party app with a homoglyph redirect
host, or signs up on the portal with someone else's address, or spreads registrations over
every path that creates something to get past a per-path limit.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from html import unescape
from urllib.parse import urlsplit

import httpx
import jwt
import pytest

from examples.authz_server.services import Domain

from .support import Pages
from .test_consent_page import consent_page
from .test_portal import WEB_APP, developer, register

pytestmark = pytest.mark.anyio

# "calendarapp.example" with a Cyrillic small a (U+0430) as its second letter.
HOMOGLYPH_HOST = "c\u0430lendarapp.example"
HOMOGLYPH_CB = f"https://{HOMOGLYPH_HOST}/callback"


async def test_consent_shows_a_look_alike_host_in_punycode(
    new_client: Callable[[], httpx.AsyncClient], tenant: Domain
) -> None:
    """A homoglyph redirect host is shown as ``xn--...``, never in the letters it imitates."""
    client_id = tenant.clients.register(
        {"client_name": "CalendarApp", "redirect_uris": [HOMOGLYPH_CB]}, dynamic=True
    ).client.client_id
    page = await consent_page(new_client, client_id, HOMOGLYPH_CB, "read:appointments")
    assert page.status_code == 200
    text = unescape(page.text)
    punycode = HOMOGLYPH_HOST.encode("idna").decode()
    assert punycode.startswith("xn--")
    assert f"<strong>{punycode}</strong>" in text
    assert HOMOGLYPH_HOST not in text
    assert "open dynamic registration" in text


@pytest.mark.parametrize(
    ("origin", "expected"),
    [
        pytest.param("portal", "developer portal by ada@dev.example", id="portal"),
        pytest.param("admin", "administrator", id="administrator"),
    ],
)
async def test_consent_names_the_registration_origin(
    new_client: Callable[[], httpx.AsyncClient], tenant: Domain, origin: str, expected: str
) -> None:
    """The consent page says who registered the application."""
    if origin == "portal":
        ada = await developer(new_client, "ada@dev.example")
        _, client_id = await register(ada, WEB_APP)
        redirect_uri = WEB_APP["redirect_uris"]
    else:
        client_id, redirect_uri = "calendar-app", "http://127.0.0.1:8101/callback"
    page = await consent_page(new_client, client_id, redirect_uri, "read:tasks")
    found = re.search(r'<p class="muted origin">(.*?)</p>', page.text, re.S)
    assert found is not None
    assert expected in unescape(found.group(1))


async def test_portal_sign_ups_are_unverified_until_the_link(
    new_client: Callable[[], httpx.AsyncClient],
    tenant: Domain,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A sign-up is ``email_verified: false``; the link in the server log verifies it."""
    with caplog.at_level(logging.INFO, logger="examples.authz_server"):
        pages = await developer(new_client, "victim@corp.example")
    user = tenant.users.find_by_email("victim@corp.example")
    assert user is not None
    assert not user.email_verified
    links = re.findall(r"http://\S+/portal/verify\?token=\S+", caplog.text)
    assert len(links) == 1
    answer = await token_request_id_token(pages.http, "victim@corp.example")
    assert answer["email_verified"] is False
    wrong = await pages.get("/portal/verify?token=" + "x" * 40)
    assert wrong.status_code == 400
    verified = await pages.get(urlsplit(links[0])._replace(scheme="", netloc="").geturl())
    assert verified.status_code == 200
    assert "is verified" in verified.text
    assert (await token_request_id_token(pages.http, "victim@corp.example"))["email_verified"]


async def token_request_id_token(http: httpx.AsyncClient, email: str) -> dict[str, object]:
    """The claims of an ID token for the user, through the first-party password grant."""
    answer = await http.post(
        "/oauth/token",
        data={
            "grant_type": "password",
            "username": email,
            "password": "long-password",
            "scope": "openid email",
            "client_id": "organizer-web",
            "client_secret": "organizer-web-dev-secret",
        },
    )
    assert answer.status_code == 200, answer.text
    claims: dict[str, object] = jwt.decode(
        answer.json()["id_token"], options={"verify_signature": False}
    )
    return claims


async def test_one_creation_budget_per_address_across_every_path(
    new_client: Callable[[], httpx.AsyncClient],
) -> None:
    """Sign-ups, portal apps and open registration share one limit per client IP."""
    ada = await developer(new_client, "ada@dev.example")  # 1
    for _ in range(4):  # 2-5
        await register(ada, WEB_APP)
    open_registration = new_client()
    metadata = {"client_name": "Bot", "redirect_uris": ["https://bot.example/cb"]}
    for _ in range(5):  # 6-10
        answer = await open_registration.post("/oidc/register", json=metadata)
        assert answer.status_code == 201
    over = await open_registration.post("/oidc/register", json=metadata)
    assert over.status_code == 429
    await ada.get("/portal/apps/new")
    assert (await ada.post("/portal/apps", dict(WEB_APP))).status_code == 429
    bob = Pages(new_client())
    await bob.get("/portal/signup")
    signup = await bob.post(
        "/portal/signup", {"name": "bob", "email": "bob@dev.example", "password": "long-password"}
    )
    assert signup.status_code == 429
    assert int(signup.headers["retry-after"]) > 0
