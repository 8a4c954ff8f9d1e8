"""The validators: thin sync and async shells over :class:`~apiguard._core.ValidatorCore`.

Each shell does only what the core cannot: the HTTP request the core asks for, performed
by one caller at a time (a lock per validator, single flight), with redirects off, a total
deadline and a body cap. Everything else, validation and caching included, is the core's.
"""

from __future__ import annotations

import contextlib
import socket
import threading
from collections.abc import Callable, Iterable, Sequence
from types import TracebackType
from typing import Any, Self

import anyio
import httpx

from ._core import Pending, ValidatorCore, build_config
from .claims import DEFAULT_SCOPE_CLAIMS, AccessToken
from .errors import ConfigurationError
from .jwks import FetchRequest, Response

__all__ = ["AsyncValidator", "Validator"]

_HEADERS = {"Accept": "application/json"}
# The sync shell's deadline needs the fetch's own socket (see _Watchdog): asking the server
# to close keeps that connection out of the pool, so the next fetch opens its own too.
_FETCH_HEADERS = {**_HEADERS, "Connection": "close"}


class _Watchdog:
    """Ends a sync fetch at its deadline, connect, headers and body included.

    httpx's sync timeouts apply to each socket operation, so an issuer that trickles its
    response headers a byte at a time never trips them. The async shell has a cancel scope
    for this; here a timer shuts the fetch's socket down (found through httpx's ``trace``
    extension when the connection is opened), which wakes the blocked read with an error.
    A connection reused from a caller's pool is not seen: it keeps the per-read timeouts.
    """

    __slots__ = ("_lock", "_sockets", "_timer", "fired")

    def __init__(self, seconds: float) -> None:
        self.fired = False
        self._sockets: list[socket.socket] = []
        self._lock = threading.Lock()
        self._timer = threading.Timer(seconds, self._fire)
        self._timer.daemon = True
        self._timer.start()

    def trace(self, event: str, info: dict[str, Any]) -> None:
        """httpx ``trace`` hook: remember the fetch's socket; stop at once if past due."""
        if event == "connection.connect_tcp.complete":
            stream = info.get("return_value")
            sock = stream.get_extra_info("socket") if stream is not None else None
            if isinstance(sock, socket.socket):
                with self._lock:
                    self._sockets.append(sock)
                    if self.fired:
                        _shut(sock)
        if self.fired:
            raise TimeoutError("fetch not done within the timeout")

    def _fire(self) -> None:
        with self._lock:
            self.fired = True
            for sock in self._sockets:
                _shut(sock)

    def cancel(self) -> None:
        """The fetch is over: the timer must not touch a socket that may be reused."""
        self._timer.cancel()


def _shut(sock: socket.socket) -> None:
    with contextlib.suppress(OSError):  # already closed: the fetch is over anyway
        sock.shutdown(socket.SHUT_RDWR)


class _Base:
    _core: ValidatorCore

    def __init__(
        self,
        *,
        issuer: str,
        audience: str | Iterable[str],
        jwks_uri: str | None = None,
        algorithms: Iterable[str] | None = None,
        leeway: float = 30.0,
        max_token_age: float | None = None,
        required_claims: Iterable[str] = (),
        token_type: str | None = None,
        scope_claims: Sequence[str] = DEFAULT_SCOPE_CLAIMS,
        shared_secret: str | bytes | None = None,
        cache_max_age: float = 600.0,
        cooldown: float = 30.0,
        max_stale: float = 86400.0,
        timeout: float = 5.0,
        max_token_size: int = 16384,
        max_jwks_size: int = 1 << 20,
        token_cache_size: int = 4096,
        clock: Callable[[], float] | None = None,
    ) -> None:
        self._core = ValidatorCore(
            build_config(
                issuer=issuer,
                audience=audience,
                jwks_uri=jwks_uri,
                algorithms=algorithms,
                leeway=leeway,
                max_token_age=max_token_age,
                required_claims=required_claims,
                token_type=token_type,
                scope_claims=scope_claims,
                shared_secret=shared_secret,
                cache_max_age=cache_max_age,
                cooldown=cooldown,
                max_stale=max_stale,
                timeout=timeout,
                max_token_size=max_token_size,
                max_jwks_size=max_jwks_size,
                token_cache_size=token_cache_size,
                clock=clock,
            )
        )

    @property
    def issuer(self) -> str:
        """The issuer tokens must come from."""
        return self._core.config.issuer

    @property
    def audiences(self) -> frozenset[str]:
        """The audiences a token may name (any one of them suffices)."""
        return self._core.config.audiences

    def __repr__(self) -> str:
        return f"{self.__class__.__name__}(issuer={self.issuer!r})"


