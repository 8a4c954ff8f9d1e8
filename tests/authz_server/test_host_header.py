"""The Host header over a real socket: only this server's names are served (DNS rebinding).

A test client would fill in a proper ``Host``; these requests are written byte by byte to a
uvicorn server on a free loopback port, as a rebinding page's browser would send them.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator

import pytest
import uvicorn

from examples.authz_server import Settings, create_app
from examples.authz_server.store import Store


def _serve(settings: Settings, store: Store) -> Iterator[int]:
    config = uvicorn.Config(
        create_app(settings, store=Store.copy_of(store)),
        host="127.0.0.1",
        port=0,
        log_level="warning",
        lifespan="off",
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert time.monotonic() < deadline, "the server did not start"
        time.sleep(0.01)
    port: int = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield port
    finally:
        server.should_exit = True
        thread.join(10)


@pytest.fixture(scope="module")
def port(seeded_store: Store) -> Iterator[int]:
    """The server (issuer ``http://127.0.0.1:9000/``) on a free port."""
    yield from _serve(Settings(db_path=":memory:"), seeded_store)


@pytest.fixture(scope="module")
def public_port(seeded_store: Store) -> Iterator[int]:
    """The server configured for a public name in front of it."""
    settings = Settings(db_path=":memory:", allowed_hosts=("auth.organizer.example",))
    yield from _serve(settings, seeded_store)


def raw_status(port: int, head: bytes) -> int:
    """Send a raw request head; return the status code of the answer."""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as conn:
        conn.sendall(head)
        answer = b""
        while b"\r\n" not in answer:
            chunk = conn.recv(4096)
            if not chunk:
                break
            answer += chunk
    return int(answer.split(b" ", 2)[1])


def request(host: bytes | None, path: bytes = b"/.well-known/openid-configuration") -> bytes:
    lines = [b"GET " + path + b" HTTP/1.1"]
    if host is not None:
        lines.append(b"Host: " + host)
    lines += [b"Connection: close", b"", b""]
    return b"\r\n".join(lines)


@pytest.mark.parametrize(
    "head",
    [
        pytest.param(request(b"evil.example"), id="rebinding-name"),
        pytest.param(request(b"evil.example:9000"), id="rebinding-name-with-port"),
        pytest.param(request(b"127.0.0.1.evil.example"), id="loopback-prefix"),
        pytest.param(request(b"localhost.evil.example"), id="localhost-prefix"),
        pytest.param(request(b"evil.example@127.0.0.1"), id="userinfo"),
        pytest.param(request(b"127.0.0.1:9000/x"), id="path-in-host"),
        pytest.param(request(b"auth.organizer.example"), id="public-name-not-configured"),
        pytest.param(request(b"evil.example", b"/login"), id="login-page"),
        pytest.param(request(b"evil.example", b"/dashboard/apis"), id="dashboard"),
        pytest.param(
            b"GET /.well-known/openid-configuration HTTP/1.0\r\n\r\n", id="no-host-http-1.0"
        ),
    ],
)
def test_foreign_hosts_get_400(port: int, head: bytes) -> None:
    """Any Host that is not the issuer's or a loopback name answers 400."""
    assert raw_status(port, head) == 400


@pytest.mark.parametrize(
    "host",
    [
        pytest.param(b"127.0.0.1:9000", id="issuer"),
        pytest.param(b"127.0.0.1", id="loopback-ip"),
        pytest.param(b"localhost:9000", id="localhost"),
        pytest.param(b"LOCALHOST", id="localhost-any-case"),
        pytest.param(b"[::1]:9000", id="ipv6-loopback"),
        pytest.param(b"127.0.0.2:1234", id="loopback-range"),
    ],
)
def test_own_names_are_served(port: int, host: bytes) -> None:
    """The issuer's host and the loopback names are served."""
    assert raw_status(port, request(host)) == 200


def test_a_configured_public_name_is_served(public_port: int) -> None:
    """``allowed_hosts`` opens the server to the name of a public URL, and only to it."""
    assert raw_status(public_port, request(b"auth.organizer.example")) == 200
    assert raw_status(public_port, request(b"evil.example")) == 400
