"""Dashboard: the Applications area (create, settings, secret rotation, deletion)."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from ...models import APP_TYPES, GRANT_TYPES, Client
from ...rules import TenantError
from ...web import services
from ..pages_common import Viewer, done, lines, page, show
from .common import APP_TYPE_LABELS, GRANT_LABELS, NOTICES, checkbox


def _app_row(client: Client) -> dict[str, Any]:
    return {
        "client": client,
        "type": APP_TYPE_LABELS.get(client.app_type, client.app_type),
        "party": "First party" if client.is_first_party else "Third party",
    }


@page(admin=True)
async def applications(request: Request, viewer: Viewer) -> Response:
    """``GET /dashboard/applications``."""
    rows = [_app_row(c) for c in services(request).domain.clients.all()]
    return show(
        request,
        viewer,
        "dashboard/applications.html",
        {"section": "applications", "rows": rows},
        notices=NOTICES,
    )


def _new_app_form(
    request: Request, viewer: Viewer, values: dict[str, Any], error: str | None, status: int
) -> Response:
    return show(
        request,
        viewer,
        "dashboard/application_new.html",
        {"section": "applications", "values": values, "error": error, "types": APP_TYPE_LABELS},
        status_code=status,
    )


@page(admin=True)
async def new_application(request: Request, viewer: Viewer) -> Response:
    """``GET /dashboard/applications/new``."""
    values = {"app_type": "non_interactive", "first_party": True, "callbacks": ""}
    return _new_app_form(request, viewer, values, None, 200)


def _application_page(
    request: Request,
    viewer: Viewer,
    client: Client,
    *,
    secret: str | None = None,
    error: str | None = None,
    status: int = 200,
) -> Response:
    domain = services(request).domain
    grants = [
        {"grant": g, "api": domain.apis.find(g.audience)}
        for g in domain.client_grants.all(client_id=client.client_id)
    ]
    return show(
        request,
        viewer,
        "dashboard/application.html",
        {
            "section": "applications",
            "row": _app_row(client),
            "client": client,
            "secret": secret,
            "error": error,
            "grant_labels": GRANT_LABELS,
            "client_grants": grants,
        },
        status_code=status,
        notices=NOTICES,
    )


@page(admin=True)
async def create_application(request: Request, viewer: Viewer) -> Response:
    """``POST /dashboard/applications``: create, then show the secret once."""
    values: dict[str, Any] = {
        "name": viewer.value("name"),
        "app_type": viewer.value("app_type"),
        "first_party": checkbox(viewer, "first_party"),
        "callbacks": viewer.value("callbacks"),
    }
    if values["app_type"] not in APP_TYPES:
        return _new_app_form(request, viewer, values, "Choose an application type.", 400)
    try:
        client, secret = services(request).domain.clients.create(
            name=values["name"],
            app_type=values["app_type"],
            is_first_party=values["first_party"],
            callbacks=lines(values["callbacks"]),
        )
    except TenantError as exc:
        return _new_app_form(request, viewer, values, exc.message, 400)
    return _application_page(request, viewer, client, secret=secret, status=201)


@page(admin=True)
async def application(request: Request, viewer: Viewer) -> Response:
    """``GET /dashboard/applications/{client_id}``: settings (the secret is never shown)."""
    client = services(request).domain.clients.get(request.path_params["client_id"])
    return _application_page(request, viewer, client)


@page(admin=True)
async def save_application(request: Request, viewer: Viewer) -> Response:
    """``POST /dashboard/applications/{client_id}``: name, callbacks, grant types, party."""
    domain = services(request).domain
    client = domain.clients.get(request.path_params["client_id"])
    grant_types = [g for g in viewer.values("grant_types") if g in GRANT_TYPES]
    changes: dict[str, object] = {
        "name": viewer.value("name"),
        "description": viewer.value("description"),
        "callbacks": lines(viewer.value("callbacks")),
        "grant_types": grant_types,
        "is_first_party": checkbox(viewer, "first_party"),
    }
    try:
        domain.clients.update(client.client_id, changes)
    except TenantError as exc:
        return _application_page(request, viewer, client, error=exc.message, status=400)
    return done(f"/dashboard/applications/{client.client_id}", "saved")


@page(admin=True)
async def rotate_secret(request: Request, viewer: Viewer) -> Response:
    """``POST /dashboard/applications/{client_id}/rotate-secret``: the new secret, once."""
    client, secret = services(request).domain.clients.rotate_secret(
        request.path_params["client_id"]
    )
    return _application_page(request, viewer, client, secret=secret)


@page(admin=True)
async def delete_application(request: Request, viewer: Viewer) -> Response:
    """``POST /dashboard/applications/{client_id}/delete``."""
    services(request).domain.clients.delete(request.path_params["client_id"])
    return done("/dashboard/applications", "deleted")
