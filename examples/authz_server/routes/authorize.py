"""The front channel: ``/authorize``, the login page, the consent page and logout.

``GET /authorize`` validates the request; an unknown client or an unregistered redirect URI
gets an error page and never a redirect. When the user must sign in or consent, the
validated request is parked as an *interaction* bound to the browser session, and the pages
carry only its id. Codes and implicit tokens are returned to the exact registered URI, with
``state`` echoed and ``iss`` added (RFC 9207).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Any
from urllib.parse import urlencode, urlsplit

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from ..grants import CodeGrant, Grants, OAuthError, check_user_scopes, resolve_audience, target_api
from ..models import OIDC_SCOPES, Client, ResourceServer, User
from ..security import is_valid_pkce_value, new_secret
from ..tenant import scope_list
from ..web import (
    Services,
    Session,
    client_ip,
    display_host,
    dumps,
    error_page,
    read_form,
    render,
    safe_next,
    same_origin_post,
    services,
)
from .pages_common import LOGOUT_CSRF, owner_of

RESPONSE_TYPES = {"code": "code", "token": "token", "id_token token": "id_token token"}
PROMPTS = {"none", "login", "consent"}


@dataclass
class AuthRequest:
    """A validated authorization request."""

    client_id: str
    redirect_uri: str
    redirect_uri_sent: bool
    response_type: str
    response_mode: str
    scopes: list[str] = field(default_factory=list)
    audience: str | None = None
    state: str | None = None
    nonce: str | None = None
    code_challenge: str | None = None
    prompt: list[str] = field(default_factory=list)


class PageError(Exception):
    """An error that must be shown on a page, never redirected (bad client or URI)."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def match_redirect_uri(client: Client, given: str) -> bool:
    """Exact match, except any port for loopback IP literals (RFC 8252 §7.3)."""
    if given in client.callbacks:
        return True
    try:
        parts = urlsplit(given)
        port = parts.port
    except ValueError:
        return False
    if parts.scheme != "http" or parts.hostname not in ("127.0.0.1", "::1") or port is None:
        return False
    if parts.username is not None or parts.password is not None or "#" in given:
        return False
    host = "[::1]" if parts.hostname == "::1" else parts.hostname
    without_port = parts._replace(netloc=host).geturl()
    return without_port in client.callbacks


def build_redirect(redirect_uri: str, mode: str, params: dict[str, str]) -> str:
    """The client's URI with the response in the query or the fragment."""
    encoded = urlencode(params)
    if mode == "fragment":
        return f"{redirect_uri}#{encoded}"
    return f"{redirect_uri}{'&' if '?' in redirect_uri else '?'}{encoded}"


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


def parse_authorization_request(
    bundle: Services, params: dict[str, str], repeated: set[str]
) -> tuple[Client, AuthRequest, OAuthError | None]:
    """Validate the request; bad client/URI raise ``PageError``, the rest is returned."""
    if {"client_id", "redirect_uri"} & repeated:
        raise PageError("The client_id and redirect_uri parameters must not repeat.")
    client_id = params.get("client_id")
    client = bundle.tenant.find_client(client_id) if client_id else None
    if client is None:
        raise PageError("Unknown client: the application is not registered.")
    given = params.get("redirect_uri")
    if given is not None:
        if not match_redirect_uri(client, given):
            raise PageError("The redirect_uri is not registered for this application.")
        redirect_uri, sent = given, True
    elif len(client.callbacks) == 1:
        redirect_uri, sent = client.callbacks[0], False
    else:
        raise PageError("The redirect_uri parameter is required for this application.")

    raw_type = " ".join(sorted(params.get("response_type", "").split()))
    response_type = RESPONSE_TYPES.get(raw_type, raw_type)
    default_mode = "fragment" if "token" in response_type.split() else "query"
    mode = params.get("response_mode", default_mode)
    auth = AuthRequest(
        client_id=client.client_id,
        redirect_uri=redirect_uri,
        redirect_uri_sent=sent,
        response_type=response_type,
        # Implicit answers (errors included) always travel in the fragment.
        response_mode=mode
        if mode in ("query", "fragment") and default_mode == "query"
        else default_mode,
        state=params.get("state"),
    )
    try:
        if repeated:
            raise OAuthError("invalid_request", "A parameter was repeated")
        if response_type not in RESPONSE_TYPES.values():
            raise OAuthError("unsupported_response_type", "Unsupported response_type")
        needed_grant = "authorization_code" if response_type == "code" else "implicit"
        if needed_grant not in client.grant_types:
            raise OAuthError(
                "unauthorized_client", "The response_type is not allowed for this client"
            )
        if mode not in ("query", "fragment") or (mode == "query" and response_type != "code"):
            raise OAuthError("invalid_request", "Unsupported response_mode")
        auth.scopes = scope_list(params.get("scope"))
        auth.audience = resolve_audience(params)
        api = target_api(bundle.tenant, auth.audience, for_users=True)
        check_user_scopes(api, auth.scopes)
        auth.nonce = params.get("nonce")
        if "id_token" in response_type and "openid" not in auth.scopes:
            # OIDC Core §3.1.2.1 leaves a request without openid unspecified; an ID token
            # is only ever issued for an OpenID request (as node oidc-provider does).
            raise OAuthError(
                "invalid_request", "The id_token response type requires the openid scope"
            )
        if "id_token" in response_type and not auth.nonce:
            raise OAuthError("invalid_request", "A nonce is required with id_token")
        prompt = scope_list(params.get("prompt"))
        if any(p not in PROMPTS for p in prompt) or ("none" in prompt and len(prompt) > 1):
            raise OAuthError("invalid_request", "Unsupported prompt value")
        auth.prompt = prompt
        if response_type == "code":
            auth.code_challenge = _pkce(client, params)
    except OAuthError as exc:
        return client, auth, exc
    return client, auth, None


