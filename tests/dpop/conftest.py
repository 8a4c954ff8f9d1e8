"""Fixtures of the DPoP tests: a fixed clock, a verifier on it, a client key and token."""

from __future__ import annotations

import pytest

from apiguard.dpop import DPoPPolicy, ProofVerifier
from apiguard.testing import DPoPKey, LocalIssuer

NOW = 1_700_000_000.0
URL = "https://api.test/api/appointments"


class Clock:
    """A clock that only moves when told to."""

    def __init__(self, now: float = NOW) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    """The fixed clock every DPoP object of a test shares."""
    return Clock()


@pytest.fixture
def verifier() -> ProofVerifier:
    """A verifier with the default policy (DPoP required)."""
    return ProofVerifier(DPoPPolicy(mode="required"))


@pytest.fixture(scope="session")
def session_key() -> DPoPKey:
    """One ES256 client key for the session (its clock is set per test)."""
    return DPoPKey()


@pytest.fixture
def key(session_key: DPoPKey, clock: Clock) -> DPoPKey:
    """The client key, signing proofs on the test's clock."""
    session_key.clock = clock
    return session_key


@pytest.fixture
def issuer(clock: Clock) -> LocalIssuer:
    """A local issuer on the test's clock."""
    return LocalIssuer(audience="https://api.test", clock=clock)
