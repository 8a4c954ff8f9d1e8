"""The front channel: ``/authorize``, the login page, the consent page and logout.

``GET /authorize`` validates the request; an unknown client or an unregistered redirect URI
gets an error page and never a redirect. When the user must sign in or consent, the
validated request is parked as an *interaction* bound to the browser session, and the pages
carry only its id. Codes and implicit tokens are returned to the exact registered URI, with
``state`` echoed and ``iss`` added (RFC 9207).
"""

from __future__ import annotations

from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from .. import authorization
from ..authorization import AuthRequest, PageError, build_redirect, match_redirect_uri
from ..models import OIDC_SCOPES, Client, Session, SignIn, User
from ..web import (
    Services,
    client_ip,
    display_host,
    error_page,
    read_form,
    render,
    safe_next,
    same_origin_post,
    services,
)
from .pages_common import LOGOUT_CSRF


def redirect_to_client(
    request: Request,
    client: Client,
    auth: AuthRequest,
    params: dict[str, str],
    *,
    status: int,
) -> Response:
    """Send the response to the client (``state`` and ``iss`` added).

    For error responses to dynamically registered clients nothing redirects automatically:
    the user sees the error with a link back (RFC 9700 §4.11.2).
    """
    bundle = services(request)
    params = dict(params)
    if auth.state is not None:
        params["state"] = auth.state
    params["iss"] = bundle.settings.issuer
    url = build_redirect(auth.redirect_uri, auth.response_mode, params)
    if "error" in params and client.is_dynamic:
        return render(
            request,
            "error.html",
            {
                "title": "Authorization failed",
                "message": params.get("error_description", params["error"]),
                "continue_url": url,
                "continue_host": display_host(auth.redirect_uri),
            },
            status_code=400,
        )
    return RedirectResponse(url, status_code=status)


def error_to_client(
    request: Request,
    client: Client,
    auth: AuthRequest,
    error: str,
    description: str,
    *,
    status: int = 302,
) -> Response:
    """An error response sent to the client's redirect URI."""
    return redirect_to_client(
        request,
        client,
        auth,
        {"error": error, "error_description": description},
        status=status,
    )


def _single_params(request: Request) -> tuple[dict[str, str], set[str]]:
    params: dict[str, str] = {}
    repeated: set[str] = set()
    for key, value in request.query_params.multi_items():
        if key in params:
            repeated.add(key)
        params[key] = value
    return params, repeated


def complete(
    request: Request, client: Client, auth: AuthRequest, user: User, session: Session, status: int
) -> Response:
    """Issue the code (or the implicit tokens) for the session's sign-in; answer the client."""
    bundle = services(request)
    sign_in = session.sign_in or SignIn(bundle.domain.now())
    params = authorization.respond(
        bundle.domain, bundle.grants, bundle.minter, client, auth, user, sign_in
    )
    return redirect_to_client(request, client, auth, params, status=status)


def proceed(
    request: Request,
    session: Session,
    user: User,
    client: Client,
    auth: AuthRequest,
    *,
    status: int,
    interaction_id: str | None = None,
) -> Response:
    """After login: a second factor when asked for, then consent when needed, else complete."""
    domain = services(request).domain
    api = authorization.api_of(domain, auth)
    if authorization.needs_second_factor(auth, session):
        if "none" in auth.prompt:
            return error_to_client(
                request,
                client,
                auth,
                "interaction_required",
                "A second factor is required",
                status=status,
            )
        interaction_id = interaction_id or authorization.park(domain, session.sid_hash, auth)
        return RedirectResponse(f"/login/otp?interaction={interaction_id}", status_code=status)
    if authorization.needs_consent(domain, client, user, auth, api):
        if "none" in auth.prompt:
            return error_to_client(
                request, client, auth, "consent_required", "Consent is required", status=status
            )
        interaction_id = interaction_id or authorization.park(domain, session.sid_hash, auth)
        return RedirectResponse(f"/consent?interaction={interaction_id}", status_code=status)
    if interaction_id:
        authorization.forget(domain, interaction_id)
    return complete(request, client, auth, user, session, status)


# ------------------------------------------------------------------- endpoints


def _resume(
    bundle: Services, session: Session | None, interaction: str | None
) -> AuthRequest | None:
    sid_hash = session.sid_hash if session is not None else None
    return authorization.resume(bundle.domain, sid_hash, interaction)


async def authorize(request: Request) -> Response:
    """``GET /authorize``."""
    bundle = services(request)
    params, repeated = _single_params(request)
    try:
        client, auth, problem = authorization.parse(bundle.domain, params, repeated)
    except PageError as exc:
        return error_page(request, "Invalid authorization request", exc.message)
    if problem is not None:
        return error_to_client(request, client, auth, problem.error, problem.description)
    session, new_sid = bundle.sessions.ensure(request)
    user = bundle.sessions.user(session)
    if authorization.must_sign_in(auth, session, user, bundle.domain.now()):
        if "none" in auth.prompt:
            return error_to_client(request, client, auth, "login_required", "Login required")
        interaction_id = authorization.park(bundle.domain, session.sid_hash, auth)
        response: Response = RedirectResponse(
            f"/login?interaction={interaction_id}", status_code=302
        )
    else:
        response = proceed(request, session, user, client, auth, status=302)
    if new_sid:
        bundle.sessions.set_cookie(response, new_sid)
    return response


