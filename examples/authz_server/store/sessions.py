"""Browser sessions and the authorization requests parked for the login and consent pages."""

from __future__ import annotations

import json
import sqlite3
from dataclasses import replace

from ..models import Interaction, Session, SignIn
from .connection import Connection


def _session(row: sqlite3.Row) -> Session:
    session = Session(
        row["sid_hash"], row["user_id"], row["csrf_secret"], row["auth_time"], row["expires_at"]
    )
    if row["auth_time"] is None:
        return session
    sign_in = SignIn.stored(row["auth_time"], row["acr"], row["amr"])
    return replace(session, acr=sign_in.acr, amr=sign_in.amr)


class SessionRepository:
    """The ``sessions`` and ``interactions`` tables."""

    def __init__(self, db: Connection) -> None:
        self._db = db

    def find(self, sid_hash: str, now: int) -> Session | None:
        """The live session stored under this digest."""
        row = self._db.one(
            "SELECT * FROM sessions WHERE sid_hash = ? AND expires_at > ?", (sid_hash, now)
        )
        return None if row is None else _session(row)

    def start(self, session: Session, now: int, *, replacing: str | None = None) -> None:
        """Store a signed-in session (expired rows are purged; *replacing*'s interactions
        move over to it and its row goes), all in one transaction."""
        with self._db.transaction():
            self._db.execute("DELETE FROM sessions WHERE expires_at <= ?", (now,))
            self._db.execute(
                "INSERT INTO sessions (sid_hash, user_id, csrf_secret, auth_time, created_at, "
                "expires_at, acr, amr) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    session.sid_hash,
                    session.user_id,
                    session.csrf_secret,
                    session.auth_time,
                    now,
                    session.expires_at,
                    session.acr,
                    " ".join(session.amr),
                ),
            )
            if replacing is not None:
                self._db.execute(
                    "UPDATE interactions SET sid_hash = ? WHERE sid_hash = ?",
                    (session.sid_hash, replacing),
                )
                self._db.execute("DELETE FROM sessions WHERE sid_hash = ?", (replacing,))

    def step_up(self, sid_hash: str, sign_in: SignIn) -> None:
        """Record a new sign-in (a second factor) on a session."""
        self._db.execute(
            "UPDATE sessions SET auth_time = ?, acr = ?, amr = ? WHERE sid_hash = ?",
            (sign_in.auth_time, sign_in.acr, " ".join(sign_in.amr), sid_hash),
        )

    def set_code(self, sid_hash: str, code_hash: str, expires_at: int) -> None:
        """Remember the one-time code sent for a session's second factor (replacing any)."""
        self._db.execute(
            "INSERT OR REPLACE INTO one_time_codes (sid_hash, code_hash, attempts, expires_at) "
            "VALUES (?, ?, 0, ?)",
            (sid_hash, code_hash, expires_at),
        )

    def code(self, sid_hash: str, now: int) -> tuple[str, int] | None:
        """The live one-time code's digest and the wrong attempts so far, or None."""
        row = self._db.one(
            "SELECT code_hash, attempts FROM one_time_codes WHERE sid_hash = ? AND expires_at > ?",
            (sid_hash, now),
        )
        return None if row is None else (row["code_hash"], row["attempts"])

    def code_failed(self, sid_hash: str) -> None:
        """Count one wrong attempt at the session's one-time code."""
        self._db.execute(
            "UPDATE one_time_codes SET attempts = attempts + 1 WHERE sid_hash = ?", (sid_hash,)
        )

    def drop_code(self, sid_hash: str) -> None:
        """Forget the session's one-time code (used, or void)."""
        self._db.execute("DELETE FROM one_time_codes WHERE sid_hash = ?", (sid_hash,))

    def end(self, sid_hash: str) -> None:
        """Remove one session."""
        self._db.execute("DELETE FROM sessions WHERE sid_hash = ?", (sid_hash,))

    def end_all_of(self, user_id: str) -> None:
        """Remove every session of a user (signed out everywhere)."""
        self._db.execute("DELETE FROM sessions WHERE user_id = ?", (user_id,))

    def park(self, interaction: Interaction, now: int, cap: int) -> None:
        """Store an interaction; expired ones are purged and, past *cap*, the oldest go."""
        with self._db.transaction():
            self._db.execute("DELETE FROM interactions WHERE expires_at <= ?", (now,))
            self._db.execute(
                "DELETE FROM interactions WHERE id IN (SELECT id FROM interactions "
                "ORDER BY created_at DESC, rowid DESC LIMIT -1 OFFSET ?)",
                (cap - 1,),
            )
            self._db.execute(
                "INSERT INTO interactions (id, sid_hash, params, created_at, expires_at) "
                "VALUES (?, ?, ?, ?, ?)",
                (
                    interaction.id,
                    interaction.sid_hash,
                    json.dumps(interaction.params, separators=(",", ":")),
                    interaction.created_at,
                    interaction.expires_at,
                ),
            )

    def interaction(self, interaction_id: str, sid_hash: str, now: int) -> Interaction | None:
        """The live interaction with this id, only for the session that started it."""
        row = self._db.one(
            "SELECT * FROM interactions WHERE id = ? AND sid_hash = ? AND expires_at > ?",
            (interaction_id, sid_hash, now),
        )
        if row is None:
            return None
        return Interaction(
            row["id"],
            row["sid_hash"],
            json.loads(row["params"]),
            row["created_at"],
            row["expires_at"],
        )

    def drop(self, interaction_id: str) -> None:
        """Forget an answered interaction."""
        self._db.execute("DELETE FROM interactions WHERE id = ?", (interaction_id,))
