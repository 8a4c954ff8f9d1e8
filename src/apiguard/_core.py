"""Validation without I/O: configuration, parse, pick the key, verify, check the claims.

:class:`ValidatorCore` is shared by :class:`~apiguard.Validator` and
:class:`~apiguard.AsyncValidator`. It either returns the validated
:class:`~apiguard.AccessToken` or a :class:`Pending` that says which URL must be fetched
first; the shells fetch it (one at a time), hand the outcome to :meth:`ValidatorCore.receive`
and :meth:`ValidatorCore.resume`. No validation logic lives in the shells.
"""

from __future__ import annotations

import functools
import logging
import math
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, Final, NamedTuple

from ._keystore import AsyncKeyStore, KeyStore
from ._lru import CacheInfo, TokenCache
from ._settings import fail, number, setting, settings_of
from .claims import AccessToken
from .dpop import AsyncReplayStore, DPoPMode, DPoPPolicy, ReplayStore, TrustedProxies
from .errors import (
    AlgorithmNotAllowed,
    ApiguardError,
    BearerError,
    IntrospectionFailed,
    InvalidClaim,
    MalformedToken,
    ServiceUnavailable,
    TokenExpired,
    TokenNotYetValid,
    WrongAudience,
    WrongIssuer,
    WrongTokenType,
)
from .events import EventHook, ValidationEvent, emit
from .introspection import IntrospectionCore, IntrospectionPending
from .issuers import (
    Compiled,
    IssuerHealth,
    IssuerPolicy,
    IssuerRegistry,
    IssuerResolver,
    PolicySettings,
    Source,
)
from .jwks import BodyReader, FetchRequest, KeySet, KeySource
from .jws import CompactJWS, VerificationKey, decode_compact, decode_json_object

logger = logging.getLogger("apiguard")


def looks_like_jwt(token: str) -> bool:
    """Whether a token has the shape of a compact JWS or JWE (``auto`` mode's routing).

    Two or four dots and a first segment that encodes a JSON object (``{"`` is ``eyJ``
    in base64url). Anything else is an opaque token: it is introspected, never parsed.
    """
    return token.startswith("eyJ") and token.count(".") in (2, 4)


#: Claims that make a token an ID token (or a code/hash-bound artefact), never an access token.
_ID_TOKEN_CLAIMS: Final = frozenset({"nonce", "at_hash", "c_hash"})
_ACCESS_TOKEN_TYPES: Final = frozenset({"jwt", "application/jwt", "at+jwt", "application/at+jwt"})
_STRICT_TYPES: Final = frozenset({"at+jwt", "application/at+jwt"})
_TIME_CLAIMS: Final = ("exp", "nbf", "iat")
#: The types of a NumericDate (RFC 7519 §2). bool is a type of its own, so ``"exp": true``
#: is none; a float is finite (the JSON decoder refuses the others).
_NUMERIC: Final = frozenset({int, float})
#: What an absent ``nbf`` or ``iat`` reads as: no JSON number is infinite, and it bounds
#: nothing (``-inf - leeway`` is ``-inf``).
_NO_TIME: Final = -math.inf
#: Claims that must be strings when present; the strict dialect requires the first three.
_STRING_CLAIMS: Final = ("sub", "jti", "client_id", "azp")
_STRICT_STRING_CLAIMS: Final = _STRING_CLAIMS[:3]
_EMPTY_STRINGS: Final = ("",) * len(_STRING_CLAIMS)
_NO_HEADER: Final[Mapping[str, Any]] = MappingProxyType({})


