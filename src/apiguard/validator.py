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
from collections.abc import Awaitable, Callable, Generator, Iterable, Sequence
from types import TracebackType
from typing import TYPE_CHECKING, Any, Protocol, Required, Self, TypedDict, Unpack

import anyio
import httpx

from ._core import (
    CONFIG_SETTINGS,
    POLICY_SETTINGS,
    Config,
    Pending,
    Settings,
    ValidatorCore,
    build_config,
)
from ._lru import CacheInfo
from ._settings import describe, fail
from .claims import DEFAULT_SCOPE_CLAIMS, AccessToken
from .dpop import (
    AsyncRedisReplayStore,
    AsyncReplayStore,
    DPoPGate,
    DPoPPolicy,
    MemoryReplayStore,
    RedisReplayStore,
    ReplayStore,
    TrustedProxies,
    check_replay,
    check_replay_async,
)
from .errors import ApiguardError, ConfigurationError

if TYPE_CHECKING:
    from ._request import Validate
from ._keystore import SharedDocuments, Step, Wait
from ._redis import AsyncRedisKeyStore, RedisKeyStore
from .introspection import Introspection, IntrospectionCore, IntrospectionPending
from .issuers import IssuerHealth, IssuerPolicy, dpop_policy
from .jwks import BodyReader, FetchRequest, KeySource, Response

__all__ = ["AsyncIntrospector", "AsyncValidator", "Introspector", "Validator"]

_HEADERS = {"Accept": "application/json"}
#: Discovery, then the JWKS, then one retry: enough rounds for prefetch() to settle.
_WARM_UP_ROUNDS = 4


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


def _dpop_gate(config: Config) -> DPoPGate | None:
    """The gate of the validator's DPoP policies, or None when every issuer's mode is off."""
    wide = dpop_policy(config.dpop) or DPoPPolicy()
    # Every configured issuer maps to the policy its tokens get (its own, or the
    # validator's): the request path then looks one dict up per token, as before.
    issuers = {p.issuer: p.compiled.dpop or wide for p in config.policies}
    # Resolved issuers always take the validator's policy (the resolver refuses others).
    others = config.resolver is not None
    modes = {policy.mode for policy in issuers.values()} | ({wide.mode} if others else set())
    proxies = config.trusted_proxies
    if modes <= {"off"}:
        if proxies is not None:
            raise ConfigurationError("trusted_proxies: only used with dpop 'allowed' or 'required'")
        return None
    if proxies is not None and not isinstance(proxies, TrustedProxies):
        proxies = TrustedProxies(proxies)  # addresses: X-Forwarded-Proto/Host from them
    return DPoPGate(
        wide, issuers=issuers, others=others, proxies=proxies, clock=config.clock or time.time
    )


def _key_store(store: Any, *, sync: bool, max_size: int) -> tuple[Any, bool]:
    """The key store of a shell's I/O style (built here from a URL), and whether it owns it."""
    if isinstance(store, str):
        # A redis:// URL: the store of this shell's I/O style, closed with the validator,
        # reading no more of a value than a body may be (and the stored header).
        return (RedisKeyStore if sync else AsyncRedisKeyStore)(store, max_size=max_size), True
    if sync and store is not None and inspect.iscoroutinefunction(store.get):
        raise fail("key_store", "an async store needs AsyncValidator")
    if not sync and isinstance(store, RedisKeyStore):
        # Its calls would block the event loop for up to its timeout.
        raise fail("key_store", "AsyncValidator needs an AsyncRedisKeyStore, not a RedisKeyStore")
    return store, False


def _client(client: Any, transport: Any, client_type: type, transport_type: type) -> Any:
    """The HTTP client to fetch with, and whether the shell owns (closes) it."""
    if client is not None and transport is not None:
        raise fail("transport", "give http_client or transport, not both")
    if client is not None:
        if not isinstance(client, client_type):
            raise fail("http_client", f"must be an {client_type.__module__}.{client_type.__name__}")
        return client, False
    if transport is not None and not isinstance(transport, transport_type):
        raise fail("transport", f"must be an {transport_type.__module__}.{transport_type.__name__}")
    return client_type(transport=transport), True


