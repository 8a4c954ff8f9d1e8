"""The quick-start stack over real sockets: the authorization server, the APIs, the MCP server."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from examples.demo.servers import Stack, free_port


@pytest.fixture(scope="session")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """The servers as processes on free loopback ports, on a fresh SQLite file."""
    workdir: Path = tmp_path_factory.mktemp("stack")
    servers = Stack(
        authz_port=free_port(),
        flask_port=free_port(),
        starlette_port=free_port(),
        fastapi_port=free_port(),
        django_port=free_port(),
        mcp_port=free_port(),
        db=str(workdir / "authz.sqlite3"),
        log_dir=workdir,
    )
    with servers.running():
        yield servers


@pytest.fixture(scope="session")
def apis(stack: Stack) -> dict[str, str]:
    """The Organizer APIs by name."""
    return {
        "flask": stack.flask.url,
        "starlette": stack.starlette.url,
        "fastapi": stack.fastapi.url,
        "django": stack.django.url,
    }
