"""apiguard.django: settings checked at start-up, the middleware, DRF classes, schema, testing."""

from __future__ import annotations

from typing import Any

import pytest
from django.core import checks
from django.core.exceptions import ImproperlyConfigured
from django.test import Client, override_settings
from rest_framework.test import APIClient

from apiguard import django as dj
from apiguard.testing import LocalIssuer


def bearer(token: str) -> dict[str, str]:
    return {"HTTP_AUTHORIZATION": f"Bearer {token}"}


# -- settings ---------------------------------------------------------------------------------


GOOD = {"ISSUER": "https://issuer.test/", "AUDIENCE": "https://api.test"}


@pytest.mark.parametrize(
    ("setting", "named"),
    [
        pytest.param({"AUDIENCE": "https://api.test"}, 'APIGUARD["ISSUER"]', id="no-issuer"),
        pytest.param({**GOOD, "LEEWAY": 1000}, 'APIGUARD["LEEWAY"]', id="leeway-too-big"),
        pytest.param({**GOOD, "LEEWAYS": 10}, 'APIGUARD["LEEWAYS"]', id="misspelt"),
        pytest.param({**GOOD, "leeway": 10}, "upper-case", id="lower-case-key"),
        pytest.param({**GOOD, "ALGORITHMS": ["none"]}, 'APIGUARD["ALGORITHMS"]', id="alg-none"),
        pytest.param({**GOOD, "REQUIRED": "yes"}, 'APIGUARD["REQUIRED"]', id="required-text"),
        pytest.param(
            {**GOOD, "EXCLUDE_PATHS": "/health"}, 'APIGUARD["EXCLUDE_PATHS"]', id="one-string"
        ),
        pytest.param(
            {**GOOD, "EXCLUDE_PATHS": ["/a/../b"]}, 'APIGUARD["EXCLUDE_PATHS"]', id="unclean"
        ),
        pytest.param({**GOOD, "REALM": 'a"b'}, 'APIGUARD["REALM"]', id="realm-quote"),
        pytest.param({**GOOD, "USER": "no.such.hook"}, 'APIGUARD["USER"]', id="user-import"),
        pytest.param({**GOOD, "ISSUER": "http://issuer.example/"}, 'APIGUARD["ISSUER"]', id="http"),
        pytest.param("https://issuer.test/", "APIGUARD", id="not-a-dict"),
    ],
)
def test_wrong_settings_stop_the_start_naming_the_setting(setting: Any, named: str) -> None:
    """Each wrong APIGUARD setting raises ImproperlyConfigured that names it."""
    with pytest.raises(ImproperlyConfigured, match=named.replace("[", r"\[").replace("]", r"\]")):
        dj.build_state(setting)


def test_the_app_checks_the_settings_when_it_is_ready() -> None:
    """ApiguardConfig.ready() builds the state, so a wrong setting fails the start."""
    from django.apps import apps

    config = apps.get_app_config("apiguard")
    with (
        override_settings(APIGUARD={"ISSUER": "https://issuer.test/"}),
        pytest.raises(ImproperlyConfigured, match="AUDIENCE"),
    ):
        config.ready()
    config.ready()  # the configured settings are fine


def test_check_deploy_warns_about_weakening_settings() -> None:
    """manage.py check --deploy warns for a long leeway and permissions read as scopes."""
    weak = {**GOOD, "LEEWAY": 120, "SCOPE_CLAIMS": ["scope", "permissions"]}
    with override_settings(APIGUARD=weak):
        messages = checks.run_checks(include_deployment_checks=True, tags=[checks.Tags.security])
    ours = [m for m in messages if m.id == "apiguard.W001"]
    assert len(ours) == 2
    assert any("LEEWAY" in m.msg for m in ours)
    assert any("permissions" in m.msg for m in ours)
    with override_settings(APIGUARD=GOOD):
        messages = checks.run_checks(include_deployment_checks=True, tags=[checks.Tags.security])
    assert not [m for m in messages if m.id == "apiguard.W001"]


def test_check_refuses_bad_required_scopes_on_views() -> None:
    """manage.py check names a DRF view whose required_scopes are not scope tokens."""
    from django.urls import path
    from rest_framework.views import APIView

    class Broken(APIView):
        permission_classes = [dj.HasScope]
        required_scopes = {"GET": ['read "x"']}

    urls = type("urls", (), {"urlpatterns": [path("broken", Broken.as_view())]})
    with override_settings(ROOT_URLCONF=urls):
        messages = checks.run_checks(tags=[checks.Tags.urls])
    errors = [m for m in messages if m.id == "apiguard.E001"]
    assert len(errors) == 1
    assert "Broken" in errors[0].msg


# -- the middleware, DRF and the decorators ------------------------------------------------------


def test_drf_scopes_per_method(local_issuer: LocalIssuer) -> None:
    """required_scopes maps methods to scopes; HEAD follows GET; an unnamed method is refused."""
    with dj.use_issuer(local_issuer):
        reader = dj.api_client(local_issuer, scope="read:appointments")
        assert reader.get("/api/appointments").status_code == 200
        assert reader.head("/api/appointments").status_code == 200
        refused = reader.post("/api/appointments", {"title": "x"}, format="json")
        assert refused.status_code == 403
        assert refused.headers["WWW-Authenticate"].endswith('scope="create:appointments"')
        assert refused.json() == {
            "error": "insufficient_scope",
            "error_description": "The access token lacks a required scope",
            "scope": "create:appointments",
        }
        assert refused.headers["Cache-Control"] == "no-store"
        writer = dj.api_client(local_issuer, scope="read:appointments create:appointments")
        assert writer.post("/api/appointments", {}, format="json").status_code == 201
        assert writer.delete("/api/appointments").status_code == 403


