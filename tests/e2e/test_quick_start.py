"""The demo's walk of the quick start, as tests over real sockets on 127.0.0.1."""

from __future__ import annotations

import os
import subprocess
import sys
from collections import defaultdict
from pathlib import Path

import httpx
import pytest

from apiguard.dpop import DPOP_ALGORITHMS
from examples.demo.servers import ROOT, Stack, free_port
from examples.demo.walk import Call, Walk

pytestmark = pytest.mark.e2e

# (step number, method, path) -> the status every API must answer, in walk order.
EXPECTED = [
    ("1", "GET", "/api/public", 200),
    ("1", "GET", "/api/private", 401),
    ("1", "GET", "/api/private", 200),
    ("1", "GET", "/api/appointments", 200),
    ("1", "GET", "/api/contacts", 200),
    ("1", "GET", "/api/tasks", 403),
    ("1", "POST", "/api/appointments", 403),
    ("1", "GET", "/api/private", 401),
    ("2", "GET", "/api/appointments", 200),
    ("2", "POST", "/api/appointments", 201),
    ("2", "GET", "/api/contacts", 403),
    ("3", "GET", "/api/appointments", 200),
    ("4", "GET", "/api/tasks", 200),
    ("5", "GET", "/api/contacts", 200),
    ("5", "GET", "/api/appointments", 403),
    ("6", "GET", "/api/tasks", 200),
    ("7", "GET", "/api/private", 401),
    ("8", "GET", "/api/appointments", 200),
    ("8", "GET", "/api/appointments", 401),
    ("8", "GET", "/api/appointments", 401),
    ("8", "GET", "/api/appointments", 401),
    ("10", "DELETE", "/api/appointments/2", 403),
    ("10", "DELETE", "/api/appointments/2", 204),
    ("11", "GET", "/api/security", 401),
    ("11", "GET", "/api/security", 200),
]


@pytest.fixture(scope="module")
def calls(stack: Stack, apis: dict[str, str]) -> list[Call]:
    """Every API call of one walk of the quick start."""
    walk = Walk(stack.issuer, apis, stack.db, out=lambda line: None, server_log=stack.authz.log)
    try:
        return walk.run()
    finally:
        walk.close()


def test_every_step_answers_as_the_quick_start_says(calls: list[Call]) -> None:
    """Each flow's token gets the expected status from each API, in order."""
    by_api: dict[str, list[tuple[str, str, str, int]]] = defaultdict(list)
    for call in calls:
        by_api[call.api].append((call.step.split(".")[0], call.method, call.path, call.status))
    assert by_api == dict.fromkeys(("flask", "starlette", "fastapi", "django"), EXPECTED)


@pytest.mark.parametrize("api", ["starlette", "fastapi", "django"])
def test_the_apis_answer_identically(calls: list[Call], api: str) -> None:
    """Every API gives the Flask API's status, challenge and body to every call."""

    def answers(name: str) -> list[tuple[object, ...]]:
        return [
            (c.step, c.method, c.path, c.status, c.challenge, c.body)
            for c in calls
            if c.api == name
        ]

    assert answers(api) == answers("flask")


def test_refusals_carry_the_rfc6750_challenge(calls: list[Call]) -> None:
    """A missing token gets a bare challenge, a bad one invalid_token, a weak one its scope.

    Each names the API's protected-resource metadata (RFC 9728 §5.1), and offers DPoP
    beside Bearer: the APIs run with ``APIGUARD_DPOP=allowed`` (RFC 9449 §7.1).
    """
    refusals = [(c.step[0], c.path, c.challenge) for c in calls if c.api == "flask"]
    challenges = {(step, path): challenge for step, path, challenge in refusals if challenge}
    realm = 'Bearer realm="https://organizer.example/api"'
    metadata = (
        'resource_metadata="https://organizer.example/.well-known/oauth-protected-resource/api"'
    )
    dpop = (
        f'DPoP realm="https://organizer.example/api", {metadata}, '
        'algs="ES256 ES384 ES512 EdDSA PS256 PS384 PS512 RS256 RS384 RS512"'
    )
    private = [
        challenge for step, path, challenge in refusals if (step, path) == ("1", "/api/private")
    ]
    assert private == [
        f"{realm}, {metadata}, {dpop}",
        None,
        f'{realm}, error="invalid_token", error_description="The access token is malformed", '
        f"{metadata}, {dpop}",
    ]
    assert challenges[("1", "/api/tasks")] == (
        f'{realm}, error="insufficient_scope", '
        'error_description="The access token lacks a required scope", scope="read:tasks", '
        f"{metadata}, {dpop}"
    )
    mfa = "http://schemas.openid.net/pape/policies/2007/06/multi-factor"
    steps = [(c.step.split(".")[0], c.path, c.challenge) for c in calls if c.api == "flask"]
    assert (
        "10",
        "/api/appointments/2",
        (
            f'{realm}, error="insufficient_scope", error_description="The access token lacks a '
            f'required scope", scope="delete:appointments", {metadata}, {dpop}'
        ),
    ) in steps
    assert (
        "11",
        "/api/security",
        (
            f'{realm}, error="insufficient_user_authentication", error_description="A different '
            f'authentication level is required", acr_values="{mfa}", max_age="600", '
            f"{metadata}, {dpop}"
        ),
    ) in steps
    assert challenges[("7", "/api/private")] == (
        f'{realm}, error="invalid_token", '
        f'error_description="The access token is not meant for this API", {metadata}, {dpop}'
    )


