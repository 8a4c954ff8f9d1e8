"""Dashboard: users with the applications they authorized, and the signing keys."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from ...keys import SigningKeyError
from ...rules import NotFound, ValidationError
from ...web import services
from ..pages_common import Viewer, done, page, show, url_id
from .common import NOTICES, when
from .roles import ROLE_NOTICES, user_access


@page(admin=True)
async def users(request: Request, viewer: Viewer) -> Response:
    """``GET /dashboard/users``: every user with how many applications they authorized."""
    domain = services(request).domain
    rows = [
        {
            "user": u,
            "path": f"/dashboard/users/{url_id(u.user_id)}",
            "grants": len(domain.consents.all(user_id=u.user_id)),
        }
        for u in domain.users.all()
    ]
    return show(request, viewer, "dashboard/users.html", {"section": "users", "rows": rows})


def authorized_apps(request: Request, user_id: str) -> list[dict[str, Any]]:
    """A user's remembered consents with the client and API they name."""
    domain = services(request).domain
    return [
        {
            "grant": g,
            "client": domain.clients.find(g.client_id),
            "api": domain.apis.find(g.audience) if g.audience else None,
        }
        for g in domain.consents.all(user_id=user_id)
    ]


@page(admin=True)
async def user(request: Request, viewer: Viewer) -> Response:
    """``GET /dashboard/users/{user_id}``: the user's authorized applications."""
    person = services(request).domain.users.get(request.path_params["user_id"])
    return show(
        request,
        viewer,
        "dashboard/user.html",
        {
            "section": "users",
            "person": person,
            "path": f"/dashboard/users/{url_id(person.user_id)}",
            "grants": authorized_apps(request, person.user_id),
            "access": user_access(request, person.user_id),
        },
        notices=ROLE_NOTICES,
    )


@page(admin=True)
async def revoke_user_grant(request: Request, viewer: Viewer) -> Response:
    """``POST /dashboard/users/{user_id}/grants/{grant_id}/revoke``: withdraw a consent."""
    domain = services(request).domain
    person = domain.users.get(request.path_params["user_id"])
    grant_id = request.path_params["grant_id"]
    if not any(g.id == grant_id for g in domain.consents.all(user_id=person.user_id)):
        raise NotFound("The grant does not exist")
    domain.consents.revoke(grant_id)
    return done(f"/dashboard/users/{url_id(person.user_id)}", "revoked")


# ----------------------------------------------------------------- signing keys


@page(admin=True)
async def keys(request: Request, viewer: Viewer) -> Response:
    """``GET /dashboard/keys``: current, next and previous keys (and revoked ones)."""
    ring = services(request).domain.keys.all()
    order = {"current": 0, "next": 1, "previous": 2, "revoked": 3}
    rows = [
        {"key": k, "current_since": when(k.current_since), "revoked_at": when(k.revoked_at)}
        for k in sorted(ring, key=lambda k: order.get(k.status, 4))
    ]
    return show(
        request, viewer, "dashboard/keys.html", {"section": "keys", "keys": rows}, notices=NOTICES
    )


@page(admin=True)
async def rotate_key(request: Request, viewer: Viewer) -> Response:
    """``POST /dashboard/keys/rotate``: next becomes current, current becomes previous."""
    services(request).domain.keys.rotate()
    return done("/dashboard/keys", "rotated")


@page(admin=True)
async def revoke_key(request: Request, viewer: Viewer) -> Response:
    """``POST /dashboard/keys/{kid}/revoke``: drop the previous key from the JWKS."""
    try:
        services(request).domain.keys.revoke(request.path_params["kid"])
    except SigningKeyError as exc:
        raise ValidationError(str(exc)) from None
    return done("/dashboard/keys", "revoked")