def _login_page(
    request: Request,
    session: Session,
    *,
    interaction: str | None,
    next_path: str | None,
    error: str | None = None,
    email: str | None = None,
    status_code: int = 200,
) -> Response:
    bundle = services(request)
    auth = _resume(bundle, session, interaction)
    client = bundle.domain.clients.find(auth.client_id) if auth else None
    return render(
        request,
        "login.html",
        {
            "csrf_token": session.csrf_token(f"login:{interaction or ''}"),
            "interaction": interaction if auth else None,
            "next": None if auth else next_path,
            "client": client,
            "error": error,
            "email": email,
        },
        status_code=status_code,
    )


async def login_form(request: Request) -> Response:
    """``GET /login``: the sign-in form (for an interaction, or standalone with ``next``)."""
    bundle = services(request)
    session, new_sid = bundle.sessions.ensure(request)
    interaction = request.query_params.get("interaction")
    if interaction and _resume(bundle, session, interaction) is None:
        return error_page(request, "Session expired", "Start the sign-in again from the app.")
    next_path = safe_next(request.query_params.get("next")) if not interaction else None
    response = _login_page(request, session, interaction=interaction, next_path=next_path)
    if new_sid:
        bundle.sessions.set_cookie(response, new_sid)
    return response


async def login_submit(request: Request) -> Response:
    """``POST /login``: check CSRF and credentials, rotate the session, continue."""
    bundle = services(request)
    if not same_origin_post(request):
        return error_page(request, "Forbidden", "Cross-site form submission refused.", 403)
    session = bundle.sessions.load(request)
    form = await read_form(request, "interaction", "csrf_token", "email", "password", "next")
    interaction = form["interaction"]
    if session is None or not session.check_csrf(f"login:{interaction or ''}", form["csrf_token"]):
        return error_page(request, "Forbidden", "The form expired; please try again.", 403)
    auth = _resume(bundle, session, interaction) if interaction else None
    if interaction and auth is None:
        return error_page(request, "Session expired", "Start the sign-in again from the app.")
    email = form["email"] or ""
    password = form["password"] or ""
    next_path = safe_next(form["next"])
    ip_key, email_key = f"ip:{client_ip(request)}", f"email:{email.lower()}"
    wait = max(
        bundle.login_limiter.retry_after(ip_key), bundle.login_limiter.retry_after(email_key)
    )
    if wait:
        response = _login_page(
            request,
            session,
            interaction=interaction,
            next_path=next_path,
            error="Too many attempts. Wait a minute and try again.",
            email=email,
            status_code=429,
        )
        response.headers["Retry-After"] = str(wait)
        return response
    user = None
    if email and password:
        # scrypt takes tens of milliseconds: not on the event loop.
        user = await run_in_threadpool(bundle.domain.users.authenticate, email, password)
    if user is None:
        bundle.login_limiter.hit(ip_key)
        bundle.login_limiter.hit(email_key)
        return _login_page(
            request,
            session,
            interaction=interaction,
            next_path=next_path,
            error="Wrong email or password.",
            email=email,
            status_code=400,
        )
    bundle.login_limiter.reset(email_key)
    new_session, sid = bundle.sessions.login(session, user)
    if auth is not None and interaction is not None:
        client = bundle.domain.clients.find(auth.client_id)
        if client is None:
            response = error_page(request, "Invalid request", "The application no longer exists.")
        else:
            response = proceed(
                request, new_session, user, client, auth, status=303, interaction_id=interaction
            )
    else:
        response = RedirectResponse(next_path, status_code=303)
    bundle.sessions.set_cookie(response, sid)
    return response


def _consent_context(
    bundle: Services, session: Session, user: User, client: Client, auth: AuthRequest, iid: str
) -> dict[str, Any]:
    api = authorization.api_of(bundle.domain, auth)
    known = bundle.domain.consents.consented_scopes(
        user.user_id, client.client_id, auth.audience or ""
    )
    scopes = [
        {
            "value": s,
            "description": api.describe(s) if api else OIDC_SCOPES.get(s, s),
            "new": bool(known) and s not in known,
        }
        for s in auth.scopes
    ]
    return {
        "client": client,
        "user": user,
        "api": api,
        "scopes": scopes,
        "redirect_host": display_host(auth.redirect_uri),
        "origin": registration_origin(bundle, client),
        "interaction": iid,
        "csrf_token": session.csrf_token(f"consent:{iid}"),
    }


