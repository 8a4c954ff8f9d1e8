"""DPoP (RFC 9449) without I/O: proofs, the request URI they are bound to, nonces, replays.

A DPoP-bound access token carries ``cnf.jkt``, the RFC 7638 thumbprint of a key its client
holds; every request carries a fresh proof, a small JWT signed with that key, naming the
request's method (``htm``) and URI (``htu``) and the hash of the token (``ath``). A stolen
token is useless without the key, and a stolen proof is useless for another request or a
second time.

* :class:`ProofVerifier` checks a proof (RFC 9449 §4.3) through apiguard's strict JWS layer
  (:mod:`apiguard.jws`, the same parser as for access tokens): ``typ: dpop+jwt``, an
  asymmetric ``alg`` from an allow-list, the public ``jwk`` of the proof's own header (a
  private key is refused) of a type that fits ``alg``, ``htm``, ``htu``, ``iat`` within a
  window, ``ath``, ``cnf.jkt``, and the server nonce when one is required. It decides
  without I/O and answers what the replay store must be asked (:class:`VerifiedProof`).
* :func:`request_uri` builds the URI a proof must name from the request (scheme, ``Host``,
  path), normalised as RFC 3986 §6.2.2-6.2.3 say, and refuses a ``Host`` that smuggles a
  path or a query. Forwarded headers count only from :class:`TrustedProxies`.
* :class:`NonceIssuer` issues and checks server nonces (RFC 9449 §9) without state, so
  workers that share its secret agree.
* Replay stores remember each proof's ``jti`` for its window: :class:`MemoryReplayStore`
  (one process, bounded, the default) and the Redis stores of ``apiguard[redis]``
  (:class:`RedisReplayStore`, :class:`AsyncRedisReplayStore`) for several workers.
  :func:`check_replay` and :func:`check_replay_async` are the shells' only DPoP I/O.

>>> policy = DPoPPolicy(mode="required")
>>> verifier = ProofVerifier(policy)
>>> proof = verifier.verify(
...     request.headers.get_list("DPoP"),
...     method="GET",
...     uri=request_uri(scheme="https", host="api.example", path="/appointments"),
...     access_token=token,
...     jkt=access_token.jkt,
...     now=time.time(),
... )  # doctest: +SKIP
>>> check_replay(store, proof)  # doctest: +SKIP
"""

from __future__ import annotations

import binascii
import functools
import hashlib
import hmac
import inspect
import ipaddress
import math
import os
import re
import threading
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Final, Literal, NamedTuple, Protocol, runtime_checkable

from ._redis import AsyncRedisReplayStore, RedisReplayStore
from .errors import (
    AlgorithmNotAllowed,
    BearerError,
    ConfigurationError,
    DPoPAlgorithmNotAllowed,
    DPoPBoundTokenAsBearer,
    DPoPKeyMismatch,
    DPoPMethodMismatch,
    DPoPProofExpired,
    DPoPProofNotYetValid,
    DPoPProofReplayed,
    DPoPRequired,
    DPoPTokenHashMismatch,
    DPoPURIMismatch,
    InvalidDPoPKey,
    InvalidDPoPSignature,
    InvalidSignature,
    InvalidToken,
    MalformedDPoPProof,
    MalformedRequestURI,
    MissingDPoPProof,
    MultipleDPoPProofs,
    ReplayStoreUnavailable,
    TokenNotDPoPBound,
    UseDPoPNonce,
    WrongDPoPProofType,
)

if TYPE_CHECKING:
    from .claims import AccessToken

from .jws import (
    ASYMMETRIC_ALGORITHMS,
    UnusableKey,
    VerificationKey,
    decode_compact,
    decode_json_object,
)

__all__ = [
    "DPOP_ALGORITHMS",
    "AsyncRedisReplayStore",
    "AsyncReplayStore",
    "DPoPGate",
    "DPoPMode",
    "DPoPPolicy",
    "MemoryReplayStore",
    "NonceIssuer",
    "ProofVerifier",
    "RedisReplayStore",
    "ReplayStore",
    "TrustedProxies",
    "VerifiedProof",
    "access_token_hash",
    "check_replay",
    "check_replay_async",
    "jwk_thumbprint",
    "normalize_uri",
    "request_uri",
]

#: The proof algorithms accepted by default: every asymmetric JWS algorithm apiguard
#: verifies (RFC 9449 §4.2 forbids ``none`` and MACs), in the order ``algs=`` lists them.
DPOP_ALGORITHMS: Final = tuple(sorted(ASYMMETRIC_ALGORITHMS))

DPoPMode = Literal["off", "allowed", "required"]
_MODES: Final = ("off", "allowed", "required")
_PROOF_TYPES: Final = frozenset({"dpop+jwt", "application/dpop+jwt"})
#: A ``jti`` longer than this is no random identifier but an attempt to fill the store.
MAX_JTI_LENGTH: Final = 256
_MAX_URI_LENGTH: Final = 8192
#: Proof keys remembered per verifier, by header: a client signs every proof with one key.
_KEY_CACHE_SIZE: Final = 1024


_URLSAFE: Final = str.maketrans("+/", "-_", "=")


def _b64url(data: bytes) -> str:
    # One C call and one translation: a hash is encoded on every request.
    return binascii.b2a_base64(data, newline=False).decode("ascii").translate(_URLSAFE)


# --- thumbprints and hashes -------------------------------------------------------------------

#: RFC 7638 §3.2: the required members of each key type, the only ones hashed.
_THUMBPRINT_MEMBERS: Final = {
    "RSA": ("e", "kty", "n"),
    "EC": ("crv", "kty", "x", "y"),
    "OKP": ("crv", "kty", "x"),
}


