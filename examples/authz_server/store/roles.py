"""Roles, the permissions assigned to roles and to users, and who holds which role."""

from __future__ import annotations

import sqlite3

from ..models import Role
from .connection import Connection, Duplicate


def _role(row: sqlite3.Row) -> Role:
    return Role(row["id"], row["name"], row["description"])


Pair = tuple[str, str]


class RoleRepository:
    """The ``roles``, ``role_permissions``, ``user_roles`` and ``user_permissions`` tables."""

    def __init__(self, db: Connection) -> None:
        self._db = db

    # ------------------------------------------------------------------- roles

    def all(self) -> list[Role]:
        """Every role, by name."""
        return [_role(r) for r in self._db.all("SELECT * FROM roles ORDER BY name")]

    def find(self, id_or_name: str) -> Role | None:
        """The role with this id, or else this name."""
        row = self._db.one(
            "SELECT * FROM roles WHERE id = ? OR name = ? ORDER BY id = ? DESC",
            (id_or_name, id_or_name, id_or_name),
        )
        return None if row is None else _role(row)

    def insert(self, role: Role, now: int) -> None:
        """Add a role; ``Duplicate`` when the name (or id) is taken."""
        try:
            self._db.execute(
                "INSERT INTO roles (id, name, description, created_at) VALUES (?, ?, ?, ?)",
                (role.id, role.name, role.description, now),
            )
        except sqlite3.IntegrityError:
            raise Duplicate("role") from None

    def update(self, role: Role) -> None:
        """Store a role's name and description; ``Duplicate`` when the name is taken."""
        try:
            self._db.execute(
                "UPDATE roles SET name = ?, description = ? WHERE id = ?",
                (role.name, role.description, role.id),
            )
        except sqlite3.IntegrityError:
            raise Duplicate("role") from None

    def delete(self, role_id: str) -> None:
        """Remove a role (its assignments go with it)."""
        self._db.execute("DELETE FROM roles WHERE id = ?", (role_id,))

    # ------------------------------------------------------------- permissions

    def permissions_of_role(self, role_id: str) -> list[Pair]:
        """``(audience, permission)`` pairs assigned to a role."""
        rows = self._db.all(
            "SELECT audience, permission FROM role_permissions WHERE role_id = ? "
            "ORDER BY audience, permission",
            (role_id,),
        )
        return [(r["audience"], r["permission"]) for r in rows]

    def grant_role(self, role_id: str, pairs: list[Pair]) -> None:
        """Assign permissions to a role (assigned ones stay)."""
        with self._db.transaction():
            for audience, name in pairs:
                self._db.execute(
                    "INSERT OR IGNORE INTO role_permissions (role_id, audience, permission) "
                    "VALUES (?, ?, ?)",
                    (role_id, audience, name),
                )

    def revoke_role(self, role_id: str, pairs: list[Pair]) -> None:
        """Take permissions from a role."""
        with self._db.transaction():
            for audience, name in pairs:
                self._db.execute(
                    "DELETE FROM role_permissions WHERE role_id = ? AND audience = ? "
                    "AND permission = ?",
                    (role_id, audience, name),
                )

    def grant_user(self, user_id: str, pairs: list[Pair]) -> None:
        """Assign permissions to a user directly."""
        with self._db.transaction():
            for audience, name in pairs:
                self._db.execute(
                    "INSERT OR IGNORE INTO user_permissions (user_id, audience, permission) "
                    "VALUES (?, ?, ?)",
                    (user_id, audience, name),
                )

    def revoke_user(self, user_id: str, pairs: list[Pair]) -> None:
        """Take directly assigned permissions from a user."""
        with self._db.transaction():
            for audience, name in pairs:
                self._db.execute(
                    "DELETE FROM user_permissions WHERE user_id = ? AND audience = ? "
                    "AND permission = ?",
                    (user_id, audience, name),
                )

    def direct_of_user(self, user_id: str) -> list[Pair]:
        """Permissions assigned to the user directly."""
        rows = self._db.all(
            "SELECT audience, permission FROM user_permissions WHERE user_id = ?", (user_id,)
        )
        return [(r["audience"], r["permission"]) for r in rows]

    def via_roles_of_user(self, user_id: str) -> list[tuple[str, str, str, str]]:
        """``(audience, permission, role id, role name)`` for the user's roles."""
        rows = self._db.all(
            "SELECT role_permissions.audience, role_permissions.permission, roles.id, "
            "roles.name FROM user_roles JOIN roles ON roles.id = user_roles.role_id "
            "JOIN role_permissions ON role_permissions.role_id = roles.id "
            "WHERE user_roles.user_id = ?",
            (user_id,),
        )
        return [(r[0], r[1], r[2], r[3]) for r in rows]

    def permitted(self, user_id: str, audience: str) -> frozenset[str]:
        """The names of a user's permissions for one API, direct or through roles."""
        rows = self._db.all(
            "SELECT permission FROM user_permissions WHERE user_id = ? AND audience = ? "
            "UNION SELECT role_permissions.permission FROM user_roles "
            "JOIN role_permissions ON role_permissions.role_id = user_roles.role_id "
            "WHERE user_roles.user_id = ? AND role_permissions.audience = ?",
            (user_id, audience, user_id, audience),
        )
        return frozenset(r[0] for r in rows)

    # ------------------------------------------------------------------- users

    def of_user(self, user_id: str) -> list[Role]:
        """The roles assigned to a user, by name."""
        rows = self._db.all(
            "SELECT roles.* FROM roles JOIN user_roles ON user_roles.role_id = roles.id "
            "WHERE user_roles.user_id = ? ORDER BY roles.name",
            (user_id,),
        )
        return [_role(r) for r in rows]

    def members(self, role_id: str) -> list[str]:
        """The ids of the users a role is assigned to."""
        rows = self._db.all(
            "SELECT user_id FROM user_roles WHERE role_id = ? ORDER BY user_id", (role_id,)
        )
        return [r["user_id"] for r in rows]

    def assign(self, user_id: str, role_ids: list[str]) -> None:
        """Assign roles to a user (assigned ones stay)."""
        with self._db.transaction():
            for role_id in role_ids:
                self._db.execute(
                    "INSERT OR IGNORE INTO user_roles (user_id, role_id) VALUES (?, ?)",
                    (user_id, role_id),
                )

    def unassign(self, user_id: str, role_ids: list[str]) -> None:
        """Take roles from a user."""
        with self._db.transaction():
            for role_id in role_ids:
                self._db.execute(
                    "DELETE FROM user_roles WHERE user_id = ? AND role_id = ?", (user_id, role_id)
                )