@dataclass(frozen=True, slots=True, kw_only=True)
class Config:
    """The settings of a whole validator (the per-issuer ones are :class:`IssuerPolicy`'s).

    Checked once, when built; a bad setting raises ConfigurationError naming it.
    """

    resolver: IssuerResolver | None = setting(
        None,
        doc="returns the IssuerPolicy for an issuer no configured policy names, or None "
        "(see apiguard.IssuerResolver)",
        kind="object",
    )
    cache_max_age: float = setting(
        600.0,
        doc="how long fetched keys are fresh, in seconds (Cache-Control max-age is honoured "
        "between cooldown and this)",
        kind="number",
    )
    cooldown: float = setting(
        30.0, doc="the least time between two key fetches of one issuer, in seconds", kind="number"
    )
    max_stale: float = setting(
        86400.0,
        doc="how long past freshness the last good keys serve while the issuer is "
        "unreachable, in seconds",
        kind="number",
    )
    timeout: float = setting(
        5.0,
        doc="total time for one fetch (connect, headers and body), in seconds",
        kind="number",
    )
    max_token_size: int = setting(
        16384, doc="longest token accepted, in characters", kind="integer"
    )
    max_jwks_size: int = setting(
        1 << 20, doc="largest discovery or JWKS body read, in bytes", kind="integer"
    )
    token_cache_size: int = setting(
        4096,
        doc="how many verified tokens are remembered (0 turns the cache off)",
        kind="integer",
    )
    max_key_sources: int = setting(
        100,
        doc="how many issuers' fetched key sets are kept (least recently used ones go)",
        kind="integer",
    )
    clock: Callable[[], float] | None = setting(
        None, doc="returns seconds since the epoch (default time.time); for tests", kind="object"
    )
    on_event: EventHook | None = setting(
        None,
        doc="called with a typed event per validation and per key-source happening (see "
        "apiguard.events); never sees the token",
        kind="object",
    )
    event_subject: bool = setting(
        False,
        doc="put the token's sub in validation events (off: events carry no personal data)",
        kind="boolean",
    )
    dpop: DPoPPolicy | DPoPMode | None = setting(
        "off",
        doc="DPoP (RFC 9449): off (a token with cnf is refused), allowed (Bearer and DPoP "
        "tokens), required (DPoP only), or an apiguard.dpop.DPoPPolicy; the framework layers "
        "then read and check proofs on every request; an IssuerPolicy's own dpop wins for "
        "its tokens",
        kind="string",
    )
    replay_store: ReplayStore | AsyncReplayStore | str | None = setting(
        None,
        doc="where proofs' jti are remembered (default: in this process); several workers "
        "need a shared one: a redis:// URL or an apiguard.dpop.RedisReplayStore",
        kind="string",
    )
    key_store: KeyStore | AsyncKeyStore | str | None = setting(
        None,
        doc="where fetched discovery documents and key sets are shared with the API's other "
        "processes, so that one fetch serves them all (default: not shared): a redis:// URL, "
        "an apiguard.RedisKeyStore (AsyncRedisKeyStore for AsyncValidator) or another "
        "apiguard.KeyStore",
        kind="string",
    )
    trusted_proxies: TrustedProxies | str | Iterable[str] | None = setting(
        None,
        doc="the proxies (addresses, or an apiguard.dpop.TrustedProxies) whose forwarded "
        "headers give the URI a DPoP proof must name (default: none, the request's own)",
        kind="strings",
    )
    #: The trusted issuers' policies (from ``issuer=``/``issuers=``); not a setting itself.
    policies: tuple[IssuerPolicy, ...] = ()

    def __post_init__(self) -> None:
        if self.resolver is not None and not callable(self.resolver):
            raise fail("resolver", "must be a callable (issuer, request) -> IssuerPolicy | None")
        number("cache_max_age", self.cache_max_age, low=1, high=7 * 86400)
        number("cooldown", self.cooldown, low=0, high=3600)
        number("max_stale", self.max_stale, low=0, high=30 * 86400)
        number("timeout", self.timeout, low=0.01, high=120)
        _integer("max_token_size", self.max_token_size, low=256, high=1 << 20)
        _integer("max_jwks_size", self.max_jwks_size, low=1024, high=64 << 20)
        _integer("token_cache_size", self.token_cache_size, low=0, high=1 << 20)
        _integer("max_key_sources", self.max_key_sources, low=1, high=1 << 16)
        if self.clock is not None and not callable(self.clock):
            raise fail("clock", "must be a callable returning seconds since the epoch")
        if self.on_event is not None and not callable(self.on_event):
            raise fail("on_event", "must be a callable taking one event")
        store = self.key_store
        if store is not None and not isinstance(store, str | KeyStore | AsyncKeyStore):
            raise fail(
                "key_store",
                "must be a redis:// URL or an apiguard.KeyStore (get, set, add, delete)",
            )
        if not isinstance(self.event_subject, bool):
            raise fail("event_subject", f"must be True or False, not {self.event_subject!r}")
        if not self.policies and self.resolver is None:
            raise fail("issuer", "required (or issuers=, or resolver=)")
        remote = sum(1 for p in self.policies if p.compiled.static is None)
        if remote > self.max_key_sources:
            raise fail(
                "max_key_sources",
                f"must be at least the number of issuers whose keys are fetched ({remote})",
            )


