"""Real servers on loopback sockets and headless Chromium for the browser tests.

Three servers run in background threads: the authorization server, the Organizer API
(Starlette example, protected by apiguard) and a small client page that starts an
authorization-code + PKCE flow and receives the code. Chromium is Debian's package driven by
Playwright; the tests are skipped only when it is not installed.
"""

from __future__ import annotations

import secrets
import shutil
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlencode

import pytest
import uvicorn
from playwright.sync_api import Browser, BrowserContext, sync_playwright
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp

from examples.authz_server import Settings, create_app
from examples.demo.browser import pkce_pair
from examples.starlette_api.app import create_app as create_organizer_api

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]
ORGANIZER = "https://organizer.example/api"
SCREENSHOTS = Path(__file__).resolve().parents[2] / "artifacts" / "screenshots"


class ServerThread:
    """Uvicorn serving *app* on an already bound loopback socket, in a daemon thread."""

    def __init__(self, app: ASGIApp, sock: socket.socket) -> None:
        config = uvicorn.Config(app, log_level="warning", lifespan="on", ws="none", http="h11")
        self.server = uvicorn.Server(config)
        self.sock = sock
        self.thread = threading.Thread(
            target=self.server.run, kwargs={"sockets": [sock]}, daemon=True
        )

    def __enter__(self) -> ServerThread:
        self.thread.start()
        deadline = time.monotonic() + 10
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("the test server did not start")
            time.sleep(0.01)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(10)
        self.sock.close()


def bound_socket() -> socket.socket:
    """A listening-ready TCP socket on a free loopback port."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    return sock


def port_of(sock: socket.socket) -> int:
    port: int = sock.getsockname()[1]
    return port


@dataclass
class ClientPage:
    """A tiny third-party web app: starts code + PKCE at /start (passing on ``acr_values``
    and ``max_age``), receives the code at /callback."""

    issuer: str
    origin: str
    verifiers: dict[str, str] = field(default_factory=dict)
    received: list[dict[str, str]] = field(default_factory=list)

    @property
    def redirect_uri(self) -> str:
        return f"{self.origin}/callback"

    async def start(self, request: Request) -> Response:
        verifier, challenge = pkce_pair()
        state = secrets.token_urlsafe(16)
        self.verifiers[state] = verifier
        query = urlencode(
            {
                "response_type": "code",
                "client_id": request.query_params["client_id"],
                "redirect_uri": self.redirect_uri,
                "scope": "openid profile read:appointments",
                "audience": ORGANIZER,
                "state": state,
                "code_challenge": challenge,
                "code_challenge_method": "S256",
                # A step-up sign-in (RFC 9470), as a client does after the API's challenge.
                **{
                    name: request.query_params[name]
                    for name in ("acr_values", "max_age")
                    if name in request.query_params
                },
            }
        )
        return RedirectResponse(f"{self.issuer}authorize?{query}", status_code=302)

    async def callback(self, request: Request) -> Response:
        self.received.append(dict(request.query_params))
        ok = "code" in request.query_params
        text = "Authorization code received." if ok else "The authorization failed."
        return HTMLResponse(f"<!doctype html><title>Callback</title><h1 id='result'>{text}</h1>")

    def app(self) -> Starlette:
        return Starlette(routes=[Route("/start", self.start), Route("/callback", self.callback)])


@dataclass
class Servers:
    """Where everything listens."""

    issuer: str
    api_origin: str
    client: ClientPage


@pytest.fixture(scope="module")
def servers() -> Iterator[Servers]:
    """The authorization server, the Organizer API and the client page on real sockets."""
    authz_sock, api_sock, client_sock = bound_socket(), bound_socket(), bound_socket()
    issuer = f"http://127.0.0.1:{port_of(authz_sock)}/"
    authz = create_app(Settings(issuer=issuer, db_path=":memory:", port=port_of(authz_sock)))
    api = create_organizer_api(issuer=issuer, audience=ORGANIZER)
    client = ClientPage(issuer, f"http://127.0.0.1:{port_of(client_sock)}")
    with (
        ServerThread(authz, authz_sock),
        ServerThread(api, api_sock),
        ServerThread(client.app(), client_sock),
    ):
        yield Servers(issuer, f"http://127.0.0.1:{port_of(api_sock)}", client)


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    """Headless Chromium (Debian's package), shared by a module's tests."""
    if shutil.which(CHROMIUM) is None:
        pytest.skip(f"{CHROMIUM} is not installed (scripts/install-browser installs it)")
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture
def context(browser: Browser) -> Iterator[BrowserContext]:
    """A fresh browser profile (no cookies) per test."""
    ctx = browser.new_context(viewport={"width": 1200, "height": 900})
    ctx.set_default_timeout(10_000)
    yield ctx
    ctx.close()