class _SyncClient:
    """The ``httpx.Client`` of a sync shell: given by the caller, or owned and closed here."""

    _client: httpx.Client
    _owns_client: bool

    def _use_client(
        self, client: httpx.Client | None, transport: httpx.BaseTransport | None = None
    ) -> None:
        self._client, self._owns_client = _client(
            client, transport, httpx.Client, httpx.BaseTransport
        )

    def _introspect(self, pending: IntrospectionPending) -> AccessToken | IntrospectionPending:
        """One step of an introspection: ask (unless someone did meanwhile), then go on."""
        core, flight = pending.core, pending.flight
        with flight.lock:
            if not flight.done:
                answer = _fetch(self._client, flight.request, core.body_reader, core.timeout)
                core.receive(pending, answer)
        return core.resume(pending)

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

    def _use_client(
        self, client: httpx.AsyncClient | None, transport: httpx.AsyncBaseTransport | None = None
    ) -> None:
        self._client, self._owns_client = _client(
            client, transport, httpx.AsyncClient, httpx.AsyncBaseTransport
        )

    async def _introspect(
        self, pending: IntrospectionPending
    ) -> AccessToken | IntrospectionPending:
        """One step of an introspection (see the sync shells' ``_introspect``)."""
        core, flight = pending.core, pending.flight
        async with flight.lock:
            if not flight.done:
                request = flight.request
                answer = await _afetch(self._client, request, core.body_reader, core.timeout)
                core.receive(pending, answer)
        return core.resume(pending)

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

    def _setup(
        self,
        issuer: str | None,
        issuers: Iterable[str | IssuerPolicy] | None,
        settings: dict[str, Any],
        lock_factory: Any,
    ) -> None:
        config = build_config(
            issuer=issuer, issuers=issuers, owner=self.__class__.__name__, **settings
        )
        self._dpop = _dpop_gate(config)
        gate = self._dpop
        self._core = ValidatorCore(
            config,
            lock_factory=lock_factory,
            binding=None if gate is None else gate.accepts_binding,
        )
        # Bound once: a cache hit is short enough for a second attribute lookup to show.
        self._validate = self._core.validate
        #: Whether :meth:`validate` uses its ``request`` (an issuer resolver is configured).
        #: Read on every request by the layers: a plain attribute, not a property.
        self.wants_request: bool = config.resolver is not None
        replay_store = config.replay_store
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
        self._key_store, self._owns_key_store = _key_store(
            config.key_store, sync=self._sync, max_size=config.max_jwks_size + (16 << 10)
        )
        self._shared = SharedDocuments(
            self._key_store,
            max_size=config.max_jwks_size,
            clock=config.clock or time.time,
            timeout=config.timeout,
        )

    #: Whether the shell calls a replay store synchronously.
    _sync = True

    @property
    def dpop(self) -> DPoPGate | None:
        """The DPoP decisions (for the request path), or None when DPoP is off."""
        return self._dpop

    @property
    def issuers(self) -> tuple[str, ...]:
        """The configured issuers (a resolver may trust more)."""
        return tuple(self._core.registry.policies)

    @property
    def issuer(self) -> str | None:
        """The issuer tokens must come from, when exactly one is configured; else None."""
        issuers = self.issuers
        return issuers[0] if len(issuers) == 1 and self._core.config.resolver is None else None

    @property
    def audiences(self) -> frozenset[str]:
        """The audiences a token may name (any one of them), over all configured issuers."""
        policies = self._core.registry.policies.values()
        return frozenset().union(*(policy.audiences for policy in policies))

    @property
    def clock(self) -> Callable[[], float]:
        """The clock validation runs on, in seconds since the epoch; time rules use it too."""
        return self._core.config.clock or time.time

    def health(self) -> dict[str, IssuerHealth]:
        """Per issuer, whether its keys are ``fresh``, ``stale`` or ``missing``.

        For a readiness probe: configured issuers first, then those a resolver admitted
        whose key sources are still kept. No I/O.

        >>> all(h.state != "missing" for h in validator.health().values())  # doctest: +SKIP
        """
        return self._core.health()

    def cache_info(self) -> CacheInfo:
        """What the verified-token cache holds (``currsize``, ``maxsize``, ``seen_once``)."""
        return self._core.cache_info()

    def cache_clear(self) -> None:
        """Empty the verified-token cache and the remembered introspection answers.

        Every token is validated in full (or asked about) next time.
        """
        self._core.cache_clear()

    def __repr__(self) -> str:
        issuers = self.issuers
        shown = [f"issuer={issuers[0]!r}"] if len(issuers) == 1 else [f"issuers={list(issuers)!r}"]
        if self._core.config.resolver is not None:
            shown = [*shown[: bool(issuers)], f"resolver={self._core.config.resolver!r}"]
        return f"{self.__class__.__name__}({', '.join(shown)})"