def jwk_thumbprint(jwk: Mapping[str, Any]) -> str:
    """The RFC 7638 SHA-256 thumbprint of a public JWK: the ``jkt`` of ``cnf``.

    Only the key type's required members count (RSA ``e``, ``kty``, ``n``; EC ``crv``,
    ``kty``, ``x``, ``y``; OKP ``crv``, ``kty``, ``x``), in lexicographic order, without
    whitespace, so ``kid``, ``alg`` or ``use`` never change it.

    Raises:
        ValueError: not an RSA, EC or OKP key, or a required member is not a string.

    >>> jwk_thumbprint({"kty": "OKP", "crv": "Ed25519", "x": "11qYAYKxCrfVS_7TyWQHOg7hcvPap"
    ...     "iMlrwIaaPcHURo"})
    'kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k'
    """
    names = _THUMBPRINT_MEMBERS.get(jwk.get("kty"))  # type: ignore[arg-type]
    if names is None:
        raise ValueError("a thumbprint needs an RSA, EC or OKP key")
    members: dict[str, str] = {}
    for name in names:
        value = jwk.get(name)
        if not isinstance(value, str):
            raise ValueError("the key's required members must be strings")
        members[name] = value
    return _thumbprint_of(_canonical(members))


def _canonical(members: Mapping[str, str]) -> str:
    # RFC 7638 §3.3: members in lexicographic order, no whitespace. Base64url text and
    # the fixed names need no escaping, so this is the same text as json.dumps would make.
    return "{" + ",".join(f'"{name}":"{members[name]}"' for name in sorted(members)) + "}"


def _thumbprint_of(canonical: str) -> str:
    return _b64url(hashlib.sha256(canonical.encode("utf-8")).digest())


def access_token_hash(token: str) -> str:
    """The ``ath`` of a proof sent with ``token``: base64url of its SHA-256 (RFC 9449 §4.2).

    >>> access_token_hash("Kz~8mXK1EalYznwH-LC-1fBAo.4Ljp~zsPE_NeO.gxU")
    'fUHyO2r2Z3DZ53EsNrWBb0xWXoaNy59IiKCAqksmQEo'
    """
    return _b64url(hashlib.sha256(token.encode("ascii")).digest())


#: A client sends one token with many proofs: its hash is computed once.
_ath: Final = functools.lru_cache(maxsize=1024)(access_token_hash)


# --- the request URI ----------------------------------------------------------------------------

_DEFAULT_PORTS: Final = {"http": 80, "https": 443}
#: A websocket handshake is an HTTP request; ws:// and wss:// name the same origins.
_SCHEMES: Final = {"http": "http", "https": "https", "ws": "http", "wss": "https"}
# A registered name (RFC 3986 unreserved characters only: no user, path, query or
# percent-encoding can hide in it) or a bracketed IP literal, then an optional port.
_HOST: Final = re.compile(r"([A-Za-z0-9._~-]+|\[[0-9A-Fa-f:.]+\])(?::([0-9]{0,5}))?")
_SCHEME: Final = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*")
_UNRESERVED: Final = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~")
#: What a path may hold besides percent-encodings (RFC 3986 §3.3: pchar and "/").
_PATH_CHARS: Final = _UNRESERVED | frozenset("!$&'()*+,;=:@/")
_PATH_TEXT: Final = re.compile(r"(?:[A-Za-z0-9\-._~!$&'()*+,;=:@/]|%[0-9A-Fa-f]{2})*")
_PERCENT: Final = re.compile(r"%([0-9A-Fa-f]{2})")


def _authority(scheme: str, authority: str) -> str:
    """``host[:port]`` normalised: lower case, without the scheme's default port."""
    match = _HOST.fullmatch(authority)
    if match is None:
        raise ValueError("not a host[:port]")
    host, port = match.group(1).lower(), match.group(2)
    if not port:  # absent, or "host:" (RFC 3986 §6.2.3: an empty port is the default)
        return host
    number = int(port)
    if not 0 < number < 65536:
        raise ValueError("port out of range")
    return host if number == _DEFAULT_PORTS[scheme] else f"{host}:{number}"


def _percent(match: re.Match[str]) -> str:
    char = chr(int(match.group(1), 16))
    # RFC 3986 §6.2.2.1-2: hex digits in upper case, unreserved characters decoded.
    return char if char in _UNRESERVED else "%" + match.group(1).upper()


def _remove_dot_segments(path: str) -> str:
    """RFC 3986 §5.2.4 for an absolute path (it starts with ``/``)."""
    segments = path.split("/")
    out: list[str] = []
    for segment in segments:
        if segment == ".":
            continue
        if segment == "..":
            if len(out) > 1:
                out.pop()
            continue
        out.append(segment)
    if segments[-1] in (".", ".."):
        out.append("")  # "/a/b/.." is the directory "/a/", not "/a"
    return "/".join(out)


def _path(path: str) -> str:
    """A path in normal form: percent-encodings normalised, dot-segments removed."""
    if not path:
        return "/"
    if "%" in path:
        path = _PERCENT.sub(_percent, path)
    if "." in path:
        path = _remove_dot_segments(path)
    return path


