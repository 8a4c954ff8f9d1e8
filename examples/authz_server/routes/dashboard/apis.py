"""Dashboard: the APIs area (create, Quick Start, settings, scopes, machine-to-machine)."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from ...models import ResourceServer
from ...rules import Conflict, NotFound, ValidationError
from ...web import services
from ..pages_common import Viewer, done, page, show
from .common import APP_TYPE_LABELS, NOTICES, api_of_path, api_page, checkbox


@page(admin=True)
async def home(request: Request, viewer: Viewer) -> Response:
    """``GET /dashboard``: the APIs are the first screen, as in Auth0's quick start."""
    return RedirectResponse("/dashboard/apis", status_code=303)


@page(admin=True)
async def apis(request: Request, viewer: Viewer) -> Response:
    """``GET /dashboard/apis``: every API, the Management API marked as a system API."""
    domain = services(request).domain
    return show(
        request,
        viewer,
        "dashboard/apis.html",
        {"section": "apis", "apis": domain.apis.all()},
        notices=NOTICES,
    )


def _new_api_form(
    request: Request, viewer: Viewer, values: dict[str, str], error: str | None, status: int
) -> Response:
    return show(
        request,
        viewer,
        "dashboard/api_new.html",
        {"section": "apis", "values": values, "error": error},
        status_code=status,
    )


@page(admin=True)
async def new_api(request: Request, viewer: Viewer) -> Response:
    """``GET /dashboard/apis/new``: the Create API form."""
    return _new_api_form(request, viewer, {"signing_alg": "RS256"}, None, 200)


@page(admin=True)
async def create_api(request: Request, viewer: Viewer) -> Response:
    """``POST /dashboard/apis``: create an API, then show its Quick Start."""
    values = {k: viewer.value(k) for k in ("name", "identifier", "signing_alg")}
    identifier = values["identifier"]
    if values["signing_alg"] not in ("RS256", "HS256"):
        return _new_api_form(request, viewer, values, "Choose RS256 or HS256.", 400)
    try:
        api = services(request).domain.apis.create(
            name=values["name"], identifier=identifier, signing_alg=values["signing_alg"]
        )
    except Conflict:
        return _new_api_form(
            request,
            viewer,
            values,
            "An API with this identifier already exists: identifiers must be unique.",
            409,
        )
    except ValidationError as exc:
        return _new_api_form(request, viewer, values, exc.message, 400)
    return RedirectResponse(f"/dashboard/apis/{api.id}/quickstart?done=created", status_code=303)


@page(admin=True)
async def api_home(request: Request, viewer: Viewer) -> Response:
    """``GET /dashboard/apis/{id}``: opens the Quick Start tab."""
    return RedirectResponse(
        f"/dashboard/apis/{api_of_path(request).id}/quickstart", status_code=303
    )


@page(admin=True)
async def api_quickstart(request: Request, viewer: Viewer) -> Response:
    """``GET /dashboard/apis/{id}/quickstart``: protect a Flask or Starlette app with apiguard."""
    api = api_of_path(request)
    scope = api.scopes[0].value if api.scopes else "read:messages"
    return api_page(request, viewer, api, "quickstart", {"example_scope": scope})


def _settings_page(
    request: Request, viewer: Viewer, api: ResourceServer, error: str | None, status: int = 200
) -> Response:
    # Only confidential clients can authenticate at the introspection endpoint.
    clients = [c for c in services(request).domain.clients.all() if c.is_confidential]
    extra = {"error": error, "introspection_candidates": clients}
    return api_page(request, viewer, api, "settings", extra, status_code=status)


@page(admin=True)
async def api_settings(request: Request, viewer: Viewer) -> Response:
    """``GET /dashboard/apis/{id}/settings``."""
    return _settings_page(request, viewer, api_of_path(request), None)


@page(admin=True)
async def save_api_settings(request: Request, viewer: Viewer) -> Response:
    """``POST /dashboard/apis/{id}/settings``: name, lifetime, offline access, consent, format,
    introspection clients and whether tokens must be DPoP-bound."""
    api = api_of_path(request)
    try:
        lifetime = int(viewer.value("token_lifetime"))
    except ValueError:
        return _settings_page(
            request, viewer, api, "Token expiration must be a whole number of seconds.", 400
        )
    changes: dict[str, object] = {
        "name": viewer.value("name"),
        "token_lifetime": lifetime,
        "allow_offline_access": checkbox(viewer, "allow_offline_access"),
        "skip_consent_for_verifiable_first_party_clients": checkbox(viewer, "skip_consent"),
        "access_token_format": viewer.value("access_token_format") or api.access_token_format,
        "introspection_clients": viewer.values("introspection_clients"),
        "proof_of_possession": {
            "mechanism": "dpop",
            "required": checkbox(viewer, "dpop_required"),
        },
        "enforce_policies": checkbox(viewer, "enforce_policies"),
        "token_dialect": api.token_dialect.removesuffix("_authz")
        + ("_authz" if checkbox(viewer, "permissions_in_token") else ""),
    }
    try:
        services(request).domain.apis.update(api.id, changes)
    except ValidationError as exc:
        return _settings_page(request, viewer, api, exc.message, 400)
    return done(f"/dashboard/apis/{api.id}/settings", "saved")


