"""The Organizer API on Flask: one public route, one for any valid token, and one per scope.

``create_app()`` reads ``APIGUARD_ISSUER`` and ``APIGUARD_AUDIENCE`` from the environment,
with defaults that point at the local authorization server (``python -m
examples.authz_server``) and its Organizer API.
"""

from __future__ import annotations

import itertools
import os
import threading
from typing import Any

from flask import Blueprint, Flask, current_app, request

from apiguard.flask import ApiGuard, current_token, requires_auth, requires_scope

DEFAULT_ISSUER = "http://127.0.0.1:9000/"
DEFAULT_AUDIENCE = "https://organizer.example/api"

# Defined before any app exists: the decorators find the app's ApiGuard at request time.
api = Blueprint("organizer", __name__, url_prefix="/api")


class Organizer:
    """The sample data of one app, in memory (a real API would have a database)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.ids = itertools.count(3)
        self.appointments = [
            {"id": 1, "title": "Dentist", "starts_at": "2030-01-15T09:30:00Z"},
            {"id": 2, "title": "Team lunch", "starts_at": "2030-01-16T12:00:00Z"},
        ]
        self.contacts = [{"name": "Ada Lovelace", "email": "ada@organizer.example"}]
        self.tasks = [{"title": "Renew passport", "done": False}]


def organizer() -> Organizer:
    store: Organizer = current_app.extensions["organizer"]
    return store


@api.get("/public")
def public() -> dict[str, Any]:
    return {"message": "Hello from a public endpoint: no token needed."}


@api.get("/private")
@requires_auth
def private() -> dict[str, Any]:
    return {
        "message": "Hello from a private endpoint: any valid token will do.",
        "subject": current_token.subject,
        "client_id": current_token.client_id,
        "scopes": sorted(current_token.scopes),
    }


@api.get("/appointments")
@requires_scope("read:appointments")
def list_appointments() -> dict[str, Any]:
    return {"appointments": organizer().appointments}


@api.post("/appointments")
@requires_scope("create:appointments")
def create_appointment() -> tuple[dict[str, Any], int]:
    body = request.get_json(silent=True)
    if not isinstance(body, dict) or not isinstance(body.get("title"), str):
        return {"error": 'expected a JSON object with a "title" string'}, 400
    store = organizer()
    with store.lock:
        appointment = {
            "id": next(store.ids),
            "title": body["title"][:200],
            "starts_at": body.get("starts_at") if isinstance(body.get("starts_at"), str) else None,
            "created_by": current_token.subject,
        }
        store.appointments.append(appointment)
    return appointment, 201


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
    app.config["APIGUARD_ISSUER"] = os.environ.get("APIGUARD_ISSUER", DEFAULT_ISSUER)
    app.config["APIGUARD_AUDIENCE"] = os.environ.get("APIGUARD_AUDIENCE", DEFAULT_AUDIENCE)
    app.extensions["organizer"] = Organizer()
    app.register_blueprint(api)
    ApiGuard(app, **guard_options)
    return app
