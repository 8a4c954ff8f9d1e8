"""check_revocation in the Django layer: the middleware's token reused, the issuer asked once."""

from __future__ import annotations

import asyncio
import types
from typing import Any

import pytest
from django.http import HttpRequest, JsonResponse
from django.test import AsyncClient, Client, override_settings
from django.urls import path
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from apiguard import IssuerPolicy, has_roles
from apiguard import django as dj
from apiguard.testing import LocalIssuer

INTROSPECT = "/oauth/introspect"


def _subject(request: HttpRequest) -> JsonResponse:
    token = dj.get_token(request)
    return JsonResponse({"subject": token.subject if token else None})


async def _async_subject(request: HttpRequest) -> JsonResponse:
    return _subject(request)


class _Both(APIView):
    """Two permissions that check revocation, behind the middleware and BearerAuthentication."""

    permission_classes = [
        dj.HasScope("read:a", check_revocation=True),
        dj.Requires(has_roles("admin", claim="roles"), check_revocation=True),
    ]

    def get(self, request: Request) -> Response:
        return Response({"subject": request.auth.subject})


class _Listed(APIView):
    """HasScope listed as a class instance without scopes: the view's required_scopes."""

    permission_classes = [dj.HasScope(check_revocation=True)]
    required_scopes = {"GET": ["read:a"]}

    def get(self, request: Request) -> Response:
        return Response({"subject": request.auth.subject})


urls = types.ModuleType("revocation_urls")
urls.urlpatterns = [  # type: ignore[attr-defined]
    path("sync", dj.requires_auth(check_revocation=True)(_subject)),
    path("async", dj.requires_auth(check_revocation=True)(_async_subject)),
    path(
        "stacked",
        dj.requires_scope("read:a", check_revocation=True)(
            dj.requires_auth(check_revocation=True)(_subject)
        ),
    ),
    path("plain", dj.requires_auth(_subject)),
    path("drf", _Both.as_view()),
    path("listed", _Listed.as_view()),
]


def bearer(token: str) -> dict[str, str]:
    return {"HTTP_AUTHORIZATION": f"Bearer {token}"}


def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@pytest.mark.parametrize(
    "route", ["/sync", "/async", "/stacked", "/drf", "/listed"], ids=lambda r: r[1:]
)
def test_a_revoked_jwt_is_refused_and_the_issuer_is_asked_once(
    local_issuer: LocalIssuer, route: str
) -> None:
    """Each request asks the issuer once, even through the middleware and two checks."""
    live = local_issuer.token(scope="read:a", roles=["admin"])
    revoked = local_issuer.token(scope="read:a", roles=["admin"], sub="auth0|gone")
    local_issuer.revoke(revoked)
    with override_settings(ROOT_URLCONF=urls), dj.use_issuer(local_issuer):
        ok = Client().get(route, **bearer(live))
        assert local_issuer.requests[INTROSPECT] == 1
        refused = Client().get(route, **bearer(revoked))
    assert (ok.status_code, ok.json()) == (200, {"subject": "auth0|user-1"})
    assert refused.status_code == 401
    assert refused.json()["error_description"] == "The access token is not active"
    assert 'error="invalid_token"' in refused["WWW-Authenticate"]
    assert local_issuer.requests[INTROSPECT] == 2


def test_a_route_without_the_check_asks_nothing(local_issuer: LocalIssuer) -> None:
    """A revoked JWT still passes a route that does not check revocation (no call made)."""
    revoked = local_issuer.token()
    local_issuer.revoke(revoked)
    with override_settings(ROOT_URLCONF=urls), dj.use_issuer(local_issuer):
        answer = Client().get("/plain", **bearer(revoked))
    assert answer.status_code == 200
    assert local_issuer.requests[INTROSPECT] == 0


@pytest.mark.parametrize("route", ["/sync", "/async", "/drf"], ids=lambda r: r[1:])
def test_no_introspection_settings_fail_closed(local_issuer: LocalIssuer, route: str) -> None:
    """An issuer without introspection settings: a revocation check answers 503, never 200."""
    policy = IssuerPolicy(local_issuer.issuer, audience=local_issuer.audience)
    state = dj.build_state(
        {
            "VALIDATOR": local_issuer.validator(issuers=[policy]),
            "ASYNC_VALIDATOR": local_issuer.async_validator(issuers=[policy]),
        }
    )
    token = local_issuer.token(scope="read:a", roles=["admin"])
    try:
        with override_settings(ROOT_URLCONF=urls), dj.use_state(state):
            answer = Client().get(route, **bearer(token))
    finally:
        state.close()
    assert answer.status_code == 503
    assert "WWW-Authenticate" not in answer
    assert int(answer["Retry-After"]) >= 1


def test_the_async_handler_checks_revocation(local_issuer: LocalIssuer) -> None:
    """Under Django's ASGI handler the async path asks the issuer, once, and refuses."""
    revoked = local_issuer.token(sub="auth0|gone")
    local_issuer.revoke(revoked)
    answers: list[Any] = []

    async def send() -> None:
        answers.append(await AsyncClient().get("/async", headers=auth(local_issuer.token())))
        answers.append(await AsyncClient().get("/async", headers=auth(revoked)))

    with override_settings(ROOT_URLCONF=urls), dj.use_issuer(local_issuer):
        asyncio.run(send())
    assert [answer.status_code for answer in answers] == [200, 401]
    assert local_issuer.requests[INTROSPECT] == 2
