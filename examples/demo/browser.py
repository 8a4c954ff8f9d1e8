"""A small stand-in for a person with a browser: follows /authorize through login and consent.

It does what a browser would and nothing more: it keeps cookies, reads the hidden fields
(CSRF token included) from the pages' forms, posts them from the same origin, and stops at
the redirect back to the client's callback.
"""

from __future__ import annotations

import base64
import hashlib
import secrets
from collections.abc import Callable
from html.parser import HTMLParser
from urllib.parse import parse_qs, urljoin, urlsplit

import httpx

__all__ = ["Browser", "Form", "pkce_pair"]


def pkce_pair() -> tuple[str, str]:
    """A PKCE ``code_verifier`` and its S256 ``code_challenge`` (RFC 7636)."""
    verifier = secrets.token_urlsafe(48)
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return verifier, base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


class Form:
    """The first form of a page: its action and the values a browser would send."""

    def __init__(self, action: str, fields: dict[str, str], buttons: dict[str, str]) -> None:
        self.action = action
        self.fields = fields
        self.buttons = buttons

    @classmethod
    def parse(cls, html: str) -> Form:
        """Read the first ``<form>`` of ``html``; raise ValueError if there is none."""
        parser = _FormParser()
        parser.feed(html)
        if parser.action is None:
            raise ValueError("the page has no form")
        return cls(parser.action, parser.fields, parser.buttons)


class _FormParser(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.action: str | None = None
        self.fields: dict[str, str] = {}
        self.buttons: dict[str, str] = {}
        self._done = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = {name: value or "" for name, value in attrs}
        if tag == "form" and self.action is None:
            self.action = values.get("action", "")
        elif self.action is not None and not self._done and "name" in values:
            if tag == "input" and values.get("type") == "hidden":
                self.fields[values["name"]] = values.get("value", "")
            elif tag == "button":
                self.buttons[values["name"] + "=" + values.get("value", "")] = values["name"]

    def handle_endtag(self, tag: str) -> None:
        if tag == "form" and self.action is not None:
            self._done = True


class Browser:
    """A cookie-keeping HTTP client that signs in and answers consent like a person would."""

    def __init__(self, issuer: str, *, timeout: float = 10.0) -> None:
        self.issuer = issuer
        self.origin = "{0.scheme}://{0.netloc}".format(urlsplit(issuer))
        self.http = httpx.Client(timeout=timeout, follow_redirects=False)
        self.consent_shown = False

    def close(self) -> None:
        """Close the HTTP client."""
        self.http.close()

    def __enter__(self) -> Browser:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def authorize(
        self,
        params: dict[str, str],
        *,
        email: str,
        password: str,
        accept: bool = True,
        one_time_code: Callable[[], str] | None = None,
    ) -> str:
        """Run ``/authorize`` through login, a second factor and consent; return the callback.

        ``one_time_code`` reads the code the server sent for a second factor (the demo's
        server writes it to its log), as a person would read it off a phone.

        Raises:
            RuntimeError: the server answered something a browser could not go on from.
        """
        self.consent_shown = False
        url = urljoin(self.issuer, "authorize")
        response = self.http.get(url, params=params)
        for _ in range(10):
            if response.is_redirect:
                location = urljoin(str(response.url), response.headers["location"])
                if not location.startswith(self.origin + "/"):
                    return location  # back to the client: the flow is over
                response = self.http.get(location)
                continue
            if response.status_code != 200:
                raise RuntimeError(f"{response.url.path} answered {response.status_code}")
            form = Form.parse(response.text)
            data = dict(form.fields)
            if 'name="code"' in response.text and "code" not in data:
                if one_time_code is None:
                    raise RuntimeError("the server asks for a one-time code")
                data["code"] = one_time_code()
            elif "password" in response.text and "email" not in data:
                data.update(email=email, password=password)
            elif "decision" in form.buttons.values():
                self.consent_shown = True
                data["decision"] = "allow" if accept else "deny"
            action = urljoin(str(response.url), form.action)
            response = self.http.post(action, data=data, headers={"Origin": self.origin})
        raise RuntimeError("too many steps between /authorize and the callback")


def callback_params(url: str) -> dict[str, str]:
    """The parameters of a callback URL, from its query or (implicit flow) its fragment."""
    parts = urlsplit(url)
    query = parse_qs(parts.fragment or parts.query)
    return {name: values[0] for name, values in query.items()}
