"""Key sets and the JWKS cache state machine, without I/O.

:class:`KeySet` is an immutable snapshot of an issuer's usable keys. :class:`KeySource`
decides *when* keys must be fetched (cold start, staleness, an unknown ``kid`` off cooldown)
and digests what a fetch brought back; it never fetches anything itself. The shells in
:mod:`apiguard.validator` perform the requests it asks for, one at a time.

Policies:

* fresh for ``cache_max_age`` (600 s) or the server's ``Cache-Control: max-age`` clamped to
  ``[cooldown, cache_max_age]``;
* at most one fetch per ``cooldown`` (30 s), however many unknown ``kid``s arrive;
* a failed refresh keeps the last good set for up to ``max_stale`` (24 h) after it went
  stale, logged as a warning; only when no cached key can serve does validation raise
  :class:`~apiguard.errors.KeySetUnavailable`;
* bad members are skipped and logged (private material, ``oct`` keys, wrong ``use``...),
  duplicate ``kid``\\ s make that ``kid`` unusable (fail closed), at most 100 keys.
"""

from __future__ import annotations

import hashlib
import ipaddress
import json
import logging
import math
import re
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final, Literal
from urllib.parse import urlsplit

from .errors import (
    AlgorithmNotAllowed,
    KeySetUnavailable,
    UnknownSigningKey,
)
from .events import EventHook, KeySourceEvent, emit
from .jws import ASYMMETRIC_ALGORITHMS, UnusableKey, VerificationKey

__all__ = [
    "BodyReader",
    "FetchRequest",
    "KeySet",
    "KeySource",
    "Response",
    "StoredDocument",
    "discovery_urls",
    "freshness_lifetime",
    "is_safe_url",
    "server_metadata",
]

logger = logging.getLogger("apiguard.jwks")

MAX_KEYS: Final = 100
MAX_KID_LENGTH: Final = 256
_MAX_AGE: Final = re.compile(r"(?:^|,)\s*max-age\s*=\s*\"?(\d{1,10})\"?\s*(?:,|$)", re.IGNORECASE)


def is_safe_url(url: str) -> bool:
    """Tell whether ``url`` may be fetched: https, or http to a loopback host (development)."""
    try:
        parts = urlsplit(url)
        host = parts.hostname
    except ValueError:
        return False
    if not host or parts.username or parts.password:
        return False
    if parts.scheme == "https":
        return True
    if parts.scheme != "http":
        return False
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def freshness_lifetime(
    cache_control: str | None, *, cache_max_age: float = 600.0, cooldown: float = 30.0
) -> float:
    """How long a fetched key set stays fresh, in seconds, given its ``Cache-Control``.

    ``max-age`` is honoured between ``cooldown`` and ``cache_max_age``; ``no-store`` or
    ``no-cache`` mean ``cooldown``; anything else (or nothing) means ``cache_max_age``.

    >>> freshness_lifetime("public, max-age=120")
    120.0
    """
    ceiling = cache_max_age
    floor = min(cooldown, ceiling)
    if cache_control:
        lowered = cache_control.lower()
        if "no-store" in lowered or "no-cache" in lowered:
            return floor
        match = _MAX_AGE.search(cache_control)
        if match:
            return min(max(float(match.group(1)), floor), ceiling)
    return ceiling


