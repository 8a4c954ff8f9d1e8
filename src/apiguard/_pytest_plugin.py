"""pytest fixtures for testing APIs protected by apiguard (registered as a pytest plugin).

``local_issuer`` is a fresh :class:`~apiguard.testing.LocalIssuer` (RS256) per test;
``local_issuer_factory`` builds more, e.g. ``local_issuer_factory(algorithm="ES256")``.
Every issuer has its own keys and key ids: the tokens of one never verify for another's
validator. To stay fast, the fixtures borrow private keys from ``local_issuer_key_pool``,
one :class:`~apiguard.testing.KeyPool` per session, and give them back after each test.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from .testing import KeyPool, LocalIssuer


@pytest.fixture(scope="session")
def local_issuer_key_pool() -> KeyPool:
    """The session's pool of private keys (keys lent at the same time are distinct)."""
    return KeyPool()


@pytest.fixture
def local_issuer_factory(local_issuer_key_pool: KeyPool) -> Iterator[Callable[..., LocalIssuer]]:
    """Build a :class:`LocalIssuer` with the given options (keys from the session's pool)."""
    made: list[LocalIssuer] = []

    def make(**options: Any) -> LocalIssuer:
        options.setdefault("key_pool", local_issuer_key_pool)
        issuer = LocalIssuer(**options)
        made.append(issuer)
        return issuer

    yield make
    for issuer in made:
        issuer.release_keys()


@pytest.fixture
def local_issuer(local_issuer_factory: Callable[..., LocalIssuer]) -> LocalIssuer:
    """An RS256 :class:`LocalIssuer` at ``https://issuer.test/`` for ``https://api.test``."""
    return local_issuer_factory()
