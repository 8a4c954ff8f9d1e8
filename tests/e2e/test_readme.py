"""The README's code and commands do what the README says."""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from flask import Flask
from snippets import (
    check_transcript,
    code_blocks,
    module_starts,
    run_snippet,
    transcript_issuer,
)
from starlette.testclient import TestClient

from apiguard.flask import ApiGuard
from apiguard.testing import LocalIssuer
from examples.demo.servers import ROOT, Stack, free_port
from examples.demo.walk import world_mappers_token

README = (ROOT / "README.md").read_text()
BLOCKS = code_blocks(README)
PYTHON = [code for lang, code in BLOCKS if lang == "python"]
ORGANIZER = "https://organizer.example/api"


@pytest.mark.e2e
def test_flask_snippet_protects_its_route(stack: Stack) -> None:
    """The README's Flask app accepts a token with the scope and challenges one without."""
    app = run_snippet(PYTHON[0], issuer=stack.issuer)["app"]
    client = app.test_client()
    token = world_mappers_token(stack.issuer)
    ok = client.get("/api/appointments", headers={"Authorization": f"Bearer {token}"})
    assert (ok.status_code, ok.get_json()) == (
        200,
        {"appointments": [], "for": "world-mappers@clients"},
    )
    missing = client.get("/api/appointments")
    assert missing.status_code == 401
    app.extensions["apiguard"].validator.close()


@pytest.mark.e2e
def test_starlette_snippet_protects_its_route(stack: Stack) -> None:
    """The README's Starlette app accepts a token with the scope and challenges one without."""
    app = run_snippet(PYTHON[1], issuer=stack.issuer)["app"]
    token = world_mappers_token(stack.issuer)
    with TestClient(app) as client:
        ok = client.get("/api/appointments", headers={"Authorization": f"Bearer {token}"})
        missing = client.get("/api/appointments")
    assert (ok.status_code, ok.json()) == (
        200,
        {"appointments": [], "for": "world-mappers@clients"},
    )
    assert missing.status_code == 401


def test_testing_snippet_passes(local_issuer: LocalIssuer) -> None:
    """The README's example test, run as written against the local_issuer fixture."""
    (code,) = [code for code in PYTHON if "def test_appointments_need_a_scope" in code]
    namespace = run_snippet(code)
    namespace["test_appointments_need_a_scope"](local_issuer)


def test_what_clients_see_is_what_the_example_answers() -> None:
    """Each curl answer in the README (status, challenge, body) is the Flask example's."""
    block = next(code for lang, code in BLOCKS if lang == "console" and "curl -i" in code)
    assert check_transcript(block, transcript_issuer()) == 4


def test_roles_and_step_up_snippets_guard_their_routes(local_issuer_factory: Any) -> None:
    """The README's role, claim and step-up routes accept what they say and refuse the rest."""
    issuer: LocalIssuer = local_issuer_factory(audience=ORGANIZER)
    roles = [code for code in PYTHON if "def delete_appointment" in code]
    step_up = [code for code in PYTHON if "def security" in code]
    assert len(roles) == len(step_up) == 1
    with issuer.validator() as validator:
        app = Flask("readme")
        ApiGuard(app, validator=validator)
        namespace: dict[str, Any] = {"__name__": "readme_snippet", "app": app, "TENANT_ID": "t1"}
        exec(roles[0] + step_up[0], namespace)
        client = app.test_client()

        def get(method: str, path: str, **claims: Any) -> Any:
            headers = {"Authorization": f"Bearer {issuer.token(**claims)}"}
            return client.open(path, method=method, headers=headers)

        admin = {"https://organizer.example/roles": ["organizer-admin"]}
        allowed = get("DELETE", "/api/appointments/1", permissions=["delete:appointments"], **admin)
        assert allowed.status_code == 204
        assert get("DELETE", "/api/appointments/1", **admin).status_code == 403
        no_role = get("DELETE", "/api/appointments/1", permissions=["delete:appointments"])
        assert no_role.get_json()["error_description"] == "The access token lacks a required role"
        assert get("GET", "/api/tenant", tid="t1", groups=["admins"], email_verified=True).json == {
            "tenant": "t1"
        }
        unverified = get("GET", "/api/tenant", tid="t1", groups=["staff"])
        assert unverified.get_json()["error_description"] == "A verified email address is required"
        mfa = "http://schemas.openid.net/pape/policies/2007/06/multi-factor"
        now = issuer.clock()
        assert get("GET", "/api/security", acr=mfa, auth_time=now - 60).status_code == 200
        stale = get("GET", "/api/security", acr=mfa, auth_time=now - 3600)
        assert stale.status_code == 401
        assert 'max_age="600"' in stale.headers["WWW-Authenticate"]


