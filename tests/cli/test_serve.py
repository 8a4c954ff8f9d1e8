"""``apiguard serve`` runs the bundled authorization server, from a checkout and from a wheel."""

from __future__ import annotations

import io
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

from apiguard import Validator, cli
from examples.demo.servers import ROOT, free_port
from examples.demo.walk import ORGANIZER

SCRIPT = Path(sys.executable).with_name("apiguard")
WORLD_MAPPERS = {
    "grant_type": "client_credentials",
    "audience": ORGANIZER,
    "client_id": "world-mappers",
    "client_secret": "world-mappers-dev-secret",
}


@contextmanager
def serving(script: Path, workdir: Path) -> Iterator[str]:
    """Run ``script serve`` on a free port in ``workdir``; yield the issuer once it answers."""
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "AUTHZ_DB", "PORT")}
    log = (workdir / "server.log").open("w")
    server = subprocess.Popen(
        [str(script), "serve", "--port", str(port), "--db", str(workdir / "authz.sqlite3")],
        cwd=workdir,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    issuer = f"http://127.0.0.1:{port}/"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                httpx.get(issuer + ".well-known/openid-configuration", timeout=2)
                break
            except httpx.TransportError:
                assert server.poll() is None, (workdir / "server.log").read_text()
                assert time.monotonic() < deadline, "the server did not answer within 60 s"
                time.sleep(0.2)
        yield issuer
    finally:
        server.terminate()
        server.wait(timeout=10)
        log.close()


def token_validates(issuer: str) -> None:
    """World Mappers gets a token from ``issuer`` that apiguard accepts for the Organizer API."""
    answer = httpx.post(issuer + "oauth/token", data=WORLD_MAPPERS, timeout=10)
    assert answer.status_code == 200, answer.text
    with Validator(issuer=issuer, audience=ORGANIZER) as validator:
        token = validator.validate(answer.json()["access_token"])
    assert token.subject == "world-mappers@clients"


@pytest.mark.e2e
def test_serve_from_the_checkout(tmp_path: Path) -> None:
    """In a checkout (editable install), apiguard serve runs examples/authz_server, seeded."""
    with serving(SCRIPT, tmp_path) as issuer:
        token_validates(issuer)
    assert (tmp_path / "authz.sqlite3").exists()


@pytest.mark.e2e
def test_the_wheel_serves_the_bundled_server(tmp_path_factory: pytest.TempPathFactory) -> None:
    """A wheel of the checkout, installed with [server] in a fresh venv outside the
    repository, runs apiguard serve from its own site-packages and issues a valid token."""
    outside = tmp_path_factory.mktemp("wheel")
    assert ROOT not in outside.parents
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", str(ROOT), "--no-deps", "-q", "-w", outside],
        check=True,
        capture_output=True,
        timeout=300,
    )
    (wheel,) = outside.glob("apiguard-*.whl")
    venv = outside / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    subprocess.run(
        [
            venv / "bin" / "pip",
            "install",
            "-q",
            "--disable-pip-version-check",
            f"apiguard[server] @ {wheel.as_uri()}",
        ],
        check=True,
        capture_output=True,
        timeout=600,
    )
    where = subprocess.run(
        [venv / "bin" / "python", "-c", "import apiguard._server as s; print(s.__file__)"],
        cwd=outside,
        check=True,
        capture_output=True,
        text=True,
    )
    assert Path(where.stdout.strip()).is_relative_to(venv)
    with serving(venv / "bin" / "apiguard", outside) as issuer:
        token_validates(issuer)


def test_serve_without_the_extra_says_what_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    """Without the server's dependencies, apiguard serve exits 2 naming the extra."""
    real = cli.importlib.util.find_spec
    monkeypatch.setattr(
        cli.importlib.util,
        "find_spec",
        lambda name, *args: None if name in ("uvicorn", "jinja2") else real(name, *args),
    )
    err = io.StringIO()
    assert cli.main(["serve"], stderr=err) == cli.EXIT_USAGE
    assert err.getvalue() == (
        'apiguard: the server needs jinja2, uvicorn: pip install "apiguard[server]"\n'
    )
