"""DPoP over real sockets, as an attacker sends it: raw request lines against uvicorn and werkzeug.

Both Organizer example APIs run with ``APIGUARD_DPOP=required`` (uvicorn for Starlette,
werkzeug's server for Flask) in threads on free loopback ports, trusting a
:class:`~apiguard.testing.LocalIssuer`. The requests are written byte for byte, so that a
``Host`` header carrying a path reaches the API exactly as sent: the ``htu`` replay that
express-oauth2-jwt-bearer had to fix (a proof for one path replayed to another by moving
the intended path into ``Host``, where URL re-parsing turned it into a dropped query).
"""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Iterator
from typing import Any

import pytest
from werkzeug.serving import make_server

from apiguard.testing import DPoPKey, LocalIssuer
from examples.flask_api.app import create_app as flask_app
from examples.starlette_api.app import create_app as starlette_app
from tests.e2e.threaded import serve_uvicorn

pytestmark = pytest.mark.e2e

AUDIENCE = "https://organizer.example/api"


@pytest.fixture(scope="module")
def issuer() -> LocalIssuer:
    """The issuer both APIs trust (its keys reach them in-process)."""
    return LocalIssuer(audience=AUDIENCE)


def _werkzeug(app: Any) -> Iterator[tuple[str, int]]:
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield ("127.0.0.1", server.server_port)
    finally:
        server.shutdown()
        thread.join(timeout=10)


@pytest.fixture(scope="module", params=["starlette", "flask"])
def api(request: pytest.FixtureRequest, issuer: LocalIssuer) -> Iterator[tuple[str, int]]:
    """One example API in DPoP-required mode on a free port."""
    if request.param == "starlette":
        app = starlette_app(validator=issuer.async_validator(dpop="required"))
        with serve_uvicorn(app) as address:
            yield address
    else:
        yield from _werkzeug(flask_app(validator=issuer.validator(dpop="required")))


def send_raw(address: tuple[str, int], request_line: str, headers: list[tuple[str, str]]) -> Any:
    """Send the request exactly as written; return (status, headers, JSON body)."""
    lines = [request_line, *(f"{name}: {value}" for name, value in headers), "Connection: close"]
    with socket.create_connection(address, timeout=5) as conn:
        conn.sendall(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1"))
        chunks = []
        while chunk := conn.recv(65536):
            chunks.append(chunk)
    head, _, body = b"".join(chunks).partition(b"\r\n\r\n")
    status_line, *header_lines = head.decode("latin-1").split("\r\n")
    answer_headers = {}
    for line in header_lines:
        name, _, value = line.partition(":")
        answer_headers[name.strip().lower()] = value.strip()
    return int(status_line.split()[1]), answer_headers, json.loads(body) if body else None


def host_of(address: tuple[str, int]) -> str:
    return f"{address[0]}:{address[1]}"


def test_a_proof_for_the_request_is_accepted(api: tuple[str, int], issuer: LocalIssuer) -> None:
    """The honest request: a bound token, a proof for this method and URI."""
    key = DPoPKey()
    token = issuer.token(dpop_key=key, scope="read:appointments")
    url = f"http://{host_of(api)}/api/appointments"
    status, _, body = send_raw(
        api,
        "GET /api/appointments HTTP/1.1",
        [
            ("Host", host_of(api)),
            ("Authorization", f"DPoP {token}"),
            ("DPoP", key.proof("GET", url, access_token=token)),
        ],
    )
    assert status == 200, body
    assert "appointments" in body


@pytest.mark.parametrize(
    "host",
    [
        pytest.param("{host}/api/private?", id="path-and-query"),
        pytest.param("{host}/api/private#", id="path-and-fragment"),
        pytest.param("{host}/api/private", id="path"),
        pytest.param("user@{host}", id="userinfo"),
    ],
)
def test_a_host_header_cannot_move_a_stolen_proof(
    api: tuple[str, int], issuer: LocalIssuer, host: str
) -> None:
    """A proof for /api/private replayed to /api/appointments with the path put in Host: 400."""
    key = DPoPKey()
    token = issuer.token(dpop_key=key, scope="read:appointments")
    stolen = key.proof("GET", f"http://{host_of(api)}/api/private", access_token=token)
    status, headers, body = send_raw(
        api,
        "GET /api/appointments HTTP/1.1",
        [
            ("Host", host.format(host=host_of(api))),
            ("Authorization", f"DPoP {token}"),
            ("DPoP", stolen),
        ],
    )
    assert status == 400, body
    assert body == {"error": "invalid_request", "error_description": "The request URI is malformed"}
    assert headers["www-authenticate"].startswith("DPoP ")


def test_a_stolen_token_without_its_key_is_refused(
    api: tuple[str, int], issuer: LocalIssuer
) -> None:
    """The demo's story: the token alone, as Bearer or with the thief's own proof, fails."""
    key, thief = DPoPKey(), DPoPKey()
    token = issuer.token(dpop_key=key, scope="read:appointments")
    url = f"http://{host_of(api)}/api/appointments"
    as_bearer = send_raw(
        api,
        "GET /api/appointments HTTP/1.1",
        [("Host", host_of(api)), ("Authorization", f"Bearer {token}")],
    )
    assert as_bearer[0] == 401
    assert as_bearer[2]["error"] == "invalid_token"
    with_own_key = send_raw(
        api,
        "GET /api/appointments HTTP/1.1",
        [
            ("Host", host_of(api)),
            ("Authorization", f"DPoP {token}"),
            ("DPoP", thief.proof("GET", url, access_token=token)),
        ],
    )
    assert with_own_key[0] == 401
    assert with_own_key[2]["error_description"] == "Invalid DPoP key binding"


def test_a_proof_replayed_over_a_new_connection_is_refused(
    api: tuple[str, int], issuer: LocalIssuer
) -> None:
    """A proof captured on the wire and sent again is refused: its jti is spent."""
    key = DPoPKey()
    token = issuer.token(dpop_key=key, scope="read:appointments")
    url = f"http://{host_of(api)}/api/appointments"
    headers = [
        ("Host", host_of(api)),
        ("Authorization", f"DPoP {token}"),
        ("DPoP", key.proof("GET", url, access_token=token)),
    ]
    assert send_raw(api, "GET /api/appointments HTTP/1.1", headers)[0] == 200
    status, _, body = send_raw(api, "GET /api/appointments HTTP/1.1", headers)
    assert status == 401
    assert body["error_description"] == "The DPoP proof was already used"


def test_an_absolute_form_target_is_no_way_around_the_host_check(
    api: tuple[str, int], issuer: LocalIssuer
) -> None:
    """GET http://elsewhere/... names another URI than the proof's: refused, never accepted."""
    key = DPoPKey()
    token = issuer.token(dpop_key=key, scope="read:appointments")
    proof = key.proof("GET", f"http://{host_of(api)}/api/appointments", access_token=token)
    status, _, _ = send_raw(
        api,
        f"GET http://{host_of(api)}/api/private HTTP/1.1",
        [("Host", host_of(api)), ("Authorization", f"DPoP {token}"), ("DPoP", proof)],
    )
    assert status in (400, 401, 404)