def test_a_stolen_dpop_token_is_refused_by_every_api(calls: list[Call]) -> None:
    """Step 8: with its key the token works; as Bearer, for another URL, or replayed, not."""
    for api in ("flask", "starlette", "fastapi"):
        step = [c for c in calls if c.api == api and c.step.startswith("8.")]
        assert [c.status for c in step] == [200, 401, 401, 401]
        reasons = [c.body["error_description"] for c in step[1:]]
        assert reasons == [
            "The access token is bound to a DPoP key and must be sent with DPoP",
            "The DPoP proof is for another URI",
            "The DPoP proof was already used",
        ]
        assert all(c.challenge and "DPoP realm=" in c.challenge for c in step[1:])


@pytest.mark.parametrize("api", ["flask", "starlette", "fastapi"])
def test_every_api_serves_its_metadata(stack: Stack, apis: dict[str, str], api: str) -> None:
    """Each example API serves the same RFC 9728 document, resource = its audience, no token.

    The stack runs the APIs with DPoP allowed: the document lists the proof algorithms and
    does not say that only bound tokens pass.
    """
    for path in (
        "/.well-known/oauth-protected-resource/api",
        "/.well-known/oauth-protected-resource",
    ):
        response = httpx.get(apis[api] + path)
        assert response.status_code == 200
        assert response.headers["content-type"] == "application/json"
        assert response.headers["cache-control"] == "public, max-age=3600"
        assert response.json() == {
            "resource": "https://organizer.example/api",
            "authorization_servers": [stack.issuer],
            "scopes_supported": [
                "create:appointments",
                "delete:appointments",
                "read:appointments",
                "read:contacts",
                "read:tasks",
            ],
            "bearer_methods_supported": ["header"],
            "dpop_signing_alg_values_supported": list(DPOP_ALGORITHMS),
        }


def test_demo_command_walks_and_exits(tmp_path: Path) -> None:
    """The README's demo command runs the whole walk on its own servers and exits cleanly."""
    ports = [str(free_port()) for _ in range(6)]
    result = subprocess.run(
        [
            str(ROOT / "scripts" / "demo"),
            "--exit",
            "--db",
            str(tmp_path / "demo.sqlite3"),
            "--authz-port",
            ports[0],
            "--flask-port",
            ports[1],
            "--starlette-port",
            ports[2],
            "--fastapi-port",
            ports[3],
            "--django-port",
            ports[5],
            "--mcp-port",
            ports[4],
        ],
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
        env={**os.environ, "CI": "true"},
    )
    assert result.returncode == 0, result.stderr[-2000:]
    out = result.stdout
    for heading in (
        "== 1.", "== 2.", "== 3.", "== 4.", "== 5.", "== 6.", "== 7.", "== 8.", "== 9."
    ):  # fmt: skip
        assert heading in out
    assert "== 10. Roles" in out
    assert "== 11. Step-up" in out
    assert f"http://127.0.0.1:{ports[0]}/dashboard" in out
    assert "eyJ" not in out  # the transcript describes tokens, it never prints them


def test_demo_reports_a_taken_port(stack: Stack, tmp_path: Path) -> None:
    """A port already in use gets a clear error naming the option that changes it."""
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "examples.demo",
            "--exit",
            "--db",
            str(tmp_path / "demo.sqlite3"),
            "--authz-port",
            str(stack.authz.port),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 2
    assert f"port {stack.authz.port} for the authorization server is in use" in result.stderr
    assert "--authz-port" in result.stderr
