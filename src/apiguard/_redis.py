"""Replay and key stores on Redis (``pip install apiguard[redis]``).

Several workers or machines of one API share a Redis: a DPoP proof accepted by one is
refused by every other (one ``SET NX`` per proof), and a key set one fetched serves them
all (a ``GET`` per fetch step; for a fetch, a ``SET NX`` claim, a ``SET`` and a ``DEL``).
``redis`` is imported when a store is built, never by ``import apiguard``.

Any failure to get an answer (refused connection, timeout, a Redis error) is translated
here, once: for a replay store it is :class:`~apiguard.ReplayStoreUnavailable`, a 503 (an
unanswered replay check never accepts a proof); for a key store a ``ConnectionError``,
which the validator answers by fetching from the issuer (a key store is only a shortcut).
"""

from __future__ import annotations

import math
from typing import Any

from .errors import ConfigurationError, ReplayStoreUnavailable

__all__ = ["AsyncRedisKeyStore", "AsyncRedisReplayStore", "RedisKeyStore", "RedisReplayStore"]

_SCHEMES = ("redis://", "rediss://", "unix://")
#: What a key store reads of a value at most by default: the default ``max_jwks_size``
#: (1 MiB) and room for the stored header.
DEFAULT_MAX_VALUE = (1 << 20) + (16 << 10)


def _redis(label: str) -> Any:
    try:
        import redis
        import redis.asyncio
    except ImportError:  # pragma: no cover - the dev install has it
        raise ConfigurationError(
            f"{label}: the Redis store needs the redis package (pip install apiguard[redis])"
        ) from None
    return redis


def _expiry(ttl: float) -> int:
    # Milliseconds, rounded up: a key must not expire before its proof does.
    return max(1, math.ceil(ttl * 1000))


class _RedisStore:
    """What every store shares: the settings, the client, the errors that mean "no answer"."""

    #: How errors name the store ("replay store: ...").
    _label = "replay store"
    #: The prefix of the keys unless one is given.
    _prefix = "apiguard:dpop:"
    _asynchronous = False

    def __init__(
        self,
        url: str | None = None,
        *,
        client: Any = None,
        prefix: str | None = None,
        timeout: float = 1.0,
    ) -> None:
        label = self._label
        prefix = self._prefix if prefix is None else prefix
        if (url is None) == (client is None):
            raise ConfigurationError(f"{label}: give either a redis:// URL or a client")
        if url is not None and (not isinstance(url, str) or not url.startswith(_SCHEMES)):
            raise ConfigurationError(f"{label}: the URL must start with redis://, rediss://")
        if not isinstance(prefix, str) or not prefix:
            raise ConfigurationError(f"{label}: prefix must be a non-empty string")
        if (
            isinstance(timeout, bool)
            or not isinstance(timeout, int | float)
            or not 0 < timeout <= 30
        ):
            raise ConfigurationError(f"{label}: timeout must be between 0 and 30 seconds")
        redis = _redis(label)
        self._errors = (redis.RedisError, OSError, TimeoutError)
        self._owns_client = client is None
        if client is None:
            module = redis.asyncio if self._asynchronous else redis
            # No retries: a request waits on Redis at most ``timeout``, then goes on without.
            client = module.Redis.from_url(
                url,
                socket_timeout=timeout,
                socket_connect_timeout=timeout,
                retry=module.retry.Retry(redis.backoff.NoBackoff(), 0),
            )
        self._client = client
        self.prefix = prefix

    def _unavailable(self, exc: BaseException) -> ReplayStoreUnavailable:
        return ReplayStoreUnavailable(f"Redis: {exc.__class__.__name__}")

    def _no_answer(self, exc: BaseException) -> ConnectionError:
        return ConnectionError(f"Redis: {exc.__class__.__name__}")

    def __repr__(self) -> str:
        return f"{self.__class__.__name__}(prefix={self.prefix!r})"


class _SyncStore(_RedisStore):
    def close(self) -> None:
        """Close the connections, unless the client was given by the caller."""
        if self._owns_client:
            self._client.close()


