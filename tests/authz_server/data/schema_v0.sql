-- The store schema as first released (before schema versions), for the migration tests.
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
