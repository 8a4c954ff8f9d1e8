"""RSA signing keys: current, next and previous, persisted, published as a JWKS.

Rotation follows Auth0: the *next* key is published before it signs anything; rotating makes
it current, the old current becomes *previous* (still published, so tokens it signed keep
validating) and a new *next* is generated. Revoking the previous key removes it from the JWKS.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import RSAAlgorithm

from .models import StoredKey
from .security import new_secret
from .settings import Settings
from .store import Store


class SigningKeyError(LookupError):
    """A key operation that cannot be done (unknown kid, revoking the current key)."""


@dataclass(frozen=True)
class SigningKey:
    """One RSA key pair with its status."""

    kid: str
    private_key: rsa.RSAPrivateKey
    status: str
    created_at: int
    current_since: int | None
    revoked_at: int | None

    def public_jwk(self) -> dict[str, Any]:
        """The public JWK: ``kty``, ``n``, ``e`` plus ``kid``, ``alg`` and ``use``."""
        jwk: dict[str, Any] = json.loads(RSAAlgorithm.to_jwk(self.private_key.public_key()))
        return {"kty": "RSA", "use": "sig", "alg": "RS256", "kid": self.kid} | {
            "n": jwk["n"],
            "e": jwk["e"],
        }


class KeyRing:
    """The tenant's signing keys, kept in the store's ``keys`` repository."""

    def __init__(self, store: Store, settings: Settings) -> None:
        self._keys = store.keys
        self._store = store
        self._settings = settings
        self._cache: dict[str, rsa.RSAPrivateKey] = {}

    def _now(self) -> int:
        return int(self._settings.clock())

    def _new_key(self, status: str) -> None:
        key = self._settings.key_factory()
        if key.key_size < 2048:
            raise ValueError("signing keys must have at least 2048 bits")
        pem = key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ).decode("ascii")
        now = self._now()
        self._keys.put(
            StoredKey(new_secret(16), pem, status, now, now if status == "current" else None, None)
        )

    def ensure(self) -> None:
        """Create the current and next keys when they are missing (first start)."""
        with self._store.transaction():
            for status in ("current", "next"):
                if self._keys.with_status(status) is None:
                    self._new_key(status)

    def _load(self, stored: StoredKey) -> SigningKey:
        key = self._cache.get(stored.kid)
        if key is None:
            loaded = serialization.load_pem_private_key(stored.private_pem.encode(), None)
            if not isinstance(loaded, rsa.RSAPrivateKey):
                raise TypeError("signing keys must be RSA keys")
            key = self._cache[stored.kid] = loaded
        return SigningKey(
            stored.kid,
            key,
            stored.status,
            stored.created_at,
            stored.current_since,
            stored.revoked_at,
        )

    def all(self) -> list[SigningKey]:
        """Every key, revoked ones included, newest first."""
        return [self._load(k) for k in self._keys.all()]

    def get(self, kid: str) -> SigningKey:
        """The key with this ``kid``; raises ``SigningKeyError`` when there is none."""
        stored = self._keys.find(kid)
        if stored is None:
            raise SigningKeyError("no such signing key")
        return self._load(stored)

    def current(self) -> SigningKey:
        """The key that signs new tokens."""
        stored = self._keys.with_status("current")
        if stored is None:
            self.ensure()
            stored = self._keys.with_status("current")
        assert stored is not None
        return self._load(stored)

    def published(self) -> list[SigningKey]:
        """The keys in the JWKS: current, next, and previous until revoked."""
        return [k for k in self.all() if k.status in ("current", "next", "previous")]

    def jwks(self) -> dict[str, Any]:
        """The JSON Web Key Set document (public RSA keys only)."""
        order = {"current": 0, "next": 1, "previous": 2}
        keys = sorted(self.published(), key=lambda k: order[k.status])
        return {"keys": [k.public_jwk() for k in keys]}

    def rotate(self) -> SigningKey:
        """Promote *next* to current, keep the old current as previous; return the new current."""
        self.ensure()
        with self._store.transaction():
            self._keys.rotate(self._now())
            self._new_key("next")
        return self.current()

    def revoke(self, kid: str) -> SigningKey:
        """Revoke the previous key (only the previous key can be revoked, as at Auth0)."""
        key = self.get(kid)
        if key.status != "previous":
            raise SigningKeyError("only the previous signing key can be revoked")
        self._keys.revoke([kid], self._now())
        return self.get(kid)

    def stored(self) -> list[StoredKey]:
        """Every key as stored (private PEM included), oldest first: for exports."""
        return self._keys.oldest_first()

    def replace_all(self, keys: list[StoredKey]) -> None:
        """Revoke every local key and take *keys* instead (imports: both sides sign alike)."""
        with self._store.transaction():
            self._keys.revoke(None, self._now())
            for key in keys:
                self._keys.put(key)
