"""Replay stores: a proof's jti is accepted once in its window, in memory and on real Redis."""

from __future__ import annotations

import socket
import threading
import time

import anyio
import pytest

from apiguard import errors
from apiguard.dpop import (
    AsyncRedisReplayStore,
    AsyncReplayStore,
    DPoPPolicy,
    MemoryReplayStore,
    ProofVerifier,
    RedisReplayStore,
    ReplayStore,
    check_replay,
    check_replay_async,
)
from apiguard.testing import DPoPKey

from .conftest import NOW, URL, Clock


class Monotonic:
    """A monotonic clock that moves when told to."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port  # nothing listens there once the probe is closed


# --- memory -----------------------------------------------------------------------------------


def test_memory_store_accepts_a_key_once_within_its_ttl() -> None:
    """The second add of a key is refused until the key's ttl has passed."""
    clock = Monotonic()
    store = MemoryReplayStore(clock=clock)
    assert store.add("k", 10)
    assert not store.add("k", 10)
    clock.now += 9.9
    assert not store.add("k", 10)
    clock.now += 0.2
    assert store.add("k", 10)


def test_a_full_memory_store_refuses_instead_of_forgetting() -> None:
    """When every remembered proof is live, a new one gets 503, never a forgotten replay."""
    clock = Monotonic()
    store = MemoryReplayStore(maxsize=2, clock=clock)
    assert store.add("a", 10)
    assert store.add("b", 10)
    with pytest.raises(errors.ReplayStoreUnavailable) as caught:
        store.add("c", 10)
    assert caught.value.status_code == 503
    assert not store.add("a", 10)  # still remembered
    clock.now += 11
    assert store.add("c", 10)  # expired entries make room
    assert len(store) == 1


