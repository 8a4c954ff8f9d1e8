"""Secrets, hashes, PKCE and rate limiting: the small primitives the server is built on."""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets
import threading
from collections import OrderedDict, deque
from collections.abc import Callable

# scrypt parameters for human-chosen passwords. Client secrets never use it (see
# hash_client_secret).
_SCRYPT_N, _SCRYPT_R, _SCRYPT_P = 2**14, 8, 1
_PKCE_RE = re.compile(r"[A-Za-z0-9\-._~]{43,128}")
# A well-formed hash that matches nothing, so unknown clients cost the same time.
_DUMMY_SHA256 = "sha256$" + hashlib.sha256(b"no such secret").hexdigest()
_dummy_password_hash: str | None = None


def b64url(data: bytes) -> str:
    """Base64url without padding (RFC 7515 §2)."""
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def new_secret(nbytes: int = 32) -> str:
    """A random URL-safe secret of *nbytes* bytes of entropy (256 bits by default)."""
    return secrets.token_urlsafe(nbytes)


def new_id(prefix: str = "", nbytes: int = 12) -> str:
    """A random identifier, hex encoded, with an optional prefix."""
    return prefix + secrets.token_hex(nbytes)


def token_digest(token: str) -> str:
    """The lookup key under which a high-entropy token (code, refresh token, session) is stored."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def hash_client_secret(secret: str) -> str:
    """Hash a client secret for storage with one SHA-256.

    A slow, salted KDF is what makes a guessable password expensive to brute-force. A
    generated secret (256 bits or more) cannot be guessed, so a KDF would only make every
    client authentication cost tens of milliseconds. The other client secrets are the fixed
    development values of a seed file, which the file itself discloses.
    """
    return "sha256$" + hashlib.sha256(secret.encode("utf-8")).hexdigest()


def is_slow_hash(stored: str | None) -> bool:
    """Tell whether *stored* is a scrypt hash.

    A client secret stored by an earlier version may have one; it is re-hashed with
    ``hash_client_secret`` once it has been verified.
    """
    return stored is not None and stored.startswith("scrypt$")


def hash_password(password: str) -> str:
    """Hash a human-chosen password with salted scrypt."""
    salt = secrets.token_bytes(16)
    digest = hashlib.scrypt(
        password.encode("utf-8"), salt=salt, n=_SCRYPT_N, r=_SCRYPT_R, p=_SCRYPT_P, dklen=32
    )
    return f"scrypt${_SCRYPT_N}${_SCRYPT_R}${_SCRYPT_P}${b64url(salt)}${b64url(digest)}"


def dummy_password_hash() -> str:
    """A scrypt hash of a random password, made once: what an unknown user is checked against.

    Without it a sign-in for an unknown email would skip the scrypt work (tens of
    milliseconds) and so tell which accounts exist.
    """
    global _dummy_password_hash
    if _dummy_password_hash is None:
        _dummy_password_hash = hash_password(new_secret(32))
    return _dummy_password_hash


def sign_value(key: str, purpose: str, value: str) -> str:
    """``value.mac``: *value* (URL-safe text) with an HMAC-SHA256 bound to *purpose*."""
    mac = hmac.new(key.encode(), f"{purpose}|{value}".encode(), "sha256").digest()
    return f"{value}.{b64url(mac)}"


def unsign_value(key: str, purpose: str, signed: str) -> str | None:
    """The value of a :func:`sign_value` text when its MAC is right, else ``None``."""
    value, dot, _ = signed.rpartition(".")
    if not dot or not signed.isascii():
        return None
    return value if hmac.compare_digest(sign_value(key, purpose, value), signed) else None


def b64url_decode(text: str) -> bytes:
    """Decode base64url with or without padding (``binascii.Error``, a ``ValueError``)."""
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def verify_secret(candidate: str, stored: str | None) -> bool:
    """Check *candidate* against a stored ``sha256$…`` or ``scrypt$…`` hash in constant time.

    A missing hash is checked against a dummy so that the answer takes the same path.
    """
    stored = stored or _DUMMY_SHA256
    matched = False
    try:
        scheme, _, rest = stored.partition("$")
        if scheme == "sha256":
            digest = hashlib.sha256(candidate.encode("utf-8")).hexdigest()
            matched = hmac.compare_digest(digest, rest)
        elif scheme == "scrypt":
            n, r, p, salt, expected = rest.split("$")
            derived = hashlib.scrypt(
                candidate.encode("utf-8"),
                salt=b64url_decode(salt),
                n=int(n),
                r=int(r),
                p=int(p),
                dklen=32,
            )
            matched = hmac.compare_digest(derived, b64url_decode(expected))
    except (ValueError, UnicodeError):
        return False
    return matched and stored != _DUMMY_SHA256


def is_valid_pkce_value(value: str) -> bool:
    """RFC 7636 §4.1: 43 to 128 characters of ``[A-Za-z0-9-._~]``."""
    return _PKCE_RE.fullmatch(value) is not None


def pkce_s256(verifier: str) -> str:
    """The S256 code challenge for *verifier* (RFC 7636 §4.2)."""
    return b64url(hashlib.sha256(verifier.encode("ascii")).digest())


def pkce_matches(verifier: str, challenge: str) -> bool:
    """Constant-time S256 check of a verifier against the stored challenge."""
    return hmac.compare_digest(pkce_s256(verifier), challenge)


def half_hash(token: str) -> str:
    """OIDC ``at_hash``: left half of the SHA-256 of the token, base64url (RS256/HS256)."""
    digest = hashlib.sha256(token.encode("ascii")).digest()
    return b64url(digest[: len(digest) // 2])


class RateLimiter:
    """A sliding-window limiter kept in memory, bounded to *max_keys* keys (oldest evicted).

    ``hit(key)`` records an event and returns 0 when it is allowed, or the number of seconds
    to wait (for ``Retry-After``) when the key is over its limit.
    """

    def __init__(
        self, limit: int, window: float, clock: Callable[[], float], max_keys: int = 10_000
    ) -> None:
        self._limit = limit
        self._window = window
        self._clock = clock
        self._max_keys = max_keys
        self._events: OrderedDict[str, deque[float]] = OrderedDict()
        self._lock = threading.Lock()

    def _recent(self, key: str, now: float) -> deque[float]:
        events = self._events.get(key)
        if events is None:
            events = deque()
            self._events[key] = events
            while len(self._events) > self._max_keys:
                self._events.popitem(last=False)
        self._events.move_to_end(key)
        while events and events[0] <= now - self._window:
            events.popleft()
        return events

    def retry_after(self, key: str) -> int:
        """Seconds to wait before *key* may act again (0 when it may act now)."""
        with self._lock:
            now = self._clock()
            events = self._recent(key, now)
            if len(events) < self._limit:
                return 0
            return max(1, int(events[0] + self._window - now + 0.999))

    def hit(self, key: str) -> int:
        """Record one event for *key*; return 0 if allowed, else seconds until allowed."""
        with self._lock:
            now = self._clock()
            events = self._recent(key, now)
            if len(events) >= self._limit:
                return max(1, int(events[0] + self._window - now + 0.999))
            events.append(now)
            return 0

    def reset(self, key: str) -> None:
        """Forget the events of *key* (after a successful login, for instance)."""
        with self._lock:
            self._events.pop(key, None)
