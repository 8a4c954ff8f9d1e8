"""The layer table's API on Django: plain views (sync and async) and DRF views.

Three URLconfs, each a module attribute: ``sync_urls`` and ``async_urls`` use
:func:`apiguard.django.requires_auth` / ``requires_scope`` on function views, ``drf_urls``
uses DRF ``APIView`` classes with ``BearerAuthentication`` and ``HasScope``.
"""

from __future__ import annotations

import types
from collections.abc import Callable
from inspect import iscoroutinefunction
from typing import Any

from adapters import MAX_AGE, ROLES, STAFF, TENANT, VERIFIED
from django.http import HttpRequest, JsonResponse
from django.urls import path
from django.views.decorators.http import require_http_methods
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from apiguard import MULTI_FACTOR, has_permissions, has_roles, step_up
from apiguard import django as dj


def _subject(request: HttpRequest) -> JsonResponse:
    token = dj.get_token(request)
    return JsonResponse({"subject": token.subject if token else None})


async def _async_subject(request: HttpRequest) -> JsonResponse:
    return _subject(request)


def _echo(view: Callable[..., Any]) -> Callable[..., Any]:
    if iscoroutinefunction(view):

        async def async_with_name(request: HttpRequest, name: str = "") -> Any:
            return await view(request)

        return async_with_name

    def with_name(request: HttpRequest, name: str = "") -> Any:
        return view(request)

    return with_name


def _plain(view: Callable[..., Any]) -> list[Any]:
    get = require_http_methods(["GET"])
    return [
        path("private", get(dj.requires_auth(view))),
        path("noscopes", get(dj.requires_scope()(view))),
        path("scoped", get(dj.requires_scope("read:a")(view))),
        path("all", get(dj.requires_scope("read:a", "read:b")(view))),
        path("any", get(dj.requires_scope("read:a", "read:b", match="any")(view))),
        path("optional", get(dj.requires_auth(optional=True)(view))),
        path("options", require_http_methods(["GET", "OPTIONS"])(dj.requires_auth(view))),
        path("form", require_http_methods(["GET", "POST"])(dj.requires_auth(view))),
        path("public", get(view)),
        path("static/public/<path:name>", get(_echo(view))),
        path("static/private/<path:name>", get(_echo(view))),
        path("permission", get(dj.requires_permission("delete:a")(view))),
        path("role", get(dj.requires_role("organizer-admin", claim=ROLES)(view))),
        path("configured-role", get(dj.requires_role("admin")(view))),
        path("tenant", get(dj.requires(TENANT)(view))),
        path("groups", get(dj.requires(STAFF)(view))),
        path("verified", get(dj.requires(VERIFIED)(view))),
        path("step-up", get(dj.requires_step_up([MULTI_FACTOR], MAX_AGE)(view))),
        path(
            "delete",
            get(
                dj.requires_scope("delete:a")(
                    dj.requires_role("organizer-admin", claim=ROLES)(view)
                )
            ),
        ),
    ]


class _Subject(APIView):
    """Answers who asked, for GET (and POST where a view allows it)."""

    def get(self, request: Request, name: str = "") -> Response:
        token = request.auth
        return Response({"subject": token.subject if token else None})


def _drf(name: str, permissions: list[Any], methods: tuple[str, ...] = ("get",)) -> Any:
    attributes: dict[str, Any] = {"permission_classes": permissions}
    if "post" in methods:
        attributes["post"] = _Subject.get
    if "options" in methods:
        attributes["options"] = _Subject.get
    attributes["http_method_names"] = [*methods, "head"]
    return type(name, (_Subject,), attributes).as_view()


class _Listed(_Subject):
    permission_classes = [dj.HasScope]
    required_scopes = {"GET": [], "POST": [], "OPTIONS": []}


_drf_patterns = [
    path("private", _drf("Private", [dj.HasScope()])),
    path("noscopes", _drf("NoScopes", [dj.HasScope])),
    path("scoped", _drf("Scoped", [dj.HasScope("read:a")])),
    path("all", _drf("All", [dj.HasScope("read:a", "read:b")])),
    path("any", _drf("Any", [dj.HasAnyScope("read:a", "read:b")])),
    path("optional", _drf("Optional", [])),
    path(
        "options",
        type(
            "Options",
            (_Listed,),
            {"options": _Subject.get, "http_method_names": ["get", "options", "head"]},
        ).as_view(),
    ),
    path(
        "form",
        type(
            "Form", (_Listed,), {"post": _Subject.get, "http_method_names": ["get", "post"]}
        ).as_view(),
    ),
    path("public", _drf("Public", [])),
    path("static/public/<path:name>", _drf("StaticPublic", [])),
    path("static/private/<path:name>", _drf("StaticPrivate", [])),
    path("permission", _drf("Permission", [dj.Requires(has_permissions("delete:a"))])),
    path("role", _drf("Role", [dj.Requires(has_roles("organizer-admin", claim=ROLES))])),
    path("configured-role", _drf("ConfiguredRole", [dj.Requires(has_roles("admin"))])),
    path("tenant", _drf("Tenant", [dj.Requires(TENANT)])),
    path("groups", _drf("Groups", [dj.Requires(STAFF)])),
    path("verified", _drf("Verified", [dj.Requires(VERIFIED)])),
    path("step-up", _drf("StepUp", [dj.Requires(step_up([MULTI_FACTOR], MAX_AGE))])),
    path(
        "delete",
        _drf(
            "Delete",
            [dj.HasScope("delete:a"), dj.Requires(has_roles("organizer-admin", claim=ROLES))],
        ),
    ),
]


def _urlconf(name: str, patterns: list[Any]) -> types.ModuleType:
    module = types.ModuleType(name)
    module.urlpatterns = patterns  # type: ignore[attr-defined]
    return module


sync_urls = _urlconf("sync_urls", _plain(_subject))
async_urls = _urlconf("async_urls", _plain(_async_subject))
drf_urls = _urlconf("drf_urls", _drf_patterns)