def test_drf_any_scope(local_issuer: LocalIssuer) -> None:
    """HasAnyScope("a", "b") lets either scope through."""
    with dj.use_issuer(local_issuer):
        assert (
            dj.api_client(local_issuer, scope="read:tasks").get("/api/overview").status_code == 200
        )
        assert dj.api_client(local_issuer, scope="read:x").get("/api/overview").status_code == 403


def test_drf_own_permission_answers_401_with_the_challenge(local_issuer: LocalIssuer) -> None:
    """DRF's IsAuthenticated on an anonymous request: 401 with the bare Bearer challenge."""
    with dj.use_issuer(local_issuer, realm="api"):
        response = APIClient().get("/api/drf-own")
        assert response.status_code == 401
        assert response.headers["WWW-Authenticate"] == 'Bearer realm="api"'
        assert dj.api_client(local_issuer).get("/api/drf-own").status_code == 200


def test_request_user_is_a_token_user_or_the_hook_s(local_issuer: LocalIssuer) -> None:
    """request.user is a TokenUser by default, and what the USER hook returns when set."""
    token = local_issuer.token(sub="auth0|ada")
    with dj.use_issuer(local_issuer):
        answer = Client().get("/api/whoami", **bearer(token)).json()
    assert answer == {"user": "auth0|ada", "kind": "TokenUser", "sub": "auth0|ada"}

    class Member:
        def __init__(self, token: Any, request: Any) -> None:
            self.name = f"member {token.subject}"

        def __str__(self) -> str:
            return self.name

    with dj.use_issuer(local_issuer, user=Member):
        answer = Client().get("/api/whoami", **bearer(token)).json()
    assert answer == {"user": "member auth0|ada", "kind": "Member", "sub": "auth0|ada"}


def test_each_request_is_judged_on_its_own_header(local_issuer: LocalIssuer) -> None:
    """One client, two requests: the second without a token is anonymous again."""
    client = Client()
    with dj.use_issuer(local_issuer):
        assert client.get("/api/whoami", **bearer(local_issuer.token())).status_code == 200
        assert client.get("/api/whoami").status_code == 401


def test_required_middleware_refuses_anonymous_requests(local_issuer: LocalIssuer) -> None:
    """REQUIRED refuses a request without a token before any view, but not excluded paths."""
    with dj.use_issuer(local_issuer, required=True, exclude_paths=["/api/schema"]):
        assert Client().get("/api/overview").status_code == 401
        assert Client().get("/api/schema").status_code == 200


def test_keys_unavailable_is_503_with_retry_after(local_issuer: LocalIssuer) -> None:
    """DRF and plain views answer 503 with Retry-After and no challenge."""
    import httpx

    local_issuer.jwks_override = httpx.Response(500)
    with dj.use_issuer(local_issuer):
        for path in ("/api/appointments", "/api/whoami"):
            response = Client().get(path, **bearer(local_issuer.token()))
            assert response.status_code == 503
            assert "WWW-Authenticate" not in response.headers
            assert int(response.headers["Retry-After"]) >= 1


def test_drf_authentication_without_the_middleware(local_issuer: LocalIssuer) -> None:
    """Without apiguard's middleware, BearerAuthentication reads and validates the header."""
    with override_settings(MIDDLEWARE=[]), dj.use_issuer(local_issuer):
        reader = dj.api_client(local_issuer, scope="read:appointments")
        assert reader.get("/api/appointments").status_code == 200
        bad = APIClient()
        bad.credentials(HTTP_AUTHORIZATION="Bearer a.b.c")
        response = bad.get("/api/appointments")
        assert response.status_code == 401
        assert 'error="invalid_token"' in response.headers["WWW-Authenticate"]
        assert response.json()["error"] == "invalid_token"


# -- the schema ------------------------------------------------------------------------------


def test_spectacular_documents_the_bearer_scheme_and_scopes(local_issuer: LocalIssuer) -> None:
    """drf-spectacular shows an HTTP bearer JWT scheme and each operation's scopes."""
    with dj.use_issuer(local_issuer):
        schema = Client().get("/api/schema", HTTP_ACCEPT="application/json").json()
    assert schema["components"]["securitySchemes"]["bearerAuth"] == {
        "type": "http",
        "scheme": "bearer",
        "bearerFormat": "JWT",
        "description": "An OAuth 2.0 access token (JWT)",
    }
    operations = schema["paths"]["/api/appointments"]
    assert operations["get"]["security"] == [{"bearerAuth": ["read:appointments"]}]
    assert operations["post"]["security"] == [{"bearerAuth": ["create:appointments"]}]
    assert schema["paths"]["/api/overview"]["get"]["security"] == [
        {"bearerAuth": ["read:contacts", "read:tasks"]}
    ]
    assert schema["paths"]["/api/tasks"]["get"]["security"] == [{"bearerAuth": ["read:tasks"]}]


def test_each_view_class_keeps_its_own_required_scopes(local_issuer: LocalIssuer) -> None:
    """Two views listing HasScope bare each enforce their own required_scopes."""
    with dj.use_issuer(local_issuer):
        tasks = dj.api_client(local_issuer, scope="read:tasks")
        assert tasks.get("/api/tasks").status_code == 200
        assert tasks.get("/api/appointments").status_code == 403
        appointments = dj.api_client(local_issuer, scope="read:appointments")
        assert appointments.get("/api/appointments").status_code == 200
        assert appointments.get("/api/tasks").status_code == 403
