"""The shared key cache: validators of several processes share fetched documents via a key store.

In-process here (validators standing in for workers, sharing a MemoryKeyStore or a real
Redis); tests/e2e/test_key_store_workers.py runs real worker processes.
"""

from __future__ import annotations

import hashlib
import json
import logging
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

import anyio
import pytest

from apiguard import (
    AsyncRedisKeyStore,
    AsyncValidator,
    ConfigurationError,
    KeySetUnavailable,
    KeyStore,
    MemoryKeyStore,
    RedisKeyStore,
    UnknownSigningKey,
    Validator,
)
from apiguard.events import KeySourceEvent
from apiguard.jwks import FetchRequest, KeySource, StoredDocument
from apiguard.testing import LocalIssuer

from .conftest import NOW, FakeClock

JWKS = "/.well-known/jwks.json"
DISCOVERY = "/.well-known/openid-configuration"


def fetches(issuer: LocalIssuer) -> tuple[int, int]:
    """How often the issuer was asked for its discovery document and its JWKS."""
    return issuer.requests[DISCOVERY], issuer.requests[JWKS]


def store_events(events: list[Any]) -> list[tuple[str, str | None, str | None]]:
    return [
        (e.kind, e.purpose, e.error)
        for e in events
        if isinstance(e, KeySourceEvent) and e.kind.startswith("key_store")
    ]


class SpyStore(MemoryKeyStore):
    """A memory store that remembers what was written (and for how long)."""

    def __init__(self) -> None:
        super().__init__()
        self.writes: list[tuple[str, bytes, float]] = []

    def set(self, key: str, value: bytes, ttl: float) -> None:
        self.writes.append((key, value, ttl))
        super().set(key, value, ttl)


class FixedStore:
    """A store that answers ``value`` for every key (a tampered or broken store)."""

    def __init__(self, value: Any) -> None:
        self.value = value
        self.written = 0

    def get(self, key: str) -> Any:
        return self.value

    def set(self, key: str, value: bytes, ttl: float) -> None:
        self.written += 1

    def add(self, key: str, ttl: float) -> bool:
        return True

    def delete(self, key: str) -> None:
        pass


class DownStore:
    """A store that cannot answer at all."""

    def __init__(self) -> None:
        self.calls = 0

    def get(self, key: str) -> bytes | None:
        self.calls += 1
        raise ConnectionError("connection refused")

    def set(self, key: str, value: bytes, ttl: float) -> None:
        self.calls += 1
        raise ConnectionError("connection refused")

    def add(self, key: str, ttl: float) -> bool:
        self.calls += 1
        raise ConnectionError("connection refused")

    def delete(self, key: str) -> None:
        self.calls += 1
        raise ConnectionError("connection refused")


@pytest.fixture
def store() -> SpyStore:
    return SpyStore()


@pytest.fixture
def workers(issuer: LocalIssuer, store: SpyStore) -> Iterator[list[Validator]]:
    """Three validators standing in for three workers of one API, sharing ``store``."""
    made = [issuer.validator(key_store=store, cooldown=10) for _ in range(3)]
    yield made
    for validator in made:
        validator.close()


# --- sharing ----------------------------------------------------------------------------------


def test_one_worker_fetches_and_the_others_read_the_store(
    issuer: LocalIssuer, workers: list[Validator], store: SpyStore
) -> None:
    """The first worker fetches discovery and the JWKS; the others fetch nothing."""
    token = issuer.token()
    for validator in workers:
        assert validator.validate(token).subject == "auth0|user-1"
    assert fetches(issuer) == (1, 1)
    assert [key.split(":")[1] for key, _, _ in store.writes] == ["discovery", "jwks"]


@pytest.mark.anyio
async def test_async_validators_share_like_sync_ones(issuer: LocalIssuer, store: SpyStore) -> None:
    """Async validators (and a sync one) read what another wrote: one fetch of each document."""
    token = issuer.token()
    first, second = issuer.async_validator(key_store=store), issuer.async_validator(key_store=store)
    async with first, second:
        await first.validate(token)
        await second.validate(token)
    with issuer.validator(key_store=store) as third:
        third.validate(token)
    assert fetches(issuer) == (1, 1)


