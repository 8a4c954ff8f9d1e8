"""The Organizer API on Starlette: one public route, one for any valid token, one per scope.

``create_app()`` reads ``APIGUARD_ISSUER`` and ``APIGUARD_AUDIENCE`` from the environment
(and, for opaque tokens, ``APIGUARD_TOKEN_MODE`` with ``APIGUARD_INTROSPECTION_CLIENT_ID``
and ``_SECRET``),
with defaults that point at the local authorization server (``python -m
examples.authz_server``) and its Organizer API, and ``APIGUARD_DPOP`` (``off``, the
default; ``allowed``; ``required``) and ``APIGUARD_REPLAY_STORE`` (a ``redis://`` URL that
several workers share; in memory when unset) for DPoP-bound tokens, and ``APIGUARD_KEY_STORE``
(a ``redis://`` URL where workers share the fetched keys; each its own when unset).
"""

from __future__ import annotations

import itertools
import os
from datetime import datetime
from typing import Any

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from apiguard import MULTI_FACTOR, Introspection
from apiguard.asgi import (
    BearerAuthMiddleware,
    get_token,
    requires_auth,
    requires_role,
    requires_scope,
    requires_step_up,
)

DEFAULT_ISSUER = "http://127.0.0.1:9000/"
DEFAULT_AUDIENCE = "https://organizer.example/api"
#: Where the authorization server puts the user's role names (an Auth0 namespaced claim).
ROLES_CLAIM = ("https://organizer.example/roles",)
#: The security page wants a multi-factor sign-in no older than this, in seconds.
SECURITY_MAX_AGE = 600
BAD_BODY = {
    "error": "invalid_body",
    "error_description": 'Expected a JSON object with a "title" string and an ISO 8601 "at"',
}


class Organizer:
    """The sample data of one app, in memory (a real API would have a database)."""

    def __init__(self) -> None:
        self.ids = itertools.count(3)
        self.appointments: list[dict[str, Any]] = [
            {"id": 1, "title": "Dentist", "at": "2026-12-01T09:00:00Z"},
            {"id": 2, "title": "Team sync", "at": "2026-12-02T14:30:00Z"},
        ]
        self.contacts = [{"id": 1, "name": "Ada Lovelace", "email": "ada@example.com"}]
        self.tasks = [{"id": 1, "title": "Buy milk", "done": False}]


async def public(request: Request) -> JSONResponse:
    message = "Hello from a public endpoint! You don't need to be authenticated to see this."
    return JSONResponse({"message": message})


@requires_auth
async def private(request: Request) -> JSONResponse:
    token = get_token(request)
    message = "Hello from a private endpoint! You need to be authenticated to see this."
    return JSONResponse({"message": message, "subject": token.subject if token else None})


@requires_scope("read:appointments")
async def list_appointments(request: Request) -> JSONResponse:
    return JSONResponse({"appointments": request.app.state.organizer.appointments})


def _is_datetime(value: object) -> bool:
    try:
        return isinstance(value, str) and bool(datetime.fromisoformat(value))
    except ValueError:
        return False


@requires_scope("create:appointments")
async def create_appointment(request: Request) -> JSONResponse:
    try:
        body = await request.json()
    except ValueError:
        body = None
    if not (isinstance(body, dict) and isinstance(body.get("title"), str) and body["title"]):
        return JSONResponse(BAD_BODY, status_code=400)
    if len(body["title"]) > 200 or not _is_datetime(body.get("at")):
        return JSONResponse(BAD_BODY, status_code=400)
    organizer: Organizer = request.app.state.organizer
    appointment = {"id": next(organizer.ids), "title": body["title"], "at": body["at"]}
    organizer.appointments.append(appointment)
    return JSONResponse(appointment, status_code=201)


@requires_scope("delete:appointments")
@requires_role("organizer-admin", claim=ROLES_CLAIM)
async def delete_appointment(request: Request) -> Response:
    organizer: Organizer = request.app.state.organizer
    appointment_id = request.path_params["appointment_id"]
    for index, appointment in enumerate(organizer.appointments):
        if appointment["id"] == appointment_id:
            del organizer.appointments[index]
            return Response(status_code=204)
    return JSONResponse(
        {"error": "not_found", "error_description": "No such appointment"}, status_code=404
    )


@requires_step_up(acr_values=[MULTI_FACTOR], max_age=SECURITY_MAX_AGE)
async def security(request: Request) -> JSONResponse:
    token = get_token(request)
    claims = token.claims if token else {}
    return JSONResponse(
        {
            "message": "Your security settings. You signed in with a second factor recently.",
            "acr": claims.get("acr"),
            "auth_time": claims.get("auth_time"),
        }
    )


@requires_scope("read:contacts")
async def list_contacts(request: Request) -> JSONResponse:
    return JSONResponse({"contacts": request.app.state.organizer.contacts})


@requires_scope("read:tasks")
async def list_tasks(request: Request) -> JSONResponse:
    return JSONResponse({"tasks": request.app.state.organizer.tasks})


def create_app(**guard_options: Any) -> Starlette:
    """Build the Organizer API; ``guard_options`` go to the middleware (e.g. ``validator=``)."""
    if "validator" not in guard_options:
        if "issuer" not in guard_options and "issuers" not in guard_options:
            # One issuer URL, or several separated by spaces: each is trusted on its own.
            guard_options["issuers"] = os.environ.get("APIGUARD_ISSUER", DEFAULT_ISSUER).split()
        guard_options.setdefault("audience", os.environ.get("APIGUARD_AUDIENCE", DEFAULT_AUDIENCE))
        # Opaque tokens: jwt (the default), introspection or auto, with the API's own client.
        guard_options.setdefault("token_mode", os.environ.get("APIGUARD_TOKEN_MODE", "jwt"))
        guard_options.setdefault("introspection", Introspection.from_env())
        guard_options.setdefault("dpop", os.environ.get("APIGUARD_DPOP", "off"))
        if os.environ.get("APIGUARD_REPLAY_STORE"):
            guard_options.setdefault("replay_store", os.environ["APIGUARD_REPLAY_STORE"])
        if os.environ.get("APIGUARD_KEY_STORE"):
            guard_options.setdefault("key_store", os.environ["APIGUARD_KEY_STORE"])
    # The API's protected-resource metadata (RFC 9728): its identifier is its audience.
    guard_options.setdefault("resource", os.environ.get("APIGUARD_AUDIENCE", DEFAULT_AUDIENCE))
    routes = [
        Route("/api/public", public),
        Route("/api/private", private),
        Route("/api/appointments", list_appointments, methods=["GET"]),
        Route("/api/appointments", create_appointment, methods=["POST"]),
        Route("/api/appointments/{appointment_id:int}", delete_appointment, methods=["DELETE"]),
        Route("/api/security", security),
        Route("/api/contacts", list_contacts),
        Route("/api/tasks", list_tasks),
    ]
    # The public route is not inspected at all, so even a bad token there gets the answer.
    guard = Middleware(BearerAuthMiddleware, exclude_paths=["/api/public"], **guard_options)
    app = Starlette(routes=routes, middleware=[guard])
    app.state.organizer = Organizer()
    return app
