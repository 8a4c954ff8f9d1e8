"""Key stores: fetched discovery documents and key sets shared between processes.

Every worker of an API has its own validator, so its own key cache. With a key store, the
one that fetches a document from the issuer writes it there, and the others read it back
instead of fetching it themselves: 64 workers fetch once per rotation instead of 64 times.
What is shared is public data only (the URL, when it was fetched, its ``Cache-Control``,
the body); parsing, the cooldown and single flight stay in each process.

:class:`SharedDocuments` is the sans-I/O plan of one fetch step: it says which store
reads, issuer fetches and store writes to perform, and the shells in
:mod:`apiguard.validator` perform them. A store that fails or answers garbage never fails
a validation: the issuer is asked instead (and a warning logged once per outage).
"""

from __future__ import annotations

import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Generator
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

from .events import KeySourceEvent, emit
from .jwks import FetchRequest, KeySource, Response, StoredDocument

__all__ = [
    "AsyncKeyStore",
    "KeyStore",
    "MemoryKeyStore",
    "SharedDocuments",
    "StoreGet",
    "StoreSet",
]

logger = logging.getLogger("apiguard.jwks")


@runtime_checkable
class KeyStore(Protocol):
    """Where validators in several processes share fetched discovery documents and key sets.

    Values are opaque bytes under keys apiguard chooses (the SHA-256 of the URL, behind the
    store's own prefix); a value read back is treated as hostile input, parsed as strictly
    as a fetched body. Any exception means "the store cannot answer": the validator then
    fetches from the issuer, and never fails a validation because of the store.

    Warning:
        Whoever can write to the store can make your API trust keys of their own: protect
        it as you would the issuer's JWKS endpoint (authentication, TLS, not shared with
        untrusted code).
    """

    def get(self, key: str) -> bytes | None:
        """The value stored under ``key``, or None."""
        ...

    def set(self, key: str, value: bytes, ttl: float) -> None:
        """Store ``value`` under ``key`` for ``ttl`` seconds (replacing any other)."""
        ...


@runtime_checkable
class AsyncKeyStore(Protocol):
    """A :class:`KeyStore` for async code: the same methods, awaited."""

    async def get(self, key: str) -> bytes | None:
        """The value stored under ``key``, or None."""
        ...

    async def set(self, key: str, value: bytes, ttl: float) -> None:
        """Store ``value`` under ``key`` for ``ttl`` seconds (replacing any other)."""
        ...


class MemoryKeyStore:
    """A bounded in-process key store, for tests and for validators sharing one process.

    Several validators of one process (one per app, say) given the same store fetch each
    document once between them. Works with sync and async validators alike (no I/O).

    Args:
        maxsize: how many documents are kept (the least recently stored go first).
        clock: monotonic seconds, for tests.

    >>> store = MemoryKeyStore()
    >>> store.set("jwks:ab12", b"...", ttl=600)
    >>> store.get("jwks:ab12")
    b'...'
    """

    def __init__(self, maxsize: int = 1024, *, clock: Callable[[], float] = time.monotonic):
        if isinstance(maxsize, bool) or not isinstance(maxsize, int) or maxsize < 1:
            raise ValueError("maxsize: must be a positive integer")
        self.maxsize = maxsize
        self._clock = clock
        self._items: OrderedDict[str, tuple[float, bytes]] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: str) -> bytes | None:
        """The value stored under ``key``, or None once it expired."""
        with self._lock:
            item = self._items.get(key)
            if item is None:
                return None
            if self._clock() >= item[0]:
                del self._items[key]
                return None
            return item[1]

    def set(self, key: str, value: bytes, ttl: float) -> None:
        """Store ``value`` under ``key`` for ``ttl`` seconds."""
        with self._lock:
            self._items[key] = (self._clock() + ttl, value)
            self._items.move_to_end(key)
            while len(self._items) > self.maxsize:
                self._items.popitem(last=False)

    def __len__(self) -> int:
        return len(self._items)

    def __repr__(self) -> str:
        return f"MemoryKeyStore(maxsize={self.maxsize})"


# -- the plan of one fetch step -----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class StoreGet:
    """Read ``key`` from the key store; the shell answers with the value or the exception."""

    key: str

    def run(self, store: Any) -> Any:
        """Call the store (its answer may be awaitable, for an async store)."""
        return store.get(self.key)


