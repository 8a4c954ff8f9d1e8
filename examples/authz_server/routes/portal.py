"""The developer portal at ``/portal``: third-party developers and their applications.

Developers sign up (or sign in), register applications through the same function as
``POST /oidc/register`` (so portal apps are dynamically registered, third-party clients),
see the credentials once, and list or delete their own applications only: another
developer's application answers 404, as if it did not exist. The API documentation pages
are public. Signed-in users also see, and can revoke, the applications they authorized.
"""

from __future__ import annotations

import logging
import shlex
from typing import Any
from urllib.parse import urlencode, urlsplit

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from .. import wire
from ..models import ResourceServer
from ..rules import Conflict, NotFound, RegistrationError, TenantError
from ..web import error_page, form_value, render, services
from .dashboard import authorized_apps
from .oauth import registration_limited
from .pages_common import (
    SIGNUP_CSRF,
    Viewer,
    check_post,
    current_viewer,
    done,
    forbidden_form,
    lines,
    page,
    show,
)

log = logging.getLogger("examples.authz_server")

KINDS = {
    "web": "Web application (runs on a server, keeps a client secret)",
    "public": "Single-page or native application (public client, PKCE, no secret)",
    "m2m": "Machine to machine (client credentials; an admin must authorize it per API)",
}
NOTICES = {
    "deleted": "Application deleted.",
    "revoked": "Access revoked.",
    "welcome": "Welcome! Your developer account is ready.",
}


def _viewer_or_none(request: Request) -> Viewer | None:
    found = current_viewer(request)
    return Viewer(*found) if found else None


async def home(request: Request) -> Response:
    """``GET /portal``: a welcome page, or the signed-in developer's applications."""
    viewer = _viewer_or_none(request)
    if viewer is None:
        return show(request, None, "portal/welcome.html", {"section": "apps"})
    apps = services(request).domain.clients.owned_by(viewer.user.user_id)
    return show(
        request,
        viewer,
        "portal/home.html",
        {"section": "apps", "apps": apps, "kinds": KINDS},
        notices=NOTICES,
    )


# ------------------------------------------------------------------------- sign-up


def _signup_page(
    request: Request, values: dict[str, str], error: str | None, status: int
) -> Response:
    bundle = services(request)
    session, created = bundle.sessions.ensure(request)
    response = show(
        request,
        None,
        "portal/signup.html",
        {
            "section": "signup",
            "values": values,
            "error": error,
            "signup_csrf": session.csrf_token(SIGNUP_CSRF),
        },
        status_code=status,
    )
    if created:
        bundle.sessions.set_cookie(response, created)
    return response


async def signup_form(request: Request) -> Response:
    """``GET /portal/signup``: create a developer account."""
    if current_viewer(request) is not None:
        return RedirectResponse("/portal", status_code=303)
    return _signup_page(request, {}, None, 200)


async def signup(request: Request) -> Response:
    """``POST /portal/signup``: a new (non-admin) user, signed in under a fresh session."""
    bundle = services(request)
    session = bundle.sessions.load(request)
    form = await check_post(request, session, SIGNUP_CSRF)
    if form is None or session is None:
        return forbidden_form(request)
    values = {k: (form_value(form, k) or "").strip() for k in ("name", "email")}
    password = form_value(form, "password") or ""
    wait = registration_limited(bundle, request)
    if wait:
        response = _signup_page(request, values, "Too many sign-ups; wait a minute.", 429)
        response.headers["Retry-After"] = str(wait)
        return response
    try:
        user = bundle.domain.users.create(
            email=values["email"], password=password, name=values["name"] or None
        )
    except Conflict:
        return _signup_page(
            request, values, "An account with this email already exists; sign in.", 409
        )
    except TenantError as exc:
        return _signup_page(request, values, exc.message.capitalize() + ".", 400)
    # Nobody has shown that they read mail at this address, so ID tokens say
    # email_verified: false until the link is followed. A development server sends no
    # mail: the link goes to the server log.
    link = bundle.settings.url(
        "portal/verify?" + urlencode({"token": bundle.domain.users.email_verification_token(user)})
    )
    log.info("email verification link for %s: %s", user.user_id, link)
    _, sid = bundle.sessions.login(session, user)
    response = RedirectResponse("/portal?done=welcome", status_code=303)
    bundle.sessions.set_cookie(response, sid)
    return response


# -------------------------------------------------------------------- applications


def _new_app_page(
    request: Request, viewer: Viewer, values: dict[str, str], error: str | None, status: int
) -> Response:
    return show(
        request,
        viewer,
        "portal/app_new.html",
        {"section": "apps", "values": values, "error": error, "kinds": KINDS},
        status_code=status,
    )


