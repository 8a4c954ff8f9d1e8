"""Clients, their portal owners, and machine-to-machine client grants."""

from __future__ import annotations

import json
import sqlite3

from ..models import Client, ClientGrant
from .connection import Connection, Duplicate


def _client(row: sqlite3.Row) -> Client:
    return Client(
        client_id=row["client_id"],
        name=row["name"],
        description=row["description"],
        app_type=row["app_type"],
        is_first_party=bool(row["is_first_party"]),
        token_endpoint_auth_method=row["token_endpoint_auth_method"],
        callbacks=tuple(json.loads(row["callbacks"])),
        grant_types=tuple(json.loads(row["grant_types"])),
        secret_hash=row["secret_hash"],
        secret_expires_at=row["secret_expires_at"],
        is_dynamic=bool(row["is_dynamic"]),
        logo_uri=row["logo_uri"],
        client_uri=row["client_uri"],
        policy_uri=row["policy_uri"],
        tos_uri=row["tos_uri"],
        created_at=row["created_at"],
    )


class ClientRepository:
    """The ``clients`` table and ``portal_app_owners`` (who registered a portal client)."""

    def __init__(self, db: Connection) -> None:
        self._db = db

    def all(self) -> list[Client]:
        """Every client, oldest first."""
        return [
            _client(r) for r in self._db.all("SELECT * FROM clients ORDER BY created_at, rowid")
        ]

    def find(self, client_id: str) -> Client | None:
        """The client with this id."""
        row = self._db.one("SELECT * FROM clients WHERE client_id = ?", (client_id,))
        return None if row is None else _client(row)

    def insert(self, client: Client) -> None:
        """Add a client; ``Duplicate`` when the id is taken."""
        try:
            self._db.execute(
                "INSERT INTO clients (client_id, name, description, app_type, is_first_party, "
                "token_endpoint_auth_method, callbacks, grant_types, secret_hash, "
                "secret_expires_at, is_dynamic, logo_uri, client_uri, policy_uri, tos_uri, "
                "created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    client.client_id,
                    client.name,
                    client.description,
                    client.app_type,
                    client.is_first_party,
                    client.token_endpoint_auth_method,
                    json.dumps(list(client.callbacks)),
                    json.dumps(list(client.grant_types)),
                    client.secret_hash,
                    client.secret_expires_at,
                    client.is_dynamic,
                    client.logo_uri,
                    client.client_uri,
                    client.policy_uri,
                    client.tos_uri,
                    client.created_at,
                ),
            )
        except sqlite3.IntegrityError:
            raise Duplicate("client") from None

    def update(self, client: Client) -> None:
        """Store the changeable settings of *client* (not its id, secret or origin)."""
        self._db.execute(
            "UPDATE clients SET name = ?, description = ?, app_type = ?, is_first_party = ?, "
            "callbacks = ?, grant_types = ?, token_endpoint_auth_method = ? WHERE client_id = ?",
            (
                client.name,
                client.description,
                client.app_type,
                client.is_first_party,
                json.dumps(list(client.callbacks)),
                json.dumps(list(client.grant_types)),
                client.token_endpoint_auth_method,
                client.client_id,
            ),
        )

    def set_secret_hash(
        self, client_id: str, secret_hash: str, *, replacing: str | None = None
    ) -> None:
        """Store a new secret hash (only if the current one is *replacing*, when given)."""
        if replacing is None:
            self._db.execute(
                "UPDATE clients SET secret_hash = ?, secret_expires_at = 0 WHERE client_id = ?",
                (secret_hash, client_id),
            )
        else:
            self._db.execute(
                "UPDATE clients SET secret_hash = ? WHERE client_id = ? AND secret_hash = ?",
                (secret_hash, client_id, replacing),
            )

    def delete(self, client_id: str) -> None:
        """Remove a client (its grants, consents and portal owner go with it)."""
        self._db.execute("DELETE FROM clients WHERE client_id = ?", (client_id,))

    def record_owner(self, client_id: str, owner_id: str, now: int) -> None:
        """Remember that *owner_id* registered *client_id* through the portal."""
        self._db.execute(
            "INSERT INTO portal_app_owners (client_id, owner_id, created_at) VALUES (?, ?, ?)",
            (client_id, owner_id, now),
        )

    def owned_by(self, owner_id: str) -> list[str]:
        """The ids of one developer's portal applications, oldest first."""
        rows = self._db.all(
            "SELECT client_id FROM portal_app_owners WHERE owner_id = ? ORDER BY created_at, rowid",
            (owner_id,),
        )
        return [str(r["client_id"]) for r in rows]

    def owner_of(self, client_id: str) -> str | None:
        """The user id of the developer who registered *client_id* on the portal."""
        row = self._db.one(
            "SELECT owner_id FROM portal_app_owners WHERE client_id = ?", (client_id,)
        )
        return None if row is None else str(row["owner_id"])


def _grant(row: sqlite3.Row) -> ClientGrant:
    return ClientGrant(
        row["id"], row["client_id"], row["audience"], tuple(json.loads(row["scope"]))
    )


class ClientGrantRepository:
    """The ``client_grants`` table."""

    def __init__(self, db: Connection) -> None:
        self._db = db

    def select(
        self, *, client_id: str | None = None, audience: str | None = None
    ) -> list[ClientGrant]:
        """Client grants, optionally filtered by client and audience, oldest first."""
        rows = self._db.all(
            "SELECT * FROM client_grants WHERE (? IS NULL OR client_id = ?) "
            "AND (? IS NULL OR audience = ?) ORDER BY rowid",
            (client_id, client_id, audience, audience),
        )
        return [_grant(r) for r in rows]

    def find(self, grant_id: str) -> ClientGrant | None:
        """The client grant with this id."""
        row = self._db.one("SELECT * FROM client_grants WHERE id = ?", (grant_id,))
        return None if row is None else _grant(row)

    def insert(self, grant: ClientGrant) -> None:
        """Add a grant; ``Duplicate`` when the client already has one for the audience."""
        try:
            self._db.execute(
                "INSERT INTO client_grants (id, client_id, audience, scope) VALUES (?, ?, ?, ?)",
                (grant.id, grant.client_id, grant.audience, json.dumps(list(grant.scope))),
            )
        except sqlite3.IntegrityError:
            raise Duplicate("client grant") from None

    def set_scope(self, grant_id: str, scope: tuple[str, ...]) -> None:
        """Replace a grant's scopes."""
        self._db.execute(
            "UPDATE client_grants SET scope = ? WHERE id = ?", (json.dumps(list(scope)), grant_id)
        )

    def delete(self, grant_id: str) -> None:
        """Remove a grant."""
        self._db.execute("DELETE FROM client_grants WHERE id = ?", (grant_id,))
