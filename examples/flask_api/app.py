"""The Organizer API on Flask: a public route, one for any valid token, one per scope, and
two beyond scopes: deleting needs a role, the security page a recent multi-factor sign-in.

``create_app()`` reads ``APIGUARD_ISSUER`` and ``APIGUARD_AUDIENCE`` from the environment,
with defaults that point at the local authorization server (``python -m
examples.authz_server``) and its Organizer API, and ``APIGUARD_DPOP`` (``off``, the default;
``allowed``; ``required``) and ``APIGUARD_REPLAY_STORE`` (a ``redis://`` URL that several
workers share; in memory when unset) for DPoP-bound tokens; ``APIGUARD_KEY_STORE`` (a
``redis://`` URL where workers share the fetched keys; each its own when unset); for opaque
tokens, ``APIGUARD_TOKEN_MODE`` (``jwt``, ``introspection`` or ``auto``) and the
introspection client's ``APIGUARD_INTROSPECTION_CLIENT_ID`` and
``APIGUARD_INTROSPECTION_CLIENT_SECRET``.
"""

from __future__ import annotations

import itertools
import os
import threading
from datetime import datetime
from typing import Any

from flask import Blueprint, Flask, current_app, request

from apiguard import MULTI_FACTOR, Introspection
from apiguard.flask import (
    ApiGuard,
    current_token,
    requires_auth,
    requires_role,
    requires_scope,
    requires_step_up,
)

DEFAULT_ISSUER = "http://127.0.0.1:9000/"
DEFAULT_AUDIENCE = "https://organizer.example/api"
BAD_BODY = {
    "error": "invalid_body",
    "error_description": 'Expected a JSON object with a "title" string and an ISO 8601 "at"',
}

#: Where the authorization server puts the user's role names (an Auth0 namespaced claim).
ROLES_CLAIM = ("https://organizer.example/roles",)
#: The security page wants a multi-factor sign-in no older than this, in seconds.
SECURITY_MAX_AGE = 600

# Defined before any app exists: the decorators find the app's ApiGuard at request time.
api = Blueprint("organizer", __name__, url_prefix="/api")


class Organizer:
    """The sample data of one app, in memory (a real API would have a database)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.ids = itertools.count(3)
        self.appointments: list[dict[str, Any]] = [
            {"id": 1, "title": "Dentist", "at": "2026-12-01T09:00:00Z"},
            {"id": 2, "title": "Team sync", "at": "2026-12-02T14:30:00Z"},
        ]
        self.contacts = [{"id": 1, "name": "Ada Lovelace", "email": "ada@example.com"}]
        self.tasks = [{"id": 1, "title": "Buy milk", "done": False}]


def organizer() -> Organizer:
    store: Organizer = current_app.extensions["organizer"]
    return store


@api.get("/public")
def public() -> dict[str, Any]:
    return {
        "message": "Hello from a public endpoint! You don't need to be authenticated to see this."
    }


@api.get("/private")
@requires_auth
def private() -> dict[str, Any]:
    return {
        "message": "Hello from a private endpoint! You need to be authenticated to see this.",
        "subject": current_token.subject,
    }


@api.get("/appointments")
@requires_scope("read:appointments")
def list_appointments() -> dict[str, Any]:
    return {"appointments": organizer().appointments}


@api.post("/appointments")
@requires_scope("create:appointments")
def create_appointment() -> tuple[dict[str, Any], int]:
    body = request.get_json(silent=True)
    if not (isinstance(body, dict) and isinstance(body.get("title"), str) and body["title"]):
        return BAD_BODY, 400
    if len(body["title"]) > 200 or not _is_datetime(body.get("at")):
        return BAD_BODY, 400
    store = organizer()
    with store.lock:
        appointment = {"id": next(store.ids), "title": body["title"], "at": body["at"]}
        store.appointments.append(appointment)
    return appointment, 201


@api.delete("/appointments/<int:appointment_id>")
@requires_scope("delete:appointments")
@requires_role("organizer-admin", claim=ROLES_CLAIM)
def delete_appointment(appointment_id: int) -> tuple[dict[str, Any] | str, int]:
    store = organizer()
    with store.lock:
        for index, appointment in enumerate(store.appointments):
            if appointment["id"] == appointment_id:
                del store.appointments[index]
                return "", 204
    return {"error": "not_found", "error_description": "No such appointment"}, 404


@api.get("/security")
@requires_step_up(acr_values=[MULTI_FACTOR], max_age=SECURITY_MAX_AGE)
def security() -> dict[str, Any]:
    claims = current_token.claims
    return {
        "message": "Your security settings. You signed in with a second factor recently.",
        "acr": claims["acr"],
        "auth_time": claims["auth_time"],
    }


def _is_datetime(value: object) -> bool:
    try:
        return isinstance(value, str) and bool(datetime.fromisoformat(value))
    except ValueError:
        return False


@api.get("/contacts")
@requires_scope("read:contacts")
def list_contacts() -> dict[str, Any]:
    return {"contacts": organizer().contacts}


@api.get("/tasks")
@requires_scope("read:tasks")
def list_tasks() -> dict[str, Any]:
    return {"tasks": organizer().tasks}


def create_app(**guard_options: Any) -> Flask:
    """Build the Organizer API; ``guard_options`` go to ApiGuard (e.g. ``validator=``)."""
    app = Flask(__name__)
    # One issuer URL, or several separated by spaces: ApiGuard trusts each on its own.
    app.config["APIGUARD_ISSUER"] = os.environ.get("APIGUARD_ISSUER", DEFAULT_ISSUER)
    app.config["APIGUARD_AUDIENCE"] = os.environ.get("APIGUARD_AUDIENCE", DEFAULT_AUDIENCE)
    app.config["APIGUARD_DPOP"] = os.environ.get("APIGUARD_DPOP", "off")
    if os.environ.get("APIGUARD_REPLAY_STORE"):
        app.config["APIGUARD_REPLAY_STORE"] = os.environ["APIGUARD_REPLAY_STORE"]
    if os.environ.get("APIGUARD_KEY_STORE"):
        app.config["APIGUARD_KEY_STORE"] = os.environ["APIGUARD_KEY_STORE"]
    # The API's protected-resource metadata (RFC 9728): its identifier is its audience.
    app.config["APIGUARD_RESOURCE"] = app.config["APIGUARD_AUDIENCE"]
    # Opaque tokens: jwt (the default), introspection or auto, with the API's own client.
    app.config["APIGUARD_TOKEN_MODE"] = os.environ.get("APIGUARD_TOKEN_MODE", "jwt")
    app.config["APIGUARD_INTROSPECTION"] = Introspection.from_env()
    app.extensions["organizer"] = Organizer()
    app.register_blueprint(api)
    ApiGuard(app, **guard_options)
    return app