@functools.lru_cache(maxsize=512)
def normalize_uri(uri: str) -> str:
    """Normalise an absolute http(s) URI for comparison, without its query and fragment.

    Syntax- and scheme-based normalisation (RFC 3986 §6.2.2-6.2.3), as RFC 9449 §4.3 asks
    before comparing ``htu``: scheme and host in lower case, the default port and an
    empty one dropped, percent-encodings in upper case and unreserved ones decoded,
    dot-segments removed, an empty path made ``/``. ``ws``/``wss`` read as ``http``/``https``.

    Raises:
        ValueError: not an absolute http(s) URI, a user in the authority, a malformed
            host or port, or characters a URI cannot hold.

    >>> normalize_uri("HTTPS://API.Example:443/a/./b/%7euser?page=2")
    'https://api.example/a/b/~user'
    """
    if not isinstance(uri, str) or len(uri) > _MAX_URI_LENGTH:
        raise ValueError("not a URI of acceptable length")
    raw_scheme, sep, rest = uri.partition("://")
    scheme = _SCHEMES.get(raw_scheme.lower()) if sep and _SCHEME.fullmatch(raw_scheme) else None
    if scheme is None:
        raise ValueError("not an absolute http(s) URI")
    end = len(rest)
    for mark in "/?#":
        found = rest.find(mark)
        if found != -1 and found < end:
            end = found
    authority, rest = rest[:end], rest[end:]
    path = rest
    for mark in "?#":
        path = path.partition(mark)[0]
    if not _PATH_TEXT.fullmatch(path):
        raise ValueError("characters outside the URI syntax in the path")
    return f"{scheme}://{_authority(scheme, authority)}{_path(path)}"


def _request_path(path: str | bytes, octets: bool = False) -> str:
    """The path of a request target as a URI path: what a client had to put in ``htu``.

    Bytes, or text with ``octets`` (one latin-1 character per octet, as the layers keep a
    raw path), are the octets received; other text is Unicode (a framework's decoded
    path), encoded as UTF-8.
    """
    is_raw = octets or isinstance(path, bytes)
    text = path.decode("latin-1") if isinstance(path, bytes) else path
    text = text.partition("?")[0]
    if not text.startswith("/"):
        # The absolute or asterisk form of a target: no path this request URI builds on.
        raise MalformedRequestURI("request target is not an absolute path")
    if not _PATH_TEXT.fullmatch(text):
        # A server that decoded the path hands over octets a URI cannot hold: encode them
        # as a client must have (a space as %20, a lone "%" as %25).
        try:
            data = text.encode("latin-1" if is_raw else "utf-8")
        except UnicodeEncodeError:  # "octets" that are not: read them as the text they are
            data = text.encode("utf-8")
        out = []
        for index, byte in enumerate(data):
            char = chr(byte)
            if char in _PATH_CHARS or (
                char == "%" and _PERCENT.match(data[index : index + 3].decode("latin-1"))
            ):
                out.append(char)
            else:
                out.append(f"%{byte:02X}")
        text = "".join(out)
    return _path(text)


HeaderValues = Callable[[str], Sequence[str]]


@dataclass(frozen=True, slots=True, init=False)
class TrustedProxies:
    """The proxies whose forwarded headers say what scheme and host a client used.

    Behind a TLS-terminating proxy the API sees ``http`` and an internal host, while the
    client signed its proof for the public ``https`` URI. Name the proxies (addresses or
    networks of the immediate peer) and which headers they set; from any other peer
    those headers are ignored, since anyone can send them.

    Args:
        proxies: IP addresses or networks (``"10.0.0.0/8"``) of the trusted proxies (a
            string is split on whitespace).
        headers: ``"x-forwarded"`` (``X-Forwarded-Proto`` and ``X-Forwarded-Host``, the
            value the nearest proxy set, i.e. the last one) or ``"forwarded"`` (RFC 7239,
            read from the nearest hop back to the first one that is not a trusted proxy).

    Raises:
        ConfigurationError: no proxies, an address that does not parse, unknown headers.

    >>> TrustedProxies(["127.0.0.1", "10.0.0.0/8"], headers="x-forwarded")  # doctest: +SKIP

    Warning:
        Trusting a network that clients can send from lets them choose the ``htu`` a
        proof is checked against; name only the proxies themselves.
    """

    networks: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]
    headers: Literal["x-forwarded", "forwarded"]

    def __init__(
        self,
        proxies: Iterable[str],
        *,
        headers: Literal["x-forwarded", "forwarded"] = "x-forwarded",
    ) -> None:
        if isinstance(proxies, str):
            proxies = proxies.split()
        networks = []
        for proxy in proxies:
            try:
                networks.append(ipaddress.ip_network(proxy, strict=False))
            except (ValueError, TypeError):
                raise ConfigurationError(
                    f"trusted_proxies: {proxy!r} is not an IP address or network"
                ) from None
        if not networks:
            raise ConfigurationError("trusted_proxies: name at least one proxy")
        if headers not in ("x-forwarded", "forwarded"):
            raise ConfigurationError(
                f"trusted_proxies: headers must be 'x-forwarded' or 'forwarded', not {headers!r}"
            )
        object.__setattr__(self, "networks", tuple(networks))
        object.__setattr__(self, "headers", headers)

    def trusts(self, address: str | None) -> bool:
        """Whether ``address`` (the peer, or a ``for=`` of RFC 7239) is a trusted proxy."""
        if not address:
            return False
        text = address.strip()
        if text.startswith("["):  # RFC 7239 "[2001:db8::1]:4711"
            text = text[1:].partition("]")[0]
        elif text.count(":") == 1:  # "192.0.2.1:4711"
            text = text.partition(":")[0]
        try:
            ip = ipaddress.ip_address(text)
        except ValueError:
            return False  # "unknown", obfuscated names, unix sockets
        return any(ip in network for network in self.networks)

    def original(self, values: HeaderValues) -> tuple[str | None, str | None]:
        """The (scheme, host) the trusted proxies received, each None when not told."""
        if self.headers == "x-forwarded":
            return _last(values("x-forwarded-proto")), _last(values("x-forwarded-host"))
        elements = _parse_forwarded(values("forwarded"))
        chosen: dict[str, str] | None = None
        # Each proxy appends the element describing the request it received; walk back from
        # the nearest (trusted) one while the hop before it is a trusted proxy too.
        for element in reversed(elements):
            chosen = element
            if not self.trusts(element.get("for")):
                break
        if chosen is None:
            return None, None
        return chosen.get("proto"), chosen.get("host")


