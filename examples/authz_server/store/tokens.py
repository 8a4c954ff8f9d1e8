"""Authorization codes, refresh tokens (rotation families) and revoked access-token ids."""

from __future__ import annotations

import json
import sqlite3
from typing import Any

from ..models import AuthorizationCode, ReferenceToken, RefreshToken, SignIn
from .connection import Connection


def _code(row: sqlite3.Row) -> AuthorizationCode:
    return AuthorizationCode(
        code_hash=row["code_hash"],
        family_id=row["family_id"],
        client_id=row["client_id"],
        user_id=row["user_id"],
        redirect_uri=row["redirect_uri"],
        redirect_uri_sent=bool(row["redirect_uri_sent"]),
        code_challenge=row["code_challenge"],
        audience=row["audience"],
        scopes=tuple(row["scope"].split()),
        nonce=row["nonce"],
        auth_time=row["auth_time"],
        expires_at=row["expires_at"],
        used_at=row["used_at"],
        dpop_jkt=row["dpop_jkt"],
        **_context(row),
    )


def _context(row: sqlite3.Row) -> dict[str, Any]:
    sign_in = SignIn.stored(row["auth_time"], row["acr"], row["amr"])
    return {"acr": sign_in.acr, "amr": sign_in.amr}


def _refresh(row: sqlite3.Row) -> RefreshToken:
    return RefreshToken(
        token_hash=row["token_hash"],
        family_id=row["family_id"],
        client_id=row["client_id"],
        user_id=row["user_id"],
        audience=row["audience"],
        scopes=tuple(row["scope"].split()),
        auth_time=row["auth_time"],
        created_at=row["created_at"],
        family_expires_at=row["family_expires_at"],
        rotated_at=row["rotated_at"],
        revoked_at=row["revoked_at"],
        dpop_jkt=row["dpop_jkt"],
        **_context(row),
    )