def registration_origin(bundle: Services, client: Client) -> str:
    """Who put this application here, in words for the consent page."""
    if not client.is_dynamic:
        return "Registered by this server's administrator."
    owner_id = bundle.domain.clients.owner_of(client.client_id)
    owner = bundle.domain.users.find(owner_id) if owner_id else None
    if owner is not None:
        return f"Registered on the developer portal by {owner.email} (not reviewed)."
    return "Registered by itself through open dynamic registration (not reviewed)."


async def consent_form(request: Request) -> Response:
    """``GET /consent``: show what the client asks for (a GET never grants anything)."""
    bundle = services(request)
    session = bundle.sessions.load(request)
    user = bundle.sessions.user(session)
    iid = request.query_params.get("interaction", "")
    auth = _resume(bundle, session, iid)
    client = bundle.domain.clients.find(auth.client_id) if auth else None
    if session is None or user is None or auth is None or client is None:
        return error_page(request, "Session expired", "Start the sign-in again from the app.")
    return render(
        request, "consent.html", _consent_context(bundle, session, user, client, auth, iid)
    )


async def consent_submit(request: Request) -> Response:
    """``POST /consent``: remember the decision and answer the client."""
    bundle = services(request)
    if not same_origin_post(request):
        return error_page(request, "Forbidden", "Cross-site form submission refused.", 403)
    session = bundle.sessions.load(request)
    user = bundle.sessions.user(session)
    form = await read_form(request, "interaction", "csrf_token", "decision")
    iid = form["interaction"] or ""
    auth = _resume(bundle, session, iid)
    client = bundle.domain.clients.find(auth.client_id) if auth else None
    if session is None or user is None or auth is None or client is None:
        return error_page(request, "Session expired", "Start the sign-in again from the app.")
    if not session.check_csrf(f"consent:{iid}", form["csrf_token"]):
        return error_page(request, "Forbidden", "The form expired; please try again.", 403)
    decision = form["decision"]
    if decision not in ("allow", "deny"):
        return error_page(request, "Invalid request", "Choose Accept or Decline.")
    authorization.forget(bundle.domain, iid)
    if decision == "deny":
        return error_to_client(
            request, client, auth, "access_denied", "The user declined the request", status=303
        )
    bundle.domain.consents.remember(
        user.user_id, client.client_id, auth.audience or "", auth.scopes
    )
    return complete(request, client, auth, user, session, status=303)


def _logout_target(
    bundle: Services, client_id: str | None, return_to: str | None
) -> tuple[Client | None, str | None]:
    """The client named in a logout request and its ``returnTo``, kept only if registered.

    ``returnTo`` must be one of the client's registered callback URLs (exact match, any
    port for loopback IPs), so logout is never an open redirector.
    """
    client = bundle.domain.clients.find(client_id) if client_id else None
    if client is None or not return_to or not match_redirect_uri(client, return_to):
        return client, None
    return client, return_to


async def logout(request: Request) -> Response:
    """``GET /v2/logout`` (Auth0's name): ask before ending the session.

    A GET changes nothing: any site can make a browser send one (an image, a link), so
    the session ends only on the confirmation form's same-origin POST.
    """
    bundle = services(request)
    session = bundle.sessions.load(request)
    user = bundle.sessions.user(session)
    client, return_to = _logout_target(
        bundle, request.query_params.get("client_id"), request.query_params.get("returnTo")
    )
    if session is None or user is None:
        return render(request, "logged_out.html")
    return render(
        request,
        "logout.html",
        {
            "user": user,
            "client": client,
            "return_to": return_to,
            "return_host": display_host(return_to) if return_to else None,
            "csrf_token": session.csrf_token(LOGOUT_CSRF),
        },
    )


async def logout_submit(request: Request) -> Response:
    """``POST /v2/logout``: end the session, then go to a registered ``returnTo``."""
    bundle = services(request)
    if not same_origin_post(request):
        return error_page(request, "Forbidden", "Cross-site form submission refused.", 403)
    session = bundle.sessions.load(request)
    form = await read_form(request, "csrf_token", "client_id", "returnTo")
    if session is None or bundle.sessions.user(session) is None:
        return render(request, "logged_out.html")
    if not session.check_csrf(LOGOUT_CSRF, form["csrf_token"]):
        return error_page(request, "Forbidden", "The form expired; please try again.", 403)
    bundle.sessions.logout(session)
    _, return_to = _logout_target(bundle, form["client_id"], form["returnTo"])
    response: Response = (
        RedirectResponse(return_to, status_code=303)
        if return_to
        else render(request, "logged_out.html")
    )
    bundle.sessions.clear_cookie(response)
    return response


routes: list[BaseRoute] = [
    Route("/authorize", authorize, methods=["GET"]),
    Route("/login", login_form, methods=["GET"], name="login_form"),
    Route("/login", login_submit, methods=["POST"], name="login"),
    Route("/consent", consent_form, methods=["GET"], name="consent_form"),
    Route("/consent", consent_submit, methods=["POST"], name="consent"),
    Route("/v2/logout", logout, methods=["GET"], name="logout"),
    Route("/v2/logout", logout_submit, methods=["POST"], name="logout_submit"),
]
