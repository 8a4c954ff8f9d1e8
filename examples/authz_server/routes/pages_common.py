"""What the dashboard and the developer portal share: the sign-in gate, CSRF, page rendering.

Every page needs a signed-in user (the dashboard: an admin). Every POST must come from our
own origin and carry the session's CSRF token; both are checked before the handler runs,
so a handler only ever sees a trusted form. Domain errors become a 4xx page, never a 500.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from ..models import Session, User
from ..rules import TenantError
from ..web import error_page, form_value, render, same_origin_post, services

# One CSRF purpose for the signed-in pages (the session is rotated at login, so the token
# changes with it); sign-up forms use their own purpose on the anonymous session.
PAGES_CSRF = "pages"
SIGNUP_CSRF = "signup"
LOGOUT_CSRF = "logout"


@dataclass(frozen=True)
class Viewer:
    """The signed-in person looking at a page, with the submitted form on POST."""

    session: Session
    user: User
    form: FormData = field(default_factory=FormData)

    @property
    def csrf_token(self) -> str:
        """The token every form of these pages carries."""
        return self.session.csrf_token(PAGES_CSRF)

    def value(self, name: str) -> str:
        """A single text field of the form ('' when absent or repeated)."""
        return (form_value(self.form, name) or "").strip()

    def values(self, name: str) -> list[str]:
        """Every text value of a repeated field (checkboxes)."""
        return [v for v in self.form.getlist(name) if isinstance(v, str)]


Handler = Callable[[Request, Viewer], Awaitable[Response]]
Endpoint = Callable[[Request], Awaitable[Response]]


def login_redirect(request: Request) -> Response:
    """Send an anonymous visitor to the login page, coming back here afterwards."""
    target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    return RedirectResponse(f"/login?next={quote(target, safe='/')}", status_code=303)


def current_viewer(request: Request) -> tuple[Session, User] | None:
    """The session and user of the request, when someone is signed in."""
    bundle = services(request)
    session = bundle.sessions.load(request)
    user = bundle.sessions.user(session)
    if session is None or user is None:
        return None
    return session, user


async def check_post(request: Request, session: Session | None, purpose: str) -> FormData | None:
    """The form of a same-origin POST carrying a valid CSRF token, or ``None``."""
    if session is None or not same_origin_post(request):
        return None
    # No uploads on these pages; bounded field count (checkbox lists stay far below it).
    form = await request.form(max_files=0, max_fields=200)
    if not session.check_csrf(purpose, form_value(form, "csrf_token")):
        return None
    return form


def forbidden_form(request: Request) -> Response:
    """The answer to a POST without a valid CSRF token or from another site."""
    return error_page(
        request, "Forbidden", "The form expired or came from another site; please try again.", 403
    )


def page(*, admin: bool) -> Callable[[Handler], Endpoint]:
    """Guard a page: a signed-in user (an admin when *admin*), CSRF on POST, 4xx on errors."""

    def wrap(handler: Handler) -> Endpoint:
        async def endpoint(request: Request) -> Response:
            found = current_viewer(request)
            if found is None:
                if request.method == "GET":
                    return login_redirect(request)
                return error_page(request, "Sign in required", "Sign in first.", 403)
            session, user = found
            if admin and not user.is_admin:
                return error_page(
                    request,
                    "Administrators only",
                    "The dashboard is for the tenant's administrators. "
                    "Developers can use the developer portal at /portal.",
                    403,
                )
            viewer = Viewer(session, user)
            if request.method == "POST":
                form = await check_post(request, session, PAGES_CSRF)
                if form is None:
                    return forbidden_form(request)
                viewer = Viewer(session, user, form)
            try:
                return await handler(request, viewer)
            except TenantError as exc:
                title = "Not found" if exc.status == 404 else "Request refused"
                return error_page(request, title, exc.message, exc.status)

        endpoint.__name__ = handler.__name__
        endpoint.__doc__ = handler.__doc__
        return endpoint

    return wrap


def show(
    request: Request,
    viewer: Viewer | None,
    template: str,
    context: Mapping[str, Any] | None = None,
    *,
    status_code: int = 200,
    notices: Mapping[str, str] | None = None,
) -> Response:
    """Render a page with the viewer, its CSRF token and a notice chosen by ``?done=``.

    Notices are looked up in a fixed table, so nothing from the URL is echoed.
    """
    notice = (notices or {}).get(request.query_params.get("done", ""))
    return render(
        request,
        template,
        {
            "viewer": viewer.user if viewer else None,
            "csrf_token": viewer.csrf_token if viewer else "",
            # The sign-out button posts to /v2/logout, which has its own CSRF purpose.
            "logout_csrf": viewer.session.csrf_token(LOGOUT_CSRF) if viewer else "",
            "notice": notice,
            "path": request.url.path,
            **(context or {}),
        },
        status_code=status_code,
    )


def done(path: str, notice: str) -> Response:
    """Post/Redirect/Get: back to *path* with a notice code."""
    return RedirectResponse(f"{path}?done={notice}", status_code=303)


def url_id(value: str) -> str:
    """A path segment for an id that may contain ``|`` (user ids)."""
    return quote(value, safe="")


_LINE_SPLIT = re.compile(r"[\r\n]+")


def lines(text: str) -> list[str]:
    """The non-empty lines of a textarea (callback URLs, one per line)."""
    return [line.strip() for line in _LINE_SPLIT.split(text) if line.strip()]
