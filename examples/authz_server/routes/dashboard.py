"""The tenant admin's dashboard at ``/dashboard``: APIs, applications, users, signing keys.

Server-rendered pages on top of the tenant's domain functions (the same ones the
Management API and the CLI use). Every page needs an admin session; every form carries the
session's CSRF token. The API Test tab runs the client-credentials grant in-process, through
the very function ``/oauth/token`` uses, and can send the token to a URL of the admin's API.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

import httpx
import jwt
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from .. import introspection
from ..grants import Grants, OAuthError
from ..keys import SigningKeyError
from ..models import APP_TYPES, GRANT_TYPES, Client, ResourceServer
from ..tenant import Conflict, NotFound, TenantError, ValidationError
from ..web import services
from .pages_common import Viewer, done, lines, page, pretty, show, url_id

PROBE_TIMEOUT = 5.0
PROBE_BODY_LIMIT = 4096
_URI_SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+.\-]*:")

APP_TYPE_LABELS = {
    "non_interactive": "Machine to Machine",
    "spa": "Single Page Application",
    "regular_web": "Regular Web Application",
    "native": "Native",
}
GRANT_LABELS = {
    "authorization_code": "Authorization Code",
    "implicit": "Implicit (development only)",
    "refresh_token": "Refresh Token",
    "client_credentials": "Client Credentials",
    "password": "Password (development only, first-party)",
}
API_TABS = (
    ("quickstart", "Quick Start"),
    ("settings", "Settings"),
    ("scopes", "Scopes"),
    ("m2m", "Machine to Machine Applications"),
    ("test", "Test"),
)
NOTICES = {
    "created": "Created.",
    "saved": "Changes saved.",
    "deleted": "Deleted.",
    "scope-added": "Scope added.",
    "scope-removed": "Scope removed.",
    "authorized": "Client authorized for this API.",
    "updated": "Client grant updated.",
    "unauthorized": "Client grant removed.",
    "revoked": "Revoked.",
    "rotated": "Signing key rotated: the next key is now current.",
}


# ------------------------------------------------------------------------- helpers


def _api(request: Request) -> ResourceServer:
    api = services(request).tenant.find_api(request.path_params["api_id"])
    if api is None or api.id != request.path_params["api_id"]:
        raise NotFound("The API does not exist")
    return api


def _api_page(
    request: Request,
    viewer: Viewer,
    api: ResourceServer,
    tab: str,
    context: dict[str, Any] | None = None,
    *,
    status_code: int = 200,
) -> Response:
    return show(
        request,
        viewer,
        f"dashboard/api_{tab}.html",
        {"section": "apis", "api": api, "tab": tab, "tabs": API_TABS, **(context or {})},
        status_code=status_code,
        notices=NOTICES,
    )


def when(timestamp: int | None) -> str:
    """A Unix time as a readable UTC date ('' for none)."""
    if timestamp is None:
        return ""
    return datetime.fromtimestamp(timestamp, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def _checkbox(viewer: Viewer, name: str) -> bool:
    return viewer.value(name) in ("on", "true", "1")


# ----------------------------------------------------------------------------- APIs


@page(admin=True)
async def home(request: Request, viewer: Viewer) -> Response:
    """``GET /dashboard``: the APIs are the first screen, as in Auth0's quick start."""
    return RedirectResponse("/dashboard/apis", status_code=303)