class _AsyncStore(_RedisStore):
    _asynchronous = True

    async def aclose(self) -> None:
        """Close the connections, unless the client was given by the caller."""
        if self._owns_client:
            await self._client.aclose()


class RedisReplayStore(_SyncStore):
    """A replay store shared through Redis, for synchronous code (Flask, WSGI).

    Each proof is one ``SET <prefix><key> 1 NX PX <window>``: atomic, so two workers that
    see the same proof at once cannot both accept it, and expiring with the proof's window.

    Args:
        url: a ``redis://`` (or ``rediss://``, ``unix://``) URL.
        client: a ready ``redis.Redis`` instead of ``url`` (not closed by :meth:`close`).
        prefix: the prefix of the keys, to share a Redis with other data (default
            ``apiguard:dpop:``).
        timeout: seconds to connect and to wait for an answer; past it, 503.

    Raises:
        ConfigurationError: both or neither of ``url`` and ``client``, a URL of another
            scheme, or the redis package is not installed.

    >>> store = RedisReplayStore("redis://127.0.0.1:6379/0")  # doctest: +SKIP
    """

    def add(self, key: str, ttl: float) -> bool:
        """Remember ``key`` for ``ttl`` seconds; False if it is remembered already.

        Raises:
            ReplayStoreUnavailable: Redis did not answer.
        """
        try:
            stored = self._client.set(self.prefix + key, b"1", nx=True, px=_expiry(ttl))
        except self._errors as exc:
            raise self._unavailable(exc) from None
        return bool(stored)


class AsyncRedisReplayStore(_AsyncStore):
    """A replay store shared through Redis, for async code (Starlette, FastAPI).

    Takes the same arguments as :class:`RedisReplayStore` (``client`` a
    ``redis.asyncio.Redis``).

    >>> store = AsyncRedisReplayStore("redis://127.0.0.1:6379/0")  # doctest: +SKIP
    """

    async def add(self, key: str, ttl: float) -> bool:
        """Remember ``key`` for ``ttl`` seconds; False if it is remembered already.

        Raises:
            ReplayStoreUnavailable: Redis did not answer.
        """
        try:
            stored = await self._client.set(self.prefix + key, b"1", nx=True, px=_expiry(ttl))
        except self._errors as exc:
            raise self._unavailable(exc) from None
        return bool(stored)


class _RedisKeys(_RedisStore):
    """What both key stores share: a bounded read of a stored value."""

    _label = "key store"
    _prefix = "apiguard:keys:"

    def __init__(
        self,
        url: str | None = None,
        *,
        client: Any = None,
        prefix: str | None = None,
        timeout: float = 1.0,
        max_size: int = DEFAULT_MAX_VALUE,
    ) -> None:
        super().__init__(url, client=client, prefix=prefix, timeout=timeout)
        if isinstance(max_size, bool) or not isinstance(max_size, int) or max_size < 1024:
            raise ConfigurationError("key store: max_size must be an integer of at least 1024")
        self.max_size = max_size

    def _range(self, key: str) -> tuple[str, int, int]:
        # GETRANGE reads at most one byte past the cap: a larger value is never read whole.
        return self.prefix + key, 0, self.max_size

    def _bounded(self, value: Any) -> bytes | None:
        if not value:
            return None  # GETRANGE answers b"" for a missing key; a document is never empty
        if len(value) > self.max_size:
            raise ConnectionError(f"Redis: stored value larger than {self.max_size} bytes")
        return bytes(value)