class Validator(_SyncClient, _Base):
    """Validate JWT access tokens, fetching the issuers' keys with an ``httpx.Client``.

    Args:
        issuer: the exact ``iss`` expected, for one issuer (Auth0's ends with ``/``). Keys
            are discovered from it unless ``jwks_uri``, ``jwks``, ``public_keys`` or
            ``shared_secret`` is given.
        issuers: several trusted issuers: issuer URLs (each gets the per-issuer settings
            given here) and/or :class:`~apiguard.IssuerPolicy` objects (each complete).
        http_client: an ``httpx.Client`` to fetch with (not closed by :meth:`close`).
        transport: an ``httpx.BaseTransport`` for a client the validator makes and closes
            (e.g. a test issuer's in-process transport).
        **settings: the per-issuer settings (for ``issuer`` and the URLs in ``issuers``)
            and the validator-wide ones, listed below.

    Per-issuer settings (see :class:`~apiguard.IssuerPolicy`):

    {policy}

    Validator-wide settings:

    {wide}

    Raises:
        ConfigurationError: a setting is missing or unsafe (the message starts with its
            name).
        TypeError: an unknown keyword.

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

    def __init__(
        self,
        *,
        issuer: str | None = None,
        issuers: Iterable[str | IssuerPolicy] | None = None,
        http_client: httpx.Client | None = None,
        transport: httpx.BaseTransport | None = None,
        **settings: Unpack[Settings],
    ) -> None:
        self._setup(issuer, issuers, dict(settings), threading.Lock)
        self._use_client(http_client, transport)
        #: Whether the class keeps Validator.validate (validate_credentials may skip it).
        self._plain_validate = type(self).validate is Validator.validate
        if self._core.config.on_event is not None:
            # Chosen once: without a hook, validate() and validate_credentials() are the
            # plain methods, not wrappers.
            self.validate = self._observed  # type: ignore[method-assign]
            self.validate_credentials = self._observed_credentials  # type: ignore[method-assign]

    def _observed(
        self, token: str, *, request: Any = None, check_revocation: bool = False
    ) -> AccessToken:
        """:meth:`validate`, reporting the outcome to the ``on_event`` hook."""
        plain = type(self).validate
        return self._observe(
            token, plain, self, token, request=request, check_revocation=check_revocation
        )

    def _observed_credentials(self, credentials: Validate) -> AccessToken:
        """:meth:`validate_credentials`, reporting one event for the token and what the
        request path checks after it: a DPoP proof and its replay, revocation."""
        return self._observe(credentials.token, type(self).validate_credentials, self, credentials)

    def _observe(
        self, token: str, call: Callable[..., AccessToken], *args: Any, **kwargs: Any
    ) -> AccessToken:
        core = self._core
        started = time.perf_counter()
        cached = core.cached(token)
        try:
            result = call(*args, **kwargs)
        except ApiguardError as exc:
            core.observed(token, exc, cached, time.perf_counter() - started)
            raise
        core.observed(token, result, cached, time.perf_counter() - started)
        return result

    def validate(
        self, token: str, *, request: Any = None, check_revocation: bool = False
    ) -> AccessToken:
        """Validate ``token`` and return what it grants.

        Args:
            token: the access token: a compact JWT, or an opaque token where the issuer's
                ``token_mode`` introspects.
            request: the framework's request, for an issuer resolver (layers pass it).
            check_revocation: also ask the issuer whether a JWT is still active (RFC 7662,
                with the issuer's ``introspection`` settings and cache).

        Raises:
            InvalidToken: (a subclass per reason) the token is not acceptable;
                InactiveToken when the issuer says it is not active.
            KeySetUnavailable, IntrospectionFailed: the issuer's keys or introspection
                endpoint cannot be had; answer 503.
        """
        result = self._validate(token, request)
        if not isinstance(result, AccessToken):  # a fetch first (a hit never needs one)
            result = self._settle(result)
        if check_revocation:
            self.check_revocation(token, result)
        return result

    def _settle(self, result: AccessToken | Pending | IntrospectionPending) -> AccessToken:
        """Perform what the core asks for until it has a token (or raises)."""
        while not isinstance(result, AccessToken):
            if isinstance(result, IntrospectionPending):
                result = self._introspect(result)
                continue
            request_ = result.request
            lock = result.source.lock
            # An optional refresh is skipped while another caller fetches: the keys we have
            # still serve, so nobody waits on the network for them.
            if lock.acquire(blocking=not request_.optional):
                try:
                    if result.source.generation == request_.generation:
                        wanted = (result.jws.kid, result.jws.alg)
                        self._run(self._shared.steps(result.source, request_, wanted))
                finally:
                    lock.release()
                result = self._core.resume(result)
            else:
                result = self._core.resume(result, refresh=False)
        return result

    def close(self) -> None:
        """Close the HTTP client (unless given) and the stores built from a URL."""
        super().close()
        if self._owns_store:
            self._replay_store.close()
        if self._owns_key_store:
            self._key_store.close()

    def validate_credentials(self, credentials: Validate) -> AccessToken:
        """Validate a request's credentials: the token, and with DPoP its binding and proof.

        This is the validation step of the one request path (``apiguard._request``); a
        cached token's proof is checked anew, replay included. The request is handed to
        an issuer resolver, if there is one.

        Raises:
            InvalidToken, InvalidDPoPProof, UseDPoPNonce, InvalidRequest: refused.
            ServiceUnavailable: the keys or the replay store cannot be had; answer 503.
        """
        # The class's validate, not an instance's observing wrapper: with an on_event hook
        # the whole of this method is observed as one validation, its proof included. The
        # core directly when the class does not override validate (one call less on the
        # path every request takes).
        request = credentials.view if self.wants_request else None
        if self._plain_validate:
            result = self._validate(credentials.token, request)
            token = result if isinstance(result, AccessToken) else self._settle(result)
        elif self.wants_request:
            token = type(self).validate(self, credentials.token, request=request)
        else:
            token = type(self).validate(self, credentials.token)
        gate = self._dpop
        if gate is not None and credentials.view is not None:
            proof = gate.check(token, credentials.scheme, credentials.token, credentials.view)
            if proof is not None:
                check_replay(self._replay_store, proof)
        if credentials.check_revocation:
            self.check_revocation(credentials.token, token)
        return token

    def check_revocation(self, token: str, validated: AccessToken) -> None:
        """Ask the issuer whether a token validated here is still active (RFC 7662).

        Free for a token that was introspected already; for a JWT, one introspection while
        the issuer's answer is cached.

        Raises:
            InactiveToken: the issuer says it is not active (revoked).
            IntrospectionFailed: the issuer cannot be asked, or has no ``introspection``
                settings; answer 503.
        """
        self._settle(self._core.check_revocation(token, validated))

    def prefetch(self) -> dict[str, IssuerHealth]:
        """Fetch the keys of every configured issuer now (at start-up), one after another.

        A failure is not raised: it is logged and shows in the returned :meth:`health`.
        """
        for _ in range(_WARM_UP_ROUNDS):
            wanted = self._core.warm_up()
            if not wanted:
                break
            for source, request in wanted:
                self._warm(source, request)
        return self.health()

    def _warm(self, source: KeySource, request: FetchRequest) -> None:
        with source.lock:
            if source.generation == request.generation:
                self._run(self._shared.steps(source, request))

    def _run(self, steps: Generator[Step, Any, None]) -> None:
        """Perform a fetch step's plan (under the source's lock): store calls and the fetch."""
        answer: Any = None
        with contextlib.suppress(StopIteration):
            while True:
                answer = self._perform(steps.send(answer))

    def _perform(self, step: Step) -> Any:
        if isinstance(step, FetchRequest):
            started = time.perf_counter()
            return self._fetch(step), time.perf_counter() - started
        if isinstance(step, Wait):
            time.sleep(step.seconds)  # another process fetches; we hold only this source
            return None
        try:
            return step.run(self._key_store)
        except Exception as exc:  # a store that cannot answer is a miss, never a failure
            return exc

    def _fetch(self, request: FetchRequest) -> Response | Exception:
        core = self._core
        return _fetch(self._client, request, core.body_reader, core.config.timeout, fresh=True)


class AsyncValidator(_AsyncClient, _Base):
    """Validate JWT access tokens in async code, fetching keys with an ``httpx.AsyncClient``.

    Takes the same arguments as :class:`Validator` (``http_client`` an
    ``httpx.AsyncClient``, ``transport`` an ``httpx.AsyncBaseTransport``). One fetch at a
    time per issuer across tasks; the event loop is never blocked.

    >>> async with AsyncValidator(issuer="https://tenant.example/", audience="https://api") as v:
    ...     token = await v.validate(bearer)  # doctest: +SKIP
    """

    _sync = False

    def __init__(
        self,
        *,
        issuer: str | None = None,
        issuers: Iterable[str | IssuerPolicy] | None = None,
        http_client: httpx.AsyncClient | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        **settings: Unpack[Settings],
    ) -> None:
        # anyio.Lock binds to no event loop until first used, so it can be made here.
        self._setup(issuer, issuers, dict(settings), anyio.Lock)
        self._use_client(http_client, transport)
        #: Whether the class keeps AsyncValidator.validate (see the sync shell).
        self._plain_validate = type(self).validate is AsyncValidator.validate
        if self._core.config.on_event is not None:
            self.validate = self._observed  # type: ignore[method-assign]
            self.validate_credentials = self._observed_credentials  # type: ignore[method-assign]

    async def _observed(
        self, token: str, *, request: Any = None, check_revocation: bool = False
    ) -> AccessToken:
        """:meth:`validate`, reporting the outcome to the ``on_event`` hook."""
        plain = type(self).validate
        return await self._observe(
            token, plain, self, token, request=request, check_revocation=check_revocation
        )

    async def _observed_credentials(self, credentials: Validate) -> AccessToken:
        """:meth:`validate_credentials`, reporting one event (see the sync one)."""
        call = type(self).validate_credentials
        return await self._observe(credentials.token, call, self, credentials)

    async def _observe(
        self, token: str, call: Callable[..., Awaitable[AccessToken]], *args: Any, **kwargs: Any
    ) -> AccessToken:
        core = self._core
        started = time.perf_counter()
        cached = core.cached(token)
        try:
            result = await call(*args, **kwargs)
        except ApiguardError as exc:
            core.observed(token, exc, cached, time.perf_counter() - started)
            raise
        core.observed(token, result, cached, time.perf_counter() - started)
        return result

    async def validate(
        self, token: str, *, request: Any = None, check_revocation: bool = False
    ) -> AccessToken:
        """Validate ``token`` and return what it grants (see :meth:`Validator.validate`)."""
        result = self._validate(token, request)
        if not isinstance(result, AccessToken):  # a fetch first (a hit never needs one)
            result = await self._settle(result)
        if check_revocation:
            await self.check_revocation(token, result)
        return result

    async def _settle(self, result: AccessToken | Pending | IntrospectionPending) -> AccessToken:
        """Perform what the core asks for until it has a token (or raises)."""
        while not isinstance(result, AccessToken):
            if isinstance(result, IntrospectionPending):
                result = await self._introspect(result)
                continue
            request_ = result.request
            lock = result.source.lock
            if request_.optional and lock.locked():
                result = self._core.resume(result, refresh=False)
                continue
            async with lock:
                if result.source.generation == request_.generation:
                    wanted = (result.jws.kid, result.jws.alg)
                    await self._run(self._shared.steps(result.source, request_, wanted))
            result = self._core.resume(result)
        return result

    async def aclose(self) -> None:
        """Close the HTTP client (unless given) and the stores built from a URL."""
        await super().aclose()
        if self._owns_store:
            await self._replay_store.aclose()
        if self._owns_key_store:
            await self._key_store.aclose()

    async def validate_credentials(self, credentials: Validate) -> AccessToken:
        """Validate a request's credentials (see :meth:`Validator.validate_credentials`)."""
        # The class's validate or, when it is not overridden, the core (as in the sync shell).
        request = credentials.view if self.wants_request else None
        if self._plain_validate:
            result = self._validate(credentials.token, request)
            token = result if isinstance(result, AccessToken) else await self._settle(result)
        elif self.wants_request:
            token = await type(self).validate(self, credentials.token, request=request)
        else:
            token = await type(self).validate(self, credentials.token)
        gate = self._dpop
        if gate is not None and credentials.view is not None:
            proof = gate.check(token, credentials.scheme, credentials.token, credentials.view)
            if proof is not None:
                await check_replay_async(self._replay_store, proof)
        if credentials.check_revocation:
            await self.check_revocation(credentials.token, token)
        return token

    async def check_revocation(self, token: str, validated: AccessToken) -> None:
        """Ask the issuer whether a token validated here is still active (see the sync one)."""
        await self._settle(self._core.check_revocation(token, validated))

    async def prefetch(self) -> dict[str, IssuerHealth]:
        """Fetch the keys of every configured issuer now (at start-up), concurrently.

        A failure is not raised: it is logged and shows in the returned :meth:`health`.
        """
        for _ in range(_WARM_UP_ROUNDS):
            wanted = self._core.warm_up()
            if not wanted:
                break
            async with anyio.create_task_group() as group:
                for source, request in wanted:
                    group.start_soon(self._warm, source, request)
        return self.health()

    async def _warm(self, source: KeySource, request: FetchRequest) -> None:
        async with source.lock:
            if source.generation == request.generation:
                await self._run(self._shared.steps(source, request))

    async def _run(self, steps: Generator[Step, Any, None]) -> None:
        """Perform a fetch step's plan (see :meth:`Validator._run`), awaited."""
        answer: Any = None
        with contextlib.suppress(StopIteration):
            while True:
                answer = await self._perform(steps.send(answer))

    async def _perform(self, step: Step) -> Any:
        if isinstance(step, FetchRequest):
            started = time.perf_counter()
            return await self._fetch(step), time.perf_counter() - started
        if isinstance(step, Wait):
            await anyio.sleep(step.seconds)
            return None
        try:
            answer = step.run(self._key_store)
            return await answer if inspect.isawaitable(answer) else answer
        except Exception as exc:  # a store that cannot answer is a miss, never a failure
            return exc

    async def _fetch(self, request: FetchRequest) -> Response | Exception:
        return await _afetch(
            self._client, request, self._core.body_reader, self._core.config.timeout
        )


