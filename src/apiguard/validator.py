"""The validators: thin sync and async shells over the sans-I/O cores.

:class:`Validator` and :class:`AsyncValidator` run :class:`~apiguard._core.ValidatorCore`
(JWTs), :class:`Introspector` and :class:`AsyncIntrospector` run
:class:`~apiguard.introspection.IntrospectionCore` (opaque tokens, RFC 7662). Each shell
does only what its core cannot: the HTTP request the core asks for, performed by one caller
at a time (single flight), through one fetch function per I/O style with redirects off, a
total deadline and a body cap. Everything else, validation and caching included, is the
cores'.
"""

from __future__ import annotations

import contextlib
import inspect
import socket
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from types import TracebackType
from typing import TYPE_CHECKING, Any, Protocol, Self

import anyio
import httpx

from ._core import BodyReader, Pending, ValidatorCore, build_config
from .claims import DEFAULT_SCOPE_CLAIMS, AccessToken, ClaimPath
from .dpop import (
    AsyncRedisReplayStore,
    AsyncReplayStore,
    DPoPGate,
    DPoPMode,
    DPoPPolicy,
    MemoryReplayStore,
    RedisReplayStore,
    ReplayStore,
    TrustedProxies,
    check_replay,
    check_replay_async,
)
from .errors import ConfigurationError

if TYPE_CHECKING:
    from ._request import Validate
from .introspection import Introspection, IntrospectionCore, IntrospectionPending
from .jwks import FetchRequest, Response

__all__ = ["AsyncIntrospector", "AsyncValidator", "Introspector", "Validator"]

_HEADERS = {"Accept": "application/json"}


class _Reader(Protocol):
    def __call__(self, status: int, headers: httpx.Headers, *, deadline: float) -> BodyReader: ...


def _headers(request: FetchRequest, *, fresh: bool = False) -> dict[str, str]:
    headers = {**_HEADERS, **dict(request.headers)} if request.headers else _HEADERS
    # The sync deadline needs the fetch's own socket (see _Watchdog): asking the server to
    # close keeps the connection out of the pool, so the next fetch opens its own as well.
    return {**headers, "Connection": "close"} if fresh else headers