def test_a_rotation_is_fetched_once_and_then_shared(
    issuer: LocalIssuer, workers: list[Validator], clock: FakeClock
) -> None:
    """A new kid: the worker that sees it first asks the issuer (the stored set lacks the kid);
    the others take its set from the store."""
    for validator in workers:
        validator.validate(issuer.token())
    clock.advance(11)  # the first worker's cooldown is over
    issuer.rotate()
    rotated = issuer.token()
    for validator in workers:
        assert validator.validate(rotated).subject == "auth0|user-1"
    assert fetches(issuer) == (1, 2)


def test_a_stored_set_without_the_kid_does_not_block_the_refetch(
    issuer: LocalIssuer, store: SpyStore, clock: FakeClock
) -> None:
    """A worker whose stored set is newer than its own but lacks the kid still asks the issuer."""
    with issuer.validator(key_store=store) as first, issuer.validator(key_store=store) as second:
        first.validate(issuer.token())  # fetched at NOW, stored
        clock.advance(60)
        second.validate(issuer.token())  # takes the stored set
        # Another worker refreshed just before the issuer rotated: a newer set, same keys.
        with issuer.validator(key_store=store, cache_max_age=30) as third:
            third.validate(issuer.token())
        issuer.rotate()
        assert first.validate(issuer.token()).subject == "auth0|user-1"
    assert fetches(issuer)[1] == 3


def test_an_unknown_kid_goes_to_the_issuer_once_per_cooldown(
    issuer: LocalIssuer, workers: list[Validator]
) -> None:
    """A kid nobody publishes: the store cannot help, the issuer is asked once per cooldown."""
    workers[0].validate(issuer.token())
    stranger = LocalIssuer(issuer.issuer, audience=issuer.audience, clock=issuer.clock)
    forged = stranger.token()
    for _ in range(3):
        with pytest.raises(UnknownSigningKey):
            workers[1].validate(forged)
    assert fetches(issuer) == (1, 2)
    stranger.release_keys()


def test_an_older_stored_set_never_replaces_ours(issuer: LocalIssuer, clock: FakeClock) -> None:
    """A set fetched before ours is not newer: the source asks the issuer instead."""
    source = KeySource(issuer=issuer.issuer, jwks_uri=issuer.jwks_uri, algorithms=["RS256"])
    request = FetchRequest(issuer.jwks_uri, "jwks")
    body = json.dumps(issuer.jwks).encode()
    assert source.take_stored(request, StoredDocument(issuer.jwks_uri, NOW, "", body), NOW) is None
    older = StoredDocument(issuer.jwks_uri, NOW - 1, "", body)
    assert source.take_stored(request, older, NOW + 1) == "not newer than ours"
    same = StoredDocument(issuer.jwks_uri, NOW, "", body)
    assert source.take_stored(request, same, NOW + 1) == "not newer than ours"


def test_freshness_counts_from_the_original_fetch(
    issuer: LocalIssuer, store: SpyStore, clock: FakeClock
) -> None:
    """A stored set fetched 590 s ago is fresh for 10 s more, not 600; a stale one is refetched."""
    with issuer.validator(key_store=store) as first:
        first.validate(issuer.token())
    clock.advance(590)
    with issuer.validator(key_store=store) as second:
        second.validate(issuer.token())
        assert fetches(issuer) == (1, 1)
        assert second.health()[issuer.issuer].state == "fresh"
        clock.advance(11)
        assert second.health()[issuer.issuer].state == "stale"
        second.validate(issuer.token())
    assert fetches(issuer) == (1, 2)


def test_each_reader_applies_its_own_max_age(
    issuer: LocalIssuer, store: SpyStore, clock: FakeClock
) -> None:
    """A validator with a shorter cache_max_age refuses stored documents older than that."""
    with issuer.validator(key_store=store) as first:
        first.validate(issuer.token())
    clock.advance(120)
    with issuer.validator(key_store=store, cache_max_age=60) as strict:
        strict.validate(issuer.token())
    assert fetches(issuer) == (2, 2)


def test_documents_are_stored_for_their_freshness(issuer: LocalIssuer, store: SpyStore) -> None:
    """The JWKS is kept as long as its Cache-Control max-age (bounded) says it is fresh."""
    import httpx

    issuer.jwks_override = httpx.Response(
        200, json=issuer.jwks, headers={"Cache-Control": "public, max-age=120"}
    )
    with issuer.validator(key_store=store) as validator:
        validator.validate(issuer.token())
    ttls = {key.split(":")[1]: ttl for key, _, ttl in store.writes}
    assert ttls == {"discovery": 600.0, "jwks": 120.0}