def _pkce(client: Client, params: dict[str, str]) -> str | None:
    challenge = params.get("code_challenge")
    method = params.get("code_challenge_method")
    if challenge is None:
        if method is not None:
            raise OAuthError("invalid_request", "code_challenge_method without code_challenge")
        if not client.is_confidential:
            raise OAuthError("invalid_request", "PKCE (code_challenge) is required")
        return None
    if method != "S256":
        raise OAuthError("invalid_request", "Only the S256 code_challenge_method is supported")
    if not is_valid_pkce_value(challenge):
        raise OAuthError("invalid_request", "Malformed code_challenge")
    return challenge


def needs_consent(
    bundle: Services, client: Client, user: User, auth: AuthRequest, api: ResourceServer | None
) -> bool:
    """Third-party clients need consent (remembered); first-party may skip if the API allows.

    Skipping needs a redirect URI that only the client can receive: an https host. Any
    app on the machine can listen on a loopback port or claim a private-use URI scheme
    (RFC 8252 §8.6), so for those the user is asked even for a first-party client.
    """
    if "consent" in auth.prompt:
        return True
    if client.is_first_party:
        skip = api is None or api.skip_consent_for_verifiable_first_party_clients
        if skip and urlsplit(auth.redirect_uri).scheme == "https":
            return False
    grants = bundle.tenant.list_user_grants(
        user_id=user.user_id, client_id=client.client_id, audience=auth.audience or ""
    )
    return not grants or not set(auth.scopes) <= set(grants[0].scope)


def _api_of(bundle: Services, auth: AuthRequest) -> ResourceServer | None:
    return bundle.tenant.find_api(auth.audience) if auth.audience else None


def complete(
    request: Request, client: Client, auth: AuthRequest, user: User, auth_time: int, status: int
) -> Response:
    """Issue the code (or the implicit tokens) and send them to the client."""
    bundle = services(request)
    api = _api_of(bundle, auth)
    if auth.response_type == "code":
        code = Grants(bundle.tenant, bundle.minter).issue_code(
            CodeGrant(
                client_id=client.client_id,
                user_id=user.user_id,
                redirect_uri=auth.redirect_uri,
                redirect_uri_sent=auth.redirect_uri_sent,
                code_challenge=auth.code_challenge,
                audience=auth.audience,
                scopes=tuple(auth.scopes),
                nonce=auth.nonce,
                auth_time=auth_time,
            )
        )
        return redirect_to_client(request, client, auth, {"code": code}, status=status)
    # Implicit: no refresh token, ever (RFC 6749 §4.2.2).
    scopes = [s for s in auth.scopes if s != "offline_access"]
    issued = bundle.minter.access_token(
        api=api,
        subject=user.user_id,
        client_id=client.client_id,
        scopes=scopes,
        lifetime=bundle.settings.implicit_token_ttl,
    )
    params = {
        "access_token": issued.token,
        "token_type": "Bearer",
        "expires_in": str(issued.expires_in),
        "scope": " ".join(scopes),
    }
    if "id_token" in auth.response_type:
        params["id_token"] = bundle.minter.id_token(
            user=user,
            client_id=client.client_id,
            scopes=scopes,
            auth_time=auth_time,
            nonce=auth.nonce,
            access_token=issued.token,
        )
    return redirect_to_client(request, client, auth, params, status=status)


# ------------------------------------------------------------------ interactions


def save_interaction(bundle: Services, session: Session, auth: AuthRequest) -> str:
    """Park a validated request for the login/consent pages; return its id."""
    interaction_id = new_secret(16)
    now = bundle.tenant.now()
    store = bundle.tenant.store
    with store.transaction():
        store.execute("DELETE FROM interactions WHERE expires_at <= ?", (now,))
        # Anyone can start an interaction without signing in: past the cap the oldest go.
        store.execute(
            "DELETE FROM interactions WHERE id IN (SELECT id FROM interactions "
            "ORDER BY created_at DESC, rowid DESC LIMIT -1 OFFSET ?)",
            (bundle.settings.max_interactions - 1,),
        )
        store.execute(
            "INSERT INTO interactions (id, sid_hash, params, created_at, expires_at) "
            "VALUES (?, ?, ?, ?, ?)",
            (
                interaction_id,
                session.sid_hash,
                dumps(asdict(auth)),
                now,
                now + bundle.settings.interaction_ttl,
            ),
        )
    return interaction_id


