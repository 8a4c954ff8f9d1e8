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

    def to_json(self) -> dict[str, Any]:
        """Auth0's ``/api/v2/keys/signing`` shape (public material only)."""
        pem = self.private_key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        return {
            "kid": self.kid,
            "current": self.status == "current",
            "next": self.status == "next",
            "previous": self.status == "previous",
            "revoked": self.status == "revoked",
            "current_since": self.current_since,
            "revoked_at": self.revoked_at,
            "public_key": pem.decode("ascii"),
        }


class KeyRing:
    """The tenant's signing keys, stored in the ``signing_keys`` table."""

    def __init__(self, store: Store, settings: Settings) -> None:
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
        self._store.execute(
            "INSERT INTO signing_keys (kid, private_pem, status, created_at, current_since) "
            "VALUES (?, ?, ?, ?, ?)",
            (new_secret(16), pem, status, now, now if status == "current" else None),
        )

    def ensure(self) -> None:
        """Create the current and next keys when they are missing (first start)."""
        with self._store.transaction():
            for status in ("current", "next"):
                if self._store.one("SELECT kid FROM signing_keys WHERE status = ?", (status,)):
                    continue
                self._new_key(status)

    def _load(self, row: Any) -> SigningKey:
        kid = row["kid"]
        key = self._cache.get(kid)
        if key is None:
            loaded = serialization.load_pem_private_key(row["private_pem"].encode(), None)
            if not isinstance(loaded, rsa.RSAPrivateKey):
                raise TypeError("signing keys must be RSA keys")
            key = self._cache[kid] = loaded
        return SigningKey(
            kid, key, row["status"], row["created_at"], row["current_since"], row["revoked_at"]
        )

    def all(self) -> list[SigningKey]:
        """Every key, revoked ones included, newest first."""
        rows = self._store.all("SELECT * FROM signing_keys ORDER BY created_at DESC, rowid DESC")
        return [self._load(r) for r in rows]

    def get(self, kid: str) -> SigningKey:
        """The key with this ``kid``; raises ``SigningKeyError`` when there is none."""
        row = self._store.one("SELECT * FROM signing_keys WHERE kid = ?", (kid,))
        if row is None:
            raise SigningKeyError("no such signing key")
        return self._load(row)

    def current(self) -> SigningKey:
        """The key that signs new tokens."""
        row = self._store.one("SELECT * FROM signing_keys WHERE status = 'current'")
        if row is None:
            self.ensure()
            row = self._store.one("SELECT * FROM signing_keys WHERE status = 'current'")
        assert row is not None
        return self._load(row)

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
        now = self._now()
        with self._store.transaction():
            self._store.execute(
                "UPDATE signing_keys SET status = 'revoked', revoked_at = ? "
                "WHERE status = 'previous'",
                (now,),
            )
            self._store.execute(
                "UPDATE signing_keys SET status = 'previous' WHERE status = 'current'"
            )
            self._store.execute(
                "UPDATE signing_keys SET status = 'current', current_since = ? "
                "WHERE status = 'next'",
                (now,),
            )
            self._new_key("next")
        return self.current()

    def revoke(self, kid: str) -> SigningKey:
        """Revoke the previous key (only the previous key can be revoked, as at Auth0)."""
        key = self.get(kid)
        if key.status != "previous":
            raise SigningKeyError("only the previous signing key can be revoked")
        self._store.execute(
            "UPDATE signing_keys SET status = 'revoked', revoked_at = ? WHERE kid = ?",
            (self._now(), kid),
        )
        return self.get(kid)
