"""The documentation site's samples run and its pages say what the code does."""

from __future__ import annotations

import doctest
import importlib
import inspect
import json
import logging
import re
import subprocess
import sys
import time
import tomllib
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import anyio
import httpx
import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from snippets import (
    call_tests,
    check_transcript,
    close_validators,
    code_blocks,
    console_session,
    missing_output,
    module_commands,
    module_starts,
    run_command,
    run_snippet,
    transcript_issuer,
)
from starlette.testclient import TestClient

from apiguard import MULTI_FACTOR, errors
from apiguard.testing import LocalIssuer, serve_issuer
from examples.demo.servers import ROOT, Stack
from examples.demo.walk import ORGANIZER
from tests.django_setup import configure as configure_django

DOCS = ROOT / "docs"
PAPE = "http://schemas.openid.net/pape/policies/2007/06"
PAGES = sorted(page for page in DOCS.rglob("*.md") if "screenshots" not in page.parts)
README = ROOT / "README.md"


def blocks(page: Path, *languages: str) -> list[str]:
    """The code of a page's fenced blocks in these languages."""
    return [code for lang, code in code_blocks(page.read_text()) if lang in languages]


def name(page: Path) -> str:
    return str(page.relative_to(ROOT))


@pytest.fixture(autouse=True)
def logging_as_it_was() -> Iterator[None]:
    """Samples may configure logging (basicConfig, levels): undo it for the tests after."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    levels = {
        name: logger.level
        for name, logger in logging.Logger.manager.loggerDict.items()
        if isinstance(logger, logging.Logger)
    }
    yield
    root.handlers[:] = handlers
    root.setLevel(level)
    for name, logger in logging.Logger.manager.loggerDict.items():
        if isinstance(logger, logging.Logger):
            logger.setLevel(levels.get(name, logging.NOTSET))


@pytest.fixture
def served() -> Iterator[LocalIssuer]:
    """An issuer for the Organizer API on a loopback socket, standing in for the local server."""
    with serve_issuer(audience=ORGANIZER) as issuer:
        yield issuer


FIXTURES = {"local_issuer": LocalIssuer, "local_issuer_factory": lambda: LocalIssuer}


def run_page(page: Path, issuer: LocalIssuer) -> tuple[dict[str, Any], list[str]]:
    """Run a page's Python samples in order, as one script, against ``issuer``.

    The tests a sample defines are called right after it, while the names it imported are
    still its own. Returns the namespace and the tests called.
    """
    namespace: dict[str, Any] = {"__name__": "docs_snippet"}
    called: list[str] = []
    for code in blocks(page, "python"):
        run_snippet(code, issuer=issuer.issuer, namespace=namespace)
        called += call_tests(namespace, FIXTURES, skip=called)
    return namespace, called


# The provider recipes have placeholders (AUTH0_DOMAIN, TENANT_ID...): tests/core/
# test_providers.py runs each with values, against a token of that provider's shape.
PYTHON_PAGES = [page for page in PAGES if blocks(page, "python") and "providers" not in page.parts]


@pytest.mark.parametrize("page", PYTHON_PAGES, ids=name)
def test_python_samples_run(page: Path, served: LocalIssuer) -> None:
    """Every Python sample of a page runs, and the tests a sample defines pass."""
    namespace: dict[str, Any] = {}
    try:
        namespace, called = run_page(page, served)
    finally:
        anyio.run(close_validators, namespace)
    if page.name == "testing.md":
        assert called == ["test_appointments_need_a_scope", "test_tasks_answer_who_asked"]
    if page.name == "roles.md":
        assert called == [
            "test_deleting_needs_the_scope_and_the_role",
            "test_the_security_page_wants_a_recent_second_factor",
            "test_the_team_page_is_for_one_organisation",
            "test_fastapi_checks_the_same_rules",
        ]


def organizer_client(app: Any) -> Any:
    """A test client for a Flask or ASGI app, with the same call shape."""
    if hasattr(app, "test_client"):
        return app.test_client()
    return TestClient(app)


@pytest.mark.parametrize("framework", ["flask", "starlette", "fastapi"])
def test_getting_started_apps_protect_their_routes(framework: str, served: LocalIssuer) -> None:
    """Each getting-started app answers the public route, and guards its scoped one."""
    namespace, _ = run_page(DOCS / "getting-started" / f"{framework}.md", served)
    apps = [namespace["app"]]
    if "create_app" in namespace:
        apps.append(namespace["create_app"]())
    good = {"Authorization": f"Bearer {served.token(scope='read:appointments')}"}
    other = {"Authorization": f"Bearer {served.token(scope='read:tasks')}"}
    try:
        for app in apps[1:]:  # the factory sample: the guard set up, no routes
            assert app.extensions["apiguard"].validator.issuer == served.issuer
        with organizer_client(apps[0]) as client:
            assert client.get("/api/public").status_code == 200
            ok = client.get("/api/appointments", headers=good)
            body = ok.get_json() if hasattr(ok, "get_json") else ok.json()
            assert (ok.status_code, body) == (200, {"appointments": [], "for": "auth0|user-1"})
            assert client.get("/api/appointments").status_code == 401
            assert client.get("/api/appointments", headers=other).status_code == 403
    finally:
        anyio.run(close_validators, {**namespace, "factory_app": apps[-1]})


def test_the_mcp_guide_server_is_a_protected_resource(served: LocalIssuer) -> None:
    """The MCP guide's server refuses a request without a token, pointing at its metadata."""
    namespace, _ = run_page(DOCS / "guides" / "mcp.md", served)
    try:
        with TestClient(namespace["app"]) as client:
            refused = client.post("/mcp", json={"jsonrpc": "2.0", "id": 1, "method": "ping"})
            challenge = refused.headers["WWW-Authenticate"]
            metadata_url = challenge.split('resource_metadata="')[1].split('"')[0]
            metadata = client.get(httpx.URL(metadata_url).path).json()
    finally:
        anyio.run(close_validators, namespace)
    assert refused.status_code == 401
    assert metadata["resource"] == ORGANIZER
    assert metadata["authorization_servers"] == [served.issuer]


