"""Validation without I/O: configuration, parse, pick the key, verify, check the claims.

:class:`ValidatorCore` is shared by :class:`~apiguard.Validator` and
:class:`~apiguard.AsyncValidator`. It either returns the validated
:class:`~apiguard.AccessToken` or a :class:`Pending` that says which URL must be fetched
first; the shells fetch it (one at a time), hand the outcome to :meth:`ValidatorCore.receive`
and :meth:`ValidatorCore.resume`. No validation logic lives in the shells.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, Final, Generic, NamedTuple, TypeVar
from urllib.parse import urlsplit

from .claims import DEFAULT_SCOPE_CLAIMS, AccessToken, ClaimPath, claim_paths
from .errors import (
    BearerError,
    ConfigurationError,
    InvalidClaim,
    TokenExpired,
    TokenNotYetValid,
    WrongAudience,
    WrongIssuer,
    WrongTokenType,
)
from .jwks import FetchRequest, KeySet, KeySource, Response, is_safe_url
from .jws import (
    ASYMMETRIC_ALGORITHMS,
    HMAC_ALGORITHMS,
    SUPPORTED_ALGORITHMS,
    CompactJWS,
    UnusableKey,
    VerificationKey,
    decode_compact,
    decode_json_object,
)

logger = logging.getLogger("apiguard")

MAX_LEEWAY: Final = 300.0
#: Claims that make a token an ID token (or a code/hash-bound artefact), never an access token.
_ID_TOKEN_CLAIMS: Final = frozenset({"nonce", "at_hash", "c_hash"})
_RFC9068_REQUIRED: Final = ("iss", "exp", "aud", "sub", "client_id", "iat", "jti")
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
_V = TypeVar("_V")
_NO_HEADER: Final[Mapping[str, Any]] = MappingProxyType({})


@dataclass(frozen=True, slots=True)
class Config:
    """Validated, immutable configuration shared by both validator shells."""

    issuer: str
    audiences: frozenset[str]
    jwks_uri: str | None
    algorithms: frozenset[str]
    leeway: float
    max_token_age: float | None
    required_claims: tuple[str, ...]
    token_type: str | None
    scope_claims: tuple[str, ...]
    role_claims: tuple[ClaimPath, ...]
    claims_validator: Callable[[AccessToken], object] | None
    shared_key: VerificationKey | None
    cache_max_age: float
    cooldown: float
    max_stale: float
    timeout: float
    max_token_size: int
    max_jwks_size: int
    token_cache_size: int
    clock: Callable[[], float]


def _fail(name: str, why: str) -> ConfigurationError:
    return ConfigurationError(f"{name}: {why}")


def _number(name: str, value: Any, *, low: float, high: float = math.inf) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise _fail(name, f"must be a number, not {value!r}")
    if not low <= value <= high:
        raise _fail(name, f"must be between {low} and {high}, not {value!r}")
    return float(value)


def _url(name: str, value: Any) -> str:
    if not isinstance(value, str) or not value:
        raise _fail(name, "must be a non-empty URL string")
    if not is_safe_url(value):
        raise _fail(name, f"must be an https URL (http only for loopback hosts), not {value!r}")
    return value


def _strings(name: str, value: Any, *, allow_empty: bool = False) -> tuple[str, ...]:
    items = (value,) if isinstance(value, str) else value
    try:
        result = tuple(items)
    except TypeError:
        raise _fail(name, "must be a string or an iterable of strings") from None
    if any(not isinstance(item, str) or not item for item in result):
        raise _fail(name, "must contain only non-empty strings")
    if not result and not allow_empty:
        raise _fail(name, "must not be empty")
    return result


def build_config(
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
) -> Config:
    """Check every setting once, at construction, and raise ConfigurationError naming it."""
    if not isinstance(issuer, str) or not issuer:
        raise _fail("issuer", "must be a non-empty string")
    parts = urlsplit(issuer)
    if parts.scheme not in ("https", "http") or not parts.netloc:
        raise _fail("issuer", f"must be an absolute http(s) URL, not {issuer!r}")
    if not is_safe_url(issuer):
        # RFC 8414 §2 issuers are https; a plain-http one is only a loopback development
        # server, whatever the keys come from.
        raise _fail("issuer", "must be https (http only for loopback hosts)")
    audiences = frozenset(_strings("audience", audience))
    # An explicitly empty allow-list is a mistake, never a request for the defaults.
    names = _strings("algorithms", algorithms) if algorithms is not None else ()
    unknown = [name for name in names if name not in SUPPORTED_ALGORITHMS]
    if unknown:
        raise _fail("algorithms", f"unsupported or unsafe: {unknown!r} ('none' never is)")
    shared_key: VerificationKey | None = None
    if shared_secret is not None:
        if jwks_uri is not None:
            raise _fail("shared_secret", "cannot be combined with jwks_uri")
        algs = frozenset(names or ("HS256",))
        if not algs <= HMAC_ALGORITHMS.keys():
            raise _fail("algorithms", "a shared secret verifies HS256/HS384/HS512 only")
        if not isinstance(shared_secret, str | bytes):
            raise _fail("shared_secret", "must be str or bytes")
        try:
            shared_key = VerificationKey.from_secret(shared_secret, algorithms=algs)
        except UnusableKey as exc:
            raise _fail("shared_secret", str(exc)) from None
    else:
        algs = frozenset(names or ASYMMETRIC_ALGORITHMS)
        if algs & HMAC_ALGORITHMS.keys():
            # Never from a JWKS: the issuer's public key must not become an HMAC secret.
            raise _fail("algorithms", "HS* needs shared_secret and is never used with a JWKS")
        if jwks_uri is not None:
            _url("jwks_uri", jwks_uri)
    if token_type not in (None, "at+jwt"):
        raise _fail("token_type", "must be None or 'at+jwt'")
    max_age = None
    if max_token_age is not None:
        max_age = _number("max_token_age", max_token_age, low=1)
    size = int(_number("max_token_size", max_token_size, low=256, high=1 << 20))
    if claims_validator is not None and not callable(claims_validator):
        raise _fail("claims_validator", "must be a callable taking the AccessToken")
    return Config(
        issuer=issuer,
        audiences=audiences,
        jwks_uri=jwks_uri,
        algorithms=algs,
        leeway=_number("leeway", leeway, low=0, high=MAX_LEEWAY),
        max_token_age=max_age,
        # RFC 9068 §2.2 makes these required in the strict dialect.
        required_claims=tuple(
            dict.fromkeys(
                _strings("required_claims", required_claims, allow_empty=True)
                + (_RFC9068_REQUIRED if token_type == "at+jwt" else ())
            )
        ),
        token_type=token_type,
        scope_claims=_strings("scope_claims", scope_claims, allow_empty=True),
        role_claims=claim_paths(role_claims, name="role_claims"),
        claims_validator=claims_validator,
        shared_key=shared_key,
        cache_max_age=_number("cache_max_age", cache_max_age, low=1, high=7 * 86400),
        cooldown=_number("cooldown", cooldown, low=0, high=3600),
        max_stale=_number("max_stale", max_stale, low=0, high=30 * 86400),
        timeout=_number("timeout", timeout, low=0.01, high=120),
        max_token_size=size,
        max_jwks_size=int(_number("max_jwks_size", max_jwks_size, low=1024, high=64 << 20)),
        token_cache_size=int(_number("token_cache_size", token_cache_size, low=0, high=1 << 20)),
        clock=_clock(clock),
    )


def _clock(clock: Callable[[], float] | None) -> Callable[[], float]:
    if clock is None:
        return time.time
    if not callable(clock):
        raise _fail("clock", "must be a callable returning seconds since the epoch")
    return clock


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
    jws: CompactJWS
    token: str
    #: URLs already fetched for this token: each is fetched at most once per validation,
    #: so a zero cooldown or a frozen clock cannot loop.
    fetched: frozenset[str] = frozenset()


class _Cached(NamedTuple):
    """A verified token and what a hit needs to re-check it cheaply."""

    token: AccessToken
    key: VerificationKey
    #: The key-set snapshot ``key`` was found in (None without one): while it is still the
    #: current snapshot, ``key`` is known to be a member without looking.
    keys: KeySet | None
    #: Within ``[not_before, not_after)`` the time claims hold; outside it the precise
    #: checks run again (and say why a token is refused).
    not_before: float
    not_after: float


class _TokenCache(Generic[_V]):
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

    def pop(self, token: str) -> None:
        """Forget ``token`` (nothing happens if it is not cached)."""
        self._data.pop(token, None)

    def clear(self) -> None:
        """Forget every entry."""
        with self._lock:
            self._data.clear()
            self._seen.clear()

    def __len__(self) -> int:
        return len(self._data)


class BodyReader:
    """Collects a fetched body under the size cap and the total deadline."""

    __slots__ = ("_chunks", "_deadline", "_limit", "_size", "headers", "status")

    def __init__(self, status: int, headers: Mapping[str, str], *, limit: int, deadline: float):
        self.status = status
        self.headers = {"cache-control": headers.get("cache-control", "")}
        self._limit = limit
        self._deadline = deadline
        self._chunks: list[bytes] = []
        self._size = 0

    @property
    def wants_body(self) -> bool:
        """Only a 200 answer's body is read; anything else is a failed fetch anyway."""
        return self.status == 200

    def feed(self, chunk: bytes) -> None:
        """Add a chunk; raise ValueError past the size cap, TimeoutError past the deadline."""
        self._size += len(chunk)
        if self._size > self._limit:
            raise ValueError(f"body larger than {self._limit} bytes")
        if time.monotonic() > self._deadline:
            raise TimeoutError("body not received within the timeout")
        self._chunks.append(chunk)

    def response(self) -> Response:
        """The collected response."""
        return Response(self.status, self.headers, b"".join(self._chunks))


