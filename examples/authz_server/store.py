"""The SQLite store: schema, one shared connection, and short serialised transactions.

Every statement is parameterised. The connection is shared by the event loop and worker
threads, so it is guarded by a lock; each write runs inside ``BEGIN IMMEDIATE`` so that
check-then-update steps (single-use codes, refresh-token rotation) are atomic.

The schema carries a version (``PRAGMA user_version``); a store written by an earlier
version is migrated forward when it is opened, so an existing ``authz_server.sqlite3``
keeps working.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS resource_servers (
    id                 TEXT PRIMARY KEY,
    name               TEXT NOT NULL,
    identifier         TEXT NOT NULL UNIQUE,
    signing_alg        TEXT NOT NULL CHECK (signing_alg IN ('RS256', 'HS256')),
    signing_secret     TEXT,
    token_lifetime     INTEGER NOT NULL,
    allow_offline_access INTEGER NOT NULL,
    skip_consent       INTEGER NOT NULL,
    token_dialect      TEXT NOT NULL,
    scopes             TEXT NOT NULL,
    is_system          INTEGER NOT NULL DEFAULT 0,
    created_at         INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS clients (
    client_id          TEXT PRIMARY KEY,
    name               TEXT NOT NULL,
    description        TEXT NOT NULL DEFAULT '',
    app_type           TEXT NOT NULL,
    is_first_party     INTEGER NOT NULL,
    token_endpoint_auth_method TEXT NOT NULL,
    callbacks          TEXT NOT NULL,
    grant_types        TEXT NOT NULL,
    secret_hash        TEXT,
    secret_expires_at  INTEGER NOT NULL DEFAULT 0,
    is_dynamic         INTEGER NOT NULL DEFAULT 0,
    logo_uri           TEXT,
    client_uri         TEXT,
    policy_uri         TEXT,
    tos_uri            TEXT,
    created_at         INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS client_grants (
    id         TEXT PRIMARY KEY,
    client_id  TEXT NOT NULL REFERENCES clients (client_id) ON DELETE CASCADE,
    audience   TEXT NOT NULL REFERENCES resource_servers (identifier)
                   ON DELETE CASCADE ON UPDATE CASCADE,
    scope      TEXT NOT NULL,
    UNIQUE (client_id, audience)
);
CREATE TABLE IF NOT EXISTS users (
    user_id        TEXT PRIMARY KEY,
    email          TEXT NOT NULL UNIQUE COLLATE NOCASE,
    name           TEXT NOT NULL,
    password_hash  TEXT NOT NULL,
    is_admin       INTEGER NOT NULL DEFAULT 0,
    email_verified INTEGER NOT NULL DEFAULT 0,
    blocked        INTEGER NOT NULL DEFAULT 0,
    created_at     INTEGER NOT NULL,
    updated_at     INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS user_grants (
    id         TEXT PRIMARY KEY,
    user_id    TEXT NOT NULL REFERENCES users (user_id) ON DELETE CASCADE,
    client_id  TEXT NOT NULL REFERENCES clients (client_id) ON DELETE CASCADE,
    audience   TEXT NOT NULL,
    scope      TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    UNIQUE (user_id, client_id, audience)
);
CREATE TABLE IF NOT EXISTS signing_keys (
    kid           TEXT PRIMARY KEY,
    private_pem   TEXT NOT NULL,
    status        TEXT NOT NULL CHECK (status IN ('next', 'current', 'previous', 'revoked')),
    created_at    INTEGER NOT NULL,
    current_since INTEGER,
    revoked_at    INTEGER
);
CREATE TABLE IF NOT EXISTS auth_codes (
    code_hash      TEXT PRIMARY KEY,
    family_id      TEXT NOT NULL,
    client_id      TEXT NOT NULL,
    user_id        TEXT NOT NULL,
    redirect_uri   TEXT NOT NULL,
    redirect_uri_sent INTEGER NOT NULL,
    code_challenge TEXT,
    audience       TEXT,
    scope          TEXT NOT NULL,
    nonce          TEXT,
    auth_time      INTEGER NOT NULL,
    expires_at     INTEGER NOT NULL,
    used_at        INTEGER
);
CREATE TABLE IF NOT EXISTS refresh_tokens (
    token_hash     TEXT PRIMARY KEY,
    family_id      TEXT NOT NULL,
    client_id      TEXT NOT NULL,
    user_id        TEXT NOT NULL,
    audience       TEXT NOT NULL,
    scope          TEXT NOT NULL,
    auth_time      INTEGER NOT NULL,
    created_at     INTEGER NOT NULL,
    family_expires_at INTEGER NOT NULL,
    rotated_at     INTEGER,
    revoked_at     INTEGER
);
CREATE INDEX IF NOT EXISTS refresh_tokens_family ON refresh_tokens (family_id);
CREATE INDEX IF NOT EXISTS refresh_tokens_user ON refresh_tokens (user_id, client_id);
CREATE TABLE IF NOT EXISTS sessions (
    sid_hash    TEXT PRIMARY KEY,
    user_id     TEXT REFERENCES users (user_id) ON DELETE CASCADE,
    csrf_secret TEXT NOT NULL,
    auth_time   INTEGER,
    created_at  INTEGER NOT NULL,
    expires_at  INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS interactions (
    id          TEXT PRIMARY KEY,
    sid_hash    TEXT NOT NULL,
    params      TEXT NOT NULL,
    created_at  INTEGER NOT NULL,
    expires_at  INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS interactions_age ON interactions (created_at);
CREATE TABLE IF NOT EXISTS portal_app_owners (
    client_id   TEXT PRIMARY KEY REFERENCES clients (client_id) ON DELETE CASCADE,
    owner_id    TEXT NOT NULL REFERENCES users (user_id) ON DELETE CASCADE,
    created_at  INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS revoked_tokens (
    jti         TEXT PRIMARY KEY,
    expires_at  INTEGER NOT NULL
);
"""

