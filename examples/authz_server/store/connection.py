"""The SQLite connection: one shared connection and short serialised transactions.

Every statement is parameterised. The connection is shared by the event loop and worker
threads, so it is guarded by a lock; each write runs inside ``BEGIN IMMEDIATE`` so that
check-then-update steps (single-use codes, refresh-token rotation) are atomic.

Only the store package runs SQL: the repositories built on :class:`Connection` are the
rest of the server's way to the data.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from .schema import migrate


class Duplicate(Exception):
    """An insert that would repeat a unique key (the services say what that means)."""


class Connection:
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
                # WAL with synchronous=NORMAL: a commit does not wait for the disk (a power
                # cut can lose the last few transactions, never corrupt the file), so
                # single-use codes and refresh rotation do not cost an fsync per request.
                self._conn.execute("PRAGMA journal_mode = WAL")
                self._conn.execute("PRAGMA synchronous = NORMAL")
            migrate(self._conn, path)

    @classmethod
    def copy_of(cls, other: Connection) -> Connection:
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

    def close(self) -> None:
        """Close the connection."""
        with self._lock:
            self._conn.close()
