"""Stores written by earlier versions open, migrate forward, and keep their data."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from examples.authz_server import Settings
from examples.authz_server.services import Domain
from examples.authz_server.store import SCHEMA_VERSION, Store

SCHEMA_V0 = Path(__file__).with_name("data").joinpath("schema_v0.sql").read_text("utf-8")


@pytest.fixture
def old_file(tmp_path: Path) -> Path:
    """A store file of the first schema (no version), holding one user and one session."""
    path = tmp_path / "authz_server.sqlite3"
    conn = sqlite3.connect(path)
    conn.executescript(SCHEMA_V0)
    conn.execute(
        "INSERT INTO users (user_id, email, name, password_hash, is_admin, created_at, "
        "updated_at) VALUES ('auth0|old', 'old@organizer.example', 'Old', 'sha256$x', 1, 1, 1)"
    )
    conn.commit()
    conn.close()
    return path


def test_a_first_version_store_is_migrated(old_file: Path) -> None:
    """Opening an old file adds what is new; its users stay, unverified and not blocked."""
    store = Store(str(old_file))
    try:
        tenant = Domain(store, Settings(db_path=str(old_file), seed_path=None))
        tenant.initialise()
        user = tenant.users.get("auth0|old")
        assert user.is_admin
        assert not user.email_verified
        assert not user.blocked
        version = store.one("PRAGMA user_version")
        assert version is not None
        assert version[0] == SCHEMA_VERSION
    finally:
        store.close()
    reopened = Store(str(old_file))
    reopened.close()


def test_a_store_from_a_newer_version_is_refused(tmp_path: Path) -> None:
    """A schema newer than this code is a clear error, not silent damage."""
    path = tmp_path / "future.sqlite3"
    conn = sqlite3.connect(path)
    conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    conn.close()
    with pytest.raises(RuntimeError, match="newer version"):
        Store(str(path))