class TokenRepository:
    """The ``auth_codes``, ``refresh_tokens``, ``revoked_tokens`` and ``reference_tokens``
    tables."""

    def __init__(self, db: Connection) -> None:
        self._db = db

    # ------------------------------------------------------------------ codes

    def add_code(self, code: AuthorizationCode, now: int, *, keep_spent: int = 86400) -> None:
        """Store a new code; codes expired for more than *keep_spent* seconds are purged.

        Spent and expired codes stay a while so that a replay still revokes what the code
        issued (RFC 6749 §4.1.2); after that a replay is just an unknown code.
        """
        self._db.execute("DELETE FROM auth_codes WHERE expires_at <= ?", (now - keep_spent,))
        self._db.execute(
            "INSERT INTO auth_codes (code_hash, family_id, client_id, user_id, redirect_uri, "
            "redirect_uri_sent, code_challenge, audience, scope, nonce, auth_time, expires_at, "
            "dpop_jkt, acr, amr) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                code.code_hash,
                code.family_id,
                code.client_id,
                code.user_id,
                code.redirect_uri,
                code.redirect_uri_sent,
                code.code_challenge,
                code.audience,
                " ".join(code.scopes),
                code.nonce,
                code.auth_time,
                code.expires_at,
                code.dpop_jkt,
                code.acr,
                " ".join(code.amr),
            ),
        )

    def find_code(self, code_hash: str) -> AuthorizationCode | None:
        """The code stored under this digest."""
        row = self._db.one("SELECT * FROM auth_codes WHERE code_hash = ?", (code_hash,))
        return None if row is None else _code(row)

    def use_code(self, code_hash: str, now: int) -> bool:
        """Mark a code used; ``False`` when it already was (two redemptions race)."""
        changed = self._db.execute(
            "UPDATE auth_codes SET used_at = ? WHERE code_hash = ? AND used_at IS NULL",
            (now, code_hash),
        )
        return changed == 1

    # --------------------------------------------------------- refresh tokens

    def add_refresh(self, token: RefreshToken) -> None:
        """Store a new refresh token."""
        self._db.execute(
            "INSERT INTO refresh_tokens (token_hash, family_id, client_id, user_id, audience, "
            "scope, auth_time, created_at, family_expires_at, dpop_jkt, acr, amr) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                token.token_hash,
                token.family_id,
                token.client_id,
                token.user_id,
                token.audience,
                " ".join(token.scopes),
                token.auth_time,
                token.created_at,
                token.family_expires_at,
                token.dpop_jkt,
                token.acr,
                " ".join(token.amr),
            ),
        )

    def find_refresh(self, token_hash: str) -> RefreshToken | None:
        """The refresh token stored under this digest."""
        row = self._db.one("SELECT * FROM refresh_tokens WHERE token_hash = ?", (token_hash,))
        return None if row is None else _refresh(row)

    def rotate_refresh(self, token_hash: str, now: int) -> bool:
        """Mark a live token rotated; ``False`` when it was rotated or revoked meanwhile."""
        with self._db.transaction():
            changed = self._db.execute(
                "UPDATE refresh_tokens SET rotated_at = ? WHERE token_hash = ? "
                "AND rotated_at IS NULL AND revoked_at IS NULL",
                (now, token_hash),
            )
        return changed == 1

    def revoke_refresh(
        self,
        now: int,
        *,
        user_id: str | None = None,
        client_id: str | None = None,
        audience: str | None = None,
        family_id: str | None = None,
    ) -> int:
        """Revoke every live refresh token matching all the given filters; return how many."""
        if not any((user_id, client_id, audience, family_id)):
            raise ValueError("at least one filter is required")
        return self._db.execute(
            "UPDATE refresh_tokens SET revoked_at = ? WHERE revoked_at IS NULL "
            "AND (? IS NULL OR user_id = ?) AND (? IS NULL OR client_id = ?) "
            "AND (? IS NULL OR audience = ?) AND (? IS NULL OR family_id = ?)",
            (
                now,
                user_id,
                user_id,
                client_id,
                client_id,
                audience,
                audience,
                family_id,
                family_id,
            ),
        )

    # -------------------------------------------------- revoked access tokens

    def revoke_jti(self, jti: str, expires_at: int, now: int) -> None:
        """Remember a revoked access token until it would have expired (old ones purged)."""
        with self._db.transaction():
            self._db.execute("DELETE FROM revoked_tokens WHERE expires_at <= ?", (now,))
            self._db.execute(
                "INSERT OR IGNORE INTO revoked_tokens (jti, expires_at) VALUES (?, ?)",
                (jti, expires_at),
            )

    def is_revoked(self, jti: str) -> bool:
        """Whether the access token *jti* was revoked."""
        return self._db.one("SELECT 1 FROM revoked_tokens WHERE jti = ?", (jti,)) is not None

    # -------------------------------------------- opaque access (reference) tokens

    def add_reference(self, token: ReferenceToken, now: int) -> None:
        """Store an opaque access token's claims (expired ones are purged)."""
        with self._db.transaction():
            self._db.execute("DELETE FROM reference_tokens WHERE expires_at <= ?", (now,))
            self._db.execute(
                "INSERT INTO reference_tokens (token_hash, client_id, claims, expires_at) "
                "VALUES (?, ?, ?, ?)",
                (token.token_hash, token.client_id, json.dumps(token.claims), token.expires_at),
            )

    def find_reference(self, token_hash: str, now: int) -> ReferenceToken | None:
        """The live opaque access token stored under this digest."""
        row = self._db.one(
            "SELECT * FROM reference_tokens WHERE token_hash = ? AND expires_at > ?",
            (token_hash, now),
        )
        if row is None:
            return None
        return ReferenceToken(
            row["token_hash"], row["client_id"], json.loads(row["claims"]), row["expires_at"]
        )

    def drop_reference(self, token_hash: str) -> None:
        """Forget an opaque access token: from now on it is inactive."""
        self._db.execute("DELETE FROM reference_tokens WHERE token_hash = ?", (token_hash,))