# --- console samples ---------------------------------------------------------------------------


def _weak_key() -> dict[str, Any]:
    private = rsa.generate_private_key(public_exponent=65537, key_size=1024)
    jwk: dict[str, Any] = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(private.public_key()))
    return {**jwk, "kid": "key-0", "alg": "RS256", "use": "sig"}


@pytest.fixture
def console(served: LocalIssuer, tmp_path: Path) -> tuple[str, Path]:
    """The set-up the command-line samples describe: a token for another API in token.txt,
    and an issuer publishing a weak key beside its own, cached for 5 minutes."""
    token = served.token(aud="https://other.example/api", scope="read:appointments", expires_in=720)
    (tmp_path / "token.txt").write_text(token + "\n")
    served.jwks_override = httpx.Response(
        200,
        json={"keys": [*served.jwks["keys"], _weak_key()]},
        headers={"Cache-Control": "public, max-age=300"},
    )
    return token, tmp_path


CONSOLE_PAGES = [
    page
    for page in [*PAGES, README]
    if any(console_session(code, "apiguard") for code in blocks(page, "console"))
]


@pytest.mark.parametrize("page", CONSOLE_PAGES, ids=name)
def test_apiguard_commands_run_as_shown(
    page: Path, served: LocalIssuer, console: tuple[str, Path]
) -> None:
    """Each ``$ apiguard`` command shown runs, reaches a verdict, and prints what is shown."""
    token, workdir = console
    ran = 0
    for code in blocks(page, "console"):
        for command, shown in console_session(code, "apiguard"):
            result = run_command(command, workdir, served.issuer)
            assert result.returncode in (0, 1), (command, result.stdout, result.stderr)
            assert missing_output(shown, result.stdout, served.issuer) == [], result.stdout
            assert token not in result.stdout + result.stderr
            ran += 1
    assert ran


