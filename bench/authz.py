"""The local authorization server: client-credentials tokens per second over loopback.

The server runs as its own process (``python -m examples.authz_server`` on an in-memory
store and a free port), and keep-alive connections ask its token endpoint for World
Mappers' machine-to-machine token, bounded in count and in time.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import urllib.request
from pathlib import Path
from urllib.parse import urlencode

from ._load import free_port, request_bytes, run_load, stop, wait_for_port
from ._util import Row

ROOT = Path(__file__).resolve().parent.parent
AUDIENCE = "https://organizer.example/api"
FORM = {
    "grant_type": "client_credentials",
    "client_id": "world-mappers",
    "client_secret": "world-mappers-dev-secret",
    "audience": AUDIENCE,
}
CONNECTIONS = 8


def run(requests: int = 400, max_seconds: float = 20.0) -> list[Row]:
    """Tokens per second from the token endpoint, best of two runs."""
    port = free_port()
    env = {**os.environ, "AUTHZ_DB": ":memory:", "PORT": str(port)}
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
        body = urlencode(FORM).encode()
        _check_one(port, body)
        request = request_bytes(
            port,
            "/oauth/token",
            method="POST",
            headers=[("Content-Type", "application/x-www-form-urlencoded")],
            body=body,
        )
        results = [
            run_load(
                port,
                lambda i: request,
                connections=CONNECTIONS,
                total=requests,
                max_seconds=max_seconds,
            )
            for _ in range(2)
        ]
    finally:
        stop(process)
    best = max(results, key=lambda r: r.per_second)
    if set(best.statuses) != {200}:
        raise RuntimeError(f"token endpoint answered {dict(best.statuses)}")
    return [
        Row(
            "authz",
            f"client-credentials tokens, {CONNECTIONS} keep-alive connections "
            f"({best.requests} requests)",
            best.per_second,
            "tokens/s",
        )
    ]


def _check_one(port: int, body: bytes) -> None:
    """One token through urllib first: the benchmark measures answers that are tokens."""
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/oauth/token",
        data=body,
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    with urllib.request.urlopen(request, timeout=30) as answer:
        token = json.load(answer)
    if token.get("token_type", "").lower() != "bearer" or "access_token" not in token:
        raise RuntimeError(f"unexpected token response: {sorted(token)}")