@page(admin=False)
async def new_app(request: Request, viewer: Viewer) -> Response:
    """``GET /portal/apps/new``: the registration form."""
    return _new_app_page(request, viewer, {"kind": "web"}, None, 200)


def _scheme(uri: str) -> str:
    # A malformed URI ("http://[::1") is left for register_client to refuse with a message.
    try:
        return urlsplit(uri).scheme
    except ValueError:
        return ""


def registration_metadata(kind: str, name: str, redirect_uris: list[str]) -> dict[str, Any]:
    """The RFC 7591 metadata the form stands for."""
    if kind == "m2m":
        return {
            "client_name": name,
            "grant_types": ["client_credentials"],
            "response_types": [],
            "token_endpoint_auth_method": "client_secret_post",
        }
    native = any(_scheme(u) not in ("http", "https") for u in redirect_uris)
    return {
        "client_name": name,
        "redirect_uris": redirect_uris,
        "grant_types": ["authorization_code", "refresh_token"],
        "response_types": ["code"],
        "token_endpoint_auth_method": "client_secret_post" if kind == "web" else "none",
        "application_type": "native" if native else "web",
    }


@page(admin=False)
async def register_app(request: Request, viewer: Viewer) -> Response:
    """``POST /portal/apps``: register through the ``/oidc/register`` logic; secret shown once."""
    bundle = services(request)
    domain = bundle.domain
    values = {k: viewer.value(k) for k in ("name", "kind", "redirect_uris")}
    if values["kind"] not in KINDS:
        return _new_app_page(request, viewer, values, "Choose the kind of application.", 400)
    if not values["name"]:
        return _new_app_page(request, viewer, values, "Give the application a name.", 400)
    wait = registration_limited(bundle, request)
    if wait:
        response = _new_app_page(
            request, viewer, values, "Too many registrations; wait a minute.", 429
        )
        response.headers["Retry-After"] = str(wait)
        return response
    metadata = registration_metadata(values["kind"], values["name"], lines(values["redirect_uris"]))
    try:
        with domain.store.transaction():
            registration = domain.clients.register(metadata, dynamic=True)
            domain.clients.record_owner(registration.client.client_id, viewer.user.user_id)
    except RegistrationError as exc:
        return _new_app_page(request, viewer, values, exc.message, 400)
    client = registration.client
    return show(
        request,
        viewer,
        "portal/app.html",
        {
            "section": "apps",
            "client": client,
            "secret": registration.secret,
            "registration": wire.registration_json(registration),
        },
        status_code=201,
    )


def _own_client(request: Request, viewer: Viewer) -> str:
    client_id = request.path_params["client_id"]
    if services(request).domain.clients.owner_of(client_id) != viewer.user.user_id:
        raise NotFound("No such application among yours")
    return str(client_id)


@page(admin=False)
async def app_detail(request: Request, viewer: Viewer) -> Response:
    """``GET /portal/apps/{client_id}``: one of the developer's own applications."""
    client = services(request).domain.clients.get(_own_client(request, viewer))
    return show(
        request, viewer, "portal/app.html", {"section": "apps", "client": client, "secret": None}
    )


@page(admin=False)
async def delete_app(request: Request, viewer: Viewer) -> Response:
    """``POST /portal/apps/{client_id}/delete``: only the owner can delete."""
    services(request).domain.clients.delete(_own_client(request, viewer))
    return done("/portal", "deleted")


async def verify_email(request: Request) -> Response:
    """``GET /portal/verify?token=...``: the link of a sign-up's verification message."""
    user = services(request).domain.users.verify_email(request.query_params.get("token", ""))
    if user is None:
        return error_page(
            request, "Link not valid", "The verification link is wrong, used up or expired."
        )
    return render(
        request,
        "notice.html",
        {"title": "Email verified", "message": f"{user.email} is verified. Thank you."},
    )


# ------------------------------------------------------------------------ API docs


def _public_apis(request: Request) -> list[ResourceServer]:
    return services(request).domain.apis.all(include_system=False)


async def api_list(request: Request) -> Response:
    """``GET /portal/apis``: the documented APIs (public)."""
    return show(
        request,
        _viewer_or_none(request),
        "portal/apis.html",
        {"section": "apis", "apis": _public_apis(request)},
    )