def test_only_public_documents_are_stored_under_hashed_urls(
    issuer: LocalIssuer, store: SpyStore
) -> None:
    """Keys are the format, purpose and SHA-256 of the URL; values hold no token, only documents."""
    token = issuer.token()
    with issuer.validator(key_store=store) as validator:
        validator.validate(token)
    digest = hashlib.sha256(issuer.jwks_uri.encode()).hexdigest()
    assert f"v1:jwks:{digest}" in [key for key, _, _ in store.writes]
    for _, value, _ in store.writes:
        assert token.encode() not in value
        assert token.split(".")[2].encode() not in value


def test_a_failed_fetch_is_not_stored(issuer: LocalIssuer, store: SpyStore) -> None:
    """An error answer (or a set without usable keys) never reaches the store."""
    import httpx

    issuer.jwks_override = httpx.Response(503)
    with issuer.validator(key_store=store) as validator, pytest.raises(KeySetUnavailable):
        validator.validate(issuer.token())
    assert [key.split(":")[1] for key, _, _ in store.writes] == ["discovery"]


def test_each_issuer_has_its_own_documents(
    issuer: LocalIssuer, store: SpyStore, clock: FakeClock
) -> None:
    """With issuers=[...], each issuer's documents are stored and read under its own URLs."""
    other = LocalIssuer("https://other.test/", audience=issuer.audience, clock=clock)
    import httpx

    def both(request: httpx.Request) -> httpx.Response:
        return (other if request.url.host == "other.test" else issuer).handle(request)

    def worker() -> Validator:
        return Validator(
            issuers=[issuer.issuer, other.issuer],
            audience=issuer.audience,
            clock=clock,
            key_store=store,
            transport=httpx.MockTransport(both),
        )

    with worker() as first, worker() as second:
        for validator in (first, second):
            validator.validate(issuer.token())
            validator.validate(other.token())
    assert fetches(issuer) == fetches(other) == (1, 1)
    assert len(store) == 4
    other.release_keys()


# --- processes that miss at the same moment: one claims the fetch ---------------------------


def _claim_key(issuer: LocalIssuer, purpose: str = "discovery") -> str:
    url = issuer.issuer + DISCOVERY[1:] if purpose == "discovery" else issuer.jwks_uri
    return StoredDocument.key(FetchRequest(url, purpose)) + ":fetching"


class OtherProcess(MemoryKeyStore):
    """A store where another process holds the claim and writes its documents after
    ``after`` reads of them (None: it never does)."""

    def __init__(self, documents: dict[str, bytes], after: int | None) -> None:
        super().__init__()
        self.documents, self.after, self.reads = documents, after, 0

    def get(self, key: str) -> bytes | None:
        if key in self.documents:
            self.reads += 1
            if self.after is not None and self.reads > self.after:
                return self.documents[key]
        return super().get(key)


def _written_by_another(issuer: LocalIssuer) -> dict[str, bytes]:
    """The documents another worker would have stored, from a validator of its own."""
    store = SpyStore()
    with issuer.validator(key_store=store) as other:
        other.validate(issuer.token())
    issuer.requests.clear()
    return {key: value for key, value, _ in store.writes}


def test_a_worker_waits_for_the_one_that_claimed_the_fetch(issuer: LocalIssuer) -> None:
    """Another process claimed both fetches: this one polls the store and takes its documents."""
    store = OtherProcess(_written_by_another(issuer), after=2)
    store.add(_claim_key(issuer), 10)
    store.add(_claim_key(issuer, "jwks"), 10)
    events: list[Any] = []
    with issuer.validator(key_store=store, on_event=events.append) as validator:
        assert validator.validate(issuer.token()).subject == "auth0|user-1"
    assert fetches(issuer) == (0, 0)
    assert [e[0] for e in store_events(events)] == [
        "key_store_miss",
        "key_store_hit",
        "key_store_hit",
    ]


@pytest.mark.anyio
async def test_an_async_worker_waits_without_blocking_its_loop(issuer: LocalIssuer) -> None:
    """The async shell polls with anyio.sleep: a task beside it keeps running meanwhile."""
    store = OtherProcess(_written_by_another(issuer), after=4)
    store.add(_claim_key(issuer), 10)
    ticks: list[int] = []

    async def beside() -> None:
        for n in range(3):
            ticks.append(n)
            await anyio.sleep(0.01)

    validator = issuer.async_validator(key_store=store)
    async with validator, anyio.create_task_group() as group:
        group.start_soon(beside)
        assert (await validator.validate(issuer.token())).subject == "auth0|user-1"
    assert ticks == [0, 1, 2]
    assert fetches(issuer) == (0, 0)


