"""The bounded token cache shared by the validator core and the introspection core.

No I/O: an LRU keyed by text (a token, or its hash), read without a lock.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from typing import Generic, NamedTuple, TypeVar

__all__ = ["CacheInfo", "TokenCache"]

_V = TypeVar("_V")


class CacheInfo(NamedTuple):
    """What the verified-token cache holds (see :meth:`Validator.cache_info`).

    Attributes:
        currsize: tokens cached now.
        maxsize: the most it keeps (``token_cache_size``; 0 when the cache is off).
        seen_once: tokens validated once and remembered, to be cached on their second time.
    """

    currsize: int
    maxsize: int
    seen_once: int


class TokenCache(Generic[_V]):
    """A bounded LRU of verified tokens: reads take no lock, writes are serialised.

    cachetools would be the usual choice, but its LRUCache keeps the order in Python code
    that needs a lock even on a read. An OrderedDict's methods are each atomic (C code
    that calls back into no Python for ``str`` keys), so a hit needs no lock, as the hot path
    should not, and costs about half as much (see bench/README.md).

    A token enters only when it is validated for the second time (a "doorkeeper", as in
    TinyLFU): clients reuse a token until it expires, so nearly every cache-worthy token
    comes back, while a token seen once would cost a full entry (about 2 KB kept alive,
    which slows the next misses down) for nothing.
    """

    __slots__ = ("_data", "_lock", "_seen", "maxsize")

    def __init__(self, maxsize: int) -> None:
        self.maxsize = maxsize
        self._data: OrderedDict[str, _V] = OrderedDict()
        self._lock = threading.Lock()
        #: Hashes of tokens validated once; a collision only admits a token early.
        self._seen: set[int] = set()

    def admit(self, token: str) -> bool:
        """Whether ``token``, just validated, should be cached: yes from its second time."""
        seen = self._seen
        digest = hash(token)
        if digest in seen:
            seen.discard(digest)
            return True
        if len(seen) >= self.maxsize:
            seen.clear()  # bounded like the cache; forgetting only delays an admission
        seen.add(digest)
        return False

    @property
    def entries(self) -> OrderedDict[str, _V]:
        """The entries, to read without a lock: each OrderedDict method is atomic (above)."""
        return self._data

    def get(self, token: str) -> _V | None:
        """The entry for ``token``, now the most recently used, or None."""
        data = self._data
        entry = data.get(token)
        if entry is not None:
            # contextlib.suppress would cost as much as the rest of a hit.
            try:  # noqa: SIM105
                data.move_to_end(token)
            except KeyError:  # another thread evicted it since: the entry is still good
                pass
        return entry

    def put(self, token: str, entry: _V) -> None:
        """Remember ``entry``, evicting the least recently used beyond ``maxsize``."""
        with self._lock:
            data = self._data
            data[token] = entry
            data.move_to_end(token)
            if len(data) > self.maxsize:
                data.popitem(last=False)

    def peek(self, token: str) -> _V | None:
        """The entry for ``token``, without making it the most recently used."""
        return self._data.get(token)

    def pop(self, token: str) -> None:
        """Forget ``token`` (nothing happens if it is not cached)."""
        self._data.pop(token, None)

    def clear(self) -> None:
        """Forget every token, cached or seen once."""
        with self._lock:
            self._data.clear()
            self._seen.clear()

    def info(self) -> CacheInfo:
        """Sizes, for :meth:`ValidatorCore.cache_info`."""
        return CacheInfo(len(self._data), self.maxsize, len(self._seen))

    def __len__(self) -> int:
        return len(self._data)