class _Watchdog:
    """Ends a sync fetch at its deadline, connect, headers and body included.

    httpx's sync timeouts apply to each socket operation, so a server that trickles its
    response headers a byte at a time never trips them. The async shell has a cancel scope
    for this; here a timer shuts the fetch's socket down (found through httpx's ``trace``
    extension when the connection is opened), which wakes the blocked read with an error.
    A connection reused from a pool is not seen: it keeps the per-read timeouts.
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


def _fetch(
    client: httpx.Client,
    request: FetchRequest,
    body_reader: _Reader,
    timeout: float,
    *,
    fresh: bool = False,
) -> Response | Exception:
    """Perform ``request`` for a core: no redirects, a capped body, one deadline.

    The deadline (``timeout`` seconds) covers connecting, the response headers and the
    body; ``fresh`` asks for a connection of the fetch's own, which the deadline can always
    cut short (worth it for rare fetches such as key sets).
    """
    deadline = time.monotonic() + timeout
    watchdog = _Watchdog(timeout)
    try:
        with client.stream(
            request.method,
            request.url,
            headers=_headers(request, fresh=fresh),
            content=request.body or None,
            follow_redirects=False,
            timeout=timeout,
            extensions={"trace": watchdog.trace},
        ) as answer:
            reader = body_reader(answer.status_code, answer.headers, deadline=deadline)
            if reader.wants_body:
                for chunk in answer.iter_bytes():
                    reader.feed(chunk)
            return reader.response()
    except Exception as exc:  # any failure of the fetch is the core's to judge
        return TimeoutError("fetch not done within the timeout") if watchdog.fired else exc
    finally:
        watchdog.cancel()


async def _afetch(
    client: httpx.AsyncClient, request: FetchRequest, body_reader: _Reader, seconds: float
) -> Response | Exception:
    """The async :func:`_fetch` (a cancel scope holds the deadline of ``seconds``)."""
    deadline = time.monotonic() + seconds
    timeout = seconds
    try:
        with anyio.fail_after(seconds):
            async with client.stream(
                request.method,
                request.url,
                headers=_headers(request),
                content=request.body or None,
                follow_redirects=False,
                timeout=timeout,
            ) as answer:
                reader = body_reader(answer.status_code, answer.headers, deadline=deadline)
                if reader.wants_body:
                    async for chunk in answer.aiter_bytes():
                        reader.feed(chunk)
                return reader.response()
    except Exception as exc:  # any failure of the fetch is the core's to judge
        return exc


class _SyncClient:
    """The ``httpx.Client`` of a sync shell: given by the caller, or owned and closed here."""

    _client: httpx.Client
    _owns_client: bool

    def _use_client(self, client: httpx.Client | None) -> None:
        if client is not None and not isinstance(client, httpx.Client):
            raise ConfigurationError("http_client: must be an httpx.Client")
        self._owns_client = client is None
        self._client = client or httpx.Client()

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


class _AsyncClient:
    """The ``httpx.AsyncClient`` of an async shell: given by the caller, or owned here."""

    _client: httpx.AsyncClient
    _owns_client: bool

    def _use_client(self, client: httpx.AsyncClient | None) -> None:
        if client is not None and not isinstance(client, httpx.AsyncClient):
            raise ConfigurationError("http_client: must be an httpx.AsyncClient")
        self._owns_client = client is None
        self._client = client or httpx.AsyncClient()

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
        role_claims: Iterable[str | Sequence[str] | ClaimPath] = (),
        claims_validator: Callable[[AccessToken], object] | None = None,
        shared_secret: str | bytes | None = None,
        cache_max_age: float = 600.0,
        cooldown: float = 30.0,
        max_stale: float = 86400.0,
        timeout: float = 5.0,
        max_token_size: int = 16384,
        max_jwks_size: int = 1 << 20,
        token_cache_size: int = 4096,
        clock: Callable[[], float] | None = None,
        dpop: DPoPPolicy | DPoPMode = "off",
        replay_store: ReplayStore | AsyncReplayStore | str | None = None,
        trusted_proxies: TrustedProxies | str | Iterable[str] | None = None,
    ) -> None:
        config = build_config(
            issuer=issuer,
            audience=audience,
            jwks_uri=jwks_uri,
            algorithms=algorithms,
            leeway=leeway,
            max_token_age=max_token_age,
            required_claims=required_claims,
            token_type=token_type,
            scope_claims=scope_claims,
            role_claims=role_claims,
            claims_validator=claims_validator,
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
        self._dpop = _dpop_gate(dpop, trusted_proxies, config.clock)
        gate = self._dpop
        self._core = ValidatorCore(config, binding=None if gate is None else gate.accepts_binding)
        self._replay_store: Any = None
        #: A store built here from a URL is closed with the validator.
        self._owns_store = isinstance(replay_store, str)
        if gate is not None:
            if isinstance(replay_store, str):
                # A redis:// URL: the store of this shell's I/O style.
                store = RedisReplayStore if self._sync else AsyncRedisReplayStore
                replay_store = store(replay_store)
            self._replay_store = replay_store if replay_store is not None else MemoryReplayStore()
            if not isinstance(self._replay_store, ReplayStore | AsyncReplayStore):
                raise ConfigurationError("replay_store: must have an add(key, ttl) method")
            if self._sync and inspect.iscoroutinefunction(self._replay_store.add):
                raise ConfigurationError("replay_store: an async store needs AsyncValidator")
        elif replay_store is not None:
            raise ConfigurationError("replay_store: only used with dpop 'allowed' or 'required'")

    #: Whether the shell calls a replay store synchronously.
    _sync = True

    @property
    def dpop(self) -> DPoPGate | None:
        """The DPoP decisions (for the request path), or None when DPoP is off."""
        return self._dpop

    @property
    def issuer(self) -> str:
        """The issuer tokens must come from."""
        return self._core.config.issuer

    @property
    def issuers(self) -> tuple[str, ...]:
        """Every issuer whose tokens are trusted (the one :attr:`issuer` today)."""
        return (self._core.config.issuer,)

    @property
    def audiences(self) -> frozenset[str]:
        """The audiences a token may name (any one of them suffices)."""
        return self._core.config.audiences

    @property
    def clock(self) -> Callable[[], float]:
        """The clock validation runs on, in seconds since the epoch; time rules use it too."""
        return self._core.config.clock

    def __repr__(self) -> str:
        return f"{self.__class__.__name__}(issuer={self.issuer!r})"


def _dpop_gate(
    dpop: DPoPPolicy | DPoPMode,
    proxies: TrustedProxies | str | Iterable[str] | None,
    clock: Callable[[], float],
) -> DPoPGate | None:
    policy = dpop if isinstance(dpop, DPoPPolicy) else DPoPPolicy(mode=dpop)
    if policy.mode == "off":
        if proxies is not None:
            raise ConfigurationError("trusted_proxies: only used with dpop 'allowed' or 'required'")
        return None
    if proxies is not None and not isinstance(proxies, TrustedProxies):
        proxies = TrustedProxies(proxies)  # addresses: X-Forwarded-Proto/Host from them
    return DPoPGate(policy, proxies=proxies, clock=clock)


class Validator(_SyncClient, _Base):
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
        role_claims: where :attr:`AccessToken.roles` is read from: :class:`ClaimPath`
            texts or segment tuples, e.g. ``"realm_access.roles"`` (Keycloak), ``"roles"``
            (Entra ID), ``'"https://organizer.example/roles"'`` (an Auth0 namespaced
            claim). Each claim is a string or a list of strings; another type makes the
            token invalid. Default: none (``roles`` is empty and nothing is read).
        claims_validator: your own claim checks, called with the :class:`AccessToken`
            after the signature and every standard check passed; raise
            :class:`~apiguard.InvalidClaim` with your own fixed ``description`` and
            ``reason`` to refuse (401 ``invalid_token``). It runs once per token: a token
            from the verified-token cache is not checked again (set ``token_cache_size=0``
            for checks that change over time, such as a deny list).
        shared_secret: the API's HS256 signing secret (Auth0 HS256 APIs); at least as long
            as the hash. Excludes a JWKS.
        cache_max_age: how long fetched keys are fresh, in seconds (``Cache-Control:
            max-age`` is honoured between ``cooldown`` and this).
        cooldown: the least time between two key fetches, in seconds.
        max_stale: how long past freshness the last good keys still serve while the
            issuer is unreachable, in seconds.
        timeout: total time for one fetch (connect, headers and body), in seconds.
        max_token_size: longest token accepted, in characters.
        max_jwks_size: largest discovery or JWKS body read, in bytes.
        token_cache_size: how many verified tokens are remembered (0 turns the cache off).
            Entries expire with the token and leave with their key; time claims are
            checked again on every hit.
        http_client: an ``httpx.Client`` to fetch with (not closed by :meth:`close`).
        clock: returns seconds since the epoch (default ``time.time``); for tests.
        dpop: DPoP (RFC 9449): ``"off"`` (default: a token with ``cnf`` is refused),
            ``"allowed"`` (Bearer and DPoP tokens), ``"required"`` (DPoP only), or a
            :class:`~apiguard.dpop.DPoPPolicy` for the proof algorithms, window and
            nonces. The framework layers then read and check proofs on every request.
        replay_store: where proofs' ``jti`` are remembered (default: in this process,
            :class:`~apiguard.dpop.MemoryReplayStore`); several workers need a shared one
            (:class:`~apiguard.dpop.RedisReplayStore`).
        trusted_proxies: a :class:`~apiguard.dpop.TrustedProxies` whose forwarded headers
            give the URI a proof must name (default: none, the request's own).

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
        really means the user's role. :meth:`validate` alone checks no DPoP proof: with
        DPoP on, use a framework layer or :meth:`validate_credentials`.
    """

    def __init__(self, *, http_client: httpx.Client | None = None, **options: Any) -> None:
        super().__init__(**options)
        self._use_client(http_client)
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

    def close(self) -> None:
        """Close the HTTP client (unless given) and a replay store built from a URL."""
        super().close()
        if self._owns_store:
            self._replay_store.close()

    def validate_credentials(self, credentials: Validate) -> AccessToken:
        """Validate a request's credentials: the token, and with DPoP its binding and proof.

        This is the validation step of the one request path (``apiguard._request``); a
        cached token's proof is checked anew, replay included.

        Raises:
            InvalidToken, InvalidDPoPProof, UseDPoPNonce, InvalidRequest: refused.
            ServiceUnavailable: the keys or the replay store cannot be had; answer 503.
        """
        token = self.validate(credentials.token)
        gate = self._dpop
        if gate is not None and credentials.view is not None:
            proof = gate.check(token, credentials.scheme, credentials.token, credentials.view)
            if proof is not None:
                check_replay(self._replay_store, proof)
        return token

    def _fetch(self, request: FetchRequest) -> Response | Exception:
        core = self._core
        return _fetch(self._client, request, core.body_reader, core.config.timeout, fresh=True)


