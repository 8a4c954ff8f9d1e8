"""The Management API's RBAC endpoints, in Auth0's shapes.

Roles (``/roles``), the permissions of a role (``/roles/{id}/permissions`` taking
``{"permissions": [{"resource_server_identifier", "permission_name"}]}``), the roles of a
user (``/users/{id}/roles`` taking ``{"roles": [ids]}``) and a user's permissions, direct
and through roles (``/users/{id}/permissions``). Scopes as Auth0 asks for them:
``read:roles``/``create:roles``/``update:roles``/``delete:roles`` for roles, ``read:users``
and ``update:users`` for what a user holds. The rules are the RBAC service's
(``services/rbac.py``); the shapes are ``wire.py``'s.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from .. import wire
from ..services.rbac import RbacService
from ..web import services

Endpoint = Callable[[Request], Awaitable[Response]]


def _json(data: Any, status: int = 200) -> JSONResponse:
    return JSONResponse(data, status_code=status, headers={"Cache-Control": "no-store"})


def rbac_routes(
    endpoint: Callable[..., Callable[[Endpoint], Endpoint]],
    read_json: Callable[[Request], Awaitable[dict[str, Any]]],
    require: Callable[..., None],
) -> list[Route]:
    """The routes, built on the Management API's own endpoint guard and body reader."""

    def rbac(request: Request) -> RbacService:
        return services(request).domain.rbac

    def api_name(request: Request, audience: str) -> str:
        return services(request).domain.apis.get(audience).name

    @endpoint("read:roles")
    async def list_roles(request: Request) -> Response:
        """``GET /api/v2/roles`` (``name_filter`` matches a part of the name)."""
        wanted = request.query_params.get("name_filter", "").lower()
        roles = [r for r in rbac(request).all() if wanted in r.name.lower()]
        return _json([wire.role_json(r) for r in roles])

    @endpoint("create:roles")
    async def create_role(request: Request) -> Response:
        """``POST /api/v2/roles``: ``{name, description?}``."""
        data = await read_json(request)
        require(data, "name", allowed={"name", "description"})
        role = rbac(request).create(data["name"], data.get("description", ""))
        return _json(wire.role_json(role))

    @endpoint("read:roles")
    async def get_role(request: Request) -> Response:
        """``GET /api/v2/roles/{id}``."""
        return _json(wire.role_json(rbac(request).get(request.path_params["id"])))

    @endpoint("update:roles")
    async def update_role(request: Request) -> Response:
        """``PATCH /api/v2/roles/{id}``: ``name`` and ``description``."""
        data = await read_json(request)
        return _json(wire.role_json(rbac(request).update(request.path_params["id"], data)))

    @endpoint("delete:roles")
    async def delete_role(request: Request) -> Response:
        """``DELETE /api/v2/roles/{id}``: its assignments go with it."""
        rbac(request).delete(request.path_params["id"])
        return Response(status_code=204)

    @endpoint("read:roles")
    async def role_permissions(request: Request) -> Response:
        """``GET /api/v2/roles/{id}/permissions``."""
        permissions = rbac(request).of_role(request.path_params["id"])
        return _json([wire.permission_json(p, api_name(request, p.audience)) for p in permissions])

    async def _permissions_body(request: Request) -> object:
        data = await read_json(request)
        require(data, "permissions", allowed={"permissions"})
        return data["permissions"]

    @endpoint("update:roles")
    async def add_role_permissions(request: Request) -> Response:
        """``POST /api/v2/roles/{id}/permissions``: ``{"permissions": [...]}``."""
        body = await _permissions_body(request)
        rbac(request).grant_role(request.path_params["id"], body)
        return Response(status_code=201)

    @endpoint("update:roles")
    async def remove_role_permissions(request: Request) -> Response:
        """``DELETE /api/v2/roles/{id}/permissions``: ``{"permissions": [...]}``."""
        body = await _permissions_body(request)
        rbac(request).revoke_role(request.path_params["id"], body)
        return Response(status_code=204)

    @endpoint("read:roles", "read:users")
    async def role_users(request: Request) -> Response:
        """``GET /api/v2/roles/{id}/users``: ``[{user_id, email, name}]``."""
        domain = services(request).domain
        users = []
        for user_id in domain.rbac.members(request.path_params["id"]):
            user = domain.users.find(user_id)
            if user is not None:
                users.append({"user_id": user.user_id, "email": user.email, "name": user.name})
        return _json(users)

    @endpoint("read:users", "read:roles")
    async def user_roles(request: Request) -> Response:
        """``GET /api/v2/users/{id}/roles``."""
        roles = rbac(request).roles_of(request.path_params["id"])
        return _json([wire.role_json(r) for r in roles])

    async def _roles_body(request: Request) -> object:
        data = await read_json(request)
        require(data, "roles", allowed={"roles"})
        return data["roles"]

    @endpoint("update:users")
    async def assign_roles(request: Request) -> Response:
        """``POST /api/v2/users/{id}/roles``: ``{"roles": [role ids]}``."""
        body = await _roles_body(request)
        rbac(request).assign(request.path_params["id"], body)
        return Response(status_code=204)

    @endpoint("update:users")
    async def remove_roles(request: Request) -> Response:
        """``DELETE /api/v2/users/{id}/roles``: ``{"roles": [role ids]}``."""
        body = await _roles_body(request)
        rbac(request).unassign(request.path_params["id"], body)
        return Response(status_code=204)

    @endpoint("read:users")
    async def user_permissions(request: Request) -> Response:
        """``GET /api/v2/users/{id}/permissions``: direct and through roles (``sources``)."""
        permissions = rbac(request).of_user(request.path_params["id"])
        return _json(
            [wire.user_permission_json(p, api_name(request, p.audience)) for p in permissions]
        )

    @endpoint("update:users")
    async def add_user_permissions(request: Request) -> Response:
        """``POST /api/v2/users/{id}/permissions``: ``{"permissions": [...]}``."""
        body = await _permissions_body(request)
        rbac(request).grant_user(request.path_params["id"], body)
        return Response(status_code=201)

    @endpoint("update:users")
    async def remove_user_permissions(request: Request) -> Response:
        """``DELETE /api/v2/users/{id}/permissions``: direct ones only (roles keep theirs)."""
        body = await _permissions_body(request)
        rbac(request).revoke_user(request.path_params["id"], body)
        return Response(status_code=204)

    return [
        Route("/roles", list_roles, methods=["GET"]),
        Route("/roles", create_role, methods=["POST"]),
        Route("/roles/{id}/permissions", role_permissions, methods=["GET"]),
        Route("/roles/{id}/permissions", add_role_permissions, methods=["POST"]),
        Route("/roles/{id}/permissions", remove_role_permissions, methods=["DELETE"]),
        Route("/roles/{id}/users", role_users, methods=["GET"]),
        Route("/roles/{id}", get_role, methods=["GET"]),
        Route("/roles/{id}", update_role, methods=["PATCH"]),
        Route("/roles/{id}", delete_role, methods=["DELETE"]),
        Route("/users/{id}/roles", user_roles, methods=["GET"]),
        Route("/users/{id}/roles", assign_roles, methods=["POST"]),
        Route("/users/{id}/roles", remove_roles, methods=["DELETE"]),
        Route("/users/{id}/permissions", user_permissions, methods=["GET"]),
        Route("/users/{id}/permissions", add_user_permissions, methods=["POST"]),
        Route("/users/{id}/permissions", remove_user_permissions, methods=["DELETE"]),
    ]
