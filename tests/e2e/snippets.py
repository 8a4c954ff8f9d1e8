"""The code in the README and the documentation pages: found, run, and its claims checked.

One machinery for both: a Markdown text's fenced blocks, Python samples executed with the
local authorization server's URL pointed at a test issuer, the curl transcripts compared
with what the Flask example answers, and the commands checked to run.
"""

from __future__ import annotations

import inspect
import os
import re
import subprocess
import sys
import textwrap
from collections.abc import Callable, Collection, Mapping
from pathlib import Path
from typing import Any

import httpx
from flask import Flask

from apiguard import AsyncIntrospector, AsyncValidator, Introspector, Validator
from apiguard.testing import LocalIssuer
from examples.demo.servers import ROOT
from examples.demo.walk import ORGANIZER
from examples.flask_api.app import create_app

#: The issuer URL the samples use: the local authorization server's default.
LOCAL_SERVER = "http://127.0.0.1:9000/"

_FENCE = re.compile(
    r"^(?P<indent>[ ]*)```(?P<lang>\w+)[^\n]*\n(?P<code>.*?)^(?P=indent)```",
    re.DOTALL | re.MULTILINE,
)


def code_blocks(markdown: str) -> list[tuple[str, str]]:
    """The fenced code blocks of a Markdown text, as (language, code), in order."""
    return [(match["lang"], textwrap.dedent(match["code"])) for match in _FENCE.finditer(markdown)]


def run_snippet(
    code: str, *, issuer: str | None = None, namespace: dict[str, Any] | None = None
) -> dict[str, Any]:
    """Execute a sample (with its issuer pointed at ``issuer``, when given); its namespace."""
    namespace = {"__name__": "docs_snippet"} if namespace is None else namespace
    if issuer is not None:
        code = code.replace(LOCAL_SERVER, issuer)
    # dont_inherit: a sample runs as the module a user would write, without this file's
    # "from __future__ import annotations" (FastAPI reads annotations at run time).
    exec(compile(code, "<sample>", "exec", dont_inherit=True), namespace)
    return namespace


def call_tests(
    namespace: Mapping[str, Any],
    fixtures: Mapping[str, Callable[[], Any]],
    *,
    skip: Collection[str] = (),
) -> list[str]:
    """Call the ``test_*`` functions a sample defined (but those in ``skip``), with fixtures
    by parameter name; return their names."""
    called = []
    for name, function in list(namespace.items()):
        if name.startswith("test_") and name not in skip and inspect.isfunction(function):
            arguments = {p: fixtures[p]() for p in inspect.signature(function).parameters}
            function(**arguments)
            called.append(name)
    return called


async def close_validators(namespace: Mapping[str, Any]) -> None:
    """Close the validators a sample left open (a sample is a script, not a whole app)."""
    for value in namespace.values():
        if isinstance(value, Flask) and "apiguard" in value.extensions:
            value.extensions["apiguard"].validator.close()
        if isinstance(value, Validator | Introspector):
            value.close()
        elif isinstance(value, AsyncValidator | AsyncIntrospector):
            await value.aclose()


# --- curl transcripts ---------------------------------------------------------------------

_CURL = re.compile(
    r"^\$ curl -i(?: -X (?P<method>[A-Z]+))? (?P<url>\S+)"
    r"(?: -H \"Authorization: Bearer (?P<bearer>[^\"]+)\")?$"
)


def transcript(block: str) -> list[tuple[str, str, str | None, list[str]]]:
    """A console block's ``curl -i`` commands (method, URL, bearer), each with the answer
    lines shown under it."""
    entries: list[tuple[str, str, str | None, list[str]]] = []
    for line in block.splitlines():
        match = _CURL.match(line)
        if match:
            method = match["method"] or "GET"
            entries.append((method, match["url"], match["bearer"], []))
        elif line and entries:
            entries[-1][3].append(line)
    return entries


def check_transcript(
    block: str, issuer: LocalIssuer, tokens: Mapping[str, str] | None = None
) -> int:
    """Each curl answer shown (status, challenge, body) is what the Flask example answers.

    ``$TOKEN`` is a token with the scopes read:appointments and read:contacts, ``$EXPIRED``
    an expired one, and ``tokens`` names more; any other value is sent as it is written.
    Returns how many were checked.
    """
    known: dict[str | None, str | None] = {
        None: None,
        "$EXPIRED": issuer.token(scope="read:appointments", expires_in=-3600),
        "$TOKEN": issuer.token(scope="read:appointments read:contacts"),
        **(tokens or {}),
    }
    entries = transcript(block)
    with issuer.validator() as validator:
        client = create_app(validator=validator).test_client()
        for method, url, bearer, lines in entries:
            token = known.get(bearer, bearer)
            headers = {"Authorization": f"Bearer {token}"} if bearer else {}
            response = client.open(httpx.URL(url).path, method=method, headers=headers)
            status, challenge, body = lines
            assert status == f"HTTP/1.1 {response.status}"
            assert challenge == f"WWW-Authenticate: {response.headers['WWW-Authenticate']}"
            assert body == response.get_data(as_text=True).strip()
    return len(entries)


def transcript_issuer() -> LocalIssuer:
    """The issuer whose tokens the transcripts show: for the Organizer API."""
    return LocalIssuer(audience=ORGANIZER)


# --- commands -------------------------------------------------------------------------------

_MODULE = re.compile(r"^(?:\.venv/bin/)?python -m ([\w.]+)")


def module_commands(code: str) -> list[str]:
    """The modules a shell block runs with ``python -m``."""
    return [m.group(1) for line in code.splitlines() if (m := _MODULE.match(line.strip()))]


def module_starts(module: str) -> subprocess.CompletedProcess[str]:
    """Run ``python -m module --help`` from the repository root."""
    return subprocess.run(
        [sys.executable, "-m", module, "--help"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def _logical_lines(block: str) -> list[str]:
    """A console block's lines, with backslash continuations joined."""
    lines: list[str] = []
    pending = ""
    for line in block.splitlines():
        if line.endswith("\\"):
            pending += line[:-1]
            continue
        lines.append(pending + (line.lstrip() if pending else line))
        pending = ""
    return lines


def console_session(block: str, program: str) -> list[tuple[str, list[str]]]:
    """The ``$ program ...`` commands of a console block, each with the output shown under it."""
    session: list[tuple[str, list[str]]] = []
    current: list[str] | None = None
    for line in _logical_lines(block):
        if line.startswith("$ "):
            current = None
            if line.startswith(f"$ {program} "):
                current = []
                session.append((line[2:], current))
        elif current is not None and line.strip():
            current.append(line)
    return session


def run_command(
    command: str, cwd: Path, issuer: str | None = None
) -> subprocess.CompletedProcess[str]:
    """Run a documented shell command in ``cwd`` with the installed scripts (and this
    Python) first on PATH, its issuer pointed at ``issuer`` when given."""
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    if issuer is not None:
        command = command.replace(LOCAL_SERVER, issuer)
    return subprocess.run(
        ["bash", "-c", command],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def _shape(line: str) -> str:
    # Times, ports, sizes and counts differ from run to run; the words and the layout do not.
    return re.sub(r"\d+", "N", line.rstrip())


def missing_output(shown: list[str], actual: str, issuer: str) -> list[str]:
    """The shown output lines that the actual output lacks (numbers aside)."""
    lines = {_shape(line) for line in actual.replace(issuer, LOCAL_SERVER).splitlines()}
    return [line for line in shown if _shape(line) not in lines]