def _last(values: Sequence[str]) -> str | None:
    items = [item.strip(" \t") for value in values for item in value.split(",")]
    return items[-1] if items and items[-1] else None


_TOKEN: Final = r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+"
_PAIR: Final = re.compile(rf"[ \t]*({_TOKEN})=({_TOKEN}|\"(?:[^\"\\]|\\.)*\")[ \t]*")


def _parse_forwarded(values: Sequence[str]) -> list[dict[str, str]]:
    """RFC 7239 §4 elements, or MalformedRequestURI: a trusted header must parse."""
    elements: list[dict[str, str]] = []
    for value in values:
        for raw_element in _split_unquoted(value, ","):
            element: dict[str, str] = {}
            for raw_pair in _split_unquoted(raw_element, ";"):
                match = _PAIR.fullmatch(raw_pair)
                if match is None:
                    raise MalformedRequestURI("Forwarded header does not parse")
                name, text = match.group(1).lower(), match.group(2)
                if text.startswith('"'):
                    text = re.sub(r"\\(.)", r"\1", text[1:-1])
                if name in element:
                    raise MalformedRequestURI("Forwarded element repeats a parameter")
                element[name] = text
            elements.append(element)
    return elements


def _split_unquoted(text: str, separator: str) -> list[str]:
    parts, start, quoted, escaped = [], 0, False, False
    for index, char in enumerate(text):
        if escaped:
            escaped = False
        elif char == "\\" and quoted:
            escaped = True
        elif char == '"':
            quoted = not quoted
        elif char == separator and not quoted:
            parts.append(text[start:index])
            start = index + 1
    parts.append(text[start:])
    return parts


def request_uri(
    *,
    scheme: str,
    host: str | None,
    path: str | bytes,
    peer: str | None = None,
    headers: HeaderValues | None = None,
    proxies: TrustedProxies | None = None,
) -> str:
    """The normalised URI of a request, without query: what its proof's ``htu`` must name.

    Built from its parts, never by joining them into a string and parsing it again, and
    only from a ``Host`` of RFC 3986's host syntax: ``Host: api.example/admin?`` (which,
    joined and re-parsed, moves the real path into the query) is refused, not laundered.

    Args:
        scheme: the scheme the server received (``http``, ``https``, ``ws``, ``wss``).
        host: the ``Host`` header (or HTTP/2 ``:authority``).
        path: the request target's path as received (raw bytes, or text), query allowed.
        peer: the address of the immediate peer, to decide whether to trust ``proxies``.
        headers: gives all values of a header by lower-case name (for forwarded headers).
        proxies: the proxies whose forwarded headers override ``scheme`` and ``host``.

    Raises:
        MalformedRequestURI: (400) a missing or malformed host, an unknown scheme, a
            target that is not a path, or a trusted forwarded header that does not parse.

    >>> request_uri(scheme="http", host="API.example:80", path=b"/a/%7ex?q=1")
    'http://api.example/a/~x'
    """
    if proxies is not None and headers is not None and proxies.trusts(peer):
        forwarded_scheme, forwarded_host = proxies.original(headers)
        scheme = forwarded_scheme or scheme
        host = forwarded_host or host
    return _uri(scheme, host, path)


@functools.lru_cache(maxsize=512)
def _uri(scheme: str, host: str | None, path: str | bytes, octets: bool = False) -> str:
    # An API serves a handful of origins and paths: most requests repeat one exactly.
    normal = _SCHEMES.get(scheme.lower()) if isinstance(scheme, str) else None
    if normal is None:
        raise MalformedRequestURI("the request scheme is not http(s)")
    if not host:
        raise MalformedRequestURI("the request has no Host")
    try:
        authority = _authority(normal, host)
    except ValueError:
        raise MalformedRequestURI("the Host header is not a host[:port]") from None
    return f"{normal}://{authority}{_request_path(path, octets)}"


# --- nonces -----------------------------------------------------------------------------------


class NonceIssuer:
    """Server-provided DPoP nonces (RFC 9449 §9), stateless and rotating.

    A nonce is the current time step (``lifetime`` seconds long) with an HMAC of it; the
    nonce of the current step and of the one before are accepted, so a client that just
    got a nonce keeps a full step to use it. Workers (and machines) that share ``secret``
    issue and accept the same nonces without sharing anything else.

    Args:
        secret: at least 32 bytes; by default random, i.e. nonces of this process only.
        lifetime: seconds a nonce is current (10 to 86400); it is accepted for up to twice
            as long.
        clock: seconds since the epoch, for tests.

    Raises:
        ConfigurationError: a short secret or a lifetime out of range.

    >>> nonces = NonceIssuer(os.environ["DPOP_NONCE_SECRET"].encode())  # doctest: +SKIP
    >>> nonces.is_valid(nonces.current())  # doctest: +SKIP
    True
    """

    __slots__ = ("_clock", "_current", "_key", "lifetime")

    def __init__(
        self,
        secret: bytes | str | None = None,
        *,
        lifetime: float = 300.0,
        clock: Callable[[], float] | None = None,
    ) -> None:
        key = secret.encode("utf-8") if isinstance(secret, str) else secret
        if key is None:
            key = os.urandom(32)
        if not isinstance(key, bytes) or len(key) < 32:
            raise ConfigurationError("nonce secret: must be at least 32 bytes")
        self._key = key
        self.lifetime = _number("nonce lifetime", lifetime, low=10, high=86400)
        self._clock = clock or time.time
        self._current: tuple[int, str] = (-1, "")

    def _step(self, now: float | None) -> int:
        return math.floor((self._clock() if now is None else now) / self.lifetime)

    def _nonce(self, step: int) -> str:
        packed = step.to_bytes(8, "big", signed=True)
        mac = hmac.digest(self._key, b"apiguard-dpop-nonce" + packed, "sha256")[:16]
        return _b64url(packed + mac)

    def current(self, now: float | None = None) -> str:
        """The nonce to hand out now (in ``DPoP-Nonce``)."""
        step = self._step(now)
        cached = self._current
        if cached[0] == step:
            return cached[1]
        nonce = self._nonce(step)
        self._current = (step, nonce)
        return nonce

    def is_valid(self, nonce: object, now: float | None = None) -> bool:
        """Whether ``nonce`` is the current nonce or the one before it."""
        if not isinstance(nonce, str) or len(nonce) != 32:
            return False
        step = self._step(now)
        return any(hmac.compare_digest(nonce, self._nonce(s)) for s in (step, step - 1))