class KeySet:
    """An immutable snapshot of the keys an issuer signs with.

    Build it with :meth:`from_jwks`; find the key for a token with :meth:`select`.
    """

    __slots__ = ("_ambiguous", "_by_kid", "_members", "_only", "keys")

    def __init__(
        self, keys: Iterable[VerificationKey], *, ambiguous_kids: Iterable[str] = ()
    ) -> None:
        self.keys: tuple[VerificationKey, ...] = tuple(keys)
        self._ambiguous = frozenset(ambiguous_kids)
        by_kid: dict[str | None, list[VerificationKey]] = {}
        for key in self.keys:
            by_kid.setdefault(key.kid, []).append(key)
        self._by_kid = {kid: tuple(keys) for kid, keys in by_kid.items()}
        self._members = frozenset(id(key) for key in self.keys)
        #: The usual case, decided once per key set: a kid that names exactly one key.
        self._only = {
            kid: keys[0]
            for kid, keys in self._by_kid.items()
            if kid is not None and len(keys) == 1 and kid not in self._ambiguous
        }

    def __contains__(self, key: object) -> bool:
        return id(key) in self._members

    @property
    def ambiguous_kids(self) -> frozenset[str]:
        """Kids that name several keys of the set (unusable: apiguard never guesses)."""
        return self._ambiguous

    def __len__(self) -> int:
        return len(self.keys)

    @classmethod
    def from_jwks(
        cls,
        document: bytes | str | Mapping[str, Any],
        *,
        algorithms: Iterable[str] = ASYMMETRIC_ALGORITHMS,
        symmetric: bool = False,
        previous: KeySet | None = None,
        max_keys: int = MAX_KEYS,
    ) -> KeySet:
        """Parse a JWK Set (RFC 7517 §5), keeping only the keys apiguard may verify with.

        Args:
            document: the JWKS as bytes, text, or an already decoded mapping.
            algorithms: the validator's allow-list.
            symmetric: a locally configured set of shared secrets (``oct`` keys only). A
                set fetched from an issuer is never symmetric.
            previous: the set this one replaces; unchanged keys are reused, so parsed key
                objects are built once and verified-token cache entries stay valid.
            max_keys: members beyond this many make the whole set unacceptable.

        Raises:
            UnusableKey: not a JSON object with a ``keys`` array, too many members, or (for
                ``symmetric``) a member that is not an ``oct`` key.
        """
        if isinstance(document, Mapping):
            doc: Any = document
        else:
            try:
                doc = json.loads(document)
            except (ValueError, RecursionError):
                raise UnusableKey("JWKS is not JSON") from None
        members = doc.get("keys") if isinstance(doc, dict) else None
        if not isinstance(members, list):
            raise UnusableKey('JWKS is not an object with a "keys" array')
        if len(members) > max_keys:
            raise UnusableKey(f"JWKS has {len(members)} keys, more than {max_keys}")
        if symmetric and any(not isinstance(m, dict) or m.get("kty") != "oct" for m in members):
            # A set mixing secrets and public keys makes the algorithm family ambiguous.
            raise UnusableKey("a shared-secret key set may hold only oct keys")
        reuse = {key.fingerprint: key for key in previous.keys} if previous else {}
        keys: list[VerificationKey] = []
        for index, member in enumerate(members):
            try:
                key = VerificationKey.from_jwk(member, algorithms=algorithms, symmetric=symmetric)
            except UnusableKey as exc:
                level = logging.ERROR if _leaks_secrets(member) else logging.INFO
                logger.log(level, "JWKS member %d skipped: %s", index, exc)
                continue
            old = reuse.get(key.fingerprint)
            same = old is not None and (old.kid, old.algorithms) == (key.kid, key.algorithms)
            keys.append(old if same and old is not None else key)
        return cls(keys, ambiguous_kids=_duplicate_kids(members))

    def select(self, kid: str | None, alg: str) -> VerificationKey | None:
        """The one key that may verify a token with this ``kid`` and ``alg``.

        Returns None when no key has this ``kid`` (the caller may refresh the set).

        Raises:
            UnknownSigningKey: several keys fit (a duplicate ``kid``, or no ``kid`` while
                the set has several candidates): apiguard never tries keys in turn.
            AlgorithmNotAllowed: keys with this ``kid`` exist but none may verify ``alg``.
        """
        only = self._only.get(kid) if kid is not None else None
        if only is not None and alg in only.algorithms:
            return only
        if kid is None:
            candidates = tuple(key for key in self.keys if alg in key.algorithms)
            if not candidates:
                return None
        elif kid in self._ambiguous:
            logger.error("JWKS has several signing keys with kid %r: refusing them", kid[:64])
            raise UnknownSigningKey("ambiguous key choice")
        else:
            same_kid = self._by_kid.get(kid)
            if same_kid is None:
                return None
            candidates = tuple(key for key in same_kid if alg in key.algorithms)
            if not candidates:
                raise AlgorithmNotAllowed(f"key {kid[:64]!r} may not verify {alg}")
        if len(candidates) > 1:
            if kid is not None:
                logger.error("JWKS has %d keys with kid %r: refusing both", len(candidates), kid)
            raise UnknownSigningKey("ambiguous key choice")
        return candidates[0]