def test_the_curl_answers_shown_are_the_examples() -> None:
    """The curl transcript of "What clients see" is what the Flask example answers."""
    block = next(code for code in blocks(DOCS / "guides" / "answers.md", "console"))
    assert check_transcript(block, transcript_issuer()) == 1


ROLES_GUIDE = DOCS / "guides" / "roles.md"


def test_the_roles_guide_answers_are_the_examples() -> None:
    """The refusals the roles guide shows are what the Flask example answers those tokens."""
    issuer = transcript_issuer()
    roles, now = "https://organizer.example/roles", int(time.time())
    tokens = {
        "$ASSISTANT_TOKEN": issuer.token(scope="read:appointments", **{roles: ["assistant"]}),
        "$NO_ROLE_TOKEN": issuer.token(scope="delete:appointments", **{roles: ["assistant"]}),
        "$PASSWORD_TOKEN": issuer.token(acr=f"{PAPE}/none", auth_time=now - 60),
        "$HOUR_OLD_TOKEN": issuer.token(acr=MULTI_FACTOR, auth_time=now - 3600),
    }
    block = next(code for code in blocks(ROLES_GUIDE, "console"))
    assert check_transcript(block, issuer, tokens) == 4


def _django_files(page: Path) -> dict[str, str]:
    """A page's Django samples (``py`` blocks headed ``# name.py``), by file name."""
    files = {}
    for code in blocks(page, "py"):
        head, _, _ = code.partition("\n")
        files[head.removeprefix("# ")] = code
    return files


def test_the_roles_guide_django_samples_run(local_issuer: LocalIssuer) -> None:
    """The guide's views.py, urls.py and tests.py work as one Django project: its tests pass."""
    from django.test import override_settings

    configure_django()
    files = _django_files(ROLES_GUIDE)
    assert list(files) == ["views.py", "urls.py", "tests.py"]
    package = ModuleType("roles_guide")
    package.__path__ = []
    modules = {"roles_guide": package}
    try:
        for file_name in ("views.py", "urls.py"):
            module = ModuleType(f"roles_guide.{file_name.removesuffix('.py')}")
            module.__package__ = "roles_guide"
            modules[module.__name__] = module
            sys.modules.update(modules)
            run_snippet(files[file_name], namespace=vars(module))
        tests = run_snippet(files["tests.py"])
        with override_settings(ROOT_URLCONF="roles_guide.urls"):
            called = call_tests(tests, {"local_issuer": lambda: local_issuer})
    finally:
        for module_name in modules:
            sys.modules.pop(module_name, None)
    assert called == [
        "test_django_deleting_needs_the_role",
        "test_django_security_wants_a_recent_second_factor",
    ]