# --- the policy and the verifier ------------------------------------------------------------


def _number(name: str, value: Any, *, low: float, high: float) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ConfigurationError(f"{name}: must be a number, not {value!r}")
    if not low <= value <= high:
        raise ConfigurationError(f"{name}: must be between {low} and {high}, not {value!r}")
    return float(value)


@dataclass(frozen=True, slots=True)
class DPoPPolicy:
    """How an API (or one issuer's tokens) uses DPoP, checked at construction.

    Args:
        mode: ``"off"`` (the default: no DPoP, a token with ``cnf`` is refused),
            ``"allowed"`` (Bearer and DPoP tokens both accepted; a DPoP-bound token still
            needs its proof) or ``"required"`` (only DPoP).
        algorithms: the proof algorithms accepted (asymmetric only); advertised in the
            challenge's ``algs``.
        max_age: how old a proof's ``iat`` may be, in seconds (1 to 3600).
        leeway: clock skew tolerated on ``iat``, in seconds (0 to 300), either way.
        nonces: a :class:`NonceIssuer` to require server nonces, or None.
        max_proof_size: the longest proof read, in characters.

    Raises:
        ConfigurationError: a setting out of range, or a symmetric or unknown algorithm.

    >>> DPoPPolicy(mode="required", algorithms=["ES256", "EdDSA"]).algorithms
    ('ES256', 'EdDSA')
    """

    mode: DPoPMode = "off"
    algorithms: Collection[str] = DPOP_ALGORITHMS
    max_age: float = 300.0
    leeway: float = 30.0
    nonces: NonceIssuer | None = None
    max_proof_size: int = 8192

    def __post_init__(self) -> None:
        if self.mode not in _MODES:
            raise ConfigurationError(
                f"dpop: must be 'off', 'allowed' or 'required', not {self.mode!r}"
            )
        names = (self.algorithms,) if isinstance(self.algorithms, str) else self.algorithms
        try:
            algorithms = tuple(dict.fromkeys(names))
        except TypeError:
            raise ConfigurationError("dpop algorithms: must be a list of names") from None
        if not algorithms or not all(
            isinstance(a, str) and a in ASYMMETRIC_ALGORITHMS for a in algorithms
        ):
            raise ConfigurationError(
                f"dpop algorithms: asymmetric JWS algorithms only, not {algorithms!r}"
            )
        object.__setattr__(self, "algorithms", algorithms)
        object.__setattr__(self, "max_age", _number("dpop max_age", self.max_age, low=1, high=3600))
        object.__setattr__(self, "leeway", _number("dpop leeway", self.leeway, low=0, high=300))
        if self.nonces is not None and not isinstance(self.nonces, NonceIssuer):
            raise ConfigurationError("dpop nonces: must be a NonceIssuer or None")
        size = _number("dpop max_proof_size", self.max_proof_size, low=512, high=65536)
        object.__setattr__(self, "max_proof_size", int(size))

    @property
    def algs(self) -> str:
        """The ``algs`` parameter of a ``DPoP`` challenge (RFC 9449 §7.1)."""
        return " ".join(self.algorithms)


def _delta(later: float, earlier: float) -> str:
    try:
        return f"{later - earlier:.0f}"
    except OverflowError:  # an integer iat beyond float range
        return "too many"


class VerifiedProof(NamedTuple):
    """A proof that passed every check but the replay check, and what that check needs."""

    #: RFC 7638 thumbprint of the proof's key.
    jkt: str
    jti: str
    iat: float
    #: What the replay store remembers: the key's thumbprint and the ``jti``, so that one
    #: client's identifiers never collide with (or block) another's.
    replay_key: str
    #: Seconds until the proof would be refused as too old anyway (the store's expiry).
    replay_ttl: float
    #: With nonces: the nonce to hand out in the answer, when the proof's was not current.
    next_nonce: str | None = None