def _integer(name: str, value: Any, *, low: int, high: int) -> int:
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if not isinstance(value, int):
        raise fail(name, f"must be an integer, not {value!r}")
    return int(number(name, value, low=low, high=high))


class Settings(PolicySettings, total=False):
    """Every keyword setting of a validator, for typing: per-issuer and validator-wide.

    Declared for mypy and IDEs only; the defaults and docs are on :class:`IssuerPolicy`
    and :class:`Config`, and a test keeps the three in step.
    """

    resolver: IssuerResolver | None
    cache_max_age: float
    cooldown: float
    max_stale: float
    timeout: float
    max_token_size: int
    max_jwks_size: int
    token_cache_size: int
    max_key_sources: int
    clock: Callable[[], float] | None
    on_event: EventHook | None
    event_subject: bool
    replay_store: ReplayStore | AsyncReplayStore | str | None
    key_store: KeyStore | AsyncKeyStore | str | None
    trusted_proxies: TrustedProxies | str | Iterable[str] | None


#: The validator-wide settings (the fields of Config that are settings).
CONFIG_SETTINGS: Final = settings_of(Config)
#: The per-issuer settings, as keywords of a validator (all but ``issuer``).
POLICY_SETTINGS: Final = {k: v for k, v in settings_of(IssuerPolicy).items() if k != "issuer"}


def build_config(
    *,
    issuer: str | None = None,
    issuers: Iterable[str | IssuerPolicy] | None = None,
    owner: str = "Validator",
    **settings: Any,
) -> Config:
    """Check every setting once and build the Config; raise ConfigurationError naming one.

    ``issuer`` and the strings in ``issuers`` become policies built from the per-issuer
    settings given here; IssuerPolicy objects stand as they are.

    Raises:
        TypeError: an unknown keyword (as for any Python function).
        ConfigurationError: a bad setting; the message starts with its name.
    """
    unknown = sorted(set(settings) - CONFIG_SETTINGS.keys() - POLICY_SETTINGS.keys())
    if unknown:
        raise TypeError(f"{owner}() got an unexpected keyword argument {unknown[0]!r}")
    # A setting of both kinds (dpop) is the validator's: issuers given by URL inherit it.
    per_issuer = {
        k: v for k, v in settings.items() if k in POLICY_SETTINGS and k not in CONFIG_SETTINGS
    }
    wide = {k: v for k, v in settings.items() if k in CONFIG_SETTINGS}
    if issuer is not None and issuers is not None:
        raise fail("issuers", "give issuer= (one) or issuers= (several), not both")
    entries: list[Any]
    if issuers is None:
        entries = [] if issuer is None else [issuer]
    elif isinstance(issuers, str | bytes | Mapping) or not isinstance(issuers, Iterable):
        raise fail("issuers", "must be a list of issuer URLs and/or IssuerPolicy objects")
    else:
        entries = list(issuers)
    if issuers is not None and not entries:
        raise fail("issuers", "must not be empty")
    if not entries and wide.get("resolver") is None:
        raise fail("issuer", "required (or issuers=, or resolver=)")
    policies: list[IssuerPolicy] = []
    by_url = False
    for entry in entries:
        if isinstance(entry, IssuerPolicy):
            policies.append(entry)
        elif isinstance(entry, str):
            by_url = True
            policies.append(IssuerPolicy(entry, **per_issuer))
        else:
            raise fail("issuers", f"each entry is an issuer URL or an IssuerPolicy, not {entry!r}")
    if per_issuer and not by_url:
        name = next(iter(per_issuer))
        raise fail(
            name,
            "applies to issuers given by URL (issuer=, or strings in issuers=); "
            "set it on each IssuerPolicy instead",
        )
    seen: set[str] = set()
    for policy in policies:
        if policy.issuer in seen:
            raise fail("issuers", f"{policy.issuer!r} is listed twice")
        seen.add(policy.issuer)
    return Config(policies=tuple(policies), **wide)


