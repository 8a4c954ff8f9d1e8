"""What the dashboard's areas share: labels, notices, the API tabs and small helpers."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from ...models import ResourceServer
from ...rules import NotFound
from ...web import services
from ..pages_common import Viewer, show

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


def api_of_path(request: Request) -> ResourceServer:
    api = services(request).domain.apis.find(request.path_params["api_id"])
    if api is None or api.id != request.path_params["api_id"]:
        raise NotFound("The API does not exist")
    return api


def api_page(
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


def checkbox(viewer: Viewer, name: str) -> bool:
    return viewer.value(name) in ("on", "true", "1")