def load_interaction(
    bundle: Services, session: Session | None, interaction_id: str | None
) -> AuthRequest | None:
    """The parked request, only for the browser session that started it."""
    if session is None or not interaction_id:
        return None
    row = bundle.tenant.store.one(
        "SELECT params FROM interactions WHERE id = ? AND sid_hash = ? AND expires_at > ?",
        (interaction_id, session.sid_hash, bundle.tenant.now()),
    )
    if row is None:
        return None
    data: dict[str, Any] = json.loads(row["params"])
    return AuthRequest(**data)


def drop_interaction(bundle: Services, interaction_id: str) -> None:
    """Forget an interaction once it has been answered."""
    bundle.tenant.store.execute("DELETE FROM interactions WHERE id = ?", (interaction_id,))


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
    """After login: ask for consent when needed, else complete."""
    bundle = services(request)
    api = _api_of(bundle, auth)
    if needs_consent(bundle, client, user, auth, api):
        if "none" in auth.prompt:
            return error_to_client(
                request, client, auth, "consent_required", "Consent is required", status=status
            )
        interaction_id = interaction_id or save_interaction(bundle, session, auth)
        return RedirectResponse(f"/consent?interaction={interaction_id}", status_code=status)
    if interaction_id:
        drop_interaction(bundle, interaction_id)
    return complete(request, client, auth, user, session.auth_time or bundle.tenant.now(), status)


# ------------------------------------------------------------------- endpoints


async def authorize(request: Request) -> Response:
    """``GET /authorize``."""
    bundle = services(request)
    params, repeated = _single_params(request)
    try:
        client, auth, problem = parse_authorization_request(bundle, params, repeated)
    except PageError as exc:
        return error_page(request, "Invalid authorization request", exc.message)
    if problem is not None:
        return error_to_client(request, client, auth, problem.error, problem.description)
    session, new_sid = bundle.sessions.ensure(request)
    user = bundle.sessions.user(session)
    if user is None or "login" in auth.prompt:
        if "none" in auth.prompt:
            return error_to_client(request, client, auth, "login_required", "Login required")
        interaction_id = save_interaction(bundle, session, auth)
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
    auth = load_interaction(bundle, session, interaction)
    client = bundle.tenant.find_client(auth.client_id) if auth else None
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
    if interaction and load_interaction(bundle, session, interaction) is None:
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
    auth = load_interaction(bundle, session, interaction) if interaction else None
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
    user = bundle.tenant.authenticate_user(email, password) if email and password else None
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
        client = bundle.tenant.find_client(auth.client_id)
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
    api = _api_of(bundle, auth)
    known = bundle.tenant.consented_scopes(user.user_id, client.client_id, auth.audience or "")
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
    owner_id = owner_of(bundle.tenant.store, client.client_id)
    owner = bundle.tenant.find_user(owner_id) if owner_id else None
    if owner is not None:
        return f"Registered on the developer portal by {owner.email} (not reviewed)."
    return "Registered by itself through open dynamic registration (not reviewed)."


async def consent_form(request: Request) -> Response:
    """``GET /consent``: show what the client asks for (a GET never grants anything)."""
    bundle = services(request)
    session = bundle.sessions.load(request)
    user = bundle.sessions.user(session)
    iid = request.query_params.get("interaction", "")
    auth = load_interaction(bundle, session, iid)
    client = bundle.tenant.find_client(auth.client_id) if auth else None
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
    auth = load_interaction(bundle, session, iid)
    client = bundle.tenant.find_client(auth.client_id) if auth else None
    if session is None or user is None or auth is None or client is None:
        return error_page(request, "Session expired", "Start the sign-in again from the app.")
    if not session.check_csrf(f"consent:{iid}", form["csrf_token"]):
        return error_page(request, "Forbidden", "The form expired; please try again.", 403)
    decision = form["decision"]
    if decision not in ("allow", "deny"):
        return error_page(request, "Invalid request", "Choose Accept or Decline.")
    drop_interaction(bundle, iid)
    if decision == "deny":
        return error_to_client(
            request, client, auth, "access_denied", "The user declined the request", status=303
        )
    bundle.tenant.remember_consent(user.user_id, client.client_id, auth.audience or "", auth.scopes)
    return complete(
        request, client, auth, user, session.auth_time or bundle.tenant.now(), status=303
    )


def _logout_target(
    bundle: Services, client_id: str | None, return_to: str | None
) -> tuple[Client | None, str | None]:
    """The client named in a logout request and its ``returnTo``, kept only if registered.

    ``returnTo`` must be one of the client's registered callback URLs (exact match, any
    port for loopback IPs), so logout is never an open redirector.
    """
    client = bundle.tenant.find_client(client_id) if client_id else None
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