def _time_claim_error(claims: Mapping[str, Any]) -> InvalidClaim:
    """Say which time claim is wrong, once the quick test found that one is."""
    if "exp" not in claims:
        return InvalidClaim("exp is missing")
    for name in _TIME_CLAIMS:
        if name not in claims:
            continue
        value = claims[name]
        if type(value) not in _NUMERIC:
            return InvalidClaim(f"{name} is not a NumericDate")
        # An integer beyond float range (JSON allows 400 digits) overflows the leeway
        # arithmetic.
        try:
            float(value)
        except OverflowError:
            return InvalidClaim(f"{name} is out of range")
    raise AssertionError("no time claim is wrong")  # pragma: no cover - callers found one


@dataclass(frozen=True, slots=True)
class Pending:
    """Validation paused until :attr:`request` has been fetched (or skipped, if optional)."""

    request: FetchRequest
    #: The key source the fetch is for (its ``lock`` serialises fetches for one issuer).
    source: KeySource
    jws: CompactJWS
    #: None when the payload did not decode (it is refused after the signature check).
    claims: dict[str, Any] | None
    policy: Compiled
    token: str
    #: URLs already fetched for this token: each is fetched at most once per validation,
    #: so a zero cooldown or a frozen clock cannot loop.
    fetched: frozenset[str] = frozenset()


class _Cached(NamedTuple):
    """A verified token and what a hit needs to re-check it cheaply."""

    token: AccessToken
    key: VerificationKey
    #: The fetched key source ``key`` came from, or None for keys that never change.
    source: KeySource | None
    #: The key-set snapshot ``key`` was found in (None without one): while it is still the
    #: current snapshot, ``key`` is known to be a member without looking.
    keys: KeySet | None
    policy: Compiled
    #: Within ``[not_before, not_after)`` the time claims hold; outside it the precise
    #: checks run again (and say why a token is refused).
    not_before: float
    not_after: float