@pytest.mark.parametrize(
    "command",
    [
        pytest.param(["-m", "examples.authz_server", "--help"], id="authz-cli-help"),
        pytest.param(["-m", "examples.demo", "--help"], id="demo-help"),
        pytest.param(["-m", "bench", "--help"], id="bench-help"),
        pytest.param(["-m", "apiguard", "--help"], id="apiguard-help"),
    ],
)
def test_readme_commands_start(command: list[str]) -> None:
    """The commands the README names run and explain themselves."""
    result = module_starts(command[1])
    assert result.returncode == 0, result.stderr
    assert "usage:" in result.stdout


def test_readme_names_only_files_that_exist() -> None:
    """Every relative link and image in the README points at a file in the repository."""
    targets = re.findall(r"\]\(([^)#:]+)\)", README)
    assert targets
    missing = [t for t in targets if not (ROOT / t).exists()]
    assert missing == []


def test_readme_shows_no_real_token() -> None:
    """The README shows no real token (only placeholders such as $TOKEN)."""
    assert "eyJ" not in README
    assert Path(ROOT / "README.md").stat().st_size < 40_000


def test_readme_command_serves_the_docs(tmp_path: Path) -> None:
    """The README's mkdocs command serves the documentation site (on a free port here)."""
    command = next(
        line
        for lang, code in BLOCKS
        if lang == "sh"
        for line in code.splitlines()
        if "mkdocs serve" in line
    )
    program, *arguments = shlex.split(command.replace("127.0.0.1:8088", f"127.0.0.1:{free_port()}"))
    address = arguments[arguments.index("-a") + 1]
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1"}
    log = (tmp_path / "mkdocs.log").open("w")
    server = subprocess.Popen(
        [str(ROOT / program), *arguments], cwd=ROOT, env=env, stdout=log, stderr=log
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                page = httpx.get(f"http://{address}/", timeout=2)
                break
            except httpx.TransportError:
                assert server.poll() is None, (tmp_path / "mkdocs.log").read_text()
                assert time.monotonic() < deadline, "mkdocs serve did not answer in 60 s"
                time.sleep(0.25)
        assert page.status_code == 200
        assert "<title>apiguard</title>" in page.text
    finally:
        server.terminate()
        server.wait(timeout=10)
        log.close()


def test_introspection_snippet_validates_an_opaque_token() -> None:
    """The README's introspection snippet discovers the endpoint and returns the AccessToken."""
    import respx

    (code,) = [code for code in PYTHON if "Introspector(" in code]
    issuer = "https://tenant.example/"
    endpoint = issuer + "oauth/introspect"
    answer = {
        "active": True,
        "iss": issuer,
        "aud": "https://organizer.example/api",
        "sub": "auth0|user-1",
        "scope": "read:appointments",
        "exp": 4_000_000_000,
    }
    with respx.mock() as mock:
        mock.get(issuer + ".well-known/openid-configuration").respond(
            json={"issuer": issuer, "introspection_endpoint": endpoint}
        )
        route = mock.post(endpoint).respond(json=answer)
        namespace = {"__name__": "readme_snippet", "secret": "s3cr3t", "opaque": "abc" * 10}
        run_snippet(code, namespace=namespace)
        namespace["introspector"].close()
    assert namespace["token"].scopes == {"read:appointments"}
    assert route.calls.last.request.headers["authorization"].startswith("Basic ")