def _duplicate_kids(members: list[Any]) -> set[str]:
    """Kids shared by two signing members that could serve the same ``alg``.

    Counted before the members are parsed: if one of two twins is broken, the issuer's key
    set is inconsistent, and picking the surviving twin would be a guess (fail closed).
    Twins that differ in ``use`` or ``alg`` are not ambiguous: filtering tells them apart.
    """
    seen: dict[str, list[Any]] = {}
    duplicates: set[str] = set()
    for member in members:
        if not isinstance(member, dict) or member.get("use", "sig") != "sig":
            continue
        kid, alg = member.get("kid"), member.get("alg")
        if not isinstance(kid, str):
            continue
        others = seen.setdefault(kid, [])
        if any(other is None or alg is None or other == alg for other in others):
            duplicates.add(kid)
        others.append(alg)
    return duplicates


def _leaks_secrets(member: Any) -> bool:
    return isinstance(member, dict) and (member.get("kty") == "oct" or "d" in member)


# --- documents shared between processes ------------------------------------------------------

#: How far ahead of this clock another machine's may run: a document "fetched" later than
#: that is a bad store value.
STORE_CLOCK_SKEW: Final = 5.0
_STORED_MAGIC: Final = b"apiguard-document/1\n"
#: The stored header (URL, fetch time, Cache-Control) is small; a longer one is refused.
_MAX_STORED_HEADER: Final = 10_000


@dataclass(frozen=True, slots=True)
class StoredDocument:
    """A fetched discovery document or JWKS, as processes share it through a key store.

    Public data only: the URL, when it was fetched (seconds since the epoch), the answer's
    ``Cache-Control`` and its body. Never a token, never a header that could carry one.
    """

    url: str
    fetched_at: float
    cache_control: str
    body: bytes = field(repr=False)

    @staticmethod
    def key(request: FetchRequest) -> str:
        """The store key of what ``request`` fetches: the format, its purpose, its URL's SHA-256.

        The format version is in the key, so that two versions of apiguard sharing a store
        during an upgrade each read their own values, never warn about the other's.
        """
        digest = hashlib.sha256(request.url.encode()).hexdigest()
        return f"v1:{request.purpose}:{digest}"

    def encode(self) -> bytes:
        """The bytes a store keeps: a versioned JSON header line, then the body as fetched."""
        header = {
            "url": self.url,
            "fetched_at": self.fetched_at,
            "cache_control": self.cache_control,
        }
        return _STORED_MAGIC + json.dumps(header).encode() + b"\n" + self.body

    @classmethod
    def decode(cls, value: object, *, max_size: int) -> StoredDocument:
        """Read what a store gave back, as hostile input: size-capped and checked field by field.

        Args:
            value: the stored bytes.
            max_size: the largest body accepted, in bytes (the validator's ``max_jwks_size``).

        Raises:
            ValueError: not bytes, too large, or not a document this version wrote.
        """
        if isinstance(value, bytearray | memoryview):
            value = bytes(value)
        if not isinstance(value, bytes):
            raise ValueError(f"stored value is {type(value).__name__}, not bytes")
        if len(value) > max_size + _MAX_STORED_HEADER:
            raise ValueError(f"stored value larger than {max_size} bytes")
        if not value.startswith(_STORED_MAGIC):
            raise ValueError("stored value is not a document of this version")
        line, newline, body = value[len(_STORED_MAGIC) :].partition(b"\n")
        if not newline or len(line) > _MAX_STORED_HEADER or len(body) > max_size:
            raise ValueError("stored value has no valid header")
        try:
            header = json.loads(line)
        except (ValueError, RecursionError):
            raise ValueError("stored header is not JSON") from None
        if not isinstance(header, dict):
            raise ValueError("stored header is not an object")
        url, fetched_at, cache_control = (
            header.get("url"),
            header.get("fetched_at"),
            header.get("cache_control"),
        )
        if not isinstance(url, str) or not isinstance(cache_control, str):
            raise ValueError("stored header lacks its url or cache_control")
        if isinstance(fetched_at, bool):
            fetched_at = None
        try:
            when = float(fetched_at) if isinstance(fetched_at, int | float) else math.nan
        except OverflowError:
            when = math.nan
        if not math.isfinite(when):
            raise ValueError("stored header has no valid fetched_at")
        return cls(url, when, cache_control, body)