class AsyncValidator(_AsyncClient, _Base):
    """Validate JWT access tokens in async code, fetching keys with an ``httpx.AsyncClient``.

    Takes the same arguments as :class:`Validator` (``http_client`` an
    ``httpx.AsyncClient``). One fetch at a time across tasks; the event loop is never
    blocked.

    >>> async with AsyncValidator(issuer="https://tenant.example/", audience="https://api") as v:
    ...     token = await v.validate(bearer)  # doctest: +SKIP
    """

    _sync = False

    def __init__(self, *, http_client: httpx.AsyncClient | None = None, **options: Any) -> None:
        super().__init__(**options)
        self._use_client(http_client)
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

    async def aclose(self) -> None:
        """Close the HTTP client (unless given) and a replay store built from a URL."""
        await super().aclose()
        if self._owns_store:
            await self._replay_store.aclose()

    async def validate_credentials(self, credentials: Validate) -> AccessToken:
        """Validate a request's credentials (see :meth:`Validator.validate_credentials`)."""
        token = await self.validate(credentials.token)
        gate = self._dpop
        if gate is not None and credentials.view is not None:
            proof = gate.check(token, credentials.scheme, credentials.token, credentials.view)
            if proof is not None:
                await check_replay_async(self._replay_store, proof)
        return token

    async def _fetch(self, request: FetchRequest) -> Response | Exception:
        return await _afetch(
            self._client, request, self._core.body_reader, self._core.config.timeout
        )