@dataclass(frozen=True, slots=True)
class StoreSet:
    """Write ``value`` under ``key`` for ``ttl`` seconds; the shell answers None or the error."""

    key: str
    value: bytes
    ttl: float

    def run(self, store: Any) -> Any:
        """Call the store (its answer may be awaitable, for an async store)."""
        return store.set(self.key, self.value, self.ttl)


#: A step of :meth:`SharedDocuments.steps`: a store call, or a fetch from the issuer (the
#: shell answers that one with the outcome and its duration in seconds).
Step = StoreGet | StoreSet | FetchRequest


class SharedDocuments:
    """How a validator's fetch step uses its key store (sans-I/O; one per validator).

    Args:
        store: the key store, or None (then a step is just the fetch).
        max_size: the largest body read back, in bytes (``max_jwks_size``).
        clock: seconds since the epoch (the validator's clock).
    """

    def __init__(self, store: Any, *, max_size: int, clock: Callable[[], float]) -> None:
        self.store = store
        self._max_size = max_size
        self._clock = clock
        #: Whether the store failed last time: the warning is logged once per outage.
        self._down = False

    def steps(
        self,
        source: KeySource,
        request: FetchRequest,
        wanted: tuple[str | None, str] | None = None,
    ) -> Generator[Step, Any, None]:
        """The steps of one fetch for ``source``, run under its single-flight lock.

        First the store (a document it has that serves as well ends the step: see
        :meth:`KeySource.take_stored`), then the issuer, then the store again with what
        the issuer answered. ``wanted`` is the ``kid`` and ``alg`` of the token waiting.
        """
        key = StoredDocument.key(request) if self.store is not None else None
        if key is not None:
            answer = yield StoreGet(key)
            if isinstance(answer, Exception):
                self._unavailable(source, request, answer)
            else:
                self._answered()
                if answer is not None and self._take(source, request, answer, wanted):
                    return
                if answer is None:
                    self._missed(source, request, "not stored")
        outcome, duration = yield request
        now = self._clock()
        source.receive(request, outcome, now, duration=duration)
        if key is not None and source.shareable(request, outcome):
            assert isinstance(outcome, Response)
            cache_control = outcome.headers.get("cache-control", "")
            document = StoredDocument(request.url, now, cache_control, outcome.body)
            ttl = source.freshness(cache_control)
            failure = yield StoreSet(key, document.encode(), ttl)
            if isinstance(failure, Exception):
                self._unavailable(source, request, failure)
            else:
                self._answered()

    def _take(
        self,
        source: KeySource,
        request: FetchRequest,
        value: Any,
        wanted: tuple[str | None, str] | None,
    ) -> bool:
        try:
            document = StoredDocument.decode(value, max_size=self._max_size)
            why_not = source.take_stored(request, document, self._clock(), wanted=wanted)
        except ValueError as exc:
            logger.warning(
                "key store value for %s refused (%s): fetching from the issuer",
                request.url,
                exc,
                extra={"issuer": source.issuer, "reason": str(exc)},
            )
            self._event(source, request, "key_store_failed", str(exc))
            return False
        if why_not is not None:
            self._missed(source, request, why_not)
            return False
        logger.debug("%s of %s taken from the key store", request.purpose, source.issuer)
        return True

    def _missed(self, source: KeySource, request: FetchRequest, why: str) -> None:
        self._event(source, request, "key_store_miss", why)

    def _unavailable(self, source: KeySource, request: FetchRequest, exc: Exception) -> None:
        reason = f"key store: {exc.__class__.__name__}"
        if not self._down:
            self._down = True
            logger.warning(
                "%s (%s); fetching from the issuer until it answers again",
                reason,
                exc,
                extra={"issuer": source.issuer, "reason": reason},
            )
        self._event(source, request, "key_store_failed", reason)

    def _answered(self) -> None:
        if self._down:
            self._down = False
            logger.info("key store answers again")

    @staticmethod
    def _event(source: KeySource, request: FetchRequest, kind: Any, error: str) -> None:
        hook = source.on_event
        if hook is not None:
            event = KeySourceEvent(
                kind, source.issuer, purpose=request.purpose, url=request.url, error=error
            )
            emit(hook, event)