def test_a_claim_nobody_fulfils_delays_the_fetch_by_the_timeout_at_most(
    issuer: LocalIssuer,
) -> None:
    """A claim held by a process that never stores anything: after timeout, fetch anyway."""
    store = OtherProcess({}, after=None)
    store.add(_claim_key(issuer), 10)
    started = time.monotonic()
    with issuer.validator(key_store=store, timeout=0.2) as validator:
        validator.validate(issuer.token())
    assert 0.2 <= time.monotonic() - started < 2
    assert fetches(issuer) == (1, 1)


def test_an_optional_refresh_is_skipped_while_another_process_fetches(
    issuer: LocalIssuer, store: SpyStore, clock: FakeClock
) -> None:
    """Stale keys, another process claimed the refresh: serve the keys we have, fetch nothing."""
    events: list[Any] = []
    with issuer.validator(key_store=store, on_event=events.append) as validator:
        validator.validate(issuer.token())
        clock.advance(601)
        store.add(_claim_key(issuer, "jwks"), 10)
        assert validator.validate(issuer.token()).subject == "auth0|user-1"
    assert fetches(issuer) == (1, 1)
    assert ("key_store_miss", "jwks", "another process is fetching") in store_events(events)


def test_the_claim_is_let_go_after_the_fetch_even_when_it_failed(
    issuer: LocalIssuer, store: SpyStore
) -> None:
    """Once the fetch is over, success or not, the next process may claim it at once."""
    import httpx

    issuer.jwks_override = httpx.Response(503)
    with issuer.validator(key_store=store) as validator, pytest.raises(KeySetUnavailable):
        validator.validate(issuer.token())
    assert store.add(_claim_key(issuer), 1)
    assert store.add(_claim_key(issuer, "jwks"), 1)


def test_workers_missing_together_make_one_fetch(issuer: LocalIssuer, store: SpyStore) -> None:
    """Eight validators (own locks, own caches) on threads, cold at once, a slow issuer: one
    fetch of each document, and every token validates."""
    import httpx

    def slow(request: httpx.Request) -> httpx.Response:
        time.sleep(0.1)
        return issuer.handle(request)

    token = issuer.token()
    validators = [
        Validator(
            issuer=issuer.issuer,
            audience=issuer.audience,
            clock=issuer.clock,
            key_store=store,
            transport=httpx.MockTransport(slow),
        )
        for _ in range(8)
    ]
    barrier = threading.Barrier(len(validators))
    answers: list[str] = []

    def work(validator: Validator) -> None:
        barrier.wait()
        answers.append(validator.validate(token).subject)

    threads = [threading.Thread(target=work, args=(v,)) for v in validators]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for validator in validators:
        validator.close()
    assert answers == ["auth0|user-1"] * 8
    assert fetches(issuer) == (1, 1)


def test_memory_store_claims_once_until_deleted_or_expired() -> None:
    """add() succeeds once while the claim is live; after delete() or its ttl, again."""
    now = [0.0]
    store = MemoryKeyStore(clock=lambda: now[0])
    assert store.add("claim", 5)
    assert not store.add("claim", 5)
    store.delete("claim")
    assert store.add("claim", 5)
    now[0] = 5
    assert store.add("claim", 5)
    store.delete("absent")


# --- a store that fails or lies ---------------------------------------------------------------


