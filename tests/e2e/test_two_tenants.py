"""Two tenants over real sockets: two authorization servers, one API that trusts both.

Three bundled authorization servers run as processes, each on its own free port and SQLite
file (so each has its own signing keys): tenants A and B, and C, which nobody trusts. The
Flask, Starlette and FastAPI Organizer APIs start with ``APIGUARD_ISSUER`` listing A and B,
separated by a space, and each discovers both on its own.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import jwt
import pytest

from examples.demo.servers import Service, free_port
from examples.demo.walk import world_mappers_token

pytestmark = pytest.mark.e2e

AUDIENCE = "https://organizer.example/api"
UNTRUSTED = (
    'Bearer realm="https://organizer.example/api", error="invalid_token", '
    'error_description="The access token was issued by an untrusted issuer", '
    'resource_metadata="https://organizer.example/.well-known/oauth-protected-resource/api"'
)


def _authz(name: str, workdir: Path) -> Service:
    port = free_port()
    issuer = f"http://127.0.0.1:{port}/"
    db = str(workdir / f"{name}.sqlite3")
    return Service(
        f"authorization server {name}",
        "examples.authz_server",
        port,
        "/.well-known/openid-configuration",
        {"AUTHZ_DB": db, "AUTHZ_ISSUER": issuer},
    )


@pytest.fixture(scope="module")
def tenants(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Service]]:
    """Three authorization servers (A, B and the untrusted C) and the three APIs."""
    workdir = tmp_path_factory.mktemp("tenants")
    servers = {name: _authz(name, workdir) for name in ("a", "b", "c")}
    trusted = f"{servers['a'].url}/ {servers['b'].url}/"
    env = {"APIGUARD_ISSUER": trusted, "APIGUARD_AUDIENCE": AUDIENCE}
    for name, module in (
        ("flask", "examples.flask_api"),
        ("starlette", "examples.starlette_api"),
        ("fastapi", "examples.fastapi_api"),
    ):
        servers[name] = Service(f"{name} API", module, free_port(), "/api/public", env)
    started: list[Service] = []
    try:
        for name, service in servers.items():
            logs = workdir / name
            logs.mkdir()
            service.start(logs)
            started.append(service)
        yield servers
    finally:
        for service in reversed(started):
            service.stop()


@pytest.mark.parametrize("api", ["flask", "starlette", "fastapi"])
def test_one_api_accepts_both_tenants_and_refuses_a_third(
    tenants: dict[str, Service], api: str
) -> None:
    """Each API answers 200 to A's and B's tokens and 401 untrusted_issuer to C's."""
    tokens = {name: world_mappers_token(tenants[name].url + "/") for name in ("a", "b", "c")}
    # Three tenants, three signing keys: none could pass for another's.
    kids = {jwt.get_unverified_header(token)["kid"] for token in tokens.values()}
    issuers = {jwt.decode(t, options={"verify_signature": False})["iss"] for t in tokens.values()}
    assert len(issuers) == len(kids) == 3
    url = tenants[api].url + "/api/appointments"
    for name in ("a", "b"):
        answer = httpx.get(url, headers={"Authorization": f"Bearer {tokens[name]}"})
        assert answer.status_code == 200, (name, answer.text)
    refused = httpx.get(url, headers={"Authorization": f"Bearer {tokens['c']}"})
    assert refused.status_code == 401
    assert refused.headers["WWW-Authenticate"] == UNTRUSTED
    assert refused.json()["error"] == "invalid_token"
