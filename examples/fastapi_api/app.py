"""The Organizer API on FastAPI: one public route, one for any valid token, one per scope.

``create_app()`` reads ``APIGUARD_ISSUER`` and ``APIGUARD_AUDIENCE`` from the environment
(and, for opaque tokens, ``APIGUARD_TOKEN_MODE`` with ``APIGUARD_INTROSPECTION_CLIENT_ID``
and ``_SECRET``), with defaults that point at the local authorization server (``python -m
examples.authz_server``) and its Organizer API, and ``APIGUARD_DPOP`` (``off``, the default;
``allowed``; ``required``) and ``APIGUARD_REPLAY_STORE`` (a ``redis://`` URL that several
workers share; in memory when unset) for DPoP-bound tokens, and ``APIGUARD_KEY_STORE`` (a
``redis://`` URL where workers share the fetched keys; each its own when unset). It answers
exactly as the Flask and the Starlette examples do, and its OpenAPI document describes every
route's security: Swagger UI at ``/docs`` signs a person in with the authorization-code flow
and PKCE (as the bundled server's "API Explorer" client), its files served by the app
itself.
"""

# No ``from __future__ import annotations``: FastAPI reads the route functions' annotations
# at run time, and ``Depends(auth)`` names a local variable.
import itertools
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime
from typing import Annotated, Any

from fastapi import Depends, FastAPI, Request, Security
from fastapi.responses import JSONResponse, Response

from apiguard import MULTI_FACTOR, AccessToken, AsyncValidator, Introspection
from apiguard.fastapi import Authorize, install, swagger_ui

DEFAULT_ISSUER = "http://127.0.0.1:9000/"
DEFAULT_AUDIENCE = "https://organizer.example/api"
# The bundled authorization server's public client for this page ("API Explorer"); its
# callback is /docs/oauth2-redirect on a loopback address.
DOCS_CLIENT_ID = "api-explorer"
SCOPES = {
    "read:appointments": "Read your appointments",
    "create:appointments": "Create appointments",
    "delete:appointments": "Delete appointments",
    "read:contacts": "Read your contacts",
    "read:tasks": "Read your tasks",
}
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


def _is_datetime(value: object) -> bool:
    try:
        return isinstance(value, str) and bool(datetime.fromisoformat(value))
    except ValueError:
        return False


def create_app(validator: AsyncValidator | None = None) -> FastAPI:
    """Build the Organizer API.

    Args:
        validator: the validator to use (tests pass their own); by default one built from
            ``APIGUARD_ISSUER`` and ``APIGUARD_AUDIENCE``, closed when the app stops.
    """
    audience = os.environ.get("APIGUARD_AUDIENCE", DEFAULT_AUDIENCE)
    owned = validator is None
    if validator is None:
        validator = AsyncValidator(
            # One issuer URL, or several separated by spaces: each is trusted on its own.
            issuers=os.environ.get("APIGUARD_ISSUER", DEFAULT_ISSUER).split(),
            audience=audience,
            # Opaque tokens: jwt (the default), introspection or auto, with the API's client.
            token_mode=os.environ.get("APIGUARD_TOKEN_MODE", "jwt"),
            introspection=Introspection.from_env(),
            dpop=os.environ.get("APIGUARD_DPOP", "off"),  # type: ignore[arg-type]
            replay_store=os.environ.get("APIGUARD_REPLAY_STORE") or None,
            key_store=os.environ.get("APIGUARD_KEY_STORE") or None,
        )
    # The API's protected-resource metadata (RFC 9728): its identifier is its audience.
    # OpenAPI describes the authorization-code flow (endpoints from the issuer's discovery),
    # so that Swagger UI's "Authorize" button signs a person in.
    auth = Authorize(
        validator, resource=audience, flow="authorization_code", scope_descriptions=SCOPES
    )
    organizer_admin = auth.requires_role("organizer-admin", claim=ROLES_CLAIM)
    recent_mfa = auth.requires_step_up([MULTI_FACTOR], max_age=SECURITY_MAX_AGE)
    organizer = Organizer()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        try:
            yield
        finally:
            if owned:
                await validator.aclose()

    app = FastAPI(title="Organizer API", lifespan=lifespan)
    install(app)
    swagger_ui(app, client_id=DOCS_CLIENT_ID, audience=audience)

    @app.get("/api/public")
    async def public() -> dict[str, Any]:
        message = "Hello from a public endpoint! You don't need to be authenticated to see this."
        return {"message": message}

    @app.get("/api/private")
    async def private(token: Annotated[AccessToken, Depends(auth)]) -> dict[str, Any]:
        message = "Hello from a private endpoint! You need to be authenticated to see this."
        return {"message": message, "subject": token.subject}

    @app.get("/api/appointments", dependencies=[Security(auth, scopes=["read:appointments"])])
    async def list_appointments() -> dict[str, Any]:
        return {"appointments": organizer.appointments}

    @app.post(
        "/api/appointments",
        status_code=201,
        dependencies=[Security(auth, scopes=["create:appointments"])],
        response_model=None,
    )
    async def create_appointment(request: Request) -> dict[str, Any] | JSONResponse:
        # The body is read by hand so that a bad one gets the same 400 as the other
        # examples' (FastAPI's own validation would answer 422 with another shape).
        try:
            body = await request.json()
        except ValueError:
            body = None
        if not (isinstance(body, dict) and isinstance(body.get("title"), str) and body["title"]):
            return JSONResponse(BAD_BODY, status_code=400)
        if len(body["title"]) > 200 or not _is_datetime(body.get("at")):
            return JSONResponse(BAD_BODY, status_code=400)
        appointment = {"id": next(organizer.ids), "title": body["title"], "at": body["at"]}
        organizer.appointments.append(appointment)
        return appointment

    @app.delete(
        "/api/appointments/{appointment_id}",
        status_code=204,
        dependencies=[Security(organizer_admin, scopes=["delete:appointments"])],
        response_model=None,
    )
    async def delete_appointment(appointment_id: int) -> Response:
        for index, appointment in enumerate(organizer.appointments):
            if appointment["id"] == appointment_id:
                del organizer.appointments[index]
                return Response(status_code=204)
        return JSONResponse(
            {"error": "not_found", "error_description": "No such appointment"}, status_code=404
        )

    @app.get("/api/security")
    async def security(token: Annotated[AccessToken, Security(recent_mfa)]) -> dict[str, Any]:
        return {
            "message": "Your security settings. You signed in with a second factor recently.",
            "acr": token.claims["acr"],
            "auth_time": token.claims["auth_time"],
        }

    @app.get("/api/contacts", dependencies=[Security(auth, scopes=["read:contacts"])])
    async def list_contacts() -> dict[str, Any]:
        return {"contacts": organizer.contacts}

    @app.get("/api/tasks", dependencies=[Security(auth, scopes=["read:tasks"])])
    async def list_tasks() -> dict[str, Any]:
        return {"tasks": organizer.tasks}

    return app
