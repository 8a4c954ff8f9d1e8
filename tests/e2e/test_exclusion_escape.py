"""Excluded paths cannot be escaped over a real socket: raw request lines against uvicorn.

The API serves a directory with Starlette's ``StaticFiles`` behind ``BearerAuthMiddleware``
with ``exclude_paths=["/static/public/*"]``. uvicorn passes dot-segments, their escapes and
empty segments through to the app, and ``StaticFiles`` resolves them afterwards, so each
request line below would reach ``private/secret.txt`` if the exclusion matched it. A test
client cannot send these: it normalises the path before it leaves.
"""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import pytest
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.routing import Mount
from starlette.staticfiles import StaticFiles

from apiguard.asgi import BearerAuthMiddleware
from apiguard.testing import LocalIssuer
from tests.e2e.threaded import serve_uvicorn

pytestmark = pytest.mark.e2e

SECRET = b"the private file's content"


@pytest.fixture
def api(tmp_path: Path, local_issuer: LocalIssuer) -> Iterator[tuple[str, int]]:
    """uvicorn serving the static directory on a free loopback port, in a thread."""
    (tmp_path / "public").mkdir()
    (tmp_path / "private").mkdir()
    (tmp_path / "public" / "app.css").write_text("body {}")
    (tmp_path / "private" / "secret.txt").write_bytes(SECRET)
    app = Starlette(
        routes=[Mount("/static", StaticFiles(directory=tmp_path))],
        middleware=[
            Middleware(
                BearerAuthMiddleware,
                validator=local_issuer.async_validator(),
                required=True,
                exclude_paths=["/static/public/*"],
            )
        ],
    )
    with serve_uvicorn(app) as address:
        yield address


def send_raw(address: tuple[str, int], target: str) -> tuple[int, bytes]:
    """Send one request line exactly as written; return the status and the whole answer."""
    with socket.create_connection(address, timeout=5) as conn:
        conn.sendall(
            f"GET {target} HTTP/1.1\r\nHost: api.test\r\nConnection: close\r\n\r\n".encode()
        )
        chunks = []
        while chunk := conn.recv(65536):
            chunks.append(chunk)
    answer = b"".join(chunks)
    return int(answer.split(b" ", 2)[1]), answer


def test_a_clean_excluded_path_is_served_without_a_token(api: tuple[str, int]) -> None:
    """The exclusion itself works: the public file is served to anyone."""
    status, answer = send_raw(api, "/static/public/app.css")
    assert status == 200
    assert answer.endswith(b"body {}")


def test_the_private_file_needs_a_token(api: tuple[str, int]) -> None:
    """Asked for directly, the private file is protected (the server does serve it)."""
    status, answer = send_raw(api, "/static/private/secret.txt")
    assert status == 401
    assert SECRET not in answer


@pytest.mark.parametrize(
    "target",
    [
        pytest.param("/static/public/../private/secret.txt", id="dot-dot"),
        pytest.param("/static/public/%2e%2e/private/secret.txt", id="encoded-dot-dot"),
        pytest.param("/static/public/%2E%2E/private/secret.txt", id="encoded-upper"),
        pytest.param("/static/public/.%2E/private/secret.txt", id="mixed-case"),
        pytest.param("/static/public/..%2fprivate/secret.txt", id="encoded-slash"),
        pytest.param("/static/public/..%2Fprivate%2Fsecret.txt", id="encoded-slashes-upper"),
        pytest.param("/static/public/./../private/secret.txt", id="dot-then-dot-dot"),
        pytest.param("/static/public//../private/secret.txt", id="empty-segment"),
        pytest.param("/static/public/x/../../private/secret.txt", id="deeper"),
    ],
)
def test_escapes_from_the_excluded_path_stay_protected(api: tuple[str, int], target: str) -> None:
    """A request line that climbs out of the excluded subtree needs a token (fail closed)."""
    status, answer = send_raw(api, target)
    assert status == 401
    assert SECRET not in answer


def test_double_slash_prefix_stays_protected(api: tuple[str, int]) -> None:
    """An empty leading segment is not the excluded path, whatever the handler makes of it."""
    status, answer = send_raw(api, "//static/public/../private/secret.txt")
    assert status in (401, 404)
    assert SECRET not in answer