@dataclass(slots=True)
class ProofVerifier:
    """Checks DPoP proofs (RFC 9449 §4.3) without I/O; thread-safe.

    Args:
        policy: the :class:`DPoPPolicy` (its ``mode`` is the callers' business).
    """

    policy: DPoPPolicy
    _algorithms: frozenset[str] = field(init=False, repr=False)
    _keys: OrderedDict[str, tuple[VerificationKey, str]] = field(init=False, repr=False)
    _lock: threading.Lock = field(init=False, repr=False)

    def __post_init__(self) -> None:
        if not isinstance(self.policy, DPoPPolicy):
            raise ConfigurationError("policy: must be a DPoPPolicy")
        self._algorithms = frozenset(self.policy.algorithms)
        self._keys = OrderedDict()
        self._lock = threading.Lock()

    def verify(
        self,
        proofs: str | Sequence[str] | None,
        *,
        method: str,
        uri: str,
        now: float,
        access_token: str | None = None,
        jkt: str | None = None,
    ) -> VerifiedProof:
        """Check the request's proof; the replay check is left to the caller.

        Args:
            proofs: the ``DPoP`` header value, or all of its values (a repeat is refused).
            method: the request method, as received.
            uri: the request URI from :func:`request_uri` (or :func:`normalize_uri`).
            now: seconds since the epoch.
            access_token: the token the proof comes with (``ath`` must be its hash); None
                at a token endpoint.
            jkt: the token's ``cnf.jkt`` (the proof's key must have this thumbprint).

        Raises:
            InvalidDPoPProof: the proof breaks a rule; a subclass names which
                (``MissingDPoPProof``, ``MalformedDPoPProof``, ``WrongDPoPProofType``,
                ``DPoPAlgorithmNotAllowed``, ``InvalidDPoPKey``, ``InvalidDPoPSignature``,
                ``DPoPMethodMismatch``, ``DPoPURIMismatch``, ``DPoPProofExpired``,
                ``DPoPProofNotYetValid``, ``DPoPTokenHashMismatch``).
            MultipleDPoPProofs: more than one ``DPoP`` header (400).
            DPoPKeyMismatch: the proof key is not the token's ``cnf.jkt``.
            UseDPoPNonce: a nonce is required and the proof lacks the current one.
        """
        value = self._single(proofs)
        policy = self.policy
        try:
            jws = decode_compact(value, max_size=policy.max_proof_size, algorithms=self._algorithms)
        except AlgorithmNotAllowed as exc:
            raise DPoPAlgorithmNotAllowed(exc.detail) from None
        except InvalidToken as exc:
            raise MalformedDPoPProof(exc.detail) from None
        header = jws.header
        typ = header.get("typ")
        if not isinstance(typ, str) or typ.lower() not in _PROOF_TYPES:
            raise WrongDPoPProofType(f"typ {str(typ)[:32]!r} is not dpop+jwt")
        key, thumbprint = self._key(value.partition(".")[0], header)
        try:
            key.verify(jws)
        except InvalidSignature:
            raise InvalidDPoPSignature("the proof's signature does not verify") from None
        try:
            claims = decode_json_object(jws.payload)
        except InvalidToken as exc:
            raise MalformedDPoPProof(exc.detail) from None
        jti, htm, htu = claims.get("jti"), claims.get("htm"), claims.get("htu")
        iat: Any = claims.get("iat")  # a NumericDate once the type test below passed
        if not isinstance(jti, str) or not 0 < len(jti) <= MAX_JTI_LENGTH:
            raise MalformedDPoPProof("jti is missing, not a string or too long")
        if not isinstance(htm, str):
            raise MalformedDPoPProof("htm is missing or not a string")
        if not isinstance(htu, str):
            raise MalformedDPoPProof("htu is missing or not a string")
        if type(iat) not in (int, float):
            raise MalformedDPoPProof("iat is missing or not a NumericDate")
        if htm != method:
            raise DPoPMethodMismatch(f"htm {htm[:16]!r} is not {method[:16]!r}")
        try:
            target = normalize_uri(htu)
        except ValueError as exc:
            raise DPoPURIMismatch(f"htu is not a usable URI: {exc}") from None
        if target != uri:
            raise DPoPURIMismatch("htu names another URI")
        # Compared before any arithmetic: a 400-digit iat stays exact and cannot overflow.
        if iat > now + policy.leeway:
            raise DPoPProofNotYetValid(f"iat {_delta(iat, now)} s in the future")
        if iat < now - policy.max_age - policy.leeway:
            raise DPoPProofExpired(f"issued {_delta(now, iat)} s ago, max age {policy.max_age:.0f}")
        if access_token is not None:
            ath = claims.get("ath")
            if not isinstance(ath, str):
                raise DPoPTokenHashMismatch("ath is missing or not a string")
            if not hmac.compare_digest(ath, _ath(access_token)):
                raise DPoPTokenHashMismatch("ath is not the hash of the access token")
        if jkt is not None and not hmac.compare_digest(jkt, thumbprint):
            raise DPoPKeyMismatch("the proof key is not the key the token is bound to")
        next_nonce = None
        nonces = policy.nonces
        if nonces is not None:
            nonce = claims.get("nonce")
            current = nonces.current(now)
            if not nonces.is_valid(nonce, now):
                raise UseDPoPNonce(current, "the proof lacks a current nonce")
            if nonce != current:
                next_nonce = current
        ttl = float(iat) + policy.max_age + policy.leeway - now
        # tuple.__new__ skips the named tuple's Python-level constructor (once per request).
        return tuple.__new__(
            VerifiedProof,
            (thumbprint, jti, float(iat), f"{thumbprint}.{jti}", max(ttl, 1.0), next_nonce),
        )

    @staticmethod
    def _single(proofs: str | Sequence[str] | None) -> str:
        if type(proofs) is tuple and len(proofs) == 1:  # what the layers hand over
            value: str = proofs[0]
            if "," not in value and value and value[0] not in " \t" and value[-1] not in " \t":
                return value
        values = [proofs] if isinstance(proofs, str) else list(proofs or ())
        if not values:
            raise MissingDPoPProof("no DPoP header")
        if len(values) > 1:
            raise MultipleDPoPProofs("DPoP header sent more than once")
        value = values[0].strip(" \t")
        if "," in value:
            # A proxy joins repeated headers with commas; no compact JWS has one.
            raise MultipleDPoPProofs("DPoP header holds more than one value")
        if not value:
            raise MissingDPoPProof("empty DPoP header")
        return value

    def _key(self, segment: str, header: Mapping[str, Any]) -> tuple[VerificationKey, str]:
        """The proof key of a header, and its thumbprint; remembered per header text.

        A client signs every proof with one key under one header, so its key is built
        (and its point checked) once, however many clients there are (up to 1,024).
        """
        cached = self._keys.get(segment)
        if cached is not None:
            return cached
        jwk = header.get("jwk")
        if not isinstance(jwk, Mapping):
            raise InvalidDPoPKey("jwk header is missing or not an object")
        try:
            # The same key policy as for an issuer's keys: public members only, the type
            # and curve fixing the algorithm, RSA from 2048 bits, points on the curve.
            key = VerificationKey.from_jwk(jwk, algorithms=(header["alg"],))
        except UnusableKey as exc:
            raise InvalidDPoPKey(str(exc)) from None
        entry = (key, _thumbprint_of(key.fingerprint))
        with self._lock:
            self._keys[segment] = entry
            if len(self._keys) > _KEY_CACHE_SIZE:
                self._keys.popitem(last=False)
        return entry