class Validator(_Base):
    """Validate JWT access tokens, fetching the issuer's keys with an ``httpx.Client``.

    Args:
        issuer: the exact ``iss`` expected (Auth0's ends with ``/``). Keys are discovered
            from it unless ``jwks_uri`` or ``shared_secret`` is given.
        audience: the API identifier(s); a token must name at least one in ``aud``.
        jwks_uri: where the keys are, instead of discovery. https only (http only for
            loopback hosts).
        algorithms: allowed ``alg`` values. Default: every asymmetric algorithm (RS*, PS*,
            ES*, EdDSA), each only with a key of its own type and curve. ``none`` never.
        leeway: clock skew tolerated on ``exp``/``nbf``/``iat``, in seconds (0 to 300).
        max_token_age: reject tokens whose ``iat`` is older than this many seconds.
        required_claims: claim names that must be present and not null.
        token_type: ``"at+jwt"`` for RFC 9068 strict mode (``typ`` and the RFC's claims
            required); None accepts ``typ`` absent, ``JWT`` or ``at+jwt``.
        scope_claims: where scopes are read (default ``scope`` and ``scp``). Add
            ``"permissions"`` only if a token's Auth0 RBAC permissions should count as
            granted scopes (see the warning).
        shared_secret: the API's HS256 signing secret (Auth0 HS256 APIs); at least as long
            as the hash. Excludes a JWKS.
        cache_max_age: how long fetched keys are fresh, in seconds (``Cache-Control:
            max-age`` is honoured between ``cooldown`` and this).
        cooldown: the least time between two key fetches, in seconds.
        max_stale: how long past freshness the last good keys still serve while the
            issuer is unreachable, in seconds.
        timeout: total time for one fetch, body included, in seconds.
        max_token_size: longest token accepted, in characters.
        max_jwks_size: largest discovery or JWKS body read, in bytes.
        token_cache_size: how many verified tokens are remembered (0 turns the cache off).
            Entries expire with the token and leave with their key; time claims are
            checked again on every hit.
        http_client: an ``httpx.Client`` to fetch with (not closed by :meth:`close`).
        clock: returns seconds since the epoch (default ``time.time``); for tests.

    Raises:
        ConfigurationError: a setting is missing or unsafe (the message names it).

    >>> with Validator(issuer="https://tenant.example/", audience="https://api") as v:
    ...     token = v.validate(bearer)  # doctest: +SKIP

    Warning:
        Raising ``leeway`` or ``max_stale``, or setting ``cooldown`` to 0, weakens the
        guarantees above; ``http://`` issuers are for loopback development only.
        ``scope_claims=("scope", "scp", "permissions")`` reads Auth0's RBAC
        ``permissions`` as scopes: everything the *user* may do then counts as granted to
        whichever app holds the token, a third-party app that was consented one scope
        included. Leave it out and check :attr:`AccessToken.permissions` where a route
        really means the user's role.
    """

    def __init__(self, *, http_client: httpx.Client | None = None, **options: Any) -> None:
        if http_client is not None and not isinstance(http_client, httpx.Client):
            raise ConfigurationError("http_client: must be an httpx.Client")
        super().__init__(**options)
        self._owns_client = http_client is None
        self._client = http_client or httpx.Client()
        self._lock = threading.Lock()

    def validate(self, token: str) -> AccessToken:
        """Validate ``token`` and return what it grants.

        Raises:
            InvalidToken: (a subclass per reason) the token is not acceptable.
            KeySetUnavailable: the issuer's keys cannot be had; answer 503.
        """
        result = self._core.validate(token)
        while isinstance(result, Pending):
            request = result.request
            # An optional refresh is skipped while another caller fetches: the keys we have
            # still serve, so nobody waits on the network for them.
            if self._lock.acquire(blocking=not request.optional):
                try:
                    if self._core.generation == request.generation:
                        self._core.receive(request, self._fetch(request))
                finally:
                    self._lock.release()
                result = self._core.resume(result)
            else:
                result = self._core.resume(result, refresh=False)
        return result

    def _fetch(self, request: FetchRequest) -> Response | Exception:
        timeout = self._core.config.timeout
        deadline = self._core.deadline()
        watchdog = _Watchdog(timeout)
        try:
            with self._client.stream(
                "GET",
                request.url,
                headers=_FETCH_HEADERS,
                follow_redirects=False,
                timeout=timeout,
                extensions={"trace": watchdog.trace},
            ) as answer:
                reader = self._core.body_reader(
                    answer.status_code, answer.headers, deadline=deadline
                )
                if reader.wants_body:
                    for chunk in answer.iter_bytes():
                        reader.feed(chunk)
                return reader.response()
        except Exception as exc:  # any failure of the fetch is the core's to judge
            return TimeoutError("fetch not done within the timeout") if watchdog.fired else exc
        finally:
            watchdog.cancel()

    def close(self) -> None:
        """Close the HTTP client, unless it was given by the caller."""
        if self._owns_client:
            self._client.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


