"""Fixtures every test directory may use."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.redis_server import running_redis


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The ``redis://`` URL of a redis-server this session started (and stops)."""
    with running_redis(tmp_path_factory.mktemp("redis")) as url:
        yield url