class ValidatorCore:
    """The validator without I/O. Thread-safe for reads; ``receive`` is serialised by shells.

    Args:
        config: the validated settings.
        lock_factory: makes the single-flight lock of each key source (``threading.Lock``
            for the sync shell, ``anyio.Lock`` for the async one).
        binding: tells, for an issuer, whether its tokens may be DPoP-bound (its DPoP mode
            is not "off"); None when none may.
    """

    def __init__(
        self,
        config: Config,
        *,
        lock_factory: Callable[[], Any] = threading.Lock,
        binding: Callable[[object], bool] | None = None,
    ) -> None:
        self.config = config
        self._clock = config.clock or time.time
        #: Whether tokens of an issuer may be DPoP-bound; the binding itself is the request
        #: path's to check, on every request.
        self._binding = binding
        self.registry = IssuerRegistry(
            config.policies,
            config.resolver,
            source_settings={
                "cache_max_age": config.cache_max_age,
                "cooldown": config.cooldown,
                "max_stale": config.max_stale,
            },
            max_sources=config.max_key_sources,
            lock_factory=lock_factory,
            on_event=config.on_event,
        )
        size = config.token_cache_size
        self._cache: TokenCache[_Cached] | None = TokenCache(size) if size else None
        #: The cache's entries, read without a lock (see TokenCache) on every validation.
        self._cached_entries: OrderedDict[str, _Cached] | None = (
            self._cache.entries if self._cache is not None else None
        )
        self._max_size = config.max_token_size
        self._algorithms = self.registry.algorithms
        self._policies = self.registry.policies
        self._opaque = self.registry.opaque
        self._lock_factory = lock_factory
        #: One introspection core per issuer that introspects, made on first use.
        self._introspectors: dict[str, IntrospectionCore] = {}
        self._introspectors_lock = threading.Lock()

    def _only_policy(self) -> Compiled:
        only = self.registry.only
        if only is None:
            raise ValueError("check_claims needs a policy when several issuers are trusted")
        return only

    def body_reader(
        self, status: int, headers: Mapping[str, str], *, deadline: float
    ) -> BodyReader:
        """A reader for a fetched response, with the size cap and the fetch's deadline."""
        return BodyReader(status, headers, limit=self.config.max_jwks_size, deadline=deadline)

    def warm_up(self) -> list[tuple[KeySource, FetchRequest]]:
        """The fetches that would give every configured issuer fresh keys now."""
        return self.registry.warm_up(self._clock())

    def health(self) -> dict[str, IssuerHealth]:
        """Per issuer: whether its keys are fresh, stale or missing."""
        return self.registry.health(self._clock())

    def cache_info(self) -> CacheInfo:
        """What the verified-token cache holds."""
        if self._cache is None:
            return CacheInfo(0, 0, 0)
        return self._cache.info()

    def cache_clear(self) -> None:
        """Empty the verified-token cache and the introspection answers (keys stay cached)."""
        if self._cache is not None:
            self._cache.clear()
        for introspector in list(self._introspectors.values()):
            introspector.cache_clear()

    # -- events (only when an on_event hook is configured) -------------------------------

    def cached(self, token: str) -> AccessToken | None:
        """The verified token cached for ``token``, if any, to tell a hit from a miss."""
        entry = self._cache.peek(token) if self._cache is not None else None
        return entry.token if entry is not None else None

    def observed(
        self,
        token: str,
        outcome: AccessToken | ApiguardError,
        cached: AccessToken | None,
        duration: float,
    ) -> None:
        """Hand the hook the event of one validation (see :mod:`apiguard.events`).

        ``cached`` is what :meth:`cached` said before the validation: the same token object
        coming back means the cache answered.
        """
        hook = self.config.on_event
        assert hook is not None
        if isinstance(outcome, AccessToken):
            header = outcome.header
            event = ValidationEvent(
                "accepted",
                None,
                outcome.issuer,
                header.get("alg"),
                header.get("kid"),
                "hit" if outcome is cached else "miss",
                duration,
                outcome.subject if self.config.event_subject else None,
            )
        else:
            header, iss = self._unverified(token)
            alg, kid = header.get("alg"), header.get("kid")
            event = ValidationEvent(
                "unavailable" if isinstance(outcome, ServiceUnavailable) else "refused",
                outcome.reason,
                # Only a trusted issuer: an attacker's iss must not become a label.
                iss if isinstance(iss, str) and iss in self._policies else None,
                alg if isinstance(alg, str) else None,
                kid[:256] if isinstance(kid, str) else None,
                "miss" if cached is None else "hit",
                duration,
            )
        emit(hook, event)

    def _unverified(self, token: str) -> tuple[Mapping[str, Any], Any]:
        """A refused token's header and ``iss`` as it states them (empty when unreadable)."""
        try:
            jws = decode_compact(token, max_size=self._max_size)
        except ApiguardError:
            return _NO_HEADER, None
        try:
            return jws.header, decode_json_object(jws.payload).get("iss")
        except ApiguardError:
            return jws.header, None

    def validate(
        self, token: str, request: Any = None
    ) -> AccessToken | Pending | IntrospectionPending:
        """Validate ``token``, or pause with the fetch that must come first.

        ``request`` is the framework's request, handed to the issuer resolver only.
        """
        try:
            entries = self._cached_entries
            # The cache hit written out here (the hottest path there is): a miss costs one
            # dictionary lookup.
            hit = entries.get(token) if entries is not None else None
            if hit is not None:
                assert entries is not None
                try:  # noqa: SIM105 - contextlib.suppress would cost as much as the hit
                    entries.move_to_end(token)
                except KeyError:  # evicted by another thread since: the entry still holds
                    pass
                now = self._clock()
                # One unpacking costs less than reading the fields by name.
                cached, key, source, known, cached_policy, not_before, not_after = hit
                if source is None or (
                    (keys := source.keys) is not None
                    and (keys is known or key in keys)
                    and now < source.fresh_until
                ):
                    if not not_before <= now < not_after:
                        try:
                            self._check_times(cached.claims, now, cached_policy)
                        except TokenExpired:
                            entries.pop(token, None)  # it will never be valid again
                            raise
                    return cached
                # The key that verified it has left the issuer's key set, or the set is due
                # for a refresh that only a full validation asks for (a hit must not keep a
                # withdrawn key alive), or the source was evicted: validate afresh.
                entries.pop(token, None)
            opaque = self._opaque
            if opaque is not None and not looks_like_jwt(token):
                return self.introspection_core(opaque).introspect(token)
            try:
                jws = decode_compact(token, max_size=self._max_size, algorithms=self._algorithms)
                # The issuer is read (not trusted) before any key work: it picks the policy
                # and the key source, and an untrusted one is refused before any fetch.
                claims: dict[str, Any] | None
                try:
                    claims = decode_json_object(jws.payload)
                except MalformedToken:
                    if self.registry.only is None:
                        raise
                    claims = None  # the signature first: then the payload is refused again
                iss = claims.get("iss") if claims is not None else None
                # The common case inline: a configured issuer, matched exactly.
                policy = self._policies.get(iss) if type(iss) is str else None
                if policy is None:
                    policy = self.registry.policy(iss, request)
            except BearerError:
                if opaque is not None and opaque.token_mode == "introspection":
                    # Every token is the issuer's to judge, whatever it looks like here.
                    return self.introspection_core(opaque).introspect(token)
                raise
            if policy.token_mode == "introspection":
                return self.introspection_core(policy).introspect(token)
            return self._continue(jws, claims, policy, token, refresh=True)
        except BearerError as exc:
            logger.debug(
                "token rejected: %s (%s)", exc.reason, exc.detail, extra={"reason": exc.reason}
            )
            raise

    def check_revocation(
        self, token: str, validated: AccessToken
    ) -> AccessToken | IntrospectionPending:
        """Ask the issuer whether a token validated here is still active (revocation check).

        Returns ``validated`` at once when it came from introspection already; otherwise
        what the issuer's introspection core answers (a token, or the request to make).

        Raises:
            InvalidToken: the issuer says the token is not active (InactiveToken...).
            IntrospectionFailed: the issuer cannot be asked, or has no introspection
                configured (an operator's mistake: refused rather than let through).
        """
        if not validated.header:
            return validated  # an introspection answer (a JWT always has a header)
        policy = self.registry.policies.get(validated.issuer)
        if policy is None or policy.introspection is None:
            logger.error(
                "a route checks revocation but issuer %r has no introspection configured",
                validated.issuer[:128],
            )
            raise IntrospectionFailed("revocation check without introspection settings")
        return self.introspection_core(policy).introspect(token)

    def introspection_core(self, policy: Compiled) -> IntrospectionCore:
        """The introspection core of ``policy``'s issuer, made on first use."""
        found = self._introspectors.get(policy.issuer)
        if found is not None:
            return found
        assert policy.introspection is not None
        with self._introspectors_lock:
            found = self._introspectors.get(policy.issuer)
            if found is None:
                found = self._introspectors[policy.issuer] = IntrospectionCore(
                    policy.introspection,
                    issuer=policy.issuer,
                    check=functools.partial(self._check_answer, policy=policy),
                    lock_factory=self._lock_factory,
                    clock=self._clock,
                    timeout=self.config.timeout,
                    max_token_size=self._max_size,
                )
        return found

    def _check_answer(
        self, claims: dict[str, Any], now: float, *, policy: Compiled
    ) -> tuple[AccessToken, tuple[float, float]]:
        return self.check_claims(claims, now, policy=policy)

    def resume(self, pending: Pending, *, refresh: bool = True) -> AccessToken | Pending:
        """Go on after the fetch :attr:`Pending.request` was done (or skipped)."""
        fetched = pending.fetched | {pending.request.url} if refresh else pending.fetched
        try:
            return self._continue(
                pending.jws,
                pending.claims,
                pending.policy,
                pending.token,
                refresh=refresh,
                fetched=fetched,
            )
        except BearerError as exc:
            logger.debug(
                "token rejected: %s (%s)", exc.reason, exc.detail, extra={"reason": exc.reason}
            )
            raise

    def _continue(
        self,
        jws: CompactJWS,
        claims: dict[str, Any] | None,
        policy: Compiled,
        token: str,
        *,
        refresh: bool,
        fetched: frozenset[str] = frozenset(),
    ) -> AccessToken | Pending:
        now = self._clock()
        header = jws.header
        alg: str = header["alg"]
        kid: str | None = header.get("kid")
        if alg not in policy.algorithms:
            # Allowed for some trusted issuer (the header passed), not for this one.
            raise AlgorithmNotAllowed(f"alg {alg} is not allowed for this issuer")
        source: Source = self.registry.source(policy)
        remote: KeySource | None = None
        if isinstance(source, KeySource):
            remote = source
            found = source.lookup(kid, alg, now, refresh=refresh)
            if isinstance(found, FetchRequest):
                if found.url not in fetched:
                    return Pending(found, source, jws, claims, policy, token, fetched)
                key = source.lookup(kid, alg, now, refresh=False, fetch=False)
                assert isinstance(key, VerificationKey)  # fetch=False never asks for one
            else:
                key = found
        else:
            key = source.lookup(kid, alg)
        # The signature first: an expired forgery must read "invalid signature" (no oracle).
        key.verify_signature(alg, jws.signature, jws.signing_input)
        if claims is None:
            claims = decode_json_object(jws.payload)
        strict = policy.strict
        typ = header.get("typ")
        if typ is not None or strict:
            kind = (typ or "").lower()
            if kind not in (_STRICT_TYPES if strict else _ACCESS_TOKEN_TYPES):
                raise WrongTokenType(f"typ {str(typ)[:32]!r} is not an access token type")
        access_token, window = self.check_claims(claims, now, header, policy)
        cache = self._cache
        if cache is not None and cache.admit(token):
            keys = remote.keys if remote is not None else None
            if keys is not None and key not in keys:
                keys = None  # swapped since the lookup: hits will test membership
            cache.put(token, _Cached(access_token, key, remote, keys, policy, *window))
        return access_token

    @staticmethod
    def _check_times(claims: Mapping[str, Any], now: float, policy: Compiled) -> None:
        """Say why a token is outside its window (at the very edge it may pass)."""
        leeway = policy.leeway
        exp = claims["exp"]
        if now >= exp + leeway:
            raise TokenExpired(f"expired {now - exp:.0f} s ago (leeway {leeway:.0f} s)")
        nbf = claims.get("nbf")
        if nbf is not None and now + leeway < nbf:
            raise TokenNotYetValid(f"nbf {nbf - now:.0f} s in the future")
        iat = claims.get("iat")
        if iat is not None and now + leeway < iat:
            raise TokenNotYetValid(f"iat {iat - now:.0f} s in the future")
        max_age = policy.max_token_age
        # With max_token_age, iat is a required claim.
        if max_age is not None and (age := now - claims["iat"]) > max_age + leeway:
            raise TokenExpired(f"issued {age:.0f} s ago, max age {max_age:.0f} s")

    def _check_binding(self, claims: Mapping[str, Any]) -> None:
        binding = self._binding
        if binding is None or not binding(claims.get("iss")):
            # A sender-constrained token (DPoP, mTLS) where no proof is checked: accepting
            # it as a bearer token would strip its binding.
            raise InvalidClaim("cnf: proof of possession is not supported")
        cnf = claims["cnf"]
        jkt = cnf.get("jkt") if isinstance(cnf, dict) else None
        if not isinstance(jkt, str) or not 0 < len(jkt) <= 128 or len(cnf) != 1:
            # An mTLS binding (x5t#S256), or one beside jkt, is one apiguard cannot check.
            raise InvalidClaim("cnf: only a DPoP key binding (jkt) is supported")

    def check_claims(
        self,
        claims: dict[str, Any],
        now: float,
        header: Mapping[str, Any] = _NO_HEADER,
        policy: Compiled | None = None,
    ) -> tuple[AccessToken, tuple[float, float]]:
        """Check a claims set, wherever it came from: a verified JWT or an introspection answer.

        Returns the token and the window ``[not_before, not_after)`` in which its time
        claims hold.

        Args:
            claims: the claims set.
            now: the current time, in seconds since the epoch.
            header: the JOSE header, for the AccessToken.
            policy: the issuer's policy; default the one configured (with exactly one).

        Raises:
            InvalidToken: (a subclass per reason) a claim is missing or not acceptable.
        """
        c = policy if policy is not None else self._only_policy()
        strict = c.strict
        # Three lookups cost less than frozenset.isdisjoint, which walks the claims.
        if not strict and ("nonce" in claims or "at_hash" in claims or "c_hash" in claims):
            raise WrongTokenType("claims of an ID token (nonce, at_hash or c_hash)")
        if "cnf" in claims:
            self._check_binding(claims)
        for name in c.required_claims:
            # Present and not null: ``"org_id": null`` asserts nothing.
            if claims.get(name) is None:
                raise InvalidClaim(f"required claim {name!r} is missing or null")
        iss = claims.get("iss")
        if iss != c.issuer:
            raise WrongIssuer(f"iss {str(iss)[:128]!r} is not {c.issuer!r}")
        aud = claims.get(c.audience_claim)
        if isinstance(aud, str):
            ok = aud in c.audiences
        elif isinstance(aud, list) and aud and all(isinstance(a, str) for a in aud):
            ok = not c.audiences.isdisjoint(aud)
        else:
            ok = False
        if not ok:
            raise WrongAudience(
                f"{c.audience_claim} {str(aud)[:128]!r} names none of the audiences"
            )
        for name, accepted in c.expected_claims:
            value = claims.get(name)
            if type(value) is not str or value not in accepted:
                raise InvalidClaim(f"{name} is not an accepted value")
        exp: Any = claims.get("exp")  # a number once the test below passed
        nbf = claims.get("nbf", _NO_TIME)
        iat = claims.get("iat", _NO_TIME)
        if type(exp) not in _NUMERIC or type(nbf) not in _NUMERIC or type(iat) not in _NUMERIC:
            raise _time_claim_error(claims)
        # The window [not_before, not_after) in which the time claims hold, for this check
        # and for cache hits.
        leeway = c.leeway
        max_age = c.max_token_age
        try:
            not_after = exp + leeway
            not_before = nbf - leeway
            since = iat - leeway
            if since > not_before:
                not_before = since
            if max_age is not None:
                if iat == _NO_TIME:
                    raise InvalidClaim("iat is required with max_token_age")
                not_after = min(not_after, iat + max_age + leeway)
        except OverflowError:
            raise _time_claim_error(claims) from None
        if strict:
            for name in _STRICT_STRING_CLAIMS:
                if not isinstance(claims.get(name), str):
                    raise InvalidClaim(f"{name} is not a string")
        try:
            # Null is not a string either: a null identifier would read as "absent" to
            # code that then falls back to another claim. One C-level join fails on any
            # present member that is not a str (absent ones read as "").
            "".join(map(claims.get, _STRING_CLAIMS, _EMPTY_STRINGS))
        except TypeError:
            for name in _STRING_CLAIMS:
                if name in claims and not isinstance(claims[name], str):
                    raise InvalidClaim(f"{name} is not a string") from None
        if not not_before <= now < not_after:
            self._check_times(claims, now, c)
        token = AccessToken.from_claims(header, claims, c.scope_claims, c.role_claims)
        if c.claims_validator is not None:
            # The application's own checks come last: after the signature and every
            # standard claim, so they only ever see a token the issuer really signed.
            c.claims_validator(token)
        return token, (not_before, not_after)