def test_the_roles_guide_server_commands_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The guide's admin commands run in order on a fresh store, and the user token they
    end with carries the new role and its permissions."""
    commands = [
        line
        for code in blocks(ROLES_GUIDE, "sh")
        for line in code.splitlines()
        if line.startswith("python -m examples.authz_server ")
    ]
    assert len(commands) == 6
    monkeypatch.setenv("AUTHZ_DB", str(tmp_path / "authz.sqlite3"))
    for command in commands:
        result = run_command(command, ROOT)
        assert result.returncode == 0, (command, result.stderr)
    token = json.loads(result.stdout)["access_token"]
    claims = jwt.decode(token, options={"verify_signature": False})
    assert claims["https://organizer.example/roles"] == ["assistant", "auditor"]
    assert {"read:appointments", "read:contacts"} <= set(claims["permissions"])


@pytest.mark.e2e
def test_the_server_pages_token_request_works(stack: Stack) -> None:
    """The token request on the server's overview page gets World Mappers a token."""
    code = blocks(DOCS / "server" / "index.md", "console")[0]
    command = code.removeprefix("$ ").replace("http://127.0.0.1:9000/", stack.issuer)
    result = subprocess.run(
        ["bash", "-c", command], capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, result.stderr
    answer = json.loads(result.stdout)
    assert (answer["token_type"], answer["scope"]) == (
        "Bearer",
        "read:appointments read:contacts",
    )


SHELL = [(page, code) for page in [*PAGES, README] for code in blocks(page, "sh")]


def test_modules_the_docs_run_start() -> None:
    """Every ``python -m`` module a shell sample runs starts and explains itself."""
    modules = {module for _, code in SHELL for module in module_commands(code)}
    assert modules
    for module in sorted(modules):
        result = module_starts(module)
        assert result.returncode == 0, (module, result.stderr)
        assert "usage:" in result.stdout


def test_extras_the_docs_install_exist() -> None:
    """Every ``pip install "apiguard[extra]"`` in the docs names an extra of the package."""
    extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    declared = set(extras["optional-dependencies"])
    named = {
        extra
        for _, code in SHELL
        for group in re.findall(r'pip install "apiguard\[([\w,]+)\]"', code)
        for extra in group.split(",")
    }
    assert named
    assert named <= declared


# --- pages and the code they describe --------------------------------------------------------


def reference_modules() -> list[ModuleType]:
    """The modules whose docstrings the API reference renders."""
    modules: dict[str, ModuleType] = {}
    for page in (DOCS / "reference").glob("*.md"):
        for target in re.findall(r"^::: ([\w.]+)", page.read_text(), re.MULTILINE):
            module_name, _, attribute = target.rpartition(".")
            try:
                found: Any = importlib.import_module(target)
            except ModuleNotFoundError:
                found = getattr(importlib.import_module(module_name), attribute)
            module = found if inspect.ismodule(found) else inspect.getmodule(found)
            assert module is not None
            modules[module.__name__] = module
    return [modules[key] for key in sorted(modules)]


@pytest.mark.parametrize("module", reference_modules(), ids=lambda m: m.__name__)
def test_docstring_examples_run(module: ModuleType) -> None:
    """The examples in the docstrings the API reference shows run (doctest, SKIP respected)."""
    if module.__name__ == "apiguard.django":
        # Its examples need the process's one Django configuration, whatever ran before.
        configure_django()
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS)
    # The module and its own objects only: imported objects are documented elsewhere.
    tests = doctest.DocTestFinder(recurse=False).find(module)
    for key, value in vars(module).items():
        defined = inspect.isclass(value) or inspect.isfunction(value)
        if defined and value.__module__ == module.__name__:
            name = f"{module.__name__}.{key}"
            tests += doctest.DocTestFinder().find(value, name, module=module, globs=vars(module))
    for test in tests:
        runner.run(test)
    assert runner.summarize(verbose=False).failed == 0


def test_every_reason_is_in_the_answers_table() -> None:
    """Each error a request can end with is listed in "What clients see", with its reason."""
    table = (DOCS / "guides" / "answers.md").read_text()
    bases = {
        errors.ApiguardError,
        errors.BearerError,
        errors.ConfigurationError,
        errors.ServiceUnavailable,
    }
    for error_name in errors.__all__:
        error = getattr(errors, error_name)
        if error not in bases:
            assert f"| `{error.reason}` | `{error.__name__}` |" in table


def test_screenshots_are_the_browser_tests() -> None:
    """The screenshots in the docs are exactly those the browser tests take, each shown."""
    source = (ROOT / "tests" / "browser" / "test_pages_in_chromium.py").read_text()
    taken = set(re.findall(r'shot\(page, "([\w-]+)"\)', source))
    committed = {path.stem for path in (DOCS / "screenshots").glob("*.png")}
    assert committed == taken
    shown = "".join(page.read_text() for page in PAGES)
    assert {name for name in taken if f"screenshots/{name}.png" not in shown} == set()