def test_memory_store_is_one_answer_per_key_across_threads() -> None:
    """Of many threads adding one key at once, exactly one is told it is new."""
    store = MemoryReplayStore()
    results: list[bool] = []
    barrier = threading.Barrier(8)

    def add() -> None:
        barrier.wait()
        results.append(store.add("same", 60))

    threads = [threading.Thread(target=add) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(results) == [False] * 7 + [True]


def test_memory_store_meets_both_protocols() -> None:
    """The in-memory store does no I/O, so sync and async shells can both use it."""
    assert isinstance(MemoryReplayStore(), ReplayStore)
    with pytest.raises(errors.ConfigurationError):
        MemoryReplayStore(maxsize=0)


def test_check_replay_refuses_a_replayed_proof(key: DPoPKey, clock: Clock) -> None:
    """A verified proof presented twice fails the second time with dpop_proof_replayed."""
    verifier = ProofVerifier(DPoPPolicy(mode="required"))
    proof = key.proof("GET", URL)
    store = MemoryReplayStore()
    verified = verifier.verify(proof, method="GET", uri=URL, now=NOW)
    check_replay(store, verified)
    again = verifier.verify(proof, method="GET", uri=URL, now=NOW + 1)
    with pytest.raises(errors.DPoPProofReplayed) as caught:
        check_replay(store, again)
    assert caught.value.reason == "dpop_proof_replayed"
    assert caught.value.error == "invalid_dpop_proof"


def test_check_replay_async_takes_sync_and_async_stores(key: DPoPKey, clock: Clock) -> None:
    """The async shell awaits an async store and calls a sync one directly."""

    class Async:
        def __init__(self) -> None:
            self.seen: set[str] = set()

        async def add(self, key: str, ttl: float) -> bool:
            if key in self.seen:
                return False
            self.seen.add(key)
            return True

    verifier = ProofVerifier(DPoPPolicy(mode="required"))
    verified = verifier.verify(key.proof("GET", URL), method="GET", uri=URL, now=NOW)
    async_store = Async()
    assert isinstance(async_store, AsyncReplayStore)

    async def main() -> None:
        for store in (MemoryReplayStore(), async_store):
            await check_replay_async(store, verified)
            with pytest.raises(errors.DPoPProofReplayed):
                await check_replay_async(store, verified)

    anyio.run(main)


# --- Redis ------------------------------------------------------------------------------------


def test_redis_store_is_shared_by_two_workers(redis_url: str) -> None:
    """A key added through one connection is refused through another (another worker)."""
    first, second = RedisReplayStore(redis_url), RedisReplayStore(redis_url)
    try:
        name = f"shared-{time.monotonic_ns()}"
        assert first.add(name, 30)
        assert not second.add(name, 30)
        assert not first.add(name, 30)
    finally:
        first.close()
        second.close()


def test_redis_keys_expire_with_the_proof(redis_url: str) -> None:
    """SET NX PX: once the proof's window is over, its key is gone."""
    store = RedisReplayStore(redis_url, prefix="expiry-test:")
    try:
        name = f"short-{time.monotonic_ns()}"
        assert store.add(name, 0.05)
        time.sleep(0.2)
        assert store.add(name, 30)
    finally:
        store.close()


def test_redis_store_uses_its_prefix(redis_url: str) -> None:
    """Keys are written under the prefix, so one Redis serves several APIs."""
    import redis

    client = redis.Redis.from_url(redis_url)
    try:
        store = RedisReplayStore(client=client, prefix="api-one:")
        name = f"p-{time.monotonic_ns()}"
        assert store.add(name, 30)
        assert client.get(f"api-one:{name}") == b"1"
        assert 0 < client.pttl(f"api-one:{name}") <= 30000
        assert RedisReplayStore(client=client, prefix="api-two:").add(name, 30)
        store.close()  # a given client stays open
        assert client.ping()
    finally:
        client.close()


def test_unreachable_redis_is_a_503_never_an_accepted_proof() -> None:
    """A Redis that does not answer makes the check fail with ReplayStoreUnavailable."""
    store = RedisReplayStore(f"redis://127.0.0.1:{_closed_port()}/0", timeout=0.5)
    started = time.monotonic()
    with pytest.raises(errors.ReplayStoreUnavailable) as caught:
        store.add("k", 30)
    assert time.monotonic() - started < 5
    assert (caught.value.status_code, caught.value.retry_after) == (503, 5)
    assert "Redis" in caught.value.detail
    store.close()


def test_async_redis_store_is_shared_with_the_sync_one(redis_url: str) -> None:
    """An async worker and a sync worker agree on one Redis."""

    async def main() -> None:
        store = AsyncRedisReplayStore(redis_url)
        try:
            name = f"async-{time.monotonic_ns()}"
            assert await store.add(name, 30)
            assert not await store.add(name, 30)
            sync = RedisReplayStore(redis_url)
            assert not sync.add(name, 30)
            sync.close()
        finally:
            await store.aclose()

    anyio.run(main)


def test_unreachable_redis_is_a_503_for_async_code_too() -> None:
    """The async store translates connection failures the same way."""

    async def main() -> None:
        store = AsyncRedisReplayStore(f"redis://127.0.0.1:{_closed_port()}/0", timeout=0.5)
        with pytest.raises(errors.ReplayStoreUnavailable):
            await store.add("k", 30)
        await store.aclose()

    anyio.run(main)


@pytest.mark.parametrize(
    "options",
    [
        pytest.param({}, id="neither-url-nor-client"),
        pytest.param({"url": "http://127.0.0.1:6379"}, id="not-a-redis-url"),
        pytest.param({"url": "redis://x", "client": object()}, id="both"),
        pytest.param({"url": "redis://x", "prefix": ""}, id="empty-prefix"),
        pytest.param({"url": "redis://x", "timeout": 0}, id="zero-timeout"),
    ],
)
@pytest.mark.parametrize("store", [RedisReplayStore, AsyncRedisReplayStore])
def test_bad_redis_settings_are_refused(store: type, options: dict[str, object]) -> None:
    """The store's settings are checked at construction, before any connection."""
    with pytest.raises(errors.ConfigurationError, match="replay store"):
        store(**options)


def test_importing_dpop_pulls_in_no_redis() -> None:
    """redis is imported when a Redis store is built, never by importing apiguard.dpop."""
    import subprocess
    import sys

    code = "import sys, apiguard.dpop; print('redis' in sys.modules)"
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "False"