# --- the cache state machine -------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class FetchRequest:
    """What a sans-I/O core needs fetched; the shells perform it and hand the outcome back.

    A ``GET`` for discovery and key sets; a ``POST`` of a form ``body`` with client
    authentication in ``headers`` for token introspection (RFC 7662). Whatever the method,
    the shells apply the same rules: no redirects, one deadline, a capped body.
    """

    url: str
    purpose: Literal["discovery", "jwks", "introspection"]
    #: The :attr:`KeySource.generation` this was asked in; if it moved on, somebody else
    #: fetched meanwhile and this request is moot (single flight).
    generation: int = 0
    #: The current keys still serve; the fetch only refreshes them and may be skipped
    #: when another fetch is under way.
    optional: bool = False
    method: Literal["GET", "POST"] = "GET"
    #: Extra request headers. Never shown by ``repr``: they may carry client credentials.
    headers: tuple[tuple[str, str], ...] = field(default=(), repr=False)
    #: An ``application/x-www-form-urlencoded`` body (with a token in it): never shown.
    body: bytes = field(default=b"", repr=False)


@dataclass(slots=True)
class Response:
    """What a shell brings back from a fetch: status, headers and a size-capped body."""

    status: int
    headers: Mapping[str, str] = field(default_factory=dict)
    body: bytes = b""


@dataclass(frozen=True, slots=True)
class _Settings:
    issuer: str
    jwks_uri: str | None
    algorithms: frozenset[str]
    cache_max_age: float
    cooldown: float
    max_stale: float


