"""Key stores: fetched discovery documents and key sets shared between processes.

Every worker of an API has its own validator, so its own key cache. With a key store, the
one that fetches a document from the issuer writes it there, and the others read it back
instead of fetching it themselves: 64 workers fetch once per rotation instead of 64 times.
What is shared is public data only (the URL, when it was fetched, its ``Cache-Control``,
the body); parsing and the cooldown stay in each process. Single flight does too, and
across processes a short claim in the store (``add``) makes workers that miss at the
same moment wait for one fetch rather than make one each.

:class:`SharedDocuments` is the sans-I/O plan of one fetch step: it says which store
reads, issuer fetches and store writes to perform, and the shells in
:mod:`apiguard.validator` perform them. A store that fails or answers garbage never fails
a validation: the issuer is asked instead (and a warning logged once per outage).
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Generator
from dataclasses import dataclass
from typing import Any, Final, Literal, Protocol, runtime_checkable

from .events import KeySourceEvent, emit
from .jwks import FetchRequest, KeySource, Response, StoredDocument

__all__ = [
    "AsyncKeyStore",
    "KeyStore",
    "MemoryKeyStore",
    "SharedDocuments",
    "StoreCall",
    "Wait",
]

logger = logging.getLogger("apiguard.jwks")


@runtime_checkable
class KeyStore(Protocol):
    """Where validators in several processes share fetched discovery documents and key sets.

    Values are opaque bytes under keys apiguard chooses (the SHA-256 of the URL, behind the
    store's own prefix); a value read back is treated as hostile input, parsed as strictly
    as a fetched body. ``add`` and ``delete`` hold a short claim ("this process is fetching
    that URL"), so that processes missing at the same moment make one fetch, not one each.
    Any exception means "the store cannot answer": the validator then fetches from the
    issuer, and never fails a validation because of the store.

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

    def add(self, key: str, ttl: float) -> bool:
        """Store a marker under ``key`` for ``ttl`` seconds unless one is there (atomic);
        whether it was stored."""
        ...

    def delete(self, key: str) -> None:
        """Remove ``key`` (nothing happens if it is not there)."""
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

    async def add(self, key: str, ttl: float) -> bool:
        """Store a marker under ``key`` for ``ttl`` seconds unless one is there (atomic)."""
        ...

    async def delete(self, key: str) -> None:
        """Remove ``key`` (nothing happens if it is not there)."""
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
            return self._live(key)

    def set(self, key: str, value: bytes, ttl: float) -> None:
        """Store ``value`` under ``key`` for ``ttl`` seconds."""
        with self._lock:
            self._put(key, value, ttl)

    def add(self, key: str, ttl: float) -> bool:
        """Store a marker under ``key`` for ``ttl`` seconds unless one is live there."""
        with self._lock:
            if self._live(key) is not None:
                return False
            self._put(key, b"1", ttl)
            return True

    def delete(self, key: str) -> None:
        """Remove ``key``."""
        with self._lock:
            self._items.pop(key, None)

    def _live(self, key: str) -> bytes | None:
        item = self._items.get(key)
        if item is None:
            return None
        if self._clock() >= item[0]:
            del self._items[key]
            return None
        return item[1]

    def _put(self, key: str, value: bytes, ttl: float) -> None:
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
class StoreCall:
    """One call of the key store (``get``, ``set``, ``add`` or ``delete``, with its
    arguments); the shell answers with what it returned, or the exception it raised."""

    method: Literal["get", "set", "add", "delete"]
    args: tuple[Any, ...]

    def run(self, store: Any) -> Any:
        """Call the store (its answer may be awaitable, for an async store)."""
        return getattr(store, self.method)(*self.args)


@dataclass(frozen=True, slots=True)
class Wait:
    """Sleep ``seconds`` (without blocking an event loop) before the next step."""

    seconds: float


#: A step of :meth:`SharedDocuments.steps`: a store call, a pause, or a fetch from the
#: issuer (the shell answers that one with the outcome and its duration in seconds).
Step = StoreCall | Wait | FetchRequest

#: Seconds between two looks at the store while another process fetches.
POLL_INTERVAL: Final = 0.05


class SharedDocuments:
    """How a validator's fetch step uses its key store (sans-I/O; one per validator).

    Args:
        store: the key store, or None (then a step is just the fetch).
        max_size: the largest body read back, in bytes (``max_jwks_size``).
        clock: seconds since the epoch (the validator's clock).
        timeout: the validator's fetch timeout, in seconds: how long a claim holds, and how
            long another process's fetch is waited for.
    """

    def __init__(
        self, store: Any, *, max_size: int, clock: Callable[[], float], timeout: float = 5.0
    ) -> None:
        self.store = store
        self._max_size = max_size
        self._clock = clock
        self._timeout = timeout
        #: How often a needed fetch looks at the store while another process fetches.
        self._polls = max(1, math.ceil(timeout / POLL_INTERVAL))
        #: Whether the store failed last time: the warning is logged once per outage.
        self._down = False

    def steps(
        self,
        source: KeySource,
        request: FetchRequest,
        wanted: tuple[str | None, str] | None = None,
    ) -> Generator[Step, Any, None]:
        """The steps of one fetch for ``source``, run under its single-flight lock.

        First the store: a document it has that serves as well ends the step (see
        :meth:`KeySource.take_stored`). Otherwise this process claims the fetch in the
        store (an ``add`` that only one process wins, for ``timeout`` seconds) and asks the
        issuer, stores the answer and lets the claim go. When another process holds the
        claim, an optional refresh is skipped (the keys we have serve meanwhile); a needed
        one polls the store for that process's document, and fetches itself if none
        comes within ``timeout``. ``wanted`` is the ``kid`` and ``alg`` of the token.
        """
        if self.store is None:
            yield from self._fetch(source, request, None)
            return
        key = StoredDocument.key(request)
        if (yield from self._read(source, request, key, wanted)):
            return
        claim = key + ":fetching"
        claimed = yield from self._claim(source, request, claim)
        if claimed is False:
            if request.optional:
                self._missed(source, request, "another process is fetching")
                return
            # Bounded by the count and by the clock: a slow store must not stretch the wait.
            deadline = time.monotonic() + self._timeout
            for _ in range(self._polls):
                if time.monotonic() >= deadline:
                    break
                yield Wait(POLL_INTERVAL)
                if (yield from self._read(source, request, key, wanted, quiet=True)):
                    return
                claimed = yield from self._claim(source, request, claim)
                if claimed is not False:
                    break
        # Claimed: the process that held the claim before may have stored its document
        # between our first look and the claim, so look once more before asking the issuer.
        if not claimed or not (yield from self._read(source, request, key, wanted, quiet=True)):
            yield from self._fetch(source, request, key)
        if claimed:
            yield from self._call(source, request, StoreCall("delete", (claim,)))

    def _read(
        self,
        source: KeySource,
        request: FetchRequest,
        key: str,
        wanted: tuple[str | None, str] | None,
        *,
        quiet: bool = False,
    ) -> Generator[Step, Any, bool]:
        """Whether the store had a document that now serves (it is installed then)."""
        answer = yield from self._call(source, request, StoreCall("get", (key,)))
        if answer is None or isinstance(answer, Exception):
            if answer is None and not quiet:
                self._missed(source, request, "not stored")
            return False
        return self._take(source, request, answer, wanted, quiet=quiet)

    def _claim(
        self, source: KeySource, request: FetchRequest, claim: str
    ) -> Generator[Step, Any, bool | None]:
        """True: this process fetches; False: another one does; None: the store failed."""
        answer = yield from self._call(
            source, request, StoreCall("add", (claim, self._timeout + 1))
        )
        return None if isinstance(answer, Exception) else bool(answer)

    def _fetch(
        self, source: KeySource, request: FetchRequest, key: str | None
    ) -> Generator[Step, Any, None]:
        """Ask the issuer; share an accepted answer under ``key`` (None: no store)."""
        outcome, duration = yield request
        now = self._clock()
        source.receive(request, outcome, now, duration=duration)
        if key is not None and source.shareable(request, outcome):
            assert isinstance(outcome, Response)
            cache_control = outcome.headers.get("cache-control", "")
            document = StoredDocument(request.url, now, cache_control, outcome.body)
            ttl = source.freshness(cache_control)
            yield from self._call(source, request, StoreCall("set", (key, document.encode(), ttl)))

    def _call(
        self, source: KeySource, request: FetchRequest, step: StoreCall
    ) -> Generator[Step, Any, Any]:
        """One store call; its answer, or the exception it raised (reported here)."""
        answer = yield step
        if isinstance(answer, Exception):
            self._unavailable(source, request, answer)
        else:
            self._answered()
        return answer

    def _take(
        self,
        source: KeySource,
        request: FetchRequest,
        value: Any,
        wanted: tuple[str | None, str] | None,
        *,
        quiet: bool = False,
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
            if not quiet:
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
