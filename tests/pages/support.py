"""Helpers for the page tests: seeded credentials, and a client that fills forms."""

from __future__ import annotations

import re
from html import unescape

import httpx

ISSUER = "http://127.0.0.1:9000/"
ORIGIN = "http://127.0.0.1:9000"
ORGANIZER = "https://organizer.example/api"
ADMIN = ("admin@organizer.example", "organizer-admin-password")
DEMO = ("demo@organizer.example", "organizer-demo-password")
WORLD_MAPPERS_SECRET = "world-mappers-dev-secret"

_CSRF = re.compile(r'name="csrf_token" value="([^"]*)"')


def csrf_of(html: str) -> str:
    """The CSRF token of the first form of a page."""
    found = _CSRF.search(html)
    assert found is not None, "the page has no CSRF token"
    return unescape(found.group(1))


def assert_frame_protected(response: httpx.Response) -> None:
    """The page refuses to be framed (clickjacking) and keeps its URL from other sites."""
    assert response.headers["x-frame-options"] == "DENY"
    assert "frame-ancestors 'none'" in response.headers["content-security-policy"]
    assert response.headers["referrer-policy"] == "same-origin"
    assert 'name="referrer"' not in response.text


class Pages:
    """A browser stand-in: keeps cookies, reads each page's CSRF token, posts forms."""

    def __init__(self, http: httpx.AsyncClient) -> None:
        self.http = http
        self.csrf = ""

    async def get(self, path: str) -> httpx.Response:
        response = await self.http.get(path)
        if response.status_code == 200 and _CSRF.search(response.text):
            self.csrf = csrf_of(response.text)
        return response

    async def post(
        self, path: str, data: dict[str, str | list[str]] | None = None, **headers: str
    ) -> httpx.Response:
        """POST a form with the CSRF token of the last page seen (unless data sets one)."""
        body: dict[str, str | list[str]] = {"csrf_token": self.csrf, **(data or {})}
        return await self.http.post(path, data=body, headers=headers)

    async def sign_in(self, email: str, password: str, next_path: str = "/portal") -> None:
        page = await self.get(f"/login?next={next_path}")
        assert page.status_code == 200
        answer = await self.post(
            "/login", {"email": email, "password": password, "next": next_path}
        )
        assert answer.status_code == 303, answer.text
        await self.get(answer.headers["location"])
