"""Single flight across threads and tasks, and the async shell's deadlines."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import anyio
import anyio.lowlevel
import httpx
import pytest
import respx

from apiguard import AsyncValidator, KeySetUnavailable, UnknownSigningKey, Validator
from apiguard.testing import LocalIssuer
from tests.trickling import TricklingServer

from .conftest import FakeClock

JWKS_URI = "https://issuer.test/.well-known/jwks.json"
WORKERS = 50


def test_threads_share_one_fetch(issuer: LocalIssuer) -> None:
    """E10: 50 threads validating on a cold cache cause exactly one JWKS fetch."""
    gate, started = threading.Event(), threading.Event()
    calls = 0

    def slow(request: httpx.Request) -> httpx.Response:
        nonlocal calls
        calls += 1
        started.set()
        assert gate.wait(5)
        return issuer.handle(request)

    token = issuer.token()
    with respx.mock() as mock:
        mock.get(JWKS_URI).mock(side_effect=slow)
        validator = Validator(
            issuer=issuer.issuer, audience=issuer.audience, jwks_uri=JWKS_URI, clock=issuer.clock
        )
        with validator, ThreadPoolExecutor(WORKERS) as pool:
            futures = [pool.submit(validator.validate, token) for _ in range(WORKERS)]
            assert started.wait(5)
            # Let every other thread reach the lock while the first fetch is held open.
            for _ in range(200):
                if sum(not f.running() for f in futures) == 0:
                    break
                threading.Event().wait(0.005)
            gate.set()
            results = [f.result(timeout=10) for f in futures]
    assert calls == 1
    assert all(r.subject == "auth0|user-1" for r in results)


def test_threads_share_one_failure(issuer: LocalIssuer) -> None:
    """Threads waiting on a fetch that fails all get KeySetUnavailable, without refetching."""
    gate = threading.Event()
    calls = 0

    def failing(request: httpx.Request) -> httpx.Response:
        nonlocal calls
        calls += 1
        assert gate.wait(5)
        return httpx.Response(500)

    token = issuer.token()
    with respx.mock() as mock:
        mock.get(JWKS_URI).mock(side_effect=failing)
        validator = Validator(
            issuer=issuer.issuer, audience=issuer.audience, jwks_uri=JWKS_URI, clock=issuer.clock
        )
        with validator, ThreadPoolExecutor(8) as pool:
            futures = [pool.submit(validator.validate, token) for _ in range(8)]
            threading.Event().wait(0.05)
            gate.set()
            errors = [f.exception(timeout=10) for f in futures]
    assert calls == 1
    assert all(isinstance(e, KeySetUnavailable) for e in errors)


def test_stale_refresh_does_not_block_other_threads(issuer: LocalIssuer, clock: FakeClock) -> None:
    """While one thread refreshes stale keys, others validate with the cached ones at once."""
    gate, started = threading.Event(), threading.Event()
    calls = 0

    def handle(request: httpx.Request) -> httpx.Response:
        nonlocal calls
        calls += 1
        if calls > 1:
            started.set()
            assert gate.wait(5)
        return issuer.handle(request)

    with respx.mock() as mock:
        mock.get(JWKS_URI).mock(side_effect=handle)
        validator = Validator(
            issuer=issuer.issuer, audience=issuer.audience, jwks_uri=JWKS_URI, clock=clock
        )
        with validator, ThreadPoolExecutor(1) as pool:
            validator.validate(issuer.token())
            clock.advance(601)
            refreshing = pool.submit(validator.validate, issuer.token())
            assert started.wait(5)
            # The refresh is held open; this thread must not wait for it.
            assert validator.validate(issuer.token(sub="other")).subject == "other"
            gate.set()
            assert refreshing.result(timeout=5)
    assert calls == 2


@pytest.mark.anyio
async def test_tasks_share_one_fetch(issuer: LocalIssuer) -> None:
    """E10: 50 tasks validating on a cold cache cause exactly one JWKS fetch."""
    gate = anyio.Event()
    calls = 0

    async def slow(request: httpx.Request) -> httpx.Response:
        nonlocal calls
        calls += 1
        await gate.wait()
        return issuer.handle(request)

    token = issuer.token()
    results: list[Any] = []
    with respx.mock() as mock:
        mock.get(JWKS_URI).mock(side_effect=slow)
        async with AsyncValidator(
            issuer=issuer.issuer, audience=issuer.audience, jwks_uri=JWKS_URI, clock=issuer.clock
        ) as validator:

            async def one() -> None:
                results.append(await validator.validate(token))

            async with anyio.create_task_group() as group:
                for _ in range(WORKERS):
                    group.start_soon(one)
                for _ in range(20):
                    await anyio.lowlevel.checkpoint()
                gate.set()
    assert calls == 1
    assert len(results) == WORKERS


@pytest.mark.anyio
async def test_async_stale_refresh_skipped_while_fetching(
    issuer: LocalIssuer, clock: FakeClock
) -> None:
    """A task needing only an optional refresh uses the cached keys while another fetches."""
    gate, started = anyio.Event(), anyio.Event()
    calls = 0

    async def handle(request: httpx.Request) -> httpx.Response:
        nonlocal calls
        calls += 1
        if calls > 1:
            started.set()
            await gate.wait()
        return issuer.handle(request)

    with respx.mock() as mock:
        mock.get(JWKS_URI).mock(side_effect=handle)
        async with AsyncValidator(
            issuer=issuer.issuer, audience=issuer.audience, jwks_uri=JWKS_URI, clock=clock
        ) as validator:
            await validator.validate(issuer.token())
            clock.advance(601)
            async with anyio.create_task_group() as group:
                group.start_soon(validator.validate, issuer.token())
                await started.wait()
                assert (await validator.validate(issuer.token(sub="x"))).subject == "x"
                gate.set()
    assert calls == 2


@pytest.mark.anyio
async def test_async_unknown_kid_and_discovery(issuer: LocalIssuer) -> None:
    """The async shell discovers keys and applies the same key rules as the sync one."""
    async with issuer.async_validator() as validator:
        assert (await validator.validate(issuer.token())).issuer == issuer.issuer
        with pytest.raises(UnknownSigningKey):
            await validator.validate(issuer.token(header={"kid": "nope"}))
    assert validator._client.is_closed
    assert issuer.requests["/.well-known/jwks.json"] == 1


@pytest.mark.anyio
async def test_async_slow_body_hits_the_deadline(issuer: LocalIssuer) -> None:
    """B13: a JWKS trickling its body is cut at the total deadline (KeySetUnavailable)."""

    class Trickle(httpx.AsyncByteStream):
        async def __aiter__(self) -> Any:
            yield b'{"keys": ['
            await anyio.sleep(5)
            yield b"]}"

    with respx.mock() as mock:
        mock.get(JWKS_URI).mock(return_value=httpx.Response(200, stream=Trickle()))
        async with AsyncValidator(
            issuer=issuer.issuer,
            audience=issuer.audience,
            jwks_uri=JWKS_URI,
            clock=issuer.clock,
            timeout=0.1,
        ) as validator:
            with anyio.fail_after(2), pytest.raises(KeySetUnavailable):
                await validator.validate(issuer.token())


def test_sync_body_deadline(issuer: LocalIssuer, monkeypatch: pytest.MonkeyPatch) -> None:
    """B13: the sync shell stops reading a body once the total deadline has passed."""
    import apiguard._core as core

    moments = iter([0.0, 0.0, 10.0])
    monkeypatch.setattr(core.time, "monotonic", lambda: next(moments, 10.0))

    def chunks() -> Any:
        yield b'{"keys": ['
        yield b"]}"

    with respx.mock() as mock:
        mock.get(JWKS_URI).mock(return_value=httpx.Response(200, content=chunks()))
        validator = Validator(
            issuer=issuer.issuer,
            audience=issuer.audience,
            jwks_uri=JWKS_URI,
            clock=issuer.clock,
            timeout=1,
        )
        with validator, pytest.raises(KeySetUnavailable, match="TimeoutError"):
            validator.validate(issuer.token())


@pytest.mark.anyio
async def test_async_error_status_is_key_set_unavailable(issuer: LocalIssuer) -> None:
    """A JWKS answering 500 to the async shell is KeySetUnavailable, its body unread."""
    with respx.mock() as mock:
        route = mock.get(JWKS_URI).mock(return_value=httpx.Response(500, text="oops"))
        async with AsyncValidator(
            issuer=issuer.issuer, audience=issuer.audience, jwks_uri=JWKS_URI, clock=issuer.clock
        ) as validator:
            with pytest.raises(KeySetUnavailable):
                await validator.validate(issuer.token())
    assert route.call_count == 1


def test_sync_deadline_covers_trickled_headers(issuer: LocalIssuer) -> None:
    """B13: headers sent byte by byte cannot hold the sync validate() past its timeout."""
    server = TricklingServer(pause=0.05)
    base = f"http://127.0.0.1:{server.port}"
    try:
        validator = Validator(
            issuer=issuer.issuer,
            audience=issuer.audience,
            jwks_uri=f"{base}/jwks.json",
            clock=issuer.clock,
            timeout=0.5,
        )
        started = time.monotonic()
        with validator, pytest.raises(KeySetUnavailable, match="TimeoutError"):
            validator.validate(issuer.token())
        # Each byte arrives well within the per-read timeout; only a total deadline stops
        # this before the 20 s the headers take.
        assert time.monotonic() - started < 5
    finally:
        server.close()
