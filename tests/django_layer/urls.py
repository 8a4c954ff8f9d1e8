"""URLs of the Django tests: DRF views with per-method scopes, a plain view, the schema."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest, JsonResponse
from django.urls import path
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema
from drf_spectacular.views import SpectacularAPIView
from rest_framework.permissions import IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from apiguard.django import BearerAuthentication, HasAnyScope, HasScope, get_token, requires_auth


class Appointments(APIView):
    """Scopes per method: read to list, create to add; DELETE is named by nobody."""

    authentication_classes = [BearerAuthentication]
    permission_classes = [HasScope]
    required_scopes = {"GET": ["read:appointments"], "POST": ["create:appointments"]}

    @extend_schema(responses=OpenApiTypes.OBJECT)
    def get(self, request: Request) -> Response:
        return Response(
            {"user": request.user.get_username(), "scopes": sorted(request.auth.scopes)}
        )

    @extend_schema(request=None, responses=OpenApiTypes.OBJECT)
    def post(self, request: Request) -> Response:
        return Response({"created": True}, status=201)

    @extend_schema(responses=None)
    def delete(self, request: Request) -> Response:
        return Response(status=204)


class Tasks(APIView):
    """A second view reading its own required_scopes (each view class has its own)."""

    permission_classes = [HasScope]
    required_scopes = ["read:tasks"]

    @extend_schema(responses=OpenApiTypes.OBJECT)
    def get(self, request: Request) -> Response:
        return Response({"tasks": []})


class Overview(APIView):
    """Either scope suffices."""

    permission_classes = [HasAnyScope("read:contacts", "read:tasks")]

    @extend_schema(responses=OpenApiTypes.OBJECT)
    def get(self, request: Request) -> Response:
        return Response({"ok": True})


class DRFOwn(APIView):
    """DRF's own IsAuthenticated: an anonymous request must still get 401 and a challenge."""

    permission_classes = [IsAuthenticated]

    @extend_schema(responses=OpenApiTypes.OBJECT)
    def get(self, request: Request) -> Response:
        return Response({"ok": True})


@requires_auth
def whoami(request: HttpRequest) -> JsonResponse:
    token = get_token(request)
    assert token is not None
    user: Any = request.user
    return JsonResponse({"user": str(user), "kind": type(user).__name__, "sub": token.subject})


urlpatterns = [
    path("api/appointments", Appointments.as_view()),
    path("api/overview", Overview.as_view()),
    path("api/tasks", Tasks.as_view()),
    path("api/drf-own", DRFOwn.as_view()),
    path("api/whoami", whoami),
    path("api/schema", SpectacularAPIView.as_view()),
]