@page(admin=True)
async def apis(request: Request, viewer: Viewer) -> Response:
    """``GET /dashboard/apis``: every API, the Management API marked as a system API."""
    tenant = services(request).tenant
    return show(
        request,
        viewer,
        "dashboard/apis.html",
        {"section": "apis", "apis": tenant.list_apis()},
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
    if not _URI_SCHEME.match(identifier) or any(c.isspace() for c in identifier):
        return _new_api_form(
            request,
            viewer,
            values,
            "The identifier must be a URI without spaces, such as https://api.example.com/ "
            "(it becomes the audience of the tokens and cannot be changed later).",
            400,
        )
    if values["signing_alg"] not in ("RS256", "HS256"):
        return _new_api_form(request, viewer, values, "Choose RS256 or HS256.", 400)
    try:
        api = services(request).tenant.create_api(
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
    return RedirectResponse(f"/dashboard/apis/{_api(request).id}/quickstart", status_code=303)


@page(admin=True)
async def api_quickstart(request: Request, viewer: Viewer) -> Response:
    """``GET /dashboard/apis/{id}/quickstart``: protect a Flask or Starlette app with apiguard."""
    api = _api(request)
    scope = api.scopes[0].value if api.scopes else "read:messages"
    return _api_page(request, viewer, api, "quickstart", {"example_scope": scope})


def _settings_page(
    request: Request, viewer: Viewer, api: ResourceServer, error: str | None, status: int = 200
) -> Response:
    # Only confidential clients can authenticate at the introspection endpoint.
    clients = [c for c in services(request).tenant.list_clients() if c.is_confidential]
    extra = {"error": error, "introspection_candidates": clients}
    return _api_page(request, viewer, api, "settings", extra, status_code=status)


@page(admin=True)
async def api_settings(request: Request, viewer: Viewer) -> Response:
    """``GET /dashboard/apis/{id}/settings``."""
    return _settings_page(request, viewer, _api(request), None)


@page(admin=True)
async def save_api_settings(request: Request, viewer: Viewer) -> Response:
    """``POST /dashboard/apis/{id}/settings``: name, lifetime, offline access, consent, format."""
    api = _api(request)
    try:
        lifetime = int(viewer.value("token_lifetime"))
    except ValueError:
        return _settings_page(
            request, viewer, api, "Token expiration must be a whole number of seconds.", 400
        )
    changes: dict[str, object] = {
        "name": viewer.value("name"),
        "token_lifetime": lifetime,
        "allow_offline_access": _checkbox(viewer, "allow_offline_access"),
        "skip_consent_for_verifiable_first_party_clients": _checkbox(viewer, "skip_consent"),
        "access_token_format": viewer.value("access_token_format") or api.access_token_format,
        "introspection_clients": viewer.values("introspection_clients"),
    }
    try:
        services(request).tenant.update_api(api.id, changes)
    except ValidationError as exc:
        return _settings_page(request, viewer, api, exc.message, 400)
    return done(f"/dashboard/apis/{api.id}/settings", "saved")


@page(admin=True)
async def delete_api(request: Request, viewer: Viewer) -> Response:
    """``POST /dashboard/apis/{id}/delete``: remove the API with its grants."""
    services(request).tenant.delete_api(_api(request).id)
    return done("/dashboard/apis", "deleted")


@page(admin=True)
async def api_scopes(request: Request, viewer: Viewer) -> Response:
    """``GET /dashboard/apis/{id}/scopes``."""
    return _api_page(request, viewer, _api(request), "scopes", {"values": {}})


@page(admin=True)
async def add_scope(request: Request, viewer: Viewer) -> Response:
    """``POST /dashboard/apis/{id}/scopes``: add a scope with its description."""
    api = _api(request)
    values = {"value": viewer.value("value"), "description": viewer.value("description")}
    if api.is_system:
        raise ValidationError("The Management API cannot be modified")
    if not values["description"]:
        error = "Describe the scope: the consent page shows the description to users."
        return _api_page(
            request, viewer, api, "scopes", {"values": values, "error": error}, status_code=400
        )
    try:
        services(request).tenant.add_scope(api.id, values["value"], values["description"])
    except ValidationError as exc:
        return _api_page(
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
    api = _api(request)
    value = viewer.value("value")
    if value not in api.scope_values:
        raise NotFound("The API has no such scope")
    services(request).tenant.remove_scope(api.id, value)
    return done(f"/dashboard/apis/{api.id}/scopes", "scope-removed")


def _m2m_rows(request: Request, api: ResourceServer) -> list[dict[str, Any]]:
    tenant = services(request).tenant
    grants = {g.client_id: g for g in tenant.list_client_grants(audience=api.identifier)}
    rows = []
    for client in tenant.list_clients():
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
    api = _api(request)
    return _api_page(request, viewer, api, "m2m", {"rows": _m2m_rows(request, api)})


@page(admin=True)
async def save_m2m(request: Request, viewer: Viewer) -> Response:
    """``POST /dashboard/apis/{id}/m2m``: authorize, update or unauthorize one client."""
    api = _api(request)
    tenant = services(request).tenant
    client = tenant.get_client(viewer.value("client_id"))
    action = viewer.value("action")
    scopes = viewer.values("scope")
    grant = tenant.find_client_grant(client.client_id, api.identifier)
    try:
        if action == "unauthorize":
            if grant is None:
                raise NotFound("The client is not authorized for this API")
            tenant.delete_client_grant(grant.id)
            notice = "unauthorized"
        elif action == "save" and grant is None:
            tenant.create_client_grant(client.client_id, api.identifier, scopes)
            notice = "authorized"
        elif action == "save" and grant is not None:
            tenant.update_client_grant(grant.id, scopes)
            notice = "updated"
        else:
            raise ValidationError("Unknown action")
    except ValidationError as exc:
        return _api_page(
            request,
            viewer,
            api,
            "m2m",
            {"rows": _m2m_rows(request, api), "error": exc.message},
            status_code=400,
        )
    return done(f"/dashboard/apis/{api.id}/m2m", notice)


# ----------------------------------------------------------------------- Test tab


@dataclass(frozen=True)
class Verdict:
    """What the admin's API said about the token, explained."""

    ok: bool
    title: str
    explanation: str
    status: int | None = None
    www_authenticate: str | None = None
    body: str | None = None


_AUTH_PARAM = re.compile(r'([A-Za-z_]+)="((?:[^"\\]|\\.)*)"')


def explain(status: int, www_authenticate: str | None, location: str | None) -> Verdict:
    """Explain an API's answer to a request carrying the test token (RFC 6750 §3)."""
    params = dict(_AUTH_PARAM.findall(www_authenticate or ""))
    error = params.get("error")
    description = params.get("error_description", "")
    if 200 <= status < 300:
        return Verdict(
            True,
            "Accepted",
            "The API validated the token and served the request: issuer, audience, "
            "signature and lifetime all check out.",
        )
    if 300 <= status < 400:
        return Verdict(
            False,
            "Redirected",
            f"The API answered with a redirect (to {location or 'somewhere'}); redirects are "
            "not followed. Use the exact URL of a protected route.",
        )
    if status == 401 and error == "invalid_token":
        return Verdict(
            False,
            "Token rejected",
            f"The API says the token is invalid ({description or 'no description'}). Check "
            "that it expects this issuer and this API's identifier as the audience, and "
            "the signing algorithm shown in Settings.",
        )
    if status == 401:
        return Verdict(
            False,
            "No usable token",
            "The API answered 401 without an error code: it did not find a bearer token "
            "in the Authorization header (RFC 6750 §3.1), or does not use bearer tokens.",
        )
    if status == 403 and error == "insufficient_scope":
        needed = params.get("scope")
        return Verdict(
            False,
            "Missing scope",
            "The token is valid but lacks a scope the route needs"
            + (f" ({needed})" if needed else "")
            + ". Grant it to the client on the Machine to Machine Applications tab.",
        )
    if status == 403:
        return Verdict(False, "Forbidden", "The API refused the request (403).")
    if status == 400 and error == "invalid_request":
        return Verdict(
            False,
            "Malformed request",
            f"The API found the request malformed ({description or 'no description'}).",
        )
    if status == 404:
        return Verdict(False, "Not found", "The API has no route at this path (404).")
    if status == 503:
        return Verdict(
            False,
            "API unavailable",
            "The API answered 503: it may be unable to fetch this server's signing keys "
            "(JWKS). Check its issuer setting and that it can reach this server.",
        )
    if status >= 500:
        return Verdict(False, "API error", f"The API failed with a server error ({status}).")
    return Verdict(False, "Refused", f"The API answered {status}.")


def check_probe_url(url: str) -> str | None:
    """Why *url* cannot be probed (``None`` when it is a plain http(s) URL)."""
    if len(url) > 2000 or any(c.isspace() or ord(c) < 32 for c in url):
        return "The URL must be a single http(s) URL without spaces."
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError on a malformed port
    except ValueError:
        return "The URL is malformed."
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return "Only http:// and https:// URLs can be tested."
    if parts.username is not None or parts.password is not None:
        return "The URL must not carry credentials."
    try:
        # What httpx will send: a host that is not a valid IDNA name (``xn--``) fails here.
        httpx.Request("GET", url)
    except (httpx.InvalidURL, UnicodeError):
        return "The URL is malformed."
    return None


async def probe(request: Request, url: str, token: str) -> Verdict:
    """GET *url* with the token; network failures are explained, never raised."""
    transport: httpx.AsyncBaseTransport | None = getattr(request.app.state, "probe_transport", None)
    host = urlsplit(url).netloc
    try:
        async with (
            httpx.AsyncClient(
                transport=transport,
                timeout=PROBE_TIMEOUT,
                follow_redirects=False,
                trust_env=False,
            ) as client,
            client.stream("GET", url, headers={"Authorization": f"Bearer {token}"}) as answer,
        ):
            body = b""
            async for chunk in answer.aiter_bytes():
                body += chunk
                if len(body) >= PROBE_BODY_LIMIT:
                    break
    except httpx.TimeoutException:
        return Verdict(
            False,
            "No answer",
            f"{host} did not answer within {PROBE_TIMEOUT:g} seconds.",
        )
    except httpx.ConnectError:
        return Verdict(
            False,
            "Cannot connect",
            f"Could not connect to {host}: is the API running and listening there? "
            "(The request is sent from this authorization server's machine.)",
        )
    except httpx.RemoteProtocolError:
        return Verdict(False, "Not HTTP", f"{host} did not answer with valid HTTP.")
    except httpx.HTTPError as exc:
        return Verdict(False, "Request failed", f"The request failed ({type(exc).__name__}).")
    verdict = explain(
        answer.status_code,
        answer.headers.get("www-authenticate"),
        answer.headers.get("location"),
    )
    return Verdict(
        verdict.ok,
        verdict.title,
        verdict.explanation,
        answer.status_code,
        answer.headers.get("www-authenticate"),
        body[:PROBE_BODY_LIMIT].decode("utf-8", "replace"),
    )


def curl_command(issuer: str, client_id: str, audience: str) -> str:
    """The token request the Test tab runs, as a copyable curl command (secret elided)."""
    data = pretty(
        {
            "client_id": client_id,
            "client_secret": "YOUR_CLIENT_SECRET",
            "audience": audience,
            "grant_type": "client_credentials",
        }
    ).replace("\n", "")
    data = re.sub(r"\s{2,}", " ", data)
    return (
        "curl --request POST \\\n"
        f"  --url {shlex.quote(issuer + 'oauth/token')} \\\n"
        "  --header 'content-type: application/json' \\\n"
        f"  --data {shlex.quote(data)}"
    )


def decode_token(token: str) -> dict[str, str]:
    """The token's header and claims as pretty JSON (it is the admin's own tenant)."""
    try:
        header = jwt.get_unverified_header(token)
        claims = jwt.decode(token, options={"verify_signature": False})
    except jwt.PyJWTError:
        return {"header": "(not a JWT)", "claims": ""}
    return {"header": pretty(header), "claims": pretty(claims)}


def _test_clients(request: Request, api: ResourceServer) -> list[Client]:
    tenant = services(request).tenant
    ids = [g.client_id for g in tenant.list_client_grants(audience=api.identifier)]
    return [c for c in (tenant.find_client(i) for i in ids) if c is not None]


def _test_page(
    request: Request,
    viewer: Viewer,
    api: ResourceServer,
    context: dict[str, Any],
    status: int = 200,
) -> Response:
    clients = _test_clients(request, api)
    selected = context.get("client_id") or (clients[0].client_id if clients else None)
    issuer = services(request).settings.issuer
    return _api_page(
        request,
        viewer,
        api,
        "test",
        {
            "clients": clients,
            "selected": selected,
            "curl": curl_command(issuer, selected, api.identifier) if selected else None,
            **context,
        },
        status_code=status,
    )


@page(admin=True)
async def api_test(request: Request, viewer: Viewer) -> Response:
    """``GET /dashboard/apis/{id}/test``: pick an authorized client and run the exchange."""
    return _test_page(request, viewer, _api(request), {"url": ""})


@page(admin=True)
async def run_test(request: Request, viewer: Viewer) -> Response:
    """``POST /dashboard/apis/{id}/test``: client credentials in-process, then maybe a probe."""
    api = _api(request)
    bundle = services(request)
    client_id = viewer.value("client_id")
    url = viewer.value("url")
    context: dict[str, Any] = {"client_id": client_id, "url": url}
    client = bundle.tenant.find_client(client_id)
    if client is None or client not in _test_clients(request, api):
        context["error"] = "Pick a client authorized for this API (Machine to Machine tab)."
        return _test_page(request, viewer, api, context | {"client_id": None}, 400)
    if url and (problem := check_probe_url(url)):
        context["error"] = problem
        return _test_page(request, viewer, api, context, 400)
    params = {"grant_type": "client_credentials", "audience": api.identifier}
    try:
        body = Grants(bundle.tenant, bundle.minter).token(client, params)
        status = 200
    except OAuthError as exc:
        body, status = exc.body(), exc.status
    context |= {"response": pretty(body), "response_status": status}
    token = body.get("access_token")
    if isinstance(token, str):
        if api.access_token_format == "opaque":
            # Nothing to decode: show what the API learns at the introspection endpoint.
            claims = introspection.live_claims(bundle.tenant, bundle.minter, token)
            answer = introspection.active_answer(claims) if claims else introspection.INACTIVE
            context["introspected"] = pretty(answer)
        else:
            context["decoded"] = decode_token(token)
        if url:
            context["verdict"] = await probe(request, url, token)
    return _test_page(request, viewer, api, context)


# ---------------------------------------------------------------- applications


def _app_row(client: Client) -> dict[str, Any]:
    return {
        "client": client,
        "type": APP_TYPE_LABELS.get(client.app_type, client.app_type),
        "party": "First party" if client.is_first_party else "Third party",
    }


@page(admin=True)
async def applications(request: Request, viewer: Viewer) -> Response:
    """``GET /dashboard/applications``."""
    rows = [_app_row(c) for c in services(request).tenant.list_clients()]
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
    tenant = services(request).tenant
    grants = [
        {"grant": g, "api": tenant.find_api(g.audience)}
        for g in tenant.list_client_grants(client_id=client.client_id)
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
        "first_party": _checkbox(viewer, "first_party"),
        "callbacks": viewer.value("callbacks"),
    }
    if values["app_type"] not in APP_TYPES:
        return _new_app_form(request, viewer, values, "Choose an application type.", 400)
    try:
        client, secret = services(request).tenant.create_client(
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
    client = services(request).tenant.get_client(request.path_params["client_id"])
    return _application_page(request, viewer, client)


@page(admin=True)
async def save_application(request: Request, viewer: Viewer) -> Response:
    """``POST /dashboard/applications/{client_id}``: name, callbacks, grant types, party."""
    tenant = services(request).tenant
    client = tenant.get_client(request.path_params["client_id"])
    grant_types = [g for g in viewer.values("grant_types") if g in GRANT_TYPES]
    changes: dict[str, object] = {
        "name": viewer.value("name"),
        "description": viewer.value("description"),
        "callbacks": lines(viewer.value("callbacks")),
        "grant_types": grant_types,
        "is_first_party": _checkbox(viewer, "first_party"),
    }
    try:
        tenant.update_client(client.client_id, changes)
    except TenantError as exc:
        return _application_page(request, viewer, client, error=exc.message, status=400)
    return done(f"/dashboard/applications/{client.client_id}", "saved")


@page(admin=True)
async def rotate_secret(request: Request, viewer: Viewer) -> Response:
    """``POST /dashboard/applications/{client_id}/rotate-secret``: the new secret, once."""
    client, secret = services(request).tenant.rotate_client_secret(request.path_params["client_id"])
    return _application_page(request, viewer, client, secret=secret)


@page(admin=True)
async def delete_application(request: Request, viewer: Viewer) -> Response:
    """``POST /dashboard/applications/{client_id}/delete``."""
    services(request).tenant.delete_client(request.path_params["client_id"])
    return done("/dashboard/applications", "deleted")


# ------------------------------------------------------------------------ users


@page(admin=True)
async def users(request: Request, viewer: Viewer) -> Response:
    """``GET /dashboard/users``: every user with how many applications they authorized."""
    tenant = services(request).tenant
    rows = [
        {
            "user": u,
            "path": f"/dashboard/users/{url_id(u.user_id)}",
            "grants": len(tenant.list_user_grants(user_id=u.user_id)),
        }
        for u in tenant.list_users()
    ]
    return show(request, viewer, "dashboard/users.html", {"section": "users", "rows": rows})


def authorized_apps(request: Request, user_id: str) -> list[dict[str, Any]]:
    """A user's remembered consents with the client and API they name."""
    tenant = services(request).tenant
    return [
        {
            "grant": g,
            "client": tenant.find_client(g.client_id),
            "api": tenant.find_api(g.audience) if g.audience else None,
        }
        for g in tenant.list_user_grants(user_id=user_id)
    ]


@page(admin=True)
async def user(request: Request, viewer: Viewer) -> Response:
    """``GET /dashboard/users/{user_id}``: the user's authorized applications."""
    person = services(request).tenant.get_user(request.path_params["user_id"])
    return show(
        request,
        viewer,
        "dashboard/user.html",
        {
            "section": "users",
            "person": person,
            "path": f"/dashboard/users/{url_id(person.user_id)}",
            "grants": authorized_apps(request, person.user_id),
        },
        notices=NOTICES,
    )


@page(admin=True)
async def revoke_user_grant(request: Request, viewer: Viewer) -> Response:
    """``POST /dashboard/users/{user_id}/grants/{grant_id}/revoke``: withdraw a consent."""
    tenant = services(request).tenant
    person = tenant.get_user(request.path_params["user_id"])
    grant_id = request.path_params["grant_id"]
    if not any(g.id == grant_id for g in tenant.list_user_grants(user_id=person.user_id)):
        raise NotFound("The grant does not exist")
    tenant.revoke_user_grant(grant_id)
    return done(f"/dashboard/users/{url_id(person.user_id)}", "revoked")


# ----------------------------------------------------------------- signing keys


@page(admin=True)
async def keys(request: Request, viewer: Viewer) -> Response:
    """``GET /dashboard/keys``: current, next and previous keys (and revoked ones)."""
    ring = services(request).tenant.keys.all()
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
    services(request).tenant.keys.rotate()
    return done("/dashboard/keys", "rotated")


@page(admin=True)
async def revoke_key(request: Request, viewer: Viewer) -> Response:
    """``POST /dashboard/keys/{kid}/revoke``: drop the previous key from the JWKS."""
    try:
        services(request).tenant.keys.revoke(request.path_params["kid"])
    except SigningKeyError as exc:
        raise ValidationError(str(exc)) from None
    return done("/dashboard/keys", "revoked")


API = "/dashboard/apis/{api_id}"
APP = "/dashboard/applications/{client_id}"
USER = "/dashboard/users/{user_id}"
routes: list[BaseRoute] = [
    Route("/dashboard", home, methods=["GET"]),
    Route("/dashboard/apis", apis, methods=["GET"]),
    Route("/dashboard/apis", create_api, methods=["POST"]),
    Route("/dashboard/apis/new", new_api, methods=["GET"]),
    Route(API, api_home, methods=["GET"]),
    Route(f"{API}/quickstart", api_quickstart, methods=["GET"]),
    Route(f"{API}/settings", api_settings, methods=["GET"]),
    Route(f"{API}/settings", save_api_settings, methods=["POST"]),
    Route(f"{API}/delete", delete_api, methods=["POST"]),
    Route(f"{API}/scopes", api_scopes, methods=["GET"]),
    Route(f"{API}/scopes", add_scope, methods=["POST"]),
    Route(f"{API}/scopes/remove", remove_scope, methods=["POST"]),
    Route(f"{API}/m2m", api_m2m, methods=["GET"]),
    Route(f"{API}/m2m", save_m2m, methods=["POST"]),
    Route(f"{API}/test", api_test, methods=["GET"]),
    Route(f"{API}/test", run_test, methods=["POST"]),
    Route("/dashboard/applications", applications, methods=["GET"]),
    Route("/dashboard/applications", create_application, methods=["POST"]),
    Route("/dashboard/applications/new", new_application, methods=["GET"]),
    Route(APP, application, methods=["GET"]),
    Route(APP, save_application, methods=["POST"]),
    Route(f"{APP}/rotate-secret", rotate_secret, methods=["POST"]),
    Route(f"{APP}/delete", delete_application, methods=["POST"]),
    Route("/dashboard/users", users, methods=["GET"]),
    Route("/dashboard/users/{user_id}", user, methods=["GET"]),
    Route(f"{USER}/grants/{{grant_id}}/revoke", revoke_user_grant, methods=["POST"]),
    Route("/dashboard/keys", keys, methods=["GET"]),
    Route("/dashboard/keys/rotate", rotate_key, methods=["POST"]),
    Route("/dashboard/keys/{kid}/revoke", revoke_key, methods=["POST"]),
]
