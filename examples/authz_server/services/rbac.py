"""Role-based access control shaped like Auth0's: roles, permissions, and who holds them.

A *permission* is one scope of one API (``resource_server_identifier`` +
``permission_name``). Permissions are assigned to roles, and to users directly; users are
assigned roles. For an API with RBAC on (``enforce_policies``), a user's access token
carries only the requested (and consented) scopes the user is permitted, and, with the
``_authz`` dialect ("Add permissions in the access token"), ``permissions`` lists all of the
user's permissions for that API: Auth0's documented semantics.

A permission is always a scope of a registered, non-system API: no role can carry a
Management API scope, so assigning roles (``update:users``) never grants its holder a
scope sideways.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

from .. import rules
from ..models import OIDC_SCOPES, Permission, ResourceServer, Role
from ..rules import Conflict, NotFound, ValidationError
from ..security import new_secret
from ..settings import Settings
from ..store import Store
from ..store.connection import Duplicate
from .apis import ApiService
from .users import UserService

#: Longest role description, in characters.
MAX_DESCRIPTION = 500

Pair = tuple[str, str]


def _description(value: object) -> str:
    if not isinstance(value, str) or len(value) > MAX_DESCRIPTION:
        raise ValidationError(
            f"description must be a string of at most {MAX_DESCRIPTION} characters"
        )
    return value


class RbacService:
    """Roles and permissions of one tenant."""

    def __init__(
        self, store: Store, settings: Settings, apis: ApiService, users: UserService
    ) -> None:
        self._store = store
        self._settings = settings
        self._apis = apis
        self._users = users

    def _now(self) -> int:
        return int(self._settings.clock())

    # ------------------------------------------------------------------- roles

    def all(self) -> list[Role]:
        """Every role, by name."""
        return self._store.roles.all()

    def find(self, id_or_name: str) -> Role | None:
        """The role with this id (or name), or None."""
        return self._store.roles.find(id_or_name)

    def get(self, id_or_name: str) -> Role:
        """The role; raises ``NotFound``."""
        role = self.find(id_or_name)
        if role is None:
            raise NotFound("The role does not exist")
        return role

    def create(self, name: object, description: object = "", role_id: str | None = None) -> Role:
        """A new role; names are unique (``Conflict`` otherwise)."""
        role = Role(
            role_id or f"rol_{new_secret(12)}", rules.display_name(name), _description(description)
        )
        try:
            self._store.roles.insert(role, self._now())
        except Duplicate:
            raise Conflict("A role with the same name already exists") from None
        return role

    def update(self, id_or_name: str, changes: Mapping[str, object]) -> Role:
        """Rename or re-describe a role."""
        role = self.get(id_or_name)
        unknown = sorted(set(changes) - {"name", "description"})
        if unknown:
            raise ValidationError(f"Payload validation error: unknown property {unknown[0]}")
        changed = Role(
            role.id,
            rules.display_name(changes["name"]) if "name" in changes else role.name,
            _description(changes["description"]) if "description" in changes else role.description,
        )
        try:
            self._store.roles.update(changed)
        except Duplicate:
            raise Conflict("A role with the same name already exists") from None
        return changed

    def delete(self, id_or_name: str) -> None:
        """Delete a role (its assignments go with it)."""
        self._store.roles.delete(self.get(id_or_name).id)

    # ------------------------------------------------------------- permissions

    def check_permissions(self, items: object) -> list[Pair]:
        """Auth0's ``[{"resource_server_identifier", "permission_name"}]``, each a scope
        of a registered API; returned as ``(audience, permission)`` pairs."""
        if not isinstance(items, list) or not items:
            raise ValidationError("Payload validation error: permissions must be a non-empty array")
        pairs: list[Pair] = []
        for item in items:
            if not isinstance(item, dict) or set(item) != {
                "resource_server_identifier",
                "permission_name",
            }:
                raise ValidationError(
                    "Payload validation error: each permission needs exactly "
                    "resource_server_identifier and permission_name"
                )
            audience, name = item["resource_server_identifier"], item["permission_name"]
            if not isinstance(audience, str) or not isinstance(name, str):
                raise ValidationError("Payload validation error: permission fields are strings")
            api = self._apis.find(audience)
            if api is None or api.is_system:
                raise NotFound("The resource server does not exist")
            if name not in api.scope_values:
                raise ValidationError("The permission is not a scope of the resource server")
            pairs.append((api.identifier, name))
        return list(dict.fromkeys(pairs))

    def of_role(self, id_or_name: str) -> list[Permission]:
        """The permissions a role grants (only scopes their API still defines)."""
        return self._existing(self._store.roles.permissions_of_role(self.get(id_or_name).id))

    def grant_role(self, id_or_name: str, items: object) -> None:
        """Assign permissions to a role (assigning one it has is no error)."""
        role = self.get(id_or_name)
        self._store.roles.grant_role(role.id, self.check_permissions(items))

    def revoke_role(self, id_or_name: str, items: object) -> None:
        """Take permissions from a role."""
        role = self.get(id_or_name)
        self._store.roles.revoke_role(role.id, self.check_permissions(items))

    # ------------------------------------------------------------------- users

    def _role_ids(self, items: object) -> list[str]:
        if not isinstance(items, list) or not items or not all(isinstance(i, str) for i in items):
            raise ValidationError(
                "Payload validation error: roles must be a non-empty array of ids"
            )
        return list(dict.fromkeys(self.get(i).id for i in items))

    def roles_of(self, user_id: str) -> list[Role]:
        """The roles assigned to a user, by name."""
        self._users.get(user_id)
        return self._store.roles.of_user(user_id)

    def members(self, id_or_name: str) -> list[str]:
        """The ids of the users a role is assigned to."""
        return self._store.roles.members(self.get(id_or_name).id)

    def assign(self, user_id: str, items: object) -> None:
        """Assign roles (by id or name) to a user, as Auth0's ``{"roles": [ids]}``."""
        self._users.get(user_id)
        self._store.roles.assign(user_id, self._role_ids(items))

    def unassign(self, user_id: str, items: object) -> None:
        """Take roles from a user."""
        self._users.get(user_id)
        self._store.roles.unassign(user_id, self._role_ids(items))

    def grant_user(self, user_id: str, items: object) -> None:
        """Assign permissions to a user directly."""
        self._users.get(user_id)
        self._store.roles.grant_user(user_id, self.check_permissions(items))

    def revoke_user(self, user_id: str, items: object) -> None:
        """Take directly assigned permissions from a user (those of roles stay)."""
        self._users.get(user_id)
        self._store.roles.revoke_user(user_id, self.check_permissions(items))

    def of_user(self, user_id: str) -> list[Permission]:
        """Every permission of a user, direct or through roles, with its sources."""
        self._users.get(user_id)
        direct = set(self._store.roles.direct_of_user(user_id))
        roles: dict[Pair, list[tuple[str, str]]] = {}
        for audience, name, role_id, role_name in self._store.roles.via_roles_of_user(user_id):
            roles.setdefault((audience, name), []).append((role_id, role_name))
        found = self._existing(sorted(direct | roles.keys()))
        return [
            Permission(
                p.audience,
                p.name,
                p.description,
                tuple(sorted(roles.get((p.audience, p.name), ()))),
                (p.audience, p.name) in direct,
            )
            for p in found
        ]

    def role_names(self, user_id: str) -> list[str]:
        """The names of the user's roles (what the roles claim lists), sorted."""
        return [r.name for r in self._store.roles.of_user(user_id)]

    def token_scopes(
        self, user_id: str, api: ResourceServer | None, scopes: Sequence[str]
    ) -> tuple[list[str], list[str] | None]:
        """A user token's ``scope`` and ``permissions`` for *api*, as Auth0 computes them.

        With RBAC on, ``scope`` keeps the OIDC scopes and only the requested (and
        consented) API scopes the user is permitted; ``permissions`` (with the ``_authz``
        dialect) lists all of the user's permissions for the API. Without RBAC, the scopes
        are unchanged and ``permissions`` echoes the granted API scopes.
        """
        if api is None:
            return list(scopes), None
        adds = api.token_dialect.endswith("_authz")
        if not api.enforce_policies:
            granted = list(scopes)
            return granted, [s for s in granted if s in api.scope_values] if adds else None
        permitted = self._store.roles.permitted(user_id, api.identifier) & api.scope_values
        granted = [s for s in scopes if s in OIDC_SCOPES or s in permitted]
        return granted, sorted(permitted) if adds else None

    # ------------------------------------------------------- export and import

    def export(self) -> list[dict[str, object]]:
        """The roles with their permissions and members, in the seed format."""
        exported: list[dict[str, object]] = []
        for role in self.all():
            emails = [
                user.email
                for user_id in self.members(role.id)
                if (user := self._users.find(user_id)) is not None
            ]
            exported.append(
                {
                    "name": role.name,
                    "description": role.description,
                    "permissions": [
                        {"resource_server_identifier": p.audience, "permission_name": p.name}
                        for p in self.of_role(role.id)
                    ],
                    "users": emails,
                }
            )
        return exported

    def load(self, roles: Iterable[Mapping[str, object]]) -> int:
        """Create the roles of a seed document that do not exist yet; return how many."""
        count = 0
        for data in roles:
            if not isinstance(data, Mapping):
                raise ValidationError("a role must be an object")
            if self.find(str(data.get("name"))) is not None:
                continue
            role = self.create(data.get("name"), data.get("description", ""))
            permissions = data.get("permissions") or []
            if permissions:
                self.grant_role(role.id, permissions)
            users = data.get("users") or []
            if not isinstance(users, list):
                raise ValidationError(f"role {role.name!r}: users must be a list of emails")
            for email in users:
                user = self._users.find_by_email(str(email))
                if user is None:
                    raise ValidationError(f"role {role.name!r}: no user {email!r}")
                self.assign(user.user_id, [role.id])
            count += 1
        return count

    def _existing(self, pairs: Iterable[Pair]) -> list[Permission]:
        """Permissions whose API still defines the scope, with its description."""
        found: list[Permission] = []
        apis: dict[str, ResourceServer | None] = {}
        for audience, name in pairs:
            if audience not in apis:
                apis[audience] = self._apis.find(audience)
            api = apis[audience]
            if api is not None and name in api.scope_values:
                found.append(Permission(audience, name, api.describe(name)))
        return found
