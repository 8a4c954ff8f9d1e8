"""Resource servers (APIs) and their scopes."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Mapping

from ..models import ResourceServer, Scope
from .connection import Connection, Duplicate

# The columns a service may change, by model field name.
_COLUMNS = {
    "name": "name",
    "token_lifetime": "token_lifetime",
    "allow_offline_access": "allow_offline_access",
    "skip_consent_for_verifiable_first_party_clients": "skip_consent",
    "token_dialect": "token_dialect",
    "scopes": "scopes",
    "access_token_format": "access_token_format",
    "introspection_clients": "introspection_clients",
    "dpop_required": "dpop_required",
    "enforce_policies": "enforce_policies",
}


def _api(row: sqlite3.Row) -> ResourceServer:
    return ResourceServer(
        id=row["id"],
        name=row["name"],
        identifier=row["identifier"],
        signing_alg=row["signing_alg"],
        signing_secret=row["signing_secret"],
        token_lifetime=row["token_lifetime"],
        allow_offline_access=bool(row["allow_offline_access"]),
        skip_consent_for_verifiable_first_party_clients=bool(row["skip_consent"]),
        token_dialect=row["token_dialect"],
        scopes=tuple(Scope(s["value"], s["description"]) for s in json.loads(row["scopes"])),
        is_system=bool(row["is_system"]),
        created_at=row["created_at"],
        access_token_format=row["access_token_format"],
        introspection_clients=tuple(json.loads(row["introspection_clients"])),
        dpop_required=bool(row["dpop_required"]),
        enforce_policies=bool(row["enforce_policies"]),
    )


def _scopes(scopes: tuple[Scope, ...]) -> str:
    return json.dumps([{"value": s.value, "description": s.description} for s in scopes])


def _column_value(field: str, value: object) -> object:
    if field == "scopes":
        assert isinstance(value, tuple)
        return _scopes(value)
    if field == "introspection_clients":
        assert isinstance(value, tuple)
        return json.dumps(list(value))
    return value


class ApiRepository:
    """The ``resource_servers`` table."""

    def __init__(self, db: Connection) -> None:
        self._db = db

    def all(self) -> list[ResourceServer]:
        """Every API, oldest first."""
        rows = self._db.all("SELECT * FROM resource_servers ORDER BY created_at, rowid")
        return [_api(r) for r in rows]

    def find(self, id_or_identifier: str) -> ResourceServer | None:
        """The API with this id or identifier."""
        row = self._db.one(
            "SELECT * FROM resource_servers WHERE id = ? OR identifier = ?",
            (id_or_identifier, id_or_identifier),
        )
        return None if row is None else _api(row)

    def system(self) -> ResourceServer | None:
        """The Management API."""
        row = self._db.one("SELECT * FROM resource_servers WHERE is_system = 1")
        return None if row is None else _api(row)

    def insert(self, api: ResourceServer) -> None:
        """Add an API; ``Duplicate`` when the identifier (or id) is taken."""
        try:
            self._db.execute(
                "INSERT INTO resource_servers (id, name, identifier, signing_alg, signing_secret, "
                "token_lifetime, allow_offline_access, skip_consent, token_dialect, scopes, "
                "is_system, created_at, access_token_format, introspection_clients, "
                "dpop_required, enforce_policies) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    api.id,
                    api.name,
                    api.identifier,
                    api.signing_alg,
                    api.signing_secret,
                    api.token_lifetime,
                    api.allow_offline_access,
                    api.skip_consent_for_verifiable_first_party_clients,
                    api.token_dialect,
                    _scopes(api.scopes),
                    api.is_system,
                    api.created_at,
                    api.access_token_format,
                    json.dumps(list(api.introspection_clients)),
                    api.dpop_required,
                    api.enforce_policies,
                ),
            )
        except sqlite3.IntegrityError:
            raise Duplicate("resource server") from None

    def update(self, api_id: str, changes: Mapping[str, object]) -> None:
        """Change the named fields (``scopes`` as a tuple of ``Scope``)."""
        if not changes:
            return
        values = [_column_value(k, v) for k, v in changes.items()]
        assignments = ", ".join(f"{_COLUMNS[k]} = ?" for k in changes)
        self._db.execute(
            f"UPDATE resource_servers SET {assignments} WHERE id = ?",  # noqa: S608 - fixed names
            (*values, api_id),
        )

    def repoint_system(self, api_id: str, identifier: str, scopes: tuple[Scope, ...]) -> None:
        """Give the Management API a new identifier and scope list (issuer changes)."""
        self._db.execute(
            "UPDATE resource_servers SET identifier = ?, scopes = ? WHERE id = ?",
            (identifier, _scopes(scopes), api_id),
        )

    def delete(self, api_id: str) -> None:
        """Remove an API (its client grants go with it)."""
        self._db.execute("DELETE FROM resource_servers WHERE id = ?", (api_id,))