def test_a_store_outage_never_fails_validation(
    issuer: LocalIssuer, clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    """Every store call fails: tokens validate from the issuer, one warning per outage."""
    down, events = DownStore(), []
    caplog.set_level(logging.WARNING, logger="apiguard.jwks")
    with issuer.validator(key_store=down, on_event=events.append, cooldown=1) as validator:
        validator.validate(issuer.token())
        clock.advance(2)
        issuer.rotate()
        validator.validate(issuer.token())
    assert fetches(issuer) == (1, 2)
    assert down.calls == 9  # a read, a claim and a write per fetch
    warnings = [r for r in caplog.records if "key store" in r.getMessage()]
    assert len(warnings) == 1
    assert "ConnectionError" in warnings[0].getMessage()
    failed = [e for e in store_events(events) if e[0] == "key_store_failed"]
    assert len(failed) == 9
    assert failed[0] == ("key_store_failed", "discovery", "key store: ConnectionError")


@pytest.mark.anyio
async def test_an_async_validator_survives_a_store_outage(issuer: LocalIssuer) -> None:
    """The async shell answers from the issuer too when its store raises."""
    async with issuer.async_validator(key_store=DownStore()) as validator:
        assert (await validator.validate(issuer.token())).subject == "auth0|user-1"
    assert fetches(issuer) == (1, 1)


def test_the_warning_comes_again_after_the_store_recovered(
    issuer: LocalIssuer, clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    """An outage, an answer, another outage: two warnings (and an info that it is back)."""

    class Flaky(MemoryKeyStore):
        down = True

        def get(self, key: str) -> bytes | None:
            if self.down:
                raise TimeoutError("no answer")
            return super().get(key)

        def set(self, key: str, value: bytes, ttl: float) -> None:
            if self.down:
                raise TimeoutError("no answer")
            super().set(key, value, ttl)

        def add(self, key: str, ttl: float) -> bool:
            if self.down:
                raise TimeoutError("no answer")
            return super().add(key, ttl)

    flaky = Flaky()
    caplog.set_level(logging.INFO, logger="apiguard.jwks")
    with issuer.validator(key_store=flaky, cooldown=1, cache_max_age=30) as validator:
        validator.validate(issuer.token())
        flaky.down = False
        clock.advance(31)
        validator.validate(issuer.token())
        flaky.down = True
        clock.advance(31)
        validator.validate(issuer.token())
    messages = [r.getMessage() for r in caplog.records if "key store" in r.getMessage()]
    assert [m.split(" (")[0].split(";")[0] for m in messages] == [
        "key store: TimeoutError",
        "key store answers again",
        "key store: TimeoutError",
    ]


def _stored(issuer: LocalIssuer, at: str, body: Any, **header: Any) -> bytes:
    fields = {"url": at, "fetched_at": NOW, "cache_control": "", **header}
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    return b"apiguard-document/1\n" + json.dumps(fields).encode() + b"\n" + raw


def _discovery(local: LocalIssuer, **changes: Any) -> dict[str, Any]:
    return {**local.discovery, **changes}


BAD_VALUES = [
    pytest.param(lambda i: "text, not bytes", "not bytes", id="not-bytes"),
    pytest.param(lambda i: b"x" * (2 << 20), "larger than", id="too-large"),
    pytest.param(lambda i: b"{}", "not a document of this version", id="no-magic"),
    pytest.param(lambda i: b"apiguard-document/1\n{}", "no valid header", id="no-body-line"),
    pytest.param(lambda i: b"apiguard-document/1\n[oops\n{}", "not JSON", id="header-not-json"),
    pytest.param(lambda i: b"apiguard-document/1\n[]\n{}", "not an object", id="header-list"),
    pytest.param(
        lambda i: _stored(i, i.jwks_uri, {}, url=None), "lacks its url", id="header-no-url"
    ),
    pytest.param(
        lambda i: _stored(i, i.jwks_uri, {}, fetched_at=True), "fetched_at", id="fetched-at-bool"
    ),
    pytest.param(
        lambda i: _stored(i, i.jwks_uri, {}, fetched_at=10**400), "fetched_at", id="fetched-at-huge"
    ),
    pytest.param(
        lambda i: _stored(i, i.jwks_uri, {}, fetched_at="NaN"), "fetched_at", id="fetched-at-text"
    ),
    pytest.param(
        lambda i: _stored(i, "https://attacker.test/jwks", {}), "another URL", id="another-url"
    ),
    pytest.param(
        lambda i: _stored(i, i.jwks_uri, {}, fetched_at=NOW + 3600), "future", id="from-the-future"
    ),
]


@pytest.mark.parametrize(("value", "why"), BAD_VALUES)
def test_a_bad_stored_value_is_refused_and_the_issuer_asked(
    value: Any, why: str, issuer: LocalIssuer, caplog: pytest.LogCaptureFixture
) -> None:
    """Whatever the store answers, the token validates from the issuer; the value is refused."""
    events: list[Any] = []
    tampered = FixedStore(value(issuer))
    with issuer.validator(key_store=tampered, on_event=events.append) as validator:
        assert validator.validate(issuer.token()).subject == "auth0|user-1"
    assert fetches(issuer) == (1, 1)
    failed = [e for e in store_events(events) if e[0] == "key_store_failed"]
    assert any(why in (error or "") for _, _, error in failed)
    assert any("refused" in r.getMessage() for r in caplog.records)


def _fixed_per_url(issuer: LocalIssuer, documents: dict[str, bytes]) -> KeyStore:
    store = MemoryKeyStore()
    for url, value in documents.items():
        purpose = "discovery" if "openid" in url else "jwks"
        store.set(StoredDocument.key(FetchRequest(url, purpose)), value, 600)
    return store


def _discovered(**changes: Any) -> Any:
    """A stored discovery document of the issuer, with these changes (or this body)."""

    def documents(local: LocalIssuer) -> dict[str, bytes]:
        url = local.issuer + DISCOVERY[1:]
        body = changes.get("body", _discovery(local, **changes))
        return {url: _stored(local, url, body)}

    return documents


def _key_set(body: Any) -> Any:
    """A stored JWKS of the issuer with this body."""
    return lambda local: {local.jwks_uri: _stored(local, local.jwks_uri, body)}


HOSTILE_DOCUMENTS = [
    pytest.param(
        _discovered(body="[]"),
        "stored discovery: discovery document is not a JSON object",
        id="discovery-not-an-object",
    ),
    pytest.param(
        _discovered(issuer="https://attacker.test/"),
        "stored discovery: discovery document names another issuer",
        id="discovery-of-another-issuer",
    ),
    pytest.param(
        _discovered(jwks_uri="http://attacker.test/jwks"),
        "stored discovery: discovery document has no usable https jwks_uri",
        id="discovery-jwks-uri-not-https",
    ),
    pytest.param(_key_set(b"not json"), "stored jwks: JWKS is not JSON", id="jwks-not-json"),
    pytest.param(
        _key_set({"keys": []}), "stored jwks: JWKS has no usable signing key", id="jwks-empty"
    ),
    pytest.param(
        _key_set({"keys": [{"kty": "oct", "k": "c2VjcmV0"}]}),
        "stored jwks: JWKS has no usable signing key",
        id="jwks-shared-secret",
    ),
    pytest.param(
        _key_set({"keys": [{}] * 101}),
        "stored jwks: JWKS has 101 keys, more than 100",
        id="jwks-too-many-keys",
    ),
]


@pytest.mark.parametrize(("documents", "why"), HOSTILE_DOCUMENTS)
def test_stored_documents_pass_the_same_checks_as_fetched_ones(
    documents: Any, why: str, issuer: LocalIssuer
) -> None:
    """A stored discovery document of another issuer, or a JWKS without usable keys, is refused."""
    events: list[Any] = []
    store = _fixed_per_url(issuer, documents(issuer))
    with issuer.validator(key_store=store, on_event=events.append) as validator:
        assert validator.validate(issuer.token()).subject == "auth0|user-1"
    assert fetches(issuer) == (1, 1)
    assert ("key_store_failed", "discovery" if "discovery" in why else "jwks", why) in (
        store_events(events)
    )


def test_a_stale_stored_document_is_a_miss(issuer: LocalIssuer, clock: FakeClock) -> None:
    """A document older than its freshness lifetime is not taken (and said why)."""
    events: list[Any] = []
    store = MemoryKeyStore()
    with issuer.validator(key_store=store) as first:
        first.validate(issuer.token())
    clock.advance(601)
    with issuer.validator(key_store=store, on_event=events.append) as second:
        second.validate(issuer.token())
    assert ("key_store_miss", "discovery", "stale") in store_events(events)
    assert fetches(issuer) == (2, 2)


def test_store_events_say_hit_and_miss(issuer: LocalIssuer, store: SpyStore) -> None:
    """The first validator misses (not stored); the second hits, with the document's age."""
    first_events: list[Any] = []
    second_events: list[Any] = []
    with issuer.validator(key_store=store, on_event=first_events.append) as first:
        first.validate(issuer.token())
    with issuer.validator(key_store=store, on_event=second_events.append) as second:
        second.validate(issuer.token())
    assert store_events(first_events) == [
        ("key_store_miss", "discovery", "not stored"),
        ("key_store_miss", "jwks", "not stored"),
    ]
    hits = [e for e in second_events if getattr(e, "kind", None) == "key_store_hit"]
    assert [(e.purpose, e.age) for e in hits] == [("discovery", 0.0), ("jwks", 0.0)]
    assert hits[1].keys == 1
    assert not [e for e in second_events if getattr(e, "kind", None) == "fetch_succeeded"]


# --- configuration ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "message"),
    [
        pytest.param(42, "key_store: must be a redis:// URL or an apiguard.KeyStore", id="number"),
        pytest.param(object(), "key_store: must be a redis:// URL", id="no-methods"),
        pytest.param("memcached://x", "key store: the URL must start with redis://", id="scheme"),
    ],
)
def test_a_bad_key_store_is_refused_at_construction(value: Any, message: str) -> None:
    """The setting is checked when the validator is built, naming itself."""
    with pytest.raises(ConfigurationError, match=message):
        Validator(issuer="https://issuer.test/", audience="https://api.test", key_store=value)


def test_an_async_store_needs_the_async_validator(redis_free_url: str) -> None:
    """A sync Validator refuses a store whose methods are coroutines."""
    with pytest.raises(ConfigurationError, match="key_store: an async store needs AsyncValidator"):
        Validator(
            issuer="https://issuer.test/",
            audience="https://api.test",
            key_store=AsyncRedisKeyStore(redis_free_url),
        )


def test_a_blocking_redis_store_is_refused_by_the_async_validator(redis_free_url: str) -> None:
    """AsyncValidator refuses a RedisKeyStore: its calls would block the event loop."""
    with pytest.raises(ConfigurationError, match="key_store: AsyncValidator needs an AsyncRedis"):
        AsyncValidator(
            issuer="https://issuer.test/",
            audience="https://api.test",
            key_store=RedisKeyStore(redis_free_url),
        )


@pytest.fixture
def redis_free_url() -> str:
    """A redis:// URL where nothing listens (the client connects lazily, only when used)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return f"redis://127.0.0.1:{port}/0"


def test_a_url_builds_the_store_of_the_shells_style(redis_free_url: str) -> None:
    """key_store="redis://..." gives a Validator a RedisKeyStore, an AsyncValidator an async one."""
    options = {"issuer": "https://issuer.test/", "audience": "https://api.test"}
    with Validator(key_store=redis_free_url, **options) as sync:
        assert isinstance(sync._key_store, RedisKeyStore)
    validator = AsyncValidator(key_store=redis_free_url, **options)
    assert isinstance(validator._key_store, AsyncRedisKeyStore)


def test_without_a_key_store_nothing_changes(issuer: LocalIssuer) -> None:
    """No key_store: each validator fetches for itself, as before."""
    token = issuer.token()
    for _ in range(2):
        with issuer.validator() as validator:
            validator.validate(token)
    assert fetches(issuer) == (2, 2)


def test_memory_store_expires_and_bounds_its_entries() -> None:
    """Entries leave after their ttl, and the least recently stored first beyond maxsize."""
    now = [0.0]
    store = MemoryKeyStore(maxsize=2, clock=lambda: now[0])
    store.set("a", b"1", 10)
    store.set("b", b"2", 10)
    store.set("c", b"3", 10)
    assert (store.get("a"), store.get("b"), len(store)) == (None, b"2", 2)
    now[0] = 10
    assert store.get("b") is None
    with pytest.raises(ValueError, match="maxsize"):
        MemoryKeyStore(maxsize=0)
    assert repr(store) == "MemoryKeyStore(maxsize=2)"


# --- on a real Redis --------------------------------------------------------------------------


def test_redis_key_store_round_trips_under_its_prefix(redis_url: str) -> None:
    """A value set is read back, under the store's prefix, and expires with its ttl; a claim
    is taken once until deleted."""
    import redis

    store = RedisKeyStore(redis_url, prefix="test-keys:")
    try:
        store.set("jwks:abc", b"value", 0.2)
        assert store.get("jwks:abc") == b"value"
        assert store.get("jwks:other") is None
        assert store.add("claim", 5)
        assert not store.add("claim", 5)
        store.delete("claim")
        assert store.add("claim", 5)
        client = redis.Redis.from_url(redis_url)
        assert 0 < client.pttl("test-keys:jwks:abc") <= 200
        client.close()
    finally:
        store.close()


@pytest.mark.anyio
@pytest.mark.parametrize("store_type", [RedisKeyStore, AsyncRedisKeyStore])
async def test_a_redis_value_past_max_size_is_never_read_whole(
    store_type: Any, redis_url: str
) -> None:
    """A value larger than max_size is refused after reading max_size + 1 bytes of it."""
    import redis

    prefix = f"test-large-{store_type.__name__}:"
    client = redis.Redis.from_url(redis_url)
    client.set(prefix + "huge", b"x" * 4096)
    client.set(prefix + "fits", b"y" * 1024)
    client.close()
    store = store_type(redis_url, prefix=prefix, max_size=1024)

    async def answer(value: Any) -> Any:
        return await value if store_type is AsyncRedisKeyStore else value

    try:
        with pytest.raises(ConnectionError, match="larger than 1024 bytes"):
            await answer(store.get("huge"))
        assert await answer(store.get("fits")) == b"y" * 1024
    finally:
        await answer(store.aclose() if store_type is AsyncRedisKeyStore else store.close())


@pytest.mark.parametrize("max_size", [0, 1023, 2.5, True])
def test_redis_key_store_max_size_is_checked(max_size: Any, redis_free_url: str) -> None:
    """max_size is an integer of at least 1024 bytes."""
    with pytest.raises(ConfigurationError, match="key store: max_size"):
        RedisKeyStore(redis_free_url, max_size=max_size)


def test_a_validator_reads_as_much_as_its_max_jwks_size(redis_free_url: str) -> None:
    """A store built from a URL reads max_jwks_size plus room for the stored header."""
    with Validator(
        issuer="https://issuer.test/",
        audience="https://api.test",
        key_store=redis_free_url,
        max_jwks_size=4 << 20,
    ) as validator:
        assert validator._key_store.max_size == (4 << 20) + (16 << 10)


@pytest.mark.anyio
async def test_async_redis_key_store_round_trips(redis_url: str) -> None:
    """The async store reads back what it wrote."""
    store = AsyncRedisKeyStore(redis_url, prefix="test-async-keys:")
    try:
        await store.set("jwks:abc", b"value", 5)
        assert await store.get("jwks:abc") == b"value"
        assert await store.add("claim", 5)
        assert not await store.add("claim", 5)
        await store.delete("claim")
        assert await store.add("claim", 5)
    finally:
        await store.aclose()


@pytest.mark.anyio
@pytest.mark.parametrize("store_type", [RedisKeyStore, AsyncRedisKeyStore])
async def test_an_unreachable_redis_is_a_connection_error(
    store_type: Any, redis_free_url: str
) -> None:
    """Redis's own errors are translated once, into a ConnectionError naming Redis."""
    store = store_type(redis_free_url, timeout=0.5)

    async def answer(value: Any) -> Any:
        return await value if store_type is AsyncRedisKeyStore else value

    with pytest.raises(ConnectionError, match=r"^Redis: ConnectionError$"):
        await answer(store.get("k"))
    with pytest.raises(ConnectionError, match=r"^Redis: ConnectionError$"):
        await answer(store.set("k", b"v", 1))
    with pytest.raises(ConnectionError, match=r"^Redis: ConnectionError$"):
        await answer(store.add("k", 1))
    with pytest.raises(ConnectionError, match=r"^Redis: ConnectionError$"):
        await answer(store.delete("k"))
    if store_type is AsyncRedisKeyStore:
        await store.aclose()
    else:
        store.close()


def test_validators_share_documents_through_redis(issuer: LocalIssuer, redis_url: str) -> None:
    """Two validators given the same redis:// URL fetch each document once between them."""
    prefix = f"test-share-{issuer.current_key.kid}:"
    token = issuer.token()
    first = issuer.validator(key_store=RedisKeyStore(redis_url, prefix=prefix))
    second = issuer.validator(key_store=RedisKeyStore(redis_url, prefix=prefix))
    with first, second:
        first.validate(token)
        second.validate(token)
    first._key_store.close()
    second._key_store.close()
    assert fetches(issuer) == (1, 1)


def test_flask_reads_apiguard_key_store(redis_free_url: str) -> None:
    """APIGUARD_KEY_STORE (a redis:// URL) gives a Flask app's validator a RedisKeyStore."""
    from flask import Flask

    from apiguard.flask import ApiGuard

    app = Flask("shared")
    app.config.update(
        APIGUARD_ISSUER="https://issuer.test/",
        APIGUARD_AUDIENCE="https://api.test",
        APIGUARD_KEY_STORE=redis_free_url,
    )
    ApiGuard(app)
    validator = app.extensions["apiguard"].validator
    assert isinstance(validator._key_store, RedisKeyStore)
    validator.close()