class _IntrospectorBase:
    _core: IntrospectionCore

    def __init__(
        self,
        *,
        issuer: str,
        audience: str | Iterable[str],
        introspection: Introspection,
        leeway: float = 30.0,
        max_token_age: float | None = None,
        required_claims: Iterable[str] = (),
        scope_claims: Sequence[str] = DEFAULT_SCOPE_CLAIMS,
        timeout: float = 5.0,
        max_token_size: int = 16384,
        clock: Callable[[], float] | None = None,
        lock_factory: Callable[[], Any],
    ) -> None:
        if not isinstance(introspection, Introspection):
            raise ConfigurationError("introspection: must be an apiguard.Introspection")
        config = build_config(
            issuer=issuer,
            audience=audience,
            leeway=leeway,
            max_token_age=max_token_age,
            required_claims=required_claims,
            scope_claims=scope_claims,
            timeout=timeout,
            max_token_size=max_token_size,
            token_cache_size=0,
            clock=clock,
        )
        # The claims of an answer are checked by the very code that checks a JWT's.
        claims = ValidatorCore(config)
        self._core = IntrospectionCore(
            introspection,
            issuer=config.issuer,
            check=claims.check_claims,
            lock_factory=lock_factory,
            clock=config.clock,
            timeout=config.timeout,
            max_token_size=config.max_token_size,
        )
        self._timeout = config.timeout

    @property
    def issuer(self) -> str:
        """The issuer whose tokens are introspected."""
        return self._core.issuer

    def cache_clear(self) -> None:
        """Forget every remembered answer, e.g. after revoking tokens in a test."""
        self._core.cache_clear()

    def __repr__(self) -> str:
        return f"{self.__class__.__name__}(issuer={self.issuer!r})"