class AsyncValidator(_Base):
    """Validate JWT access tokens in async code, fetching keys with an ``httpx.AsyncClient``.

    Takes the same arguments as :class:`Validator` (``http_client`` an
    ``httpx.AsyncClient``). One fetch at a time across tasks; the event loop is never
    blocked.

    >>> async with AsyncValidator(issuer="https://tenant.example/", audience="https://api") as v:
    ...     token = await v.validate(bearer)  # doctest: +SKIP
    """

    def __init__(self, *, http_client: httpx.AsyncClient | None = None, **options: Any) -> None:
        if http_client is not None and not isinstance(http_client, httpx.AsyncClient):
            raise ConfigurationError("http_client: must be an httpx.AsyncClient")
        super().__init__(**options)
        self._owns_client = http_client is None
        self._client = http_client or httpx.AsyncClient()
        self._lock = anyio.Lock()

    async def validate(self, token: str) -> AccessToken:
        """Validate ``token`` and return what it grants (see :meth:`Validator.validate`)."""
        result = self._core.validate(token)
        while isinstance(result, Pending):
            request = result.request
            if request.optional and self._lock.locked():
                result = self._core.resume(result, refresh=False)
                continue
            async with self._lock:
                if self._core.generation == request.generation:
                    self._core.receive(request, await self._fetch(request))
            result = self._core.resume(result)
        return result

    async def _fetch(self, request: FetchRequest) -> Response | Exception:
        timeout = self._core.config.timeout
        deadline = self._core.deadline()
        try:
            # The deadline covers the body too: a server trickling bytes cannot hold us.
            with anyio.fail_after(timeout):
                async with self._client.stream(
                    "GET", request.url, headers=_HEADERS, follow_redirects=False, timeout=timeout
                ) as answer:
                    reader = self._core.body_reader(
                        answer.status_code, answer.headers, deadline=deadline
                    )
                    if reader.wants_body:
                        async for chunk in answer.aiter_bytes():
                            reader.feed(chunk)
                    return reader.response()
        except Exception as exc:  # any failure of the fetch is the core's to judge
            return exc

    async def aclose(self) -> None:
        """Close the HTTP client, unless it was given by the caller."""
        if self._owns_client:
            await self._client.aclose()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()
