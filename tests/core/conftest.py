"""Shared fixtures of the core tests: a fake clock, local issuers on it, the vector files."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from apiguard.testing import KeyPool, LocalIssuer

#: The shared test vectors live beside the repository (``../shared/vectors``).
VECTORS = Path(__file__).resolve().parents[2] / ".." / "shared" / "vectors"
NOW = 1_700_000_000.0


class FakeClock:
    """A clock that only moves when told to."""

    def __init__(self, now: float = NOW) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def load_vectors(relative: str) -> Any:
    """Load a vector file, or skip the test when the vector directory is absent."""
    path = VECTORS / relative
    if not path.exists():
        pytest.skip(f"test vectors not found at {path.resolve()} (../shared/vectors)")
    return json.loads(path.read_text(encoding="utf-8"))


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def issuer(clock: FakeClock, local_issuer_key_pool: KeyPool) -> Iterator[LocalIssuer]:
    """An RS256 local issuer on the fake clock (keys borrowed from the session's pool)."""
    with LocalIssuer(clock=clock, key_pool=local_issuer_key_pool) as local:
        yield local


@pytest.fixture
def validator(issuer: LocalIssuer) -> Iterator[Any]:
    """A Validator for ``issuer`` that fetches through its in-process transport."""
    with issuer.validator() as v:
        yield v


def static_validator(jwks: Any, **options: Any) -> Any:
    """A Validator whose JWKS URL answers ``jwks`` from an in-process transport."""
    import httpx

    from apiguard import Validator

    def answer(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json=jwks)

    options.setdefault("issuer", "https://issuer.test/")
    options.setdefault("audience", "https://api.test")
    options.setdefault("jwks_uri", "https://issuer.test/jwks.json")
    client = httpx.Client(transport=httpx.MockTransport(answer))
    return Validator(http_client=client, **options)


def b64(data: bytes | str) -> str:
    """Unpadded base64url of bytes (or of text encoded as UTF-8)."""
    import base64

    raw = data.encode() if isinstance(data, str) else data
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def dumps(value: Any) -> bytes:
    return json.dumps(value).encode()


def signed(issuer: LocalIssuer, header: Any = None, payload: Any = None, **claims: Any) -> str:
    """A token signed by ``issuer``'s current key over exact header/payload bytes.

    ``header`` and ``payload`` are dicts (dumped as JSON) or raw bytes; by default the
    issuer's usual header and claims (with ``claims`` applied).
    """
    key = issuer.current_key
    if header is None:
        header = {"alg": key.algorithm, "kid": key.kid, "typ": "JWT"}
    if payload is None:
        payload = issuer.claims(**claims)
    head = header if isinstance(header, bytes) else dumps(header)
    body = payload if isinstance(payload, bytes) else dumps(payload)
    return issuer.sign_raw(head, body)
