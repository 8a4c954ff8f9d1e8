"""Django and Django REST framework in-process: the same endpoint bare, protected and raw.

Django is configured here, for this process only (the benchmark runs in a process of its
own): one URLconf with a bare DRF view, the same view behind apiguard's middleware and
``HasScope()``, and one that only verifies the RS256 signature.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from apiguard.testing import LocalIssuer

from ._util import Row, interleaved

__all__ = ["run"]


def _configure() -> None:
    import django
    from django.conf import settings

    if settings.configured:
        return
    settings.configure(
        DEBUG=False,
        SECRET_KEY="bench-only",
        ALLOWED_HOSTS=["*"],
        ROOT_URLCONF=__name__,
        INSTALLED_APPS=["rest_framework", "apiguard.django.ApiguardConfig"],
        MIDDLEWARE=["apiguard.django.BearerAuthMiddleware"],
        DATABASES={},
        APIGUARD={
            "ISSUER": "https://issuer.bench/",
            "AUDIENCE": "https://bench.example/api",
            # The bare and the raw views are not inspected by apiguard at all.
            "EXCLUDE_PATHS": ["/bare", "/raw"],
        },
        REST_FRAMEWORK={
            "DEFAULT_AUTHENTICATION_CLASSES": ["apiguard.django.BearerAuthentication"],
            "DEFAULT_PERMISSION_CLASSES": [],
            "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
            "UNAUTHENTICATED_USER": None,
        },
    )
    django.setup()


urlpatterns: list[Any] = []


def _urls(verify: Callable[[str], bool]) -> None:
    from django.urls import path
    from rest_framework.exceptions import NotAuthenticated
    from rest_framework.request import Request
    from rest_framework.response import Response
    from rest_framework.views import APIView

    from apiguard.django import HasScope

    class Bare(APIView):
        authentication_classes: list[Any] = []
        permission_classes: list[Any] = []

        def get(self, request: Request) -> Response:
            return Response({"ok": True})

    class Protected(Bare):
        authentication_classes = []  # the middleware's token is what HasScope reads
        permission_classes = [HasScope()]

    class Raw(Bare):
        def get(self, request: Request) -> Response:
            value = request.META.get("HTTP_AUTHORIZATION", "")
            if not value.startswith("Bearer ") or not verify(value[7:]):
                raise NotAuthenticated
            return Response({"ok": True})

    urlpatterns[:] = [
        path("bare", Bare.as_view()),
        path("protected", Protected.as_view()),
        path("raw", Raw.as_view()),
    ]


def run(
    issuer: LocalIssuer, calls: int, rows: Callable[[str, dict[str, float]], list[Row]]
) -> list[Row]:
    """The Django/DRF rows: bare, protected (repeated and unique tokens), raw verify."""
    from ._apps import raw_verifier
    from .frameworks import _empty_cache

    _configure()
    from django.test import Client

    from apiguard import django as dj

    _urls(raw_verifier(issuer.current_key.private_key.public_key()))
    client = Client()
    repeated = {"HTTP_AUTHORIZATION": f"Bearer {issuer.token()}"}
    unique = [{"HTTP_AUTHORIZATION": f"Bearer {issuer.token()}"} for _ in range(calls)]
    with dj.use_issuer(issuer, exclude_paths=["/bare", "/raw"]) as state:
        validator = state.validator
        assert client.get("/protected", **repeated).status_code == 200
        assert client.get("/protected").status_code == 401

        def bare_loop() -> None:
            for _ in range(calls):
                client.get("/bare", **repeated)

        def repeated_loop() -> None:
            for _ in range(calls):
                client.get("/protected", **repeated)

        def unique_loop() -> None:
            _empty_cache(validator)
            for headers in unique:
                client.get("/protected", **headers)

        def raw_loop() -> None:
            for headers in unique:
                client.get("/raw", **headers)

        tokens = [h["HTTP_AUTHORIZATION"][7:] for h in unique]

        def validate_loop() -> None:
            _empty_cache(validator)
            for token in tokens:
                validator.validate(token)

        t = interleaved(
            {
                "bare": bare_loop,
                "repeated": repeated_loop,
                "unique": unique_loop,
                "raw": raw_loop,
                "validate": validate_loop,
            },
            calls,
        )
    return rows("Django/DRF test client", t)