class Introspector(_SyncClient, _IntrospectorBase):
    """Validate opaque access tokens by asking the issuer (RFC 7662), with a safe cache.

    Args:
        issuer: the exact ``iss`` the answers must name; the introspection endpoint is
            discovered from it unless ``introspection.endpoint`` is given.
        audience: the API identifier(s); an answer must name at least one in ``aud``.
        introspection: the client credentials and cache settings (:class:`Introspection`).
        leeway, max_token_age, required_claims, scope_claims, max_token_size, clock: as
            for :class:`Validator`; the answer's claims are checked as a JWT's are.
        timeout: total time for one introspection request, body included, in seconds.
        http_client: an ``httpx.Client`` to send with (not closed by :meth:`close`).

    Raises:
        ConfigurationError: a setting is missing or unsafe (the message names it).

    >>> settings = Introspection(client_id="organizer-api", client_secret=secret)  # doctest: +SKIP
    >>> with Introspector(issuer=issuer, audience=api, introspection=settings) as i:
    ...     token = i.validate(opaque)  # doctest: +SKIP

    Warning:
        Answers are reused for up to ``introspection.cache_ttl`` seconds, so a revoked
        token is refused only once its entry expires.
    """

    def __init__(self, *, http_client: httpx.Client | None = None, **options: Any) -> None:
        super().__init__(lock_factory=threading.Lock, **options)
        self._use_client(http_client)

    def validate(self, token: str) -> AccessToken:
        """Introspect ``token`` (or answer from the cache) and return what it grants.

        Raises:
            InvalidToken: (a subclass per reason) InactiveToken for ``active: false``,
                WrongAudience, TokenExpired... for an answer that fails the checks.
            IntrospectionFailed: the authorization server gave no usable answer; 503.
        """
        core = self._core
        result = core.introspect(token)
        while isinstance(result, IntrospectionPending):
            flight = result.flight
            with flight.lock:
                if not flight.done:
                    answer = _fetch(self._client, flight.request, core.body_reader, self._timeout)
                    core.receive(result, answer)
            result = core.resume(result)
        return result


class AsyncIntrospector(_AsyncClient, _IntrospectorBase):
    """Validate opaque access tokens in async code (see :class:`Introspector`).

    Takes the same arguments (``http_client`` an ``httpx.AsyncClient``); concurrent tasks
    with the same new token share one request.
    """

    def __init__(self, *, http_client: httpx.AsyncClient | None = None, **options: Any) -> None:
        super().__init__(lock_factory=anyio.Lock, **options)
        self._use_client(http_client)

    async def validate(self, token: str) -> AccessToken:
        """Introspect ``token`` (see :meth:`Introspector.validate`)."""
        core = self._core
        result = core.introspect(token)
        while isinstance(result, IntrospectionPending):
            flight = result.flight
            async with flight.lock:
                if not flight.done:
                    request = flight.request
                    answer = await _afetch(self._client, request, core.body_reader, self._timeout)
                    core.receive(result, answer)
            result = core.resume(result)
        return result