class RedisKeyStore(_SyncStore, _RedisKeys):
    """A key store shared through Redis, for synchronous code (Flask, Django, WSGI).

    Each fetch step of a validator is one ``GET <prefix><key>``; a fetch from the issuer is
    claimed with ``SET <prefix><key>:fetching 1 NX PX <timeout>`` (processes that lose wait
    for the winner's document), and its document stored with
    ``SET <prefix><key> <document> PX <freshness>``, so it leaves Redis when no validator
    would take it any more. Values are public documents (discovery, JWKS), never tokens.

    Args:
        url: a ``redis://`` (or ``rediss://``, ``unix://``) URL.
        client: a ready ``redis.Redis`` instead of ``url`` (not closed by :meth:`close`).
        prefix: the prefix of the keys, to share a Redis with other data (default
            ``apiguard:keys:``).
        timeout: seconds to connect and to wait for an answer; past it, the validator
            fetches from the issuer instead.
        max_size: the most bytes read of a stored value (``GETRANGE``: a larger value is
            never read whole, and is refused). Give at least the validator's
            ``max_jwks_size`` plus 16 KiB; a validator given a URL does so itself.

    Raises:
        ConfigurationError: both or neither of ``url`` and ``client``, a URL of another
            scheme, or the redis package is not installed.

    >>> store = RedisKeyStore("redis://127.0.0.1:6379/0")  # doctest: +SKIP
    >>> validator = Validator(issuer=..., audience=..., key_store=store)  # doctest: +SKIP

    Warning:
        Whoever can write to this Redis can make the API trust keys of their own: give it
        a password (or ACL user) and TLS (``rediss://``) beyond one machine.
    """

    def get(self, key: str) -> bytes | None:
        """The document stored under ``key``, or None.

        Raises:
            ConnectionError: Redis did not answer, or the value is larger than ``max_size``.
        """
        try:
            value = self._client.getrange(*self._range(key))
        except self._errors as exc:
            raise self._no_answer(exc) from None
        return self._bounded(value)

    def set(self, key: str, value: bytes, ttl: float) -> None:
        """Store a document under ``key`` for ``ttl`` seconds.

        Raises:
            ConnectionError: Redis did not answer.
        """
        try:
            self._client.set(self.prefix + key, value, px=_expiry(ttl))
        except self._errors as exc:
            raise self._no_answer(exc) from None

    def add(self, key: str, ttl: float) -> bool:
        """Store a claim under ``key`` for ``ttl`` seconds unless one is there (``SET NX``).

        Raises:
            ConnectionError: Redis did not answer.
        """
        try:
            return bool(self._client.set(self.prefix + key, b"1", nx=True, px=_expiry(ttl)))
        except self._errors as exc:
            raise self._no_answer(exc) from None

    def delete(self, key: str) -> None:
        """Remove ``key``.

        Raises:
            ConnectionError: Redis did not answer.
        """
        try:
            self._client.delete(self.prefix + key)
        except self._errors as exc:
            raise self._no_answer(exc) from None


class AsyncRedisKeyStore(_AsyncStore, _RedisKeys):
    """A key store shared through Redis, for async code (Starlette, FastAPI).

    Takes the same arguments as :class:`RedisKeyStore` (``client`` a
    ``redis.asyncio.Redis``).

    >>> store = AsyncRedisKeyStore("redis://127.0.0.1:6379/0")  # doctest: +SKIP
    """

    async def get(self, key: str) -> bytes | None:
        """The document stored under ``key``, or None (see :meth:`RedisKeyStore.get`)."""
        try:
            value = await self._client.getrange(*self._range(key))
        except self._errors as exc:
            raise self._no_answer(exc) from None
        return self._bounded(value)

    async def set(self, key: str, value: bytes, ttl: float) -> None:
        """Store a document under ``key`` for ``ttl`` seconds (see :meth:`RedisKeyStore.set`)."""
        try:
            await self._client.set(self.prefix + key, value, px=_expiry(ttl))
        except self._errors as exc:
            raise self._no_answer(exc) from None

    async def add(self, key: str, ttl: float) -> bool:
        """Store a claim unless one is there (see :meth:`RedisKeyStore.add`)."""
        try:
            return bool(await self._client.set(self.prefix + key, b"1", nx=True, px=_expiry(ttl)))
        except self._errors as exc:
            raise self._no_answer(exc) from None

    async def delete(self, key: str) -> None:
        """Remove ``key`` (see :meth:`RedisKeyStore.delete`)."""
        try:
            await self._client.delete(self.prefix + key)
        except self._errors as exc:
            raise self._no_answer(exc) from None