class KeySource:
    """The JWKS cache state machine for one issuer (sans-I/O).

    ``lookup`` answers with a key, raises, or returns a :class:`FetchRequest`; ``receive``
    takes the outcome of that request. Reads of the current snapshot take no lock: every
    mutation replaces attributes by assignment, and the shells serialise ``receive``.
    """

    def __init__(
        self,
        *,
        issuer: str,
        jwks_uri: str | None,
        algorithms: Iterable[str],
        cache_max_age: float = 600.0,
        cooldown: float = 30.0,
        max_stale: float = 86400.0,
    ) -> None:
        self._s = _Settings(
            issuer, jwks_uri, frozenset(algorithms), cache_max_age, cooldown, max_stale
        )
        self.issuer = issuer
        self.jwks_uri = jwks_uri
        #: The shells' single-flight lock for this source (set by whoever creates it).
        self.lock: Any = None
        #: The validator's ``on_event`` hook (set by whoever creates the source), or None.
        self.on_event: EventHook | None = None
        self._fetched_at = -math.inf
        self._discovery = discovery_urls(issuer)
        self._discovery_index = 0
        self.keys: KeySet | None = None
        #: Until when (seconds since the epoch) the key set is fresh; read on every cache hit,
        #: so it is an attribute rather than a call (see :meth:`is_fresh`).
        self.fresh_until = -math.inf
        self._usable_until = -math.inf
        self._next_fetch = -math.inf
        self._last_error: str | None = None
        #: Moves on with every :meth:`receive` (and :meth:`take_stored`); see
        #: :attr:`FetchRequest.generation`.
        self.generation = 0

    def is_fresh(self, now: float) -> bool:
        """Tell whether the cached key set is within its freshness lifetime."""
        return now < self.fresh_until

    def is_usable(self, now: float) -> bool:
        """Tell whether the cached key set may still serve (fresh, or stale within bounds)."""
        return self.keys is not None and now < self._usable_until

    @property
    def last_error(self) -> str | None:
        """Why the last fetch failed, or None after a success (or before any fetch)."""
        return self._last_error

    def retire(self) -> None:
        """Mark the source as no longer in use: cached tokens verified with its keys miss."""
        self.fresh_until = -math.inf

    def refresh_request(self, now: float) -> FetchRequest | None:
        """What to fetch for fresh keys now, or None: fresh already, or on cooldown."""
        if now < self._next_fetch:
            return None
        if self.jwks_uri is None:
            url = self._discovery[self._discovery_index]
            return FetchRequest(url, "discovery", self.generation)
        if self.keys is None or now >= self.fresh_until:
            return FetchRequest(self.jwks_uri, "jwks", self.generation)
        return None

    def lookup(
        self,
        kid: str | None,
        alg: str,
        now: float,
        *,
        refresh: bool = True,
        fetch: bool = True,
    ) -> VerificationKey | FetchRequest:
        """Find the key for a token, or say what must be fetched first.

        Args:
            kid, alg: from the token's header.
            now: the current time in seconds since the epoch.
            refresh: False to use the cached keys even if stale (another fetch is running).
            fetch: False to answer from the cache alone, as if on cooldown (the caller has
                already fetched for this token); a FetchRequest is then never returned.

        Raises:
            KeySetUnavailable: no usable key set and no fetch may be tried yet.
            UnknownSigningKey, AlgorithmNotAllowed: see :meth:`KeySet.select`.
        """
        may_fetch = fetch and now >= self._next_fetch
        if self.jwks_uri is None:
            url = self._discovery[self._discovery_index]
            return self._fetch_or_fail(url, "discovery", now, may_fetch)
        keys = self.keys if now < self._usable_until else None
        if keys is None:
            return self._fetch_or_fail(self.jwks_uri, "jwks", now, may_fetch)
        # KeySet.select's common case first, without the call: a kid naming one key.
        key = keys._only.get(kid) if kid is not None else None
        if key is None or alg not in key.algorithms:
            key = keys.select(kid, alg)
        if key is None:
            # An unknown kid may mean the issuer rotated: look again, but at most once per
            # cooldown, and never for a kid too long to be real (a flood of junk kids).
            refetch = may_fetch and (kid is None or len(kid) <= MAX_KID_LENGTH)
            if self.on_event is not None:
                self._unknown_kid(kid, held_back=fetch and not refetch)
            if refetch:
                return FetchRequest(self.jwks_uri, "jwks", self.generation)
            if self._last_error is not None:
                raise KeySetUnavailable(
                    f"key not cached and the last fetch failed: {self._last_error}",
                    retry_after=self._retry_after(now),
                )
            raise UnknownSigningKey(f"no key with kid {str(kid)[:64]!r}")
        if refresh and may_fetch and now >= self.fresh_until:
            return FetchRequest(self.jwks_uri, "jwks", self.generation, optional=True)
        return key

    def _unknown_kid(self, kid: str | None, *, held_back: bool) -> None:
        assert self.on_event is not None
        shown = None if kid is None else kid[:64]
        emit(self.on_event, KeySourceEvent("unknown_kid", self.issuer, kid=shown))
        if held_back:
            emit(self.on_event, KeySourceEvent("cooldown_active", self.issuer, kid=shown))

    def _fetch_or_fail(self, url: str, purpose: Any, now: float, may_fetch: bool) -> FetchRequest:
        if may_fetch:
            return FetchRequest(url, purpose, self.generation)
        if self.on_event is not None:
            emit(self.on_event, KeySourceEvent("cooldown_active", self.issuer, purpose=purpose))
        raise KeySetUnavailable(
            f"no usable key set: {self._last_error or 'not fetched yet'}",
            retry_after=self._retry_after(now),
        )

    def _retry_after(self, now: float) -> int:
        return max(1, math.ceil(self._next_fetch - now))

    def receive(
        self,
        request: FetchRequest,
        outcome: Response | BaseException,
        now: float,
        *,
        duration: float | None = None,
    ) -> None:
        """Digest the outcome of ``request``: a response, or the exception the fetch raised.

        Never raises for a bad response: the failure is remembered (and logged), and
        :meth:`lookup` turns it into the right error for each token. ``duration`` is how
        long the fetch took, in seconds (for events).
        """
        self.generation += 1
        before = self.keys
        try:
            if isinstance(outcome, BaseException):
                raise _FetchFailed(f"{outcome.__class__.__name__}: {outcome}")
            if request.purpose == "discovery":
                self._discovered(outcome, now)
            else:
                self._refreshed(outcome, now)
        except _FetchFailed as failure:
            self._failed(request, str(failure), now, duration)
        else:
            if self.on_event is not None:
                self._fetched(request, before, duration)

    def _fetched(
        self, request: FetchRequest, before: KeySet | None, duration: float | None
    ) -> None:
        assert self.on_event is not None
        jwks = request.purpose == "jwks"
        keys = self.keys if jwks else None
        emit(
            self.on_event,
            KeySourceEvent(
                "fetch_succeeded",
                self.issuer,
                purpose=request.purpose,
                url=request.url,
                duration=duration,
                keys=len(keys) if keys is not None else None,
            ),
        )
        if jwks and keys is not None:
            self._rotation(before, keys)

    def _rotation(self, before: KeySet | None, keys: KeySet) -> None:
        assert self.on_event is not None
        if before is None:
            return
        old, new = _kids(before), _kids(keys)
        if old != new:
            emit(
                self.on_event,
                KeySourceEvent(
                    "rotation_detected",
                    self.issuer,
                    added=tuple(sorted(new - old)),
                    removed=tuple(sorted(old - new)),
                ),
            )

    def _discovered(self, response: Response, now: float) -> None:
        if response.status == 404 and self._discovery_index + 1 < len(self._discovery):
            # No OpenID configuration: try RFC 8414 metadata at once.
            self._discovery_index += 1
            return
        jwks_uri = server_metadata(response, self._s.issuer).get("jwks_uri")
        if not isinstance(jwks_uri, str) or not is_safe_url(jwks_uri):
            raise _FetchFailed("discovery document has no usable https jwks_uri")
        self.jwks_uri = jwks_uri
        self._last_error = None
        logger.debug("discovered jwks_uri %s", jwks_uri)

    def _refreshed(self, response: Response, now: float) -> None:
        keys, ttl = self._key_set(response)
        self._install(keys, ttl, now)
        self._next_fetch = now + self._s.cooldown
        logger.debug("JWKS fetched: %d usable keys, fresh for %.0f s", len(keys), ttl)

    def _key_set(self, response: Response) -> tuple[KeySet, float]:
        """The usable keys of a JWKS answer and how long they stay fresh (strict, fail closed)."""
        doc = _json_document(response, "JWKS")
        try:
            keys = KeySet.from_jwks(doc, algorithms=self._s.algorithms, previous=self.keys)
        except UnusableKey as exc:
            raise _FetchFailed(str(exc)) from None
        if not keys.keys:
            # An issuer always has a signing key: an empty set is an outage or a
            # misconfiguration, and must not evict the keys that still work (SECURITY B11).
            raise _FetchFailed("JWKS has no usable signing key")
        return keys, self._ttl(response.headers.get("cache-control"))

    def _install(self, keys: KeySet, ttl: float, fetched_at: float) -> None:
        self.keys = keys
        self._fetched_at = fetched_at
        self.fresh_until = fetched_at + ttl
        self._usable_until = fetched_at + ttl + self._s.max_stale
        self._last_error = None

    # -- documents shared by other processes (see apiguard.KeyStore) ----------------------

    def freshness(self, cache_control: str | None) -> float:
        """How long a document with this ``Cache-Control`` is fresh here, in seconds."""
        return self._ttl(cache_control)

    def shareable(self, request: FetchRequest, outcome: Response | BaseException) -> bool:
        """Whether the outcome :meth:`receive` just digested is a document worth sharing.

        Only an answer that was accepted: a 200 whose discovery document named this issuer
        and a usable ``jwks_uri``, or whose key set had a usable key.
        """
        return (
            isinstance(outcome, Response)
            and outcome.status == 200
            and request.purpose in ("discovery", "jwks")
            and self._last_error is None
        )

    def take_stored(
        self,
        request: FetchRequest,
        document: StoredDocument,
        now: float,
        *,
        wanted: tuple[str | None, str] | None = None,
    ) -> str | None:
        """Answer ``request`` with a document another process fetched, if it serves as well.

        The document is read through the same strict path as a fetched body (discovery:
        the ``issuer`` must be ours; a JWKS: the same member rules). It is taken only while
        fresh by this source's own rules, counted from when it was fetched; a key set only
        when it was fetched after ours (never an older one back), and, for a token whose
        ``kid`` we lack (``wanted``: its ``kid`` and ``alg``), only when it has that key:
        otherwise the issuer is asked, or a rotation would never land. Taking one starts
        no cooldown: that bounds fetches from the issuer, and this was none.

        Returns:
            None when the document was taken (the keys or ``jwks_uri`` are installed);
            otherwise why not, and the caller fetches from the issuer.

        Raises:
            ValueError: the document is not acceptable (another URL, from the future,
                not a usable discovery document or key set): a bad store value.
        """
        if document.url != request.url:
            raise ValueError("stored document is for another URL")
        if document.fetched_at > now + STORE_CLOCK_SKEW:
            raise ValueError("stored document was fetched in the future")
        fetched_at = min(document.fetched_at, now)
        age = now - fetched_at
        ttl = self._ttl(document.cache_control)
        if age >= ttl:
            return "stale"
        response = Response(200, {"cache-control": document.cache_control}, document.body)
        before = self.keys
        try:
            if request.purpose == "discovery":
                self._discovered(response, now)
            else:
                if fetched_at <= self._fetched_at:
                    return "not newer than ours"
                keys, _ = self._key_set(response)
                if wanted is not None and _lacks(keys, *wanted):
                    return "lacks the token's kid"
                self._install(keys, ttl, fetched_at)
        except _FetchFailed as exc:
            raise ValueError(f"stored {request.purpose}: {exc}") from None
        self.generation += 1
        hook = self.on_event
        if hook is not None:
            taken = self.keys if request.purpose == "jwks" else None
            emit(
                hook,
                KeySourceEvent(
                    "key_store_hit",
                    self.issuer,
                    purpose=request.purpose,
                    url=request.url,
                    keys=len(taken) if taken is not None else None,
                    age=age,
                ),
            )
            if taken is not None:
                self._rotation(before, taken)
        return None

    def _ttl(self, cache_control: str | None) -> float:
        return freshness_lifetime(
            cache_control, cache_max_age=self._s.cache_max_age, cooldown=self._s.cooldown
        )

    def _failed(
        self, request: FetchRequest, reason: str, now: float, duration: float | None = None
    ) -> None:
        self._last_error = reason
        self._next_fetch = now + self._s.cooldown
        stale = request.purpose == "jwks" and self.keys is not None and now < self._usable_until
        extra = {"issuer": self.issuer, "reason": reason, "duration": duration}
        if stale:
            logger.warning(
                "JWKS refresh failed (%s); serving the last good keys", reason, extra=extra
            )
        else:
            logger.warning("%s fetch failed: %s", request.purpose, reason, extra=extra)
        hook = self.on_event
        if hook is not None:
            emit(
                hook,
                KeySourceEvent(
                    "fetch_failed",
                    self.issuer,
                    purpose=request.purpose,
                    url=request.url,
                    duration=duration,
                    error=reason,
                ),
            )
            if stale:
                age = now - self._fetched_at
                emit(hook, KeySourceEvent("serving_stale", self.issuer, error=reason, age=age))