# --- replay stores ------------------------------------------------------------------------------


@runtime_checkable
class ReplayStore(Protocol):
    """Remembers proof identifiers: a replay store for synchronous code."""

    def add(self, key: str, ttl: float) -> bool:
        """Remember ``key`` for ``ttl`` seconds; False if it is already remembered.

        Raises:
            ReplayStoreUnavailable: the store cannot answer (never "not seen").
        """
        ...


@runtime_checkable
class AsyncReplayStore(Protocol):
    """Remembers proof identifiers: a replay store for async code."""

    async def add(self, key: str, ttl: float) -> bool:
        """Remember ``key`` for ``ttl`` seconds; False if it is already remembered.

        Raises:
            ReplayStoreUnavailable: the store cannot answer (never "not seen").
        """
        ...


class MemoryReplayStore:
    """A bounded in-process replay store, the default (sync and async code alike).

    Right for one process; an API served by several workers or machines needs a shared
    store (:class:`RedisReplayStore`), or a proof refused by one worker is accepted by the
    next.

    Args:
        maxsize: how many live proofs are remembered. When that many are live, new proofs
            are refused with :class:`~apiguard.ReplayStoreUnavailable` (503) rather than
            forgetting one that could then be replayed.
        clock: monotonic seconds, for tests.

    >>> store = MemoryReplayStore()
    >>> store.add("key", 300), store.add("key", 300)
    (True, False)
    """

    __slots__ = ("_clock", "_data", "_lock", "maxsize")

    def __init__(self, maxsize: int = 100_000, *, clock: Callable[[], float] | None = None):
        self.maxsize = int(_number("replay store maxsize", maxsize, low=1, high=1 << 26))
        self._clock = clock or time.monotonic
        #: key -> expiry, in insertion order (proofs' windows are about equally long, so
        #: that is nearly expiry order: the front holds the first to expire).
        self._data: OrderedDict[str, float] = OrderedDict()
        self._lock = threading.Lock()

    def add(self, key: str, ttl: float) -> bool:
        """Remember ``key`` for ``ttl`` seconds; False if it is remembered already."""
        now = self._clock()
        data = self._data
        with self._lock:
            expiry = data.get(key)
            if expiry is not None:
                if expiry > now:
                    return False
                del data[key]
            while data:
                first = next(iter(data))
                if data[first] > now:
                    break
                del data[first]
            if len(data) >= self.maxsize:
                raise ReplayStoreUnavailable(f"{len(data)} live proofs: the store is full")
            data[key] = now + ttl
            return True

    def __len__(self) -> int:
        return len(self._data)


def check_replay(store: ReplayStore, proof: VerifiedProof) -> None:
    """Accept ``proof`` once: raise if its store has seen it within its window.

    Raises:
        DPoPProofReplayed: the proof was used before.
        ReplayStoreUnavailable: the store cannot answer (503).
    """
    if not store.add(proof.replay_key, proof.replay_ttl):
        raise DPoPProofReplayed("the proof's jti was used before")


async def check_replay_async(store: ReplayStore | AsyncReplayStore, proof: VerifiedProof) -> None:
    """:func:`check_replay` for async code; takes a sync store that does no I/O as well."""
    seen: bool | Awaitable[bool] = store.add(proof.replay_key, proof.replay_ttl)
    if inspect.isawaitable(seen):
        seen = await seen
    if not seen:
        raise DPoPProofReplayed("the proof's jti was used before")


# --- the request path's questions -------------------------------------------------------------


class ProofRequest(Protocol):
    """What the gate reads of a request (``apiguard._request.RequestView`` has it all)."""

    @property
    def method(self) -> str: ...
    @property
    def path(self) -> str: ...
    @property
    def raw_path(self) -> str | None: ...
    @property
    def scheme(self) -> str: ...
    @property
    def host(self) -> str | None: ...
    @property
    def peer(self) -> str | None: ...
    @property
    def dpop(self) -> tuple[str, ...]: ...
    @property
    def forwarded(self) -> tuple[tuple[str, str], ...]: ...


def _modes_of(policies: Iterable[DPoPPolicy]) -> tuple[bool, str | None]:
    """Whether Bearer is offered and the ``algs`` a DPoP challenge offers, across policies."""
    on = [policy for policy in policies if policy.mode != "off"]
    algs = " ".join(dict.fromkeys(a for policy in on for a in policy.algorithms)) or None
    return any(policy.mode != "required" for policy in policies), algs