def flow_examples(issuer: str, api: ResourceServer) -> dict[str, str]:
    """Ready-to-copy requests for each flow against *api*."""
    scopes = " ".join(s.value for s in api.scopes[:2]) or "openid"
    authorize = (
        issuer
        + "authorize?"
        + urlencode(
            {
                "response_type": "code",
                "client_id": "YOUR_CLIENT_ID",
                "redirect_uri": "YOUR_REDIRECT_URI",
                "scope": f"openid {scopes}",
                "audience": api.identifier,
                "state": "RANDOM_STATE",
                "code_challenge": "BASE64URL_SHA256_OF_VERIFIER",
                "code_challenge_method": "S256",
            }
        )
    )
    token_url = shlex.quote(issuer + "oauth/token")
    audience = shlex.quote(api.identifier)
    return {
        "pkce": (
            "# 1. a verifier and its S256 challenge\n"
            "VERIFIER=$(python3 -c 'import secrets; print(secrets.token_urlsafe(48))')\n"
            'CHALLENGE=$(printf %s "$VERIFIER" | openssl dgst -sha256 -binary '
            "| basenc --base64url | tr -d '=')"
        ),
        "authorize": authorize,
        "code": (
            f"curl --request POST --url {token_url} \\\n"
            "  --data grant_type=authorization_code \\\n"
            "  --data client_id=YOUR_CLIENT_ID \\\n"
            "  --data client_secret=YOUR_CLIENT_SECRET \\\n"
            "  --data code=THE_CODE \\\n"
            "  --data redirect_uri=YOUR_REDIRECT_URI \\\n"
            '  --data code_verifier="$VERIFIER"'
        ),
        "refresh": (
            f"curl --request POST --url {token_url} \\\n"
            "  --data grant_type=refresh_token \\\n"
            "  --data client_id=YOUR_CLIENT_ID \\\n"
            "  --data client_secret=YOUR_CLIENT_SECRET \\\n"
            "  --data refresh_token=THE_REFRESH_TOKEN"
        ),
        "m2m": (
            f"curl --request POST --url {token_url} \\\n"
            "  --data grant_type=client_credentials \\\n"
            "  --data client_id=YOUR_CLIENT_ID \\\n"
            "  --data client_secret=YOUR_CLIENT_SECRET \\\n"
            f"  --data audience={audience}"
        ),
        "call": (
            'curl --header "Authorization: Bearer $ACCESS_TOKEN" '
            + shlex.quote(api.identifier.rstrip("/") + "/...")
        ),
    }


async def api_doc(request: Request) -> Response:
    """``GET /portal/apis/{api_id}``: identifier, scopes and the flows of one API (public)."""
    wanted = request.path_params["api_id"]
    api = next((a for a in _public_apis(request) if a.id == wanted), None)
    if api is None:
        return error_page(request, "Not found", "The API does not exist.", 404)
    issuer = services(request).settings.issuer
    return show(
        request,
        _viewer_or_none(request),
        "portal/api.html",
        {"section": "apis", "api": api, "examples": flow_examples(issuer, api)},
    )


# ---------------------------------------------------------- authorized applications


@page(admin=False)
async def authorized(request: Request, viewer: Viewer) -> Response:
    """``GET /portal/authorized``: applications the user let act on their behalf."""
    return show(
        request,
        viewer,
        "portal/authorized.html",
        {"section": "authorized", "grants": authorized_apps(request, viewer.user.user_id)},
        notices=NOTICES,
    )


@page(admin=False)
async def revoke_authorized(request: Request, viewer: Viewer) -> Response:
    """``POST /portal/authorized/{grant_id}/revoke``: only the user's own consents."""
    consents = services(request).domain.consents
    grant_id = request.path_params["grant_id"]
    if not any(g.id == grant_id for g in consents.all(user_id=viewer.user.user_id)):
        raise NotFound("No such authorization among yours")
    consents.revoke(grant_id)
    return done("/portal/authorized", "revoked")


routes: list[BaseRoute] = [
    Route("/portal", home, methods=["GET"]),
    Route("/portal/signup", signup_form, methods=["GET"]),
    Route("/portal/signup", signup, methods=["POST"]),
    Route("/portal/verify", verify_email, methods=["GET"]),
    Route("/portal/apps", register_app, methods=["POST"]),
    Route("/portal/apps/new", new_app, methods=["GET"]),
    Route("/portal/apps/{client_id}", app_detail, methods=["GET"]),
    Route("/portal/apps/{client_id}/delete", delete_app, methods=["POST"]),
    Route("/portal/apis", api_list, methods=["GET"]),
    Route("/portal/apis/{api_id}", api_doc, methods=["GET"]),
    Route("/portal/authorized", authorized, methods=["GET"]),
    Route("/portal/authorized/{grant_id}/revoke", revoke_authorized, methods=["POST"]),
]
