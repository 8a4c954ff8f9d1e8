"""Users, their remembered consents, the signing keys and the key-value table."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable

from ..models import StoredKey, User, UserGrant
from .connection import Connection, Duplicate

# The user columns a service may change.
_USER_COLUMNS = frozenset(
    {"email", "name", "password_hash", "is_admin", "email_verified", "blocked", "updated_at"}
)


def _user(row: sqlite3.Row) -> User:
    return User(
        user_id=row["user_id"],
        email=row["email"],
        name=row["name"],
        password_hash=row["password_hash"],
        is_admin=bool(row["is_admin"]),
        created_at=row["created_at"],
        updated_at=row["updated_at"],
        email_verified=bool(row["email_verified"]),
        blocked=bool(row["blocked"]),
    )


class UserRepository:
    """The ``users`` table (emails are unique, case-insensitively)."""

    def __init__(self, db: Connection) -> None:
        self._db = db

    def all(self) -> list[User]:
        """Every user, oldest first."""
        return [_user(r) for r in self._db.all("SELECT * FROM users ORDER BY created_at, rowid")]

    def find(self, user_id: str) -> User | None:
        """The user with this id."""
        row = self._db.one("SELECT * FROM users WHERE user_id = ?", (user_id,))
        return None if row is None else _user(row)

    def find_by_email(self, email: str) -> User | None:
        """The user with this email (any case)."""
        row = self._db.one("SELECT * FROM users WHERE email = ?", (email,))
        return None if row is None else _user(row)

    def insert(self, user: User) -> None:
        """Add a user; ``Duplicate`` when the id or the email is taken."""
        try:
            self._db.execute(
                "INSERT INTO users (user_id, email, name, password_hash, is_admin, "
                "email_verified, blocked, created_at, updated_at) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    user.user_id,
                    user.email,
                    user.name,
                    user.password_hash,
                    user.is_admin,
                    user.email_verified,
                    user.blocked,
                    user.created_at,
                    user.updated_at,
                ),
            )
        except sqlite3.IntegrityError:
            raise Duplicate("user") from None

    def set(self, user_id: str, **changes: object) -> None:
        """Change the named columns; ``Duplicate`` when a new email is taken."""
        unknown = set(changes) - _USER_COLUMNS
        if unknown:
            raise ValueError(f"not a user column: {sorted(unknown)}")
        assignments = ", ".join(f"{column} = ?" for column in changes)
        try:
            self._db.execute(
                f"UPDATE users SET {assignments} WHERE user_id = ?",  # noqa: S608 - fixed names
                (*changes.values(), user_id),
            )
        except sqlite3.IntegrityError:
            raise Duplicate("email") from None

    def delete(self, user_id: str) -> None:
        """Remove a user (consents, sessions and portal ownership go with it)."""
        self._db.execute("DELETE FROM users WHERE user_id = ?", (user_id,))


def _consent(row: sqlite3.Row) -> UserGrant:
    return UserGrant(
        row["id"],
        row["user_id"],
        row["client_id"],
        row["audience"],
        tuple(json.loads(row["scope"])),
    )


class ConsentRepository:
    """The ``user_grants`` table: one row per (user, client, audience)."""

    def __init__(self, db: Connection) -> None:
        self._db = db

    def select(
        self,
        *,
        user_id: str | None = None,
        client_id: str | None = None,
        audience: str | None = None,
    ) -> list[UserGrant]:
        """Remembered consents, optionally filtered, oldest first."""
        rows = self._db.all(
            "SELECT * FROM user_grants WHERE (? IS NULL OR user_id = ?) "
            "AND (? IS NULL OR client_id = ?) AND (? IS NULL OR audience = ?) ORDER BY rowid",
            (user_id, user_id, client_id, client_id, audience, audience),
        )
        return [_consent(r) for r in rows]

    def find(self, grant_id: str) -> UserGrant | None:
        """The consent with this id."""
        row = self._db.one("SELECT * FROM user_grants WHERE id = ?", (grant_id,))
        return None if row is None else _consent(row)

    def upsert(self, grant: UserGrant, now: int) -> None:
        """Record a consent, replacing the scopes of an existing one for the same triple."""
        self._db.execute(
            "INSERT INTO user_grants (id, user_id, client_id, audience, scope, created_at) "
            "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (user_id, client_id, audience) "
            "DO UPDATE SET scope = excluded.scope",
            (
                grant.id,
                grant.user_id,
                grant.client_id,
                grant.audience,
                json.dumps(list(grant.scope)),
                now,
            ),
        )

    def delete(self, grant_id: str) -> None:
        """Remove one consent."""
        self._db.execute("DELETE FROM user_grants WHERE id = ?", (grant_id,))

    def delete_for_audience(self, audience: str) -> None:
        """Remove every consent for an API."""
        self._db.execute("DELETE FROM user_grants WHERE audience = ?", (audience,))


def _key(row: sqlite3.Row) -> StoredKey:
    return StoredKey(
        row["kid"],
        row["private_pem"],
        row["status"],
        row["created_at"],
        row["current_since"],
        row["revoked_at"],
    )


class KeyRepository:
    """The ``signing_keys`` table (status: next, current, previous, revoked)."""

    def __init__(self, db: Connection) -> None:
        self._db = db

    def all(self) -> list[StoredKey]:
        """Every key, newest first."""
        rows = self._db.all("SELECT * FROM signing_keys ORDER BY created_at DESC, rowid DESC")
        return [_key(r) for r in rows]

    def oldest_first(self) -> list[StoredKey]:
        """Every key, oldest first (exports)."""
        rows = self._db.all("SELECT * FROM signing_keys ORDER BY created_at, rowid")
        return [_key(r) for r in rows]

    def find(self, kid: str) -> StoredKey | None:
        """The key with this id."""
        row = self._db.one("SELECT * FROM signing_keys WHERE kid = ?", (kid,))
        return None if row is None else _key(row)

    def with_status(self, status: str) -> StoredKey | None:
        """The (one) key with this status."""
        row = self._db.one("SELECT * FROM signing_keys WHERE status = ?", (status,))
        return None if row is None else _key(row)

    def put(self, key: StoredKey) -> None:
        """Add a key, or replace the one with the same kid."""
        self._db.execute(
            "INSERT OR REPLACE INTO signing_keys (kid, private_pem, status, created_at, "
            "current_since, revoked_at) VALUES (?, ?, ?, ?, ?, ?)",
            (
                key.kid,
                key.private_pem,
                key.status,
                key.created_at,
                key.current_since,
                key.revoked_at,
            ),
        )

    def rotate(self, now: int) -> None:
        """previous -> revoked, current -> previous, next -> current (in one transaction)."""
        with self._db.transaction():
            self._db.execute(
                "UPDATE signing_keys SET status = 'revoked', revoked_at = ? "
                "WHERE status = 'previous'",
                (now,),
            )
            self._db.execute("UPDATE signing_keys SET status = 'previous' WHERE status = 'current'")
            self._db.execute(
                "UPDATE signing_keys SET status = 'current', current_since = ? "
                "WHERE status = 'next'",
                (now,),
            )

    def revoke(self, kids: Iterable[str] | None, now: int) -> None:
        """Revoke the named keys (every live key when *kids* is ``None``)."""
        if kids is None:
            self._db.execute(
                "UPDATE signing_keys SET status = 'revoked', revoked_at = ? "
                "WHERE status != 'revoked'",
                (now,),
            )
            return
        for kid in kids:
            self._db.execute(
                "UPDATE signing_keys SET status = 'revoked', revoked_at = ? WHERE kid = ?",
                (now, kid),
            )


class MetaRepository:
    """The small key-value table."""

    def __init__(self, db: Connection) -> None:
        self._db = db

    def get(self, key: str) -> str | None:
        """A stored value."""
        row = self._db.one("SELECT value FROM meta WHERE key = ?", (key,))
        return None if row is None else str(row["value"])

    def set(self, key: str, value: str) -> None:
        """Store a value."""
        self._db.execute(
            "INSERT INTO meta (key, value) VALUES (?, ?) "
            "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            (key, value),
        )