class DPoPGate:
    """The DPoP decisions of the one request path, without I/O (RFC 9449 §4.3, §7).

    A validator builds it from its DPoP settings; the request path asks it which schemes
    to read, checks every validated token's binding (and its proof) with it, and marks
    errors with the challenges every layer then renders alike. Only the replay check
    (:func:`check_replay`) is left to the validator shells.

    Args:
        policy: the policy of the validator's issuers.
        issuers: issuer-specific policies, by exact issuer, overriding ``policy``.
        others: whether issuers outside ``issuers`` are trusted too (a resolver), with
            ``policy``; when False, ``policy`` is no issuer's unless ``issuers`` says so,
            and the challenges of a request whose issuer is unknown (no token, or an
            unreadable one) offer what the issuers in ``issuers`` accept.
        proxies: the proxies whose forwarded headers give the request URI, or None.
        clock: seconds since the epoch.
    """

    __slots__ = ("_clock", "_default", "_issuers", "_verifiers", "algs", "offers_bearer", "proxies")

    def __init__(
        self,
        policy: DPoPPolicy,
        *,
        issuers: Mapping[str, DPoPPolicy] | None = None,
        others: bool = True,
        proxies: TrustedProxies | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        policies = [policy, *(issuers or {}).values()]
        # Offered before the issuer is known: DPoP when any issuer accepts it (with the
        # union of their algorithms), Bearer when any issuer does.
        serving = policies if others or not issuers else policies[1:]
        if not all(isinstance(item, DPoPPolicy) for item in policies):
            raise ConfigurationError("dpop: must be a DPoPPolicy or a mode")
        if proxies is not None and not isinstance(proxies, TrustedProxies):
            raise ConfigurationError("trusted_proxies: must be a TrustedProxies or None")
        self._default = policy
        self._issuers = dict(issuers or {})
        self._verifiers = {id(item): ProofVerifier(item) for item in policies}
        self.proxies = proxies
        self._clock = clock
        #: For a request whose issuer is not known yet (no token, or a malformed one).
        self.offers_bearer, self.algs = _modes_of(serving)

    @property
    def enabled(self) -> bool:
        """Whether any issuer accepts DPoP (else the gate changes nothing)."""
        return self.algs is not None

    def policy(self, issuer: object) -> DPoPPolicy:
        """The policy for tokens of ``issuer``."""
        found = self._issuers.get(issuer) if isinstance(issuer, str) else None
        return found or self._default

    def accepts_binding(self, issuer: object) -> bool:
        """Whether tokens of ``issuer`` may carry ``cnf.jkt`` (its mode is not ``off``)."""
        return self.policy(issuer).mode != "off"

    def check(
        self, token: AccessToken, scheme: str, raw: str, request: ProofRequest
    ) -> VerifiedProof | None:
        """Check a validated token's binding and, for DPoP, its proof (not yet the replay).

        Args:
            token: the validated token (from the cache or not: the proof is checked anew).
            scheme: the scheme it came with, ``"Bearer"`` or ``"DPoP"``.
            raw: the token as sent (``ath`` is its hash).
            request: the request it came with.

        Returns:
            The proof to check for a replay, or None for an accepted Bearer token.

        Raises:
            DPoPBoundTokenAsBearer, DPoPRequired, TokenNotDPoPBound: the scheme does not
                fit the token or the policy.
            MalformedRequestURI: the request's Host (or a trusted forwarded header).
            InvalidDPoPProof, DPoPKeyMismatch, UseDPoPNonce: the proof (see
                :meth:`ProofVerifier.verify`).
        """
        try:
            return self._check(token, scheme, raw, request)
        except BearerError as exc:
            self.mark(exc, token, scheme)
            raise

    def _check(
        self, token: AccessToken, scheme: str, raw: str, request: ProofRequest
    ) -> VerifiedProof | None:
        policy = self.policy(token.issuer)
        bound = token.jkt
        if scheme == "Bearer":
            if bound is not None:
                raise DPoPBoundTokenAsBearer("a DPoP-bound token came with the Bearer scheme")
            if policy.mode == "required":
                raise DPoPRequired("a Bearer token where DPoP is required")
            return None
        if bound is None or policy.mode == "off":
            raise TokenNotDPoPBound("a token without cnf.jkt came with the DPoP scheme")
        raw_path = request.raw_path
        forwarded = request.forwarded
        scheme_, host = request.scheme, request.host
        if forwarded and self.proxies is not None and self.proxies.trusts(request.peer):
            original = self.proxies.original(lambda name: [v for n, v in forwarded if n == name])
            scheme_, host = original[0] or scheme_, original[1] or host
        # The octets as sent when the server tells them (the layers keep them as latin-1).
        if raw_path is None:
            uri = _uri(scheme_, host, request.path)
        else:
            uri = _uri(scheme_, host, raw_path, True)
        # A websocket handshake is a GET (RFC 6455 §4.1); the layers name it WEBSOCKET.
        method = "GET" if request.method == "WEBSOCKET" else request.method
        return self._verifiers[id(policy)].verify(
            request.dpop, method=method, uri=uri, now=self._clock(), access_token=raw, jkt=bound
        )

    def mark(self, error: BearerError, token: AccessToken | None, scheme: str | None) -> None:
        """Tell ``error`` which challenges to render (RFC 9449 §7.1) for this request."""
        if token is None:
            error.dpop_algs, error.bearer_offered = self.algs, self.offers_bearer
        else:
            policy = self.policy(token.issuer)
            if policy.mode == "off":
                return
            error.dpop_algs, error.bearer_offered = policy.algs, policy.mode == "allowed"
        error.request_scheme = scheme