class ValidatorCore:
    """The validator without I/O. Thread-safe for reads; ``receive`` is serialised by shells."""

    def __init__(self, config: Config, *, binding: Callable[[object], bool] | None = None) -> None:
        self.config = config
        self._clock = config.clock
        #: Whether tokens of an issuer may be DPoP-bound (its DPoP mode is not "off"); the
        #: binding itself is the request path's to check, on every request.
        self._binding = binding
        self._keys: KeySource | None = None
        if config.shared_key is None:
            self._keys = KeySource(
                issuer=config.issuer,
                jwks_uri=config.jwks_uri,
                algorithms=config.algorithms,
                cache_max_age=config.cache_max_age,
                cooldown=config.cooldown,
                max_stale=config.max_stale,
            )
        self._cache: _TokenCache[_Cached] | None = (
            _TokenCache(config.token_cache_size) if config.token_cache_size else None
        )
        self._strict = config.token_type == "at+jwt"

    @property
    def generation(self) -> int:
        """Moves on with every fetch outcome received (see FetchRequest.generation)."""
        return self._keys.generation if self._keys is not None else 0

    def body_reader(
        self, status: int, headers: Mapping[str, str], *, deadline: float
    ) -> BodyReader:
        """A reader for a fetched response, with the size cap and the fetch's deadline."""
        return BodyReader(status, headers, limit=self.config.max_jwks_size, deadline=deadline)

    def receive(self, request: FetchRequest, outcome: Response | BaseException) -> None:
        """Hand the outcome of a fetch to the key cache."""
        assert self._keys is not None
        self._keys.receive(request, outcome, self._clock())

    def validate(self, token: str) -> AccessToken | Pending:
        """Validate ``token``, or pause with the fetch that must come first."""
        try:
            cached = self._cache_hit(token) if self._cache is not None else None
            if cached is not None:
                return cached
            jws = decode_compact(
                token, max_size=self.config.max_token_size, algorithms=self.config.algorithms
            )
            return self._continue(jws, token, refresh=True)
        except BearerError as exc:
            logger.debug("token rejected: %s (%s)", exc.reason, exc.detail)
            raise

    def resume(self, pending: Pending, *, refresh: bool = True) -> AccessToken | Pending:
        """Go on after the fetch :attr:`Pending.request` was done (or skipped)."""
        fetched = pending.fetched | {pending.request.url} if refresh else pending.fetched
        try:
            return self._continue(pending.jws, pending.token, refresh=refresh, fetched=fetched)
        except BearerError as exc:
            logger.debug("token rejected: %s (%s)", exc.reason, exc.detail)
            raise

    def _continue(
        self,
        jws: CompactJWS,
        token: str,
        *,
        refresh: bool,
        fetched: frozenset[str] = frozenset(),
    ) -> AccessToken | Pending:
        now = self._clock()
        if self._keys is None:
            assert self.config.shared_key is not None
            key = self.config.shared_key
        else:
            found = self._keys.lookup(jws.kid, jws.alg, now, refresh=refresh)
            if isinstance(found, FetchRequest) and found.url in fetched:
                found = self._keys.lookup(jws.kid, jws.alg, now, refresh=False, fetch=False)
            if isinstance(found, FetchRequest):
                return Pending(found, jws, token, fetched)
            key = found
        # The signature first: an expired forgery must read "invalid signature" (no oracle).
        key.verify(jws)
        claims = decode_json_object(jws.payload)
        access_token, window = self._check_claims(jws.header, claims, now)
        if self._cache is not None and self._cache.admit(token):
            keys = self._keys.keys if self._keys is not None else None
            if keys is not None and key not in keys:
                keys = None  # swapped since the lookup: hits will test membership
            self._cache.put(token, _Cached(access_token, key, keys, *window))
        return access_token

    def _cache_hit(self, token: str) -> AccessToken | None:
        assert self._cache is not None
        hit = self._cache.get(token)
        if hit is None:
            return None
        now = self._clock()
        source = self._keys
        if source is not None:
            keys = source.keys
            if (
                keys is None
                or (keys is not hit.keys and hit.key not in keys)
                or not source.is_fresh(now)
            ):
                # The key that verified it has left the issuer's key set, or the set is due
                # for a refresh that only a full validation asks for (a hit must not keep a
                # withdrawn key alive): validate afresh.
                self._cache.pop(token)
                return None
        if not hit.not_before <= now < hit.not_after:
            try:
                self._check_times(hit.token.claims, now)
            except TokenExpired:
                self._cache.pop(token)  # it will never be valid again
                raise
        return hit.token

    def _check_times(self, claims: Mapping[str, Any], now: float) -> None:
        """Say why a token is outside its window (at the very edge it may pass)."""
        leeway = self.config.leeway
        exp = claims["exp"]
        if now >= exp + leeway:
            raise TokenExpired(f"expired {now - exp:.0f} s ago (leeway {leeway:.0f} s)")
        nbf = claims.get("nbf")
        if nbf is not None and now + leeway < nbf:
            raise TokenNotYetValid(f"nbf {nbf - now:.0f} s in the future")
        iat = claims.get("iat")
        if iat is not None and now + leeway < iat:
            raise TokenNotYetValid(f"iat {iat - now:.0f} s in the future")
        max_age = self.config.max_token_age
        # With max_token_age, iat is a required claim.
        if max_age is not None and (age := now - claims["iat"]) > max_age + leeway:
            raise TokenExpired(f"issued {age:.0f} s ago, max age {max_age:.0f} s")

    def _check_claims(
        self, header: Mapping[str, Any], claims: dict[str, Any], now: float
    ) -> tuple[AccessToken, tuple[float, float]]:
        """Check the claims; return the token and the window in which its times hold."""
        strict = self._strict
        typ = header.get("typ")
        if typ is not None or strict:
            kind = (typ or "").lower()
            if kind not in (_STRICT_TYPES if strict else _ACCESS_TOKEN_TYPES):
                raise WrongTokenType(f"typ {str(typ)[:32]!r} is not an access token type")
        return self.check_claims(claims, now, header)

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
        self, claims: dict[str, Any], now: float, header: Mapping[str, Any] = _NO_HEADER
    ) -> tuple[AccessToken, tuple[float, float]]:
        """Check a claims set, wherever it came from: a verified JWT or an introspection answer.

        Returns the token and the window ``[not_before, not_after)`` in which its time
        claims hold.

        Raises:
            InvalidToken: (a subclass per reason) a claim is missing or not acceptable.
        """
        c = self.config
        strict = self._strict
        if not strict and not _ID_TOKEN_CLAIMS.isdisjoint(claims):
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
        aud = claims.get("aud")
        if isinstance(aud, str):
            ok = aud in c.audiences
        elif isinstance(aud, list) and aud and all(isinstance(a, str) for a in aud):
            ok = not c.audiences.isdisjoint(aud)
        else:
            ok = False
        if not ok:
            raise WrongAudience(f"aud {str(aud)[:128]!r} names none of the audiences")
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
        for name in _STRING_CLAIMS:
            # Null is not a string either: a null identifier would read as "absent" to
            # code that then falls back to another claim.
            if name in claims and not isinstance(claims[name], str):
                raise InvalidClaim(f"{name} is not a string")
        if not not_before <= now < not_after:
            self._check_times(claims, now)
        token = AccessToken.from_claims(header, claims, c.scope_claims, c.role_claims)
        if c.claims_validator is not None:
            # The application's own checks come last: after the signature and every
            # standard claim, so they only ever see a token the issuer really signed.
            c.claims_validator(token)
        return token, (not_before, not_after)
