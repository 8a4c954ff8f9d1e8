"""The whole schema of the server's store, its version, and the migrations to it.

``PRAGMA user_version`` records the version. A store of an earlier version (the first
release had none, version 0) is brought forward when it is opened: columns added since are
added in place, new tables and indexes created. A store of a newer version is refused.
"""

from __future__ import annotations

import sqlite3

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
    created_at         INTEGER NOT NULL,
    access_token_format TEXT NOT NULL DEFAULT 'jwt',
    introspection_clients TEXT NOT NULL DEFAULT '[]',
    dpop_required      INTEGER NOT NULL DEFAULT 0,
    enforce_policies   INTEGER NOT NULL DEFAULT 0
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
    used_at        INTEGER,
    dpop_jkt       TEXT,
    acr            TEXT,
    amr            TEXT
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
    revoked_at     INTEGER,
    dpop_jkt       TEXT,
    acr            TEXT,
    amr            TEXT
);
CREATE INDEX IF NOT EXISTS refresh_tokens_family ON refresh_tokens (family_id);
CREATE INDEX IF NOT EXISTS refresh_tokens_user ON refresh_tokens (user_id, client_id);
CREATE TABLE IF NOT EXISTS sessions (
    sid_hash    TEXT PRIMARY KEY,
    user_id     TEXT REFERENCES users (user_id) ON DELETE CASCADE,
    csrf_secret TEXT NOT NULL,
    auth_time   INTEGER,
    created_at  INTEGER NOT NULL,
    expires_at  INTEGER NOT NULL,
    acr         TEXT,
    amr         TEXT
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
CREATE TABLE IF NOT EXISTS reference_tokens (
    token_hash  TEXT PRIMARY KEY,
    client_id   TEXT NOT NULL,
    claims      TEXT NOT NULL,
    expires_at  INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS reference_tokens_expiry ON reference_tokens (expires_at);
CREATE TABLE IF NOT EXISTS roles (
    id          TEXT PRIMARY KEY,
    name        TEXT NOT NULL UNIQUE,
    description TEXT NOT NULL DEFAULT '',
    created_at  INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS role_permissions (
    role_id     TEXT NOT NULL REFERENCES roles (id) ON DELETE CASCADE,
    audience    TEXT NOT NULL REFERENCES resource_servers (identifier)
                    ON DELETE CASCADE ON UPDATE CASCADE,
    permission  TEXT NOT NULL,
    PRIMARY KEY (role_id, audience, permission)
);
CREATE TABLE IF NOT EXISTS user_roles (
    user_id     TEXT NOT NULL REFERENCES users (user_id) ON DELETE CASCADE,
    role_id     TEXT NOT NULL REFERENCES roles (id) ON DELETE CASCADE,
    PRIMARY KEY (user_id, role_id)
);
CREATE TABLE IF NOT EXISTS user_permissions (
    user_id     TEXT NOT NULL REFERENCES users (user_id) ON DELETE CASCADE,
    audience    TEXT NOT NULL REFERENCES resource_servers (identifier)
                    ON DELETE CASCADE ON UPDATE CASCADE,
    permission  TEXT NOT NULL,
    PRIMARY KEY (user_id, audience, permission)
);
CREATE TABLE IF NOT EXISTS one_time_codes (
    sid_hash    TEXT PRIMARY KEY,
    code_hash   TEXT NOT NULL,
    attempts    INTEGER NOT NULL DEFAULT 0,
    expires_at  INTEGER NOT NULL
);
"""

SCHEMA_VERSION = 5

# Columns added after the first released schema: (table, column, definition). A store of
# an earlier version gets each one that it lacks.
_ADDED_COLUMNS = (
    ("users", "email_verified", "INTEGER NOT NULL DEFAULT 0"),
    ("users", "blocked", "INTEGER NOT NULL DEFAULT 0"),
    ("resource_servers", "access_token_format", "TEXT NOT NULL DEFAULT 'jwt'"),
    ("resource_servers", "introspection_clients", "TEXT NOT NULL DEFAULT '[]'"),
    ("resource_servers", "dpop_required", "INTEGER NOT NULL DEFAULT 0"),
    ("auth_codes", "dpop_jkt", "TEXT"),
    ("refresh_tokens", "dpop_jkt", "TEXT"),
    # Version 5: RBAC per API, and the authentication context of a sign-in.
    ("resource_servers", "enforce_policies", "INTEGER NOT NULL DEFAULT 0"),
    ("sessions", "acr", "TEXT"),
    ("sessions", "amr", "TEXT"),
    ("auth_codes", "acr", "TEXT"),
    ("auth_codes", "amr", "TEXT"),
    ("refresh_tokens", "acr", "TEXT"),
    ("refresh_tokens", "amr", "TEXT"),
)


def migrate(conn: sqlite3.Connection, path: str) -> None:
    """Bring the schema of *conn* to :data:`SCHEMA_VERSION` (new stores and old files)."""
    version = conn.execute("PRAGMA user_version").fetchone()[0]
    if version > SCHEMA_VERSION:
        raise RuntimeError(f"the store {path!r} was written by a newer version (schema {version})")
    if version == SCHEMA_VERSION:
        return
    existing = {
        row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
    }
    conn.execute("BEGIN IMMEDIATE")
    try:
        for table, column, definition in _ADDED_COLUMNS:
            if table not in existing:
                continue
            columns = {r[1] for r in conn.execute(f"PRAGMA table_info({table})")}
            if column not in columns:
                conn.execute(f"ALTER TABLE {table} ADD COLUMN {column} {definition}")
        for statement in SCHEMA.split(";"):
            if statement.strip():
                conn.execute(statement)
        conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")