SCHEMA_VERSION = 2

# Columns added after the first released schema: (table, column, definition). A store of
# version 0 or 1 gets each one that it lacks.
_ADDED_COLUMNS = (
    ("users", "email_verified", "INTEGER NOT NULL DEFAULT 0"),
    ("users", "blocked", "INTEGER NOT NULL DEFAULT 0"),
)


class Store:
    """One SQLite database (a file path, or ``:memory:``) behind a lock."""

    def __init__(self, path: str = ":memory:") -> None:
        self.path = path
        self._conn = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self._conn.row_factory = sqlite3.Row
        self._lock = threading.RLock()
        self._depth = 0
        with self._lock:
            self._conn.execute("PRAGMA foreign_keys = ON")
            if path != ":memory:":
                self._conn.execute("PRAGMA journal_mode = WAL")
            self._migrate()

    def _migrate(self) -> None:
        """Bring the schema to :data:`SCHEMA_VERSION` (new stores and older files alike)."""
        version = self._conn.execute("PRAGMA user_version").fetchone()[0]
        if version > SCHEMA_VERSION:
            raise RuntimeError(
                f"the store {self.path!r} was written by a newer version (schema {version})"
            )
        if version == SCHEMA_VERSION:
            return
        existing = {
            row[0]
            for row in self._conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
        }
        self._conn.execute("BEGIN IMMEDIATE")
        try:
            for table, column, definition in _ADDED_COLUMNS:
                if table not in existing:
                    continue
                columns = {r[1] for r in self._conn.execute(f"PRAGMA table_info({table})")}
                if column not in columns:
                    self._conn.execute(f"ALTER TABLE {table} ADD COLUMN {column} {definition}")
            for statement in SCHEMA.split(";"):
                if statement.strip():
                    self._conn.execute(statement)
            self._conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
        except BaseException:
            self._conn.execute("ROLLBACK")
            raise
        self._conn.execute("COMMIT")

    @classmethod
    def copy_of(cls, other: Store) -> Store:
        """A new in-memory store holding a copy of *other* (fast fixtures, snapshots)."""
        copy = cls(":memory:")
        with other._lock, copy._lock:
            other._conn.backup(copy._conn)
            copy._conn.execute("PRAGMA foreign_keys = ON")
        return copy

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """Run the enclosed statements atomically (nested calls join the outer one)."""
        with self._lock:
            if self._depth:
                self._depth += 1
                try:
                    yield
                finally:
                    self._depth -= 1
                return
            self._conn.execute("BEGIN IMMEDIATE")
            self._depth = 1
            try:
                yield
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise
            else:
                self._conn.execute("COMMIT")
            finally:
                self._depth = 0

    def execute(self, sql: str, params: Sequence[Any] = ()) -> int:
        """Run one statement; return the number of rows it changed."""
        with self._lock:
            return self._conn.execute(sql, params).rowcount

    def all(self, sql: str, params: Sequence[Any] = ()) -> list[sqlite3.Row]:
        """Run a query and return every row."""
        with self._lock:
            return self._conn.execute(sql, params).fetchall()

    def one(self, sql: str, params: Sequence[Any] = ()) -> sqlite3.Row | None:
        """Run a query and return its first row, or ``None``."""
        with self._lock:
            row: sqlite3.Row | None = self._conn.execute(sql, params).fetchone()
            return row

    def get_meta(self, key: str) -> str | None:
        """Read a value of the small key-value table."""
        row = self.one("SELECT value FROM meta WHERE key = ?", (key,))
        return None if row is None else str(row["value"])

    def set_meta(self, key: str, value: str) -> None:
        """Write a value of the small key-value table."""
        self.execute(
            "INSERT INTO meta (key, value) VALUES (?, ?) "
            "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            (key, value),
        )

    def close(self) -> None:
        """Close the connection."""
        with self._lock:
            self._conn.close()
