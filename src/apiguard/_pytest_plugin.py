"""pytest fixtures for testing APIs protected by apiguard (registered as a pytest plugin).

``local_issuer`` is a fresh :class:`~apiguard.testing.LocalIssuer` (RS256) per test;
``local_issuer_factory`` builds more, e.g. ``local_issuer_factory(algorithm="ES256")``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from .testing import LocalIssuer


@pytest.fixture
def local_issuer_factory() -> Callable[..., LocalIssuer]:
    """Build a :class:`LocalIssuer` with the given options."""

    def make(**options: Any) -> LocalIssuer:
        return LocalIssuer(**options)

    return make


@pytest.fixture
def local_issuer(local_issuer_factory: Callable[..., LocalIssuer]) -> LocalIssuer:
    """An RS256 :class:`LocalIssuer` at ``https://issuer.test/`` for ``https://api.test``."""
    return local_issuer_factory()
