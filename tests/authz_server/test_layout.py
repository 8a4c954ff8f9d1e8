"""The server's layout keeps its promises: SQL only in the store, no oversized module."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "examples" / "authz_server"
SQL = re.compile(
    r"\b(SELECT\b.*\bFROM|INSERT\s+(OR\s+\w+\s+)?INTO|UPDATE\s+\w+\s+SET|DELETE\s+FROM|"
    r"CREATE\s+(TABLE|INDEX)|ALTER\s+TABLE|DROP\s+TABLE|PRAGMA)\b"
)
MAX_LINES = 500


def modules() -> list[Path]:
    return sorted(PACKAGE.rglob("*.py"))


@pytest.mark.parametrize(
    "path",
    [pytest.param(p, id=str(p.relative_to(PACKAGE))) for p in modules() if "store" not in p.parts],
)
def test_no_sql_outside_the_store_package(path: Path) -> None:
    """Only ``store/`` writes SQL; every other module goes through its repositories."""
    found = [line.strip() for line in path.read_text("utf-8").splitlines() if SQL.search(line)]
    assert found == []


def test_the_sql_check_finds_sql() -> None:
    """The pattern recognises the statements the store writes (so the check above can fail)."""
    store = "\n".join(p.read_text("utf-8") for p in (PACKAGE / "store").glob("*.py"))
    for keyword in ("SELECT", "INSERT", "UPDATE", "DELETE", "CREATE TABLE", "PRAGMA"):
        assert any(keyword in line and SQL.search(line) for line in store.splitlines())


@pytest.mark.parametrize(
    "path", [pytest.param(p, id=str(p.relative_to(PACKAGE))) for p in modules()]
)
def test_no_module_is_over_500_lines(path: Path) -> None:
    """Every module of the server stays small enough to read in one sitting."""
    assert len(path.read_text("utf-8").splitlines()) <= MAX_LINES
