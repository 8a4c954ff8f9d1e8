"""Shared web plumbing: pages, security headers, sessions, CSRF and the services bundle.

The dashboard and developer portal reuse all of it: ``render`` for pages that extend
``base.html``, ``SessionManager`` for the login session, ``Session.csrf_token`` and
``check_form_csrf`` for forms, and ``services(request)`` for the domain services.
"""

from __future__ import annotations

import hmac
import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.templating import Jinja2Templates
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .dpop import TokenEndpointProofs
from .grants import Grants
from .models import Session, User
from .security import RateLimiter, b64url, new_secret, token_digest
from .services import Domain
from .settings import Settings, is_loopback_host
from .tokens import TokenMinter

TEMPLATES_DIR = Path(__file__).with_name("templates")
STATIC_DIR = Path(__file__).with_name("static")
SESSION_COOKIE = "authz_session"

# Sent on every response: no framing (clickjacking), no sniffing, no referrer leaks.
# The referrer policy is "same-origin", not "no-referrer": under no-referrer browsers send
# "Origin: null" on same-origin form posts, which same_origin_post must refuse. Under
# same-origin the real Origin goes with our own forms, and other sites (clients, logos,
# policy links) get no Referer, so interaction ids and query strings stay here.
SECURITY_HEADERS: dict[str, str] = {
    "X-Frame-Options": "DENY",
    "Content-Security-Policy": (
        "default-src 'self'; img-src 'self' https: data:; object-src 'none'; "
        "base-uri 'none'; frame-ancestors 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
}
NO_STORE: dict[str, str] = {"Cache-Control": "no-store", "Pragma": "no-cache"}


class SecurityHeadersMiddleware:
    """Pure ASGI middleware adding :data:`SECURITY_HEADERS` to every HTTP response."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self._raw = [(k.lower().encode(), v.encode()) for k, v in SECURITY_HEADERS.items()]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                present = {name.lower() for name, _ in headers}
                headers += [(k, v) for k, v in self._raw if k not in present]
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, send_with_headers)


_HOST = re.compile(r"(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.\-]+)(?::[0-9]{1,5})?")


class HostCheckMiddleware:
    """Answer 400 to a request whose ``Host`` is not this server's (DNS rebinding).

    A page on ``evil.example`` that re-points its name to 127.0.0.1 reaches a loopback
    server with ``Host: evil.example``; refusing every host but the issuer's, the loopback
    names and ``Settings.allowed_hosts`` (for a server behind a public URL) keeps such a
    page from reading anything, and keeps absolute URLs in pages pointing here. A request
    without exactly one ``Host`` header is refused too.
    """

    def __init__(self, app: ASGIApp, settings: Settings) -> None:
        self.app = app
        issuer_host = urlsplit(settings.issuer).hostname or ""
        self._allowed = {issuer_host.lower(), *(h.lower() for h in settings.allowed_hosts)}
        self._any = "*" in self._allowed

    def allows(self, host: bytes | None) -> bool:
        """Whether the value of a ``Host`` header names this server."""
        if self._any:
            return True
        if host is None:
            return False
        text = host.decode("latin-1")
        if _HOST.fullmatch(text) is None:
            return False
        name = text.rsplit(":", 1)[0] if not text.endswith("]") else text
        name = name.lower()
        return name in self._allowed or is_loopback_host(name)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        hosts = [value for name, value in scope["headers"] if name == b"host"]
        if len(hosts) != 1 or not self.allows(hosts[0]):
            response = Response("Invalid Host header\n", status_code=400, media_type="text/plain")
            await response(scope, receive, send)
            return
        await self.app(scope, receive, send)


@dataclass
class Services:
    """What the endpoints need, kept on ``app.state.services`` (built once per app)."""

    settings: Settings
    domain: Domain
    minter: TokenMinter
    grants: Grants
    sessions: SessionManager
    templates: Jinja2Templates
    login_limiter: RateLimiter
    token_failure_limiter: RateLimiter
    registration_limiter: RateLimiter
    dpop: TokenEndpointProofs


def services(request: Request) -> Services:
    """The services bundle of the application serving *request*."""
    bundle: Services = request.app.state.services
    return bundle


def client_ip(request: Request) -> str:
    """The peer address (the server binds to loopback; no proxy headers are trusted)."""
    return request.client.host if request.client else "unknown"


def render(
    request: Request,
    template: str,
    context: Mapping[str, Any] | None = None,
    *,
    status_code: int = 200,
) -> HTMLResponse:
    """Render a page (which extends ``base.html``); pages are never cached."""
    bundle = services(request)
    return bundle.templates.TemplateResponse(
        request,
        template,
        {"issuer": bundle.settings.issuer, **(context or {})},
        status_code=status_code,
        headers=NO_STORE,
    )


def error_page(request: Request, title: str, message: str, status_code: int = 400) -> Response:
    """A plain error page (used where redirecting to the client would be unsafe)."""
    return render(
        request, "error.html", {"title": title, "message": message}, status_code=status_code
    )


def json_response(
    data: Any, status_code: int = 200, headers: Mapping[str, str] | None = None
) -> JSONResponse:
    """A JSON answer with ``Cache-Control: no-store`` (token and credential responses)."""
    return JSONResponse(data, status_code=status_code, headers={**NO_STORE, **(headers or {})})


def display_host(uri: str) -> str:
    """Where *uri* leads, as a person should read it: the host in its ASCII (punycode) form.

    A look-alike host (``app.example`` spelt with a Cyrillic first letter) shows as
    ``xn--pp-6kc.example``, so it cannot pass for the real one. A private-use scheme (a
    native app) shows as ``scheme:``.
    """
    try:
        parts = urlsplit(uri)
        host, port = parts.hostname, parts.port
    except ValueError:
        return uri.encode("ascii", "backslashreplace").decode("ascii")
    if not host:
        return f"{parts.scheme}:"
    try:
        shown = host.encode("idna").decode("ascii")
    except UnicodeError:
        shown = host.encode("ascii", "backslashreplace").decode("ascii")
    if ":" in shown:
        shown = f"[{shown}]"
    return f"{shown}:{port}" if port is not None else shown


def same_origin_post(request: Request) -> bool:
    """Refuse cross-site form posts: ``Origin`` and ``Sec-Fetch-Site`` must agree with us."""
    origin = request.headers.get("origin")
    if origin is not None:
        issuer = urlsplit(services(request).settings.issuer)
        if origin != f"{issuer.scheme}://{issuer.netloc}":
            return False
    fetch_site = request.headers.get("sec-fetch-site")
    return fetch_site in (None, "same-origin", "none")


# -------------------------------------------------------------------- sessions


class SessionManager:
    """Server-side sessions in the store, with an HttpOnly SameSite=Lax cookie.

    Only a signed-in session has a row. Before sign-in the cookie is just a random id:
    its CSRF secret is derived from it with this store's key, so a visitor (or a script
    sending cookieless requests to ``/login`` or ``/authorize``) writes no session row.
    What an anonymous visitor starts (an interaction) is stored with a short lifetime,
    under a hard cap.
    """

    def __init__(self, domain: Domain) -> None:
        self.domain = domain
        self.settings = domain.settings
        self._sessions = domain.store.sessions

    def _anonymous(self, sid: str) -> Session:
        key = self.domain.server_secret().encode()
        secret = hmac.new(key, f"anonymous|{sid}".encode(), "sha256").digest()
        expires = self.domain.now() + self.settings.interaction_ttl
        return Session(token_digest(sid), None, b64url(secret), None, expires)

    def load(self, request: Request) -> Session | None:
        """The request's session: signed in, anonymous (cookie without a row), or ``None``."""
        sid = request.cookies.get(SESSION_COOKIE)
        if not sid or len(sid) > 128 or not sid.isascii():
            return None
        found = self._sessions.find(token_digest(sid), self.domain.now())
        return found if found is not None else self._anonymous(sid)

    def user(self, session: Session | None) -> User | None:
        """The signed-in user of *session*, if any (never a blocked one)."""
        if session is None or session.user_id is None:
            return None
        user = self.domain.users.find(session.user_id)
        return None if user is None or user.blocked else user

    def ensure(self, request: Request) -> tuple[Session, str | None]:
        """The request's session, or a new anonymous one with the cookie value to set."""
        session = self.load(request)
        if session is not None:
            return session, None
        sid = new_secret(32)
        return self._anonymous(sid), sid

    def login(self, old: Session | None, user: User) -> tuple[Session, str]:
        """Sign *user* in under a new session id (the old id is discarded: no fixation)."""
        sid = new_secret(32)
        now = self.domain.now()
        session = Session(
            token_digest(sid), user.user_id, new_secret(32), now, now + self.settings.session_ttl
        )
        self._sessions.start(session, now, replacing=old.sid_hash if old else None)
        return session, sid

    def logout(self, session: Session | None) -> None:
        """End the session."""
        if session is not None:
            self._sessions.end(session.sid_hash)

    def set_cookie(self, response: Response, sid: str) -> None:
        """Attach the session cookie (HttpOnly, SameSite=Lax, Secure on https issuers)."""
        response.set_cookie(
            SESSION_COOKIE,
            sid,
            max_age=self.settings.session_ttl,
            httponly=True,
            samesite="lax",
            secure=self.settings.secure_cookies,
            path="/",
        )

    def clear_cookie(self, response: Response) -> None:
        """Remove the session cookie."""
        response.delete_cookie(
            SESSION_COOKIE,
            httponly=True,
            samesite="lax",
            secure=self.settings.secure_cookies,
            path="/",
        )