class _FetchFailed(ValueError):
    pass


def _lacks(keys: KeySet, kid: str | None, alg: str) -> bool:
    """Whether a key set has no key at all for this ``kid`` (a refusal is an answer)."""
    try:
        return keys.select(kid, alg) is None
    except (UnknownSigningKey, AlgorithmNotAllowed):
        return False


def _kids(keys: KeySet) -> frozenset[str]:
    return frozenset(key.kid or "" for key in keys.keys)


def server_metadata(response: Response, issuer: str) -> dict[str, Any]:
    """The authorization server metadata in a discovery answer, once it is known to be ours.

    Raises:
        ValueError: not a 200 JSON object, or metadata of another issuer (RFC 8414 §3.3:
            it must not be used), with the reason as its message.
    """
    doc = _json_document(response, "discovery document")
    if doc.get("issuer") != issuer:
        raise _FetchFailed("discovery document names another issuer")
    return doc


def _json_document(response: Response, what: str) -> dict[str, Any]:
    if response.status != 200:
        # Redirects included: they are never followed (SECURITY B14).
        raise _FetchFailed(f"{what} answered HTTP {response.status}")
    try:
        doc = json.loads(response.body)
    except (ValueError, RecursionError):
        raise _FetchFailed(f"{what} is not JSON") from None
    if not isinstance(doc, dict):
        raise _FetchFailed(f"{what} is not a JSON object")
    return doc


def discovery_urls(issuer: str) -> tuple[str, str]:
    """OpenID Connect Discovery §4, then RFC 8414 §3 (well-known segment before the path)."""
    base = issuer.rstrip("/")
    parts = urlsplit(issuer)
    path = parts.path.rstrip("/")
    return (
        f"{base}/.well-known/openid-configuration",
        f"{parts.scheme}://{parts.netloc}/.well-known/oauth-authorization-server{path}",
    )


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
