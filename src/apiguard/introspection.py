"""Token introspection (RFC 7662) without I/O: the request, the answer's checks, the cache.

:class:`Introspection` declares how an API asks its authorization server about opaque
tokens. :class:`IntrospectionCore` decides, as :class:`~apiguard.jwks.KeySource` does for
keys, when the authorization server must be asked and what its answer means; it never
sends anything itself. The shells in :mod:`apiguard.validator` perform the requests it asks
for, with the same rules as the JWKS fetch: https only (http for loopback hosts), no
redirects, one deadline for connect, headers and body, a capped body.

An answer is accepted only if it is a JSON object with ``"active": true`` *and* its claims
pass the checks a JWT's claims pass (issuer, audience, expiry, subject, client, scopes,
required claims): ``active: true`` alone is not enough.

The cache (this is where a careless resource server loses its safety or its throughput):

* it is keyed by the SHA-256 of the token, never by the token itself;
* an accepted answer lives at most ``min(cache_ttl, exp - now)`` (and never past
  ``max_token_age``);
* ``active: false`` and refused answers are never cached as valid: they are remembered as
  refusals for at most ``negative_cache_ttl`` (a few seconds), in a bounded table of their
  own, so that a flood of one bad token costs one call;
* one introspection is in flight per token: concurrent requests with the same new token
  wait for that one answer (threads and tasks alike);
* failures (unreachable, timeouts, 5xx, a refused client authentication, garbage) are never
  cached: the requests waiting on that call share its
  :class:`~apiguard.errors.IntrospectionFailed` (503), and the next request asks again.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import logging
import math
import secrets
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final, Literal
from urllib.parse import quote_plus, urlencode

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from ._core import BodyReader, _TokenCache
from ._settings import fail as _fail
from ._settings import number as _number
from .claims import AccessToken
from .errors import (
    ApiguardError,
    ConfigurationError,
    InactiveToken,
    IntrospectionFailed,
    InvalidToken,
    MalformedToken,
    WrongTokenType,
)
from .jwks import FetchRequest, Response, discovery_urls, is_safe_url, server_metadata
from .jws import ASYMMETRIC_ALGORITHMS, decode_json_object

__all__ = ["AuthMethod", "Introspection", "IntrospectionCore", "IntrospectionPending"]

logger = logging.getLogger("apiguard.introspection")

AuthMethod = Literal["client_secret_basic", "client_secret_post", "private_key_jwt"]
_AUTH_METHODS: Final = ("client_secret_basic", "client_secret_post", "private_key_jwt")
_ASSERTION_TYPE: Final = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
#: A client assertion is good for this long (RFC 7523 §3 asks for a short lifetime).
_ASSERTION_LIFETIME: Final = 60
_MAX_NEGATIVE_TTL: Final = 60.0
#: Answers that describe a refresh token (Ory Hydra's ``token_use``, the RFC 7662
#: ``token_type`` of some servers): never accepted as access tokens.
_NOT_ACCESS_TOKENS: Final = frozenset({"refresh_token", "refresh", "id_token"})
#: How long a failed discovery waits before the next attempt, and the Retry-After of a 503.
_RETRY_AFTER: Final = 5
#: The key of the discovery flight; never a token's digest (those are 64 hex digits).
_DISCOVERY: Final = "discovery"

Check = Callable[[dict[str, Any], float], tuple[AccessToken, tuple[float, float]]]


@dataclass(frozen=True, slots=True)
class Introspection:
    """How an API asks its authorization server about opaque tokens (RFC 7662).

    The API authenticates itself as an OAuth client of the authorization server.

    Args:
        client_id: the API's own client id at the authorization server.
        client_secret: its secret, for ``client_secret_basic`` (the default when a secret
            is given) or ``client_secret_post``.
        private_key: for ``private_key_jwt`` (RFC 7523): a PEM private key (text or
            bytes), a private JWK (dict), or a ``cryptography`` private key object.
        auth_method: ``client_secret_basic``, ``client_secret_post`` or
            ``private_key_jwt``; inferred from the credential given when omitted.
        endpoint: the introspection endpoint; by default the ``introspection_endpoint``
            of the issuer's discovery document. https only (http for loopback hosts).
        signing_algorithm: the client assertion's ``alg`` (asymmetric only).
        key_id: the assertion's ``kid`` header, if the server needs one.
        assertion_audience: the assertion's ``aud``; the issuer identifier by default (as
            the RFC 7523 update recommends; some servers want their token endpoint URL).
        cache_ttl: the longest an accepted answer is reused, in seconds (0 asks every
            time). An entry never outlives the token's ``exp``.
        negative_cache_ttl: how long an ``active: false`` or refused answer is reused,
            in seconds (0 to 60).
        cache_size: how many answers are remembered, accepted and refused each.
        max_response_size: the largest answer read, in bytes.

    Raises:
        ConfigurationError: a setting is missing, inconsistent or unsafe.

    >>> settings = Introspection(client_id="organizer-api", client_secret="a-dev-secret")
    >>> settings.auth_method
    'client_secret_basic'

    Warning:
        An accepted answer is reused for up to ``cache_ttl`` seconds: a token revoked
        meanwhile still works here until its entry expires. Keep it short where
        revocation must take effect at once.
    """

    client_id: str
    client_secret: str | None = field(default=None, repr=False)
    private_key: Any = field(default=None, repr=False)
    auth_method: AuthMethod | None = None
    endpoint: str | None = None
    signing_algorithm: str = "RS256"
    key_id: str | None = None
    assertion_audience: str | None = None
    cache_ttl: float = 60.0
    negative_cache_ttl: float = 5.0
    cache_size: int = 4096
    max_response_size: int = 64 * 1024
    #: The private key as a ``cryptography`` object, built once.
    signing_key: Any = field(default=None, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        set_ = functools.partial(object.__setattr__, self)
        if not _printable(self.client_id):
            raise _fail("client_id", "must be a non-empty string of printable characters")
        method = self.auth_method
        if method is None:
            if self.client_secret is not None and self.private_key is not None:
                raise _fail("auth_method", "must be given with both a secret and a private key")
            method = "private_key_jwt" if self.private_key is not None else "client_secret_basic"
            set_("auth_method", method)
        if method not in _AUTH_METHODS:
            raise _fail("auth_method", f"must be one of {', '.join(_AUTH_METHODS)}")
        if method == "private_key_jwt":
            if self.private_key is None:
                raise _fail("private_key", "is required for private_key_jwt")
            set_("signing_key", _signing_key(self.private_key, self.signing_algorithm))
        elif not isinstance(self.client_secret, str) or not _printable(self.client_secret):
            raise _fail("client_secret", f"must be a non-empty string for {method}")
        if self.endpoint is not None and (
            not isinstance(self.endpoint, str) or not is_safe_url(self.endpoint)
        ):
            raise _fail("endpoint", "must be an https URL (http only for loopback hosts)")
        for name in ("key_id", "assertion_audience"):
            value = getattr(self, name)
            if value is not None and not _printable(value):
                raise _fail(name, "must be a non-empty string")
        set_("cache_ttl", _number("cache_ttl", self.cache_ttl, low=0, high=86400))
        set_(
            "negative_cache_ttl",
            _number("negative_cache_ttl", self.negative_cache_ttl, low=0, high=_MAX_NEGATIVE_TTL),
        )
        set_("cache_size", int(_number("cache_size", self.cache_size, low=0, high=1 << 20)))
        size = _number("max_response_size", self.max_response_size, low=1024, high=16 << 20)
        set_("max_response_size", int(size))


def _printable(value: object) -> bool:
    return isinstance(value, str) and bool(value) and value.isprintable()


def _signing_key(private_key: Any, algorithm: str) -> Any:
    """The private key as a ``cryptography`` object that can sign ``algorithm``."""
    if algorithm not in ASYMMETRIC_ALGORITHMS:
        raise _fail("signing_algorithm", f"must be asymmetric (RS*, PS*, ES*, EdDSA): {algorithm}")
    try:
        if isinstance(private_key, str | bytes):
            data = private_key.encode() if isinstance(private_key, str) else private_key
            key: Any = serialization.load_pem_private_key(data, password=None)
        elif isinstance(private_key, Mapping):
            if "d" not in private_key:
                raise _fail("private_key", "the JWK has no private part")
            key = jwt.PyJWK(dict(private_key), algorithm).key
        else:
            key = private_key
        if isinstance(key, rsa.RSAPrivateKey) and key.key_size < 2048:
            raise _fail("private_key", "RSA keys must have at least 2048 bits")
        # Sign once now: a key of the wrong type for the algorithm fails here, at start-up.
        jwt.encode({}, key, algorithm=algorithm)
    except ConfigurationError:
        raise
    except Exception as exc:  # PyJWT, cryptography: unusable key, wrong type or curve
        raise _fail("private_key", f"cannot sign {algorithm}: {exc.__class__.__name__}") from None
    return key


# --- the state machine -----------------------------------------------------------------------


@dataclass(eq=False, slots=True)
class Flight:
    """One request to the authorization server, shared by everyone who needs its answer.

    The shell that holds ``lock`` first performs :attr:`request` (if nobody has, i.e.
    while not :attr:`done`); the others wait on the lock and then read the outcome.
    """

    key: str
    request: FetchRequest
    lock: Any
    done: bool = False
    token: AccessToken | None = None
    error: Callable[[], ApiguardError] | None = None


@dataclass(frozen=True, slots=True)
class IntrospectionPending:
    """Introspection paused until :attr:`request` has been performed (by anyone)."""

    flight: Flight
    digest: str
    token: str = field(repr=False)

    @property
    def request(self) -> FetchRequest:
        """What must be fetched."""
        return self.flight.request


@dataclass(frozen=True, slots=True)
class _Accepted:
    token: AccessToken
    until: float


@dataclass(frozen=True, slots=True)
class _Refused:
    error: Callable[[], ApiguardError]
    until: float


class _Garbage(Exception):
    """The answer says nothing about the token (the server's fault)."""


class IntrospectionCore:
    """Introspection for one issuer without I/O: cache, single flight, request and answer.

    ``introspect`` returns a token, raises, or returns an :class:`IntrospectionPending`; the
    shell performs its request unless the flight is already :attr:`Flight.done`, hands the
    outcome to ``receive`` and calls ``resume``. Cache reads take no lock.

    Args:
        settings: the :class:`Introspection` settings.
        issuer: the issuer whose tokens are introspected (discovery, assertion audience).
        check: checks the claims of an answer as those of a JWT are checked, returning the
            token and the window in which its time claims hold.
        lock_factory: makes the lock of a flight (``threading.Lock``, ``anyio.Lock``).
        clock: seconds since the epoch.
        timeout: the shells' deadline for one request, in seconds.
        max_token_size: longer tokens are refused without asking.
    """

    def __init__(
        self,
        settings: Introspection,
        *,
        issuer: str,
        check: Check,
        lock_factory: Callable[[], Any],
        clock: Callable[[], float],
        timeout: float = 5.0,
        max_token_size: int = 16384,
    ) -> None:
        self.settings = settings
        self.issuer = issuer
        self.endpoint = settings.endpoint
        self._check = check
        self._lock_factory = lock_factory
        self._clock = clock
        self._timeout = timeout
        self._max_token_size = max_token_size
        self._discovery = discovery_urls(issuer)
        self._discovery_index = 0
        self._next_discovery = -math.inf
        self._discovery_error = "not fetched yet"
        size = settings.cache_size
        self._accepted: _TokenCache[_Accepted] | None = (
            _TokenCache(size) if size and settings.cache_ttl else None
        )
        self._refused: _TokenCache[_Refused] | None = (
            _TokenCache(size) if size and settings.negative_cache_ttl else None
        )
        self._flights: dict[str, Flight] = {}
        self._flights_lock = threading.Lock()

    def body_reader(
        self, status: int, headers: Mapping[str, str], *, deadline: float
    ) -> BodyReader:
        """A reader for an answer, with the size cap and the request's deadline."""
        limit = self.settings.max_response_size
        return BodyReader(status, headers, limit=limit, deadline=deadline)

    def cache_clear(self) -> None:
        """Forget every remembered answer (accepted and refused)."""
        for cache in (self._accepted, self._refused):
            if cache is not None:
                cache.clear()

    # -- asking ------------------------------------------------------------------------------

    def introspect(self, token: str) -> AccessToken | IntrospectionPending:
        """The token's answer from the cache, or the request that must be made first.

        Raises:
            InvalidToken: a refusal remembered from a recent answer (InactiveToken...).
            MalformedToken: the token is too long to be sent.
            IntrospectionFailed: the endpoint is not known and cannot be discovered now.
        """
        digest = hashlib.sha256(token.encode()).hexdigest()
        accepted = self._accepted
        if accepted is not None:
            hit = accepted.get(digest)
            if hit is not None:
                if self._clock() < hit.until:
                    return hit.token
                accepted.pop(digest)
        refused = self._refused
        if refused is not None:
            miss = refused.get(digest)
            if miss is not None:
                if self._clock() < miss.until:
                    raise miss.error()
                refused.pop(digest)
        if len(token) > self._max_token_size:
            raise MalformedToken(f"token longer than {self._max_token_size} characters")
        return self._join(token, digest)

    def _join(self, token: str, digest: str) -> IntrospectionPending:
        """Join the flight for this token (or for the discovery first), starting it if none."""
        endpoint = self.endpoint
        if endpoint is None:
            key = _DISCOVERY
            now = self._clock()
            if now < self._next_discovery:
                raise IntrospectionFailed(
                    f"introspection endpoint unknown: {self._discovery_error}",
                    retry_after=math.ceil(self._next_discovery - now),
                )
            url = self._discovery[self._discovery_index]
            request = FetchRequest(url, "discovery")
        else:
            key = digest
            flight = self._flights.get(key)
            if flight is not None:
                return IntrospectionPending(flight, digest, token)
            # Built outside the lock (signing an assertion takes a while); a loser's request
            # is dropped unused.
            request = self._request(endpoint, token)
        with self._flights_lock:
            flight = self._flights.get(key)
            if flight is None:
                flight = self._flights[key] = Flight(key, request, self._lock_factory())
        return IntrospectionPending(flight, digest, token)

    def _request(self, endpoint: str, token: str) -> FetchRequest:
        s = self.settings
        form = [("token", token), ("token_type_hint", "access_token")]
        headers = [("Content-Type", "application/x-www-form-urlencoded")]
        if s.auth_method == "client_secret_basic":
            # RFC 6749 §2.3.1: both are form-encoded before they are joined.
            assert s.client_secret is not None
            pair = f"{quote_plus(s.client_id)}:{quote_plus(s.client_secret)}"
            headers.append(("Authorization", "Basic " + base64.b64encode(pair.encode()).decode()))
        elif s.auth_method == "client_secret_post":
            assert s.client_secret is not None
            form += [("client_id", s.client_id), ("client_secret", s.client_secret)]
        else:
            form += [
                ("client_id", s.client_id),
                ("client_assertion_type", _ASSERTION_TYPE),
                ("client_assertion", self._assertion()),
            ]
        body = urlencode(form).encode("ascii")
        return FetchRequest(
            endpoint, "introspection", method="POST", headers=tuple(headers), body=body
        )

    def _assertion(self) -> str:
        """A fresh RFC 7523 client assertion (its ``jti`` is never reused)."""
        s = self.settings
        now = int(self._clock())
        claims = {
            "iss": s.client_id,
            "sub": s.client_id,
            "aud": s.assertion_audience or self.issuer,
            "iat": now,
            "exp": now + _ASSERTION_LIFETIME,
            "jti": secrets.token_urlsafe(24),
        }
        headers = {"kid": s.key_id} if s.key_id else None
        return jwt.encode(claims, s.signing_key, algorithm=s.signing_algorithm, headers=headers)

    # -- the answer --------------------------------------------------------------------------

    def receive(self, pending: IntrospectionPending, outcome: Response | BaseException) -> None:
        """Digest the outcome of the pending flight: a response, or what the fetch raised.

        Never raises: the verdict is kept on the flight (and in the cache) for everyone
        waiting on it, and :meth:`resume` hands it out.
        """
        flight = pending.flight
        try:
            if flight.key == _DISCOVERY:
                self._discovered(outcome)
            else:
                self._answered(flight, pending.digest, outcome)
        finally:
            flight.done = True
            with self._flights_lock:
                if self._flights.get(flight.key) is flight:
                    del self._flights[flight.key]

    def resume(self, pending: IntrospectionPending) -> AccessToken | IntrospectionPending:
        """Go on once the pending flight is done: the verdict, or the next request.

        Raises:
            InvalidToken: the answer refused the token (InactiveToken, WrongAudience...).
            IntrospectionFailed: the authorization server gave no usable answer.
        """
        flight = pending.flight
        if flight.error is not None:
            raise flight.error()
        if flight.token is not None:
            return flight.token
        # The discovery is done (or the flight was abandoned): ask again.
        return self.introspect(pending.token)

    def _discovered(self, outcome: Response | BaseException) -> None:
        now = self._clock()
        try:
            if isinstance(outcome, BaseException):
                raise ValueError(f"{outcome.__class__.__name__}: {outcome}")
            last = self._discovery_index + 1 == len(self._discovery)
            if outcome.status == 404 and not last:
                self._discovery_index += 1  # no OpenID configuration: try RFC 8414 at once
                return
            endpoint = server_metadata(outcome, self.issuer).get("introspection_endpoint")
            if not isinstance(endpoint, str) or not is_safe_url(endpoint):
                raise ValueError("discovery document has no usable introspection_endpoint")
        except ValueError as exc:
            self._discovery_index = 0
            self._discovery_error = str(exc)
            self._next_discovery = now + _RETRY_AFTER
            logger.warning("introspection endpoint discovery failed: %s", exc)
            return
        self.endpoint = endpoint
        logger.debug("discovered introspection_endpoint %s", endpoint)

    def _answered(self, flight: Flight, digest: str, outcome: Response | BaseException) -> None:
        now = self._clock()
        try:
            claims = _answer(outcome)
            _check_kind(claims)
            token, (_, not_after) = self._check(claims, now)
        except _Garbage as exc:
            logger.warning("introspection failed: %s", exc)
            flight.error = functools.partial(
                IntrospectionFailed, f"introspection failed: {exc}", retry_after=_RETRY_AFTER
            )
            return
        except InvalidToken as exc:
            logger.debug("token refused by introspection: %s (%s)", exc.reason, exc.detail)
            error = flight.error = functools.partial(type(exc), exc.detail)
            if self._refused is not None:
                until = now + self.settings.negative_cache_ttl
                self._refused.put(digest, _Refused(error, until))
            return
        flight.token = token
        if self._accepted is not None:
            # Never past the token's own expiry (no leeway here: the leeway tolerates clock
            # skew on a check, it does not extend what a cache may remember).
            until = min(now + self.settings.cache_ttl, claims["exp"], not_after)
            if until > now:
                self._accepted.put(digest, _Accepted(token, until))


def _answer(outcome: Response | BaseException) -> dict[str, Any]:
    """The claims of an ``active: true`` answer; raise _Garbage or InactiveToken otherwise."""
    if isinstance(outcome, BaseException):
        raise _Garbage(f"{outcome.__class__.__name__}: {outcome}")
    if outcome.status != 200:
        if outcome.status in (400, 401, 403):
            # The server refused *us*: wrong client credentials or a client not allowed to
            # introspect. An operator must fix it; every token gets 503 until then.
            logger.error("introspection endpoint refused the client (HTTP %d)", outcome.status)
        raise _Garbage(f"HTTP {outcome.status}")
    try:
        # The strict decoder of JWT claims: no duplicate names (which "active" would win?),
        # no NaN or Infinity (an "exp" of Infinity would never expire), bounded nesting.
        doc = decode_json_object(outcome.body)
    except MalformedToken as exc:
        raise _Garbage(f"answer is not a JSON object ({exc.detail})") from None
    active = doc.get("active")
    if active is False:
        raise InactiveToken("introspection answered active: false")
    if active is not True:
        raise _Garbage("answer has no boolean 'active'")
    return doc


def _check_kind(claims: Mapping[str, Any]) -> None:
    """Refuse answers that describe a refresh or ID token (some servers introspect those too)."""
    for name in ("token_type", "token_use"):
        value = claims.get(name)
        if value is None:
            continue
        if not isinstance(value, str):
            raise WrongTokenType(f"{name} is not a string")
        if value.lower() in _NOT_ACCESS_TOKENS:
            raise WrongTokenType(f"{name} {value[:32]!r} is not an access token")