def signed_in_user(request: Request) -> User | None:
    """The user signed in to this browser session, if any (``user.is_admin`` for admins)."""
    manager = services(request).sessions
    return manager.user(manager.load(request))


def form_value(form: FormData, name: str) -> str | None:
    """A single text value of a form field (``None`` when absent, repeated or a file)."""
    values = form.getlist(name)
    if len(values) != 1 or not isinstance(values[0], str):
        return None
    return values[0]


async def read_form(request: Request, *names: str) -> dict[str, str | None]:
    """The named single text fields of a posted form (uploaded files are closed, ignored)."""
    async with request.form(max_files=0, max_fields=50) as form:
        return {name: form_value(form, name) for name in names}


def safe_next(target: str | None) -> str:
    """A local path to go to after login; anything else (absolute, ``//host``) becomes ``/``."""
    if not target or not target.startswith("/") or target.startswith("//"):
        return "/"
    if "\\" in target or any(ord(c) < 32 for c in target):
        return "/"
    return target


def parse_json(
    body: bytes | str, object_pairs_hook: Callable[[list[tuple[str, Any]]], Any] | None = None
) -> Any:
    """Decode a JSON request body; ``ValueError`` for anything the store could not hold.

    Beyond malformed text this refuses nesting too deep for the parser (``RecursionError``
    is not a ``ValueError``) and strings with unpaired surrogates (``"\\ud800"`` is valid
    JSON, but such a string cannot be encoded as UTF-8, so hashing or storing it fails).
    """
    try:
        data = json.loads(body, object_pairs_hook=object_pairs_hook)
        json.dumps(data, ensure_ascii=False).encode("utf-8")
    except RecursionError:
        raise ValueError("JSON nested too deeply") from None
    return data


def dumps(data: Any) -> str:
    """Compact JSON for storage."""
    return json.dumps(data, separators=(",", ":"))
