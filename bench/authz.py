"""The local authorization server over loopback, side by side with node ``oidc-provider``.

Each server runs as its own process on a free port, and the same load generator (keep-alive
connections, bounded in count and in time) asks its token endpoint for World Mappers'
machine-to-machine token: ``python -m examples.authz_server`` on a fresh SQLite file, and
``oidc-provider`` configured alike (RS256 with a 2048-bit key, ``client_secret_post``, one
API as the audience). The authorization-code exchange is measured too, on codes issued
beforehand into the server's store, one per request.

oidc-provider is installed from npm into ``bench/.oidc-provider/`` the first time (it is
never a dependency of the package); without Node.js or npm the rows say why the ratio is
missing and give the absolute figures.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlencode

from ._load import LoadResult, free_port, request_bytes, run_load, stop, wait_for_port
from ._util import Row

ROOT = Path(__file__).resolve().parent.parent
NODE_DIR = Path(__file__).resolve().parent / ".oidc-provider"
NODE_SCRIPT = Path(__file__).with_name("oidc_provider.mjs")
OIDC_PROVIDER = "oidc-provider@9"
AUDIENCE = "https://organizer.example/api"
SCOPE = "read:appointments read:contacts"
WORLD_MAPPERS = {"client_id": "world-mappers", "client_secret": "world-mappers-dev-secret"}
CALENDAR = {"client_id": "calendar-app", "client_secret": "calendar-app-dev-secret"}
CALENDAR_CB = "http://127.0.0.1:8101/callback"
CONNECTIONS = 4
FORM = [("Content-Type", "application/x-www-form-urlencoded")]


def run(requests: int = 400, max_seconds: float = 20.0, rounds: int = 3) -> list[Row]:
    """Tokens per second: ours, oidc-provider's and the code exchange, in one run.

    Both servers run at once and the measurements take turns, round after round; each
    figure is the best of its rounds, so a busy moment of the machine hurts neither side
    more than the other.
    """
    with tempfile.TemporaryDirectory(prefix="authz-bench-") as folder, ExitStack() as stack:
        ours = stack.enter_context(_our_server(str(Path(folder) / "bench.sqlite3")))
        peer, reason = _oidc_provider(stack)
        best: dict[str, float] = {}
        for _ in range(rounds):
            measured = {
                "ours": _rate(ours.port, ours.credentials, requests, max_seconds),
                "exchange": _rate(ours.port, ours.exchanges(requests), requests, max_seconds),
            }
            if peer is not None:
                measured["peer"] = _rate(peer.port, peer.credentials, requests, max_seconds)
            for name, value in measured.items():
                best[name] = max(best.get(name, 0.0), value)
    return _rows(best, reason)


def _rows(best: dict[str, float], reason: str) -> list[Row]:
    ours, exchange = best["ours"], best["exchange"]
    name = f"client-credentials tokens, {CONNECTIONS} keep-alive connections"
    rows = []
    if "peer" not in best:
        rows.append(Row("authz", f"{name} ({reason})", ours, "tokens/s"))
    else:
        peer = best["peer"]
        rows.append(
            Row(
                "authz",
                name,
                ours,
                "tokens/s",
                ratio=f"{ours / peer:.2f}x oidc-provider",
                target=">= 1.0x oidc-provider",
                met=ours >= peer,
            )
        )
        rows.append(Row("authz", "oidc-provider (node), the same requests", peer, "tokens/s"))
    rows.append(
        Row(
            "authz",
            "authorization-code exchange (PKCE, client_secret_post)",
            exchange,
            "tokens/s",
            ratio=f"{ours / exchange:.2f}x the time of client credentials",
            target="<= 1.5x",
            met=ours / exchange <= 1.5,
        )
    )
    return rows


@dataclass
class _Server:
    port: int
    credentials: list[bytes]
    exchanges: Callable[[int], list[bytes]] = field(default=lambda count: [])


def _rate(port: int, batch: list[bytes], requests: int, max_seconds: float) -> float:
    """Answers per second for *batch* (one request, repeated, or one per index)."""
    if len(batch) == 1:
        make: Callable[[int], bytes] = lambda i: batch[0]  # noqa: E731
    else:
        make = batch.__getitem__
    result: LoadResult = run_load(
        port, make, connections=CONNECTIONS, total=requests, max_seconds=max_seconds
    )
    if set(result.statuses) != {200}:
        raise RuntimeError(f"token endpoint answered {dict(result.statuses)}")
    return result.per_second


@contextmanager
def _our_server(db: str) -> Iterator[_Server]:
    """``python -m examples.authz_server`` on *db*, as ``scripts/demo`` starts it."""
    port = free_port()
    env = {**os.environ, "AUTHZ_DB": db, "PORT": str(port)}
    env.pop("AUTHZ_ISSUER", None)
    process = subprocess.Popen(
        [sys.executable, "-m", "examples.authz_server"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_for_port(port, process)
        form = {"grant_type": "client_credentials", "audience": AUDIENCE} | WORLD_MAPPERS
        body = urlencode(form).encode()
        _check_one(port, "/oauth/token", body)
        request = request_bytes(port, "/oauth/token", method="POST", headers=FORM, body=body)
        yield _Server(port, [request], lambda count: _code_exchanges(port, db, count))
    finally:
        stop(process)


def _code_exchanges(port: int, db: str, count: int) -> list[bytes]:
    """*count* token requests, each redeeming a fresh code issued straight into the store."""
    from examples.authz_server.grants import CodeGrant, Grants
    from examples.authz_server.models import SignIn
    from examples.authz_server.security import pkce_s256
    from examples.authz_server.services import Domain
    from examples.authz_server.settings import Settings
    from examples.authz_server.store import Store
    from examples.authz_server.tokens import TokenMinter

    settings = Settings(issuer=f"http://127.0.0.1:{port}/", db_path=db)
    store = Store(db)
    try:
        domain = Domain(store, settings)
        grants = Grants(domain, TokenMinter(domain))
        verifier = "v" * 43
        batch = []
        for _ in range(count):
            code = grants.issue_code(
                CodeGrant(
                    client_id=CALENDAR["client_id"],
                    user_id="auth0|demo",
                    redirect_uri=CALENDAR_CB,
                    redirect_uri_sent=True,
                    code_challenge=pkce_s256(verifier),
                    audience=AUDIENCE,
                    scopes=("read:appointments",),
                    nonce=None,
                    sign_in=SignIn(domain.now()),
                )
            )
            form = {
                "grant_type": "authorization_code",
                "code": code,
                "redirect_uri": CALENDAR_CB,
                "code_verifier": verifier,
            } | CALENDAR
            body = urlencode(form).encode()
            batch.append(
                request_bytes(port, "/oauth/token", method="POST", headers=FORM, body=body)
            )
    finally:
        store.close()
    return batch


def _oidc_provider(stack: ExitStack) -> tuple[_Server | None, str]:
    """oidc-provider serving on a free port, or ``None`` and why it could not run."""
    node, npm = shutil.which("node"), shutil.which("npm")
    if node is None or npm is None:
        return None, "no ratio: Node.js and npm are needed to run oidc-provider"
    if not (NODE_DIR / "node_modules" / "oidc-provider").is_dir():
        NODE_DIR.mkdir(exist_ok=True)
        install = subprocess.run(
            [npm, "install", "--prefix", str(NODE_DIR), OIDC_PROVIDER, "--no-audit", "--no-fund"],
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        if install.returncode != 0:
            return None, f"no ratio: npm could not install {OIDC_PROVIDER}"
    script = NODE_DIR / NODE_SCRIPT.name
    shutil.copyfile(NODE_SCRIPT, script)  # beside node_modules, where its import resolves
    port = free_port()
    process = subprocess.Popen(
        [node, str(script)],
        cwd=NODE_DIR,
        env={**os.environ, "PORT": str(port), "NODE_ENV": "production"},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    stack.callback(stop, process)
    wait_for_port(port, process)
    form = {"grant_type": "client_credentials", "resource": AUDIENCE, "scope": SCOPE}
    body = urlencode(form | WORLD_MAPPERS).encode()
    _check_one(port, "/token", body)
    return _Server(
        port, [request_bytes(port, "/token", method="POST", headers=FORM, body=body)]
    ), ""


def _check_one(port: int, path: str, body: bytes) -> None:
    """One token through urllib first: the benchmark measures answers that are tokens."""
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}{path}", data=body, headers=dict(FORM)
    )
    with urllib.request.urlopen(request, timeout=30) as answer:
        token = json.load(answer)
    if token.get("token_type", "").lower() != "bearer" or "access_token" not in token:
        raise RuntimeError(f"unexpected token response: {sorted(token)}")