class IntrospectorSettings(TypedDict, total=False):
    """The keyword settings of the introspectors, for typing (see :class:`Introspector`)."""

    issuer: Required[str]
    audience: Required[str | Iterable[str]]
    introspection: Required[Introspection]
    leeway: float
    max_token_age: float | None
    required_claims: Iterable[str]
    scope_claims: Sequence[str]
    timeout: float
    max_token_size: int
    clock: Callable[[], float] | None


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
            issuer=issuer,
            check=claims.check_claims,
            lock_factory=lock_factory,
            clock=config.clock or time.time,
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

    def __init__(
        self,
        *,
        http_client: httpx.Client | None = None,
        transport: httpx.BaseTransport | None = None,
        **settings: Unpack[IntrospectorSettings],
    ) -> None:
        super().__init__(lock_factory=threading.Lock, **settings)
        self._use_client(http_client, transport)

    def validate(self, token: str) -> AccessToken:
        """Introspect ``token`` (or answer from the cache) and return what it grants.

        Raises:
            InvalidToken: (a subclass per reason) InactiveToken for ``active: false``,
                WrongAudience, TokenExpired... for an answer that fails the checks.
            IntrospectionFailed: the authorization server gave no usable answer; 503.
        """
        result = self._core.introspect(token)
        while isinstance(result, IntrospectionPending):
            result = self._introspect(result)
        return result


class AsyncIntrospector(_AsyncClient, _IntrospectorBase):
    """Validate opaque access tokens in async code (see :class:`Introspector`).

    Takes the same arguments (``http_client`` an ``httpx.AsyncClient``); concurrent tasks
    with the same new token share one request.
    """

    def __init__(
        self,
        *,
        http_client: httpx.AsyncClient | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        **settings: Unpack[IntrospectorSettings],
    ) -> None:
        super().__init__(lock_factory=anyio.Lock, **settings)
        self._use_client(http_client, transport)

    async def validate(self, token: str) -> AccessToken:
        """Introspect ``token`` (see :meth:`Introspector.validate`)."""
        result = self._core.introspect(token)
        while isinstance(result, IntrospectionPending):
            result = await self._introspect(result)
        return result


# A setting of both kinds (dpop) is listed once, as the validator's: issuers given by URL
# inherit it.
Validator.__doc__ = (Validator.__doc__ or "").format(
    policy=describe({k: v for k, v in POLICY_SETTINGS.items() if k not in CONFIG_SETTINGS}),
    wide=describe(CONFIG_SETTINGS),
)
