"""The Organizer routes as DRF views: one public, one for any valid token, one per scope."""

from __future__ import annotations

import itertools
import json
import threading
from datetime import datetime
from typing import Any

from django.http import HttpResponse
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from apiguard import MULTI_FACTOR, AccessToken, has_roles, step_up
from apiguard.django import HasScope, Requires

#: Where the authorization server puts the user's role names (an Auth0 namespaced claim).
ROLES_CLAIM = ("https://organizer.example/roles",)
#: The security page wants a multi-factor sign-in no older than this, in seconds.
SECURITY_MAX_AGE = 600

BAD_BODY = {
    "error": "invalid_body",
    "error_description": 'Expected a JSON object with a "title" string and an ISO 8601 "at"',
}


class Organizer:
    """The sample data of one process, in memory (a real API would have a database)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.ids = itertools.count(3)
        self.appointments: list[dict[str, Any]] = [
            {"id": 1, "title": "Dentist", "at": "2026-12-01T09:00:00Z"},
            {"id": 2, "title": "Team sync", "at": "2026-12-02T14:30:00Z"},
        ]
        self.contacts = [{"id": 1, "name": "Ada Lovelace", "email": "ada@example.com"}]
        self.tasks = [{"id": 1, "title": "Buy milk", "done": False}]


organizer = Organizer()


def _is_datetime(value: object) -> bool:
    try:
        return isinstance(value, str) and bool(datetime.fromisoformat(value))
    except ValueError:
        return False


class Public(APIView):
    permission_classes = []

    def get(self, request: Request) -> Response:
        message = "Hello from a public endpoint! You don't need to be authenticated to see this."
        return Response({"message": message})


class Private(APIView):
    permission_classes = [HasScope()]  # any valid token

    def get(self, request: Request) -> Response:
        token: AccessToken = request.auth
        message = "Hello from a private endpoint! You need to be authenticated to see this."
        return Response({"message": message, "subject": token.subject})


class Appointments(APIView):
    permission_classes = [HasScope]
    required_scopes = {"GET": ["read:appointments"], "POST": ["create:appointments"]}

    def get(self, request: Request) -> Response:
        return Response({"appointments": organizer.appointments})

    def post(self, request: Request) -> Response:
        # The body is read by hand so that a bad one gets the same 400 as the other
        # examples' (DRF's parser would answer {"detail": ...}).
        try:
            body = json.loads(request.body)
        except ValueError:
            body = None
        if not (isinstance(body, dict) and isinstance(body.get("title"), str) and body["title"]):
            return Response(BAD_BODY, status=400)
        if len(body["title"]) > 200 or not _is_datetime(body.get("at")):
            return Response(BAD_BODY, status=400)
        with organizer.lock:
            appointment = {"id": next(organizer.ids), "title": body["title"], "at": body["at"]}
            organizer.appointments.append(appointment)
        return Response(appointment, status=201)


class Appointment(APIView):
    permission_classes = [
        HasScope("delete:appointments"),
        Requires(has_roles("organizer-admin", claim=ROLES_CLAIM)),
    ]

    def delete(self, request: Request, appointment_id: int) -> HttpResponse | Response:
        with organizer.lock:
            for index, appointment in enumerate(organizer.appointments):
                if appointment["id"] == appointment_id:
                    del organizer.appointments[index]
                    return HttpResponse(status=204)
        return Response({"error": "not_found", "error_description": "No such appointment"}, 404)


class Security(APIView):
    permission_classes = [Requires(step_up([MULTI_FACTOR], SECURITY_MAX_AGE))]

    def get(self, request: Request) -> Response:
        claims = request.auth.claims
        return Response(
            {
                "message": "Your security settings. You signed in with a second factor recently.",
                "acr": claims["acr"],
                "auth_time": claims["auth_time"],
            }
        )


class Contacts(APIView):
    permission_classes = [HasScope("read:contacts")]

    def get(self, request: Request) -> Response:
        return Response({"contacts": organizer.contacts})


class Tasks(APIView):
    permission_classes = [HasScope("read:tasks")]

    def get(self, request: Request) -> Response:
        return Response({"tasks": organizer.tasks})