@page(admin=True)
async def delete_api(request: Request, viewer: Viewer) -> Response:
    """``POST /dashboard/apis/{id}/delete``: remove the API with its grants."""
    services(request).domain.apis.delete(api_of_path(request).id)
    return done("/dashboard/apis", "deleted")


@page(admin=True)
async def api_scopes(request: Request, viewer: Viewer) -> Response:
    """``GET /dashboard/apis/{id}/scopes``."""
    return api_page(request, viewer, api_of_path(request), "scopes", {"values": {}})


@page(admin=True)
async def add_scope(request: Request, viewer: Viewer) -> Response:
    """``POST /dashboard/apis/{id}/scopes``: add a scope with its description."""
    api = api_of_path(request)
    values = {"value": viewer.value("value"), "description": viewer.value("description")}
    if api.is_system:
        raise ValidationError("The Management API cannot be modified")
    if not values["description"]:
        error = "Describe the scope: the consent page shows the description to users."
        return api_page(
            request, viewer, api, "scopes", {"values": values, "error": error}, status_code=400
        )
    try:
        services(request).domain.apis.add_scope(api.id, values["value"], values["description"])
    except ValidationError as exc:
        return api_page(
            request,
            viewer,
            api,
            "scopes",
            {"values": values, "error": exc.message},
            status_code=400,
        )
    return done(f"/dashboard/apis/{api.id}/scopes", "scope-added")


@page(admin=True)
async def remove_scope(request: Request, viewer: Viewer) -> Response:
    """``POST /dashboard/apis/{id}/scopes/remove``: remove a scope (and from client grants)."""
    api = api_of_path(request)
    value = viewer.value("value")
    if value not in api.scope_values:
        raise NotFound("The API has no such scope")
    services(request).domain.apis.remove_scope(api.id, value)
    return done(f"/dashboard/apis/{api.id}/scopes", "scope-removed")


def _m2m_rows(request: Request, api: ResourceServer) -> list[dict[str, Any]]:
    domain = services(request).domain
    grants = {g.client_id: g for g in domain.client_grants.all(audience=api.identifier)}
    rows = []
    for client in domain.clients.all():
        if not client.is_confidential:
            continue
        grant = grants.get(client.client_id)
        if grant is None and "client_credentials" not in client.grant_types:
            continue
        rows.append(
            {
                "client": client,
                "grant": grant,
                "type": APP_TYPE_LABELS.get(client.app_type, client.app_type),
                "can_exchange": "client_credentials" in client.grant_types,
            }
        )
    return rows


@page(admin=True)
async def api_m2m(request: Request, viewer: Viewer) -> Response:
    """``GET /dashboard/apis/{id}/m2m``: which clients may get tokens, with which scopes."""
    api = api_of_path(request)
    return api_page(request, viewer, api, "m2m", {"rows": _m2m_rows(request, api)})


@page(admin=True)
async def save_m2m(request: Request, viewer: Viewer) -> Response:
    """``POST /dashboard/apis/{id}/m2m``: authorize, update or unauthorize one client."""
    api = api_of_path(request)
    domain = services(request).domain
    client = domain.clients.get(viewer.value("client_id"))
    action = viewer.value("action")
    scopes = viewer.values("scope")
    grant = domain.client_grants.find(client.client_id, api.identifier)
    try:
        if action == "unauthorize":
            if grant is None:
                raise NotFound("The client is not authorized for this API")
            domain.client_grants.delete(grant.id)
            notice = "unauthorized"
        elif action == "save" and grant is None:
            domain.client_grants.create(client.client_id, api.identifier, scopes)
            notice = "authorized"
        elif action == "save" and grant is not None:
            domain.client_grants.update(grant.id, scopes)
            notice = "updated"
        else:
            raise ValidationError("Unknown action")
    except ValidationError as exc:
        return api_page(
            request,
            viewer,
            api,
            "m2m",
            {"rows": _m2m_rows(request, api), "error": exc.message},
            status_code=400,
        )
    return done(f"/dashboard/apis/{api.id}/m2m", notice)
