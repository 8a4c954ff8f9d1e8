"""Dashboard: roles and their permissions, and the roles and permissions of a user (RBAC).

The same RBAC service as the Management API and the CLI; the pages only translate forms.
A permission is chosen as ``audience scope`` from the scopes the tenant's APIs define.
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from ...rules import ValidationError
from ...web import services
from ..pages_common import Viewer, done, page, show, url_id
from .common import NOTICES

ROLE_NOTICES = NOTICES | {
    "granted": "Permission added.",
    "taken": "Permission removed.",
    "assigned": "Role assigned.",
    "unassigned": "Role removed.",
}


def _permission_choices(request: Request) -> list[dict[str, str]]:
    """Every scope of every API but the Management API, as a form value and a label."""
    return [
        {"value": f"{api.identifier} {scope.value}", "api": api.name, "scope": scope.value}
        for api in services(request).domain.apis.all()
        if not api.is_system
        for scope in api.scopes
    ]


def _permission_item(value: str) -> dict[str, str]:
    audience, _, name = value.rpartition(" ")
    return {"resource_server_identifier": audience, "permission_name": name}


@page(admin=True)
async def roles(request: Request, viewer: Viewer) -> Response:
    """``GET /dashboard/roles``: every role with how many users have it."""
    rbac = services(request).domain.rbac
    rows = [{"role": r, "members": len(rbac.members(r.id))} for r in rbac.all()]
    return show(
        request,
        viewer,
        "dashboard/roles.html",
        {"section": "roles", "rows": rows},
        notices=ROLE_NOTICES,
    )


@page(admin=True)
async def create_role(request: Request, viewer: Viewer) -> Response:
    """``POST /dashboard/roles``: a new role (name and description)."""
    role = services(request).domain.rbac.create(viewer.value("name"), viewer.value("description"))
    return done(f"/dashboard/roles/{role.id}", "created")


def _role_page(request: Request, viewer: Viewer, error: str | None = None) -> Response:
    domain = services(request).domain
    role = domain.rbac.get(request.path_params["role_id"])
    members = [u for i in domain.rbac.members(role.id) if (u := domain.users.find(i))]
    context: dict[str, Any] = {
        "section": "roles",
        "role": role,
        "permissions": domain.rbac.of_role(role.id),
        "choices": _permission_choices(request),
        "members": [{"user": u, "path": f"/dashboard/users/{url_id(u.user_id)}"} for u in members],
        "error": error,
    }
    status = 400 if error else 200
    return show(
        request, viewer, "dashboard/role.html", context, status_code=status, notices=ROLE_NOTICES
    )


@page(admin=True)
async def role(request: Request, viewer: Viewer) -> Response:
    """``GET /dashboard/roles/{role_id}``: the role's permissions and users."""
    return _role_page(request, viewer)


@page(admin=True)
async def grant_role(request: Request, viewer: Viewer) -> Response:
    """``POST /dashboard/roles/{role_id}/permissions``: add a permission to the role."""
    rbac = services(request).domain.rbac
    role_id = rbac.get(request.path_params["role_id"]).id
    try:
        rbac.grant_role(role_id, [_permission_item(viewer.value("permission"))])
    except ValidationError as exc:
        return _role_page(request, viewer, exc.message)
    return done(f"/dashboard/roles/{role_id}", "granted")


@page(admin=True)
async def revoke_role(request: Request, viewer: Viewer) -> Response:
    """``POST /dashboard/roles/{role_id}/permissions/remove``: take a permission away."""
    rbac = services(request).domain.rbac
    role_id = rbac.get(request.path_params["role_id"]).id
    rbac.revoke_role(role_id, [_permission_item(viewer.value("permission"))])
    return done(f"/dashboard/roles/{role_id}", "taken")


@page(admin=True)
async def delete_role(request: Request, viewer: Viewer) -> Response:
    """``POST /dashboard/roles/{role_id}/delete``: remove the role and its assignments."""
    services(request).domain.rbac.delete(request.path_params["role_id"])
    return done("/dashboard/roles", "deleted")


def user_access(request: Request, user_id: str) -> dict[str, Any]:
    """What the user page shows of RBAC: the user's roles, the others, every permission."""
    domain = services(request).domain
    held = domain.rbac.roles_of(user_id)
    names = {r.id for r in held}
    return {
        "roles": held,
        "other_roles": [r for r in domain.rbac.all() if r.id not in names],
        "permissions": [
            {
                "permission": p,
                "api": domain.apis.get(p.audience).name,
                "sources": (["direct"] if p.direct else []) + sorted(n for _, n in p.roles),
            }
            for p in domain.rbac.of_user(user_id)
        ],
    }


@page(admin=True)
async def assign_role(request: Request, viewer: Viewer) -> Response:
    """``POST /dashboard/users/{user_id}/roles``: give the user a role."""
    domain = services(request).domain
    person = domain.users.get(request.path_params["user_id"])
    domain.rbac.assign(person.user_id, [viewer.value("role")])
    return done(f"/dashboard/users/{url_id(person.user_id)}", "assigned")


@page(admin=True)
async def unassign_role(request: Request, viewer: Viewer) -> Response:
    """``POST /dashboard/users/{user_id}/roles/remove``: take a role from the user."""
    domain = services(request).domain
    person = domain.users.get(request.path_params["user_id"])
    domain.rbac.unassign(person.user_id, [viewer.value("role")])
    return done(f"/dashboard/users/{url_id(person.user_id)}", "unassigned")
