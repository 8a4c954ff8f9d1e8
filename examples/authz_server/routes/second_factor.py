"""``/login/otp``: the page that asks a signed-in user for the one-time code.

The rules are :mod:`..second_factor`'s; this module only renders and reads the form.
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from .. import authorization, second_factor
from ..models import Session
from ..web import Services, error_page, read_form, render, same_origin_post, services
from .authorize import proceed

EXPIRED = "The code expired. A new one is in the server log."
WRONG = "Wrong code."


def _context(
    bundle: Services, session: Session, interaction: str, error: str | None = None
) -> dict[str, Any]:
    auth = authorization.resume(bundle.domain, session.sid_hash, interaction)
    client = bundle.domain.clients.find(auth.client_id) if auth else None
    return {
        "csrf_token": session.csrf_token(f"otp:{interaction}"),
        "interaction": interaction,
        "client": client,
        "error": error,
    }


async def otp_form(request: Request) -> Response:
    """``GET /login/otp``: send a code (to the log) and ask for it."""
    bundle = services(request)
    session = bundle.sessions.load(request)
    user = bundle.sessions.user(session)
    interaction = request.query_params.get("interaction", "")
    sid_hash = session.sid_hash if session else None
    if session is None or user is None:
        return error_page(request, "Session expired", "Start the sign-in again from the app.")
    if authorization.resume(bundle.domain, sid_hash, interaction) is None:
        return error_page(request, "Session expired", "Start the sign-in again from the app.")
    second_factor.send_code(bundle.domain, session, user)
    return render(request, "otp.html", _context(bundle, session, interaction))


async def otp_submit(request: Request) -> Response:
    """``POST /login/otp``: check the code; the session's sign-in becomes multi-factor."""
    bundle = services(request)
    if not same_origin_post(request):
        return error_page(request, "Forbidden", "Cross-site form submission refused.", 403)
    session = bundle.sessions.load(request)
    user = bundle.sessions.user(session)
    form = await read_form(request, "interaction", "csrf_token", "code")
    interaction = form["interaction"] or ""
    sid_hash = session.sid_hash if session else None
    auth = authorization.resume(bundle.domain, sid_hash, interaction)
    client = bundle.domain.clients.find(auth.client_id) if auth else None
    if session is None or user is None or auth is None or client is None:
        return error_page(request, "Session expired", "Start the sign-in again from the app.")
    if not session.check_csrf(f"otp:{interaction}", form["csrf_token"]):
        return error_page(request, "Forbidden", "The form expired; please try again.", 403)
    problem = second_factor.check_code(bundle.domain, session, form["code"] or "")
    if problem == "expired":
        second_factor.send_code(bundle.domain, session, user)
    if problem is not None:
        text = EXPIRED if problem == "expired" else WRONG
        context = _context(bundle, session, interaction, text)
        return render(request, "otp.html", context, status_code=400)
    stepped = second_factor.step_up(bundle.domain, session)
    return proceed(request, stepped, user, client, auth, status=303, interaction_id=interaction)


routes: list[BaseRoute] = [
    Route("/login/otp", otp_form, methods=["GET"], name="otp_form"),
    Route("/login/otp", otp_submit, methods=["POST"], name="otp"),
]
