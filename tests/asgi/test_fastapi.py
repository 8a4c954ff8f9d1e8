"""apiguard.fastapi: the Security dependency, its answers and its OpenAPI security scheme."""

# No postponed annotations here: FastAPI evaluates the routes' annotations at run time, and
# the dependencies in them are local variables.
from collections.abc import Iterator
from typing import Annotated, Any

import httpx
import pytest
from asgi_support import TestClient, bearer
from fastapi import Depends, FastAPI, Security

from apiguard import AccessToken, AsyncValidator, ConfigurationError
from apiguard.asgi import BearerAuthMiddleware
from apiguard.fastapi import Authorize, install
from apiguard.testing import LocalIssuer


def build(auth: Authorize, *, installed: bool = True) -> FastAPI:
    """An app with routes needing a token, one scope, and either of two scopes."""
    app = FastAPI()
    if installed:
        install(app)
    any_of = Authorize(auth.validator, match="any", realm=auth.realm)

    @app.get("/me")
    async def me(token: Annotated[AccessToken, Depends(auth)]) -> dict[str, Any]:
        return {"subject": token.subject}

    @app.get("/tasks")
    async def tasks(
        token: Annotated[AccessToken, Security(auth, scopes=["read:tasks"])],
    ) -> dict[str, Any]:
        return {"tasks": [], "scopes": sorted(token.scopes)}

    @app.get("/either")
    async def either(
        token: Annotated[AccessToken, Security(any_of, scopes=["read:a", "read:b"])],
    ) -> dict[str, Any]:
        return {"ok": True}

    return app


@pytest.fixture
def client(local_issuer: LocalIssuer) -> Iterator[TestClient]:
    """A client for the app with its own validator (no middleware), realm "api"."""
    with TestClient(build(Authorize(local_issuer.async_validator(), realm="api"))) as test_client:
        yield test_client


@pytest.mark.parametrize(
    ("path", "scope", "status"),
    [
        pytest.param("/me", "", 200, id="any-token"),
        pytest.param("/tasks", "read:tasks", 200, id="scope-granted"),
        pytest.param("/tasks", "read:task", 403, id="scope-missing"),
        pytest.param("/either", "read:b", 200, id="any-granted"),
        pytest.param("/either", "read:c", 403, id="any-missing"),
    ],
)
def test_security_scopes_are_enforced(
    client: TestClient, local_issuer: LocalIssuer, path: str, scope: str, status: int
) -> None:
    """``Security(..., scopes=...)`` requires the scopes; the dependency returns the token."""
    response = client.get(path, headers=bearer(local_issuer.token(scope=scope)))
    assert response.status_code == status


def test_dependency_returns_the_access_token(client: TestClient, local_issuer: LocalIssuer) -> None:
    """The route receives the validated AccessToken."""
    token = local_issuer.token(scope="read:tasks extra", sub="auth0|fa")
    assert client.get("/tasks", headers=bearer(token)).json() == {
        "tasks": [],
        "scopes": ["extra", "read:tasks"],
    }


@pytest.mark.parametrize(
    ("headers", "status", "challenge", "body"),
    [
        pytest.param(
            {},
            401,
            'Bearer realm="api"',
            {"error_description": "Authentication required"},
            id="missing",
        ),
        pytest.param(
            {"Authorization": "Bearer a b"},
            400,
            'Bearer realm="api", error="invalid_request", '
            'error_description="The bearer token request is malformed"',
            {
                "error": "invalid_request",
                "error_description": "The bearer token request is malformed",
            },
            id="malformed-header",
        ),
        pytest.param(
            "expired",
            401,
            'Bearer realm="api", error="invalid_token", '
            'error_description="The access token expired"',
            {"error": "invalid_token", "error_description": "The access token expired"},
            id="expired",
        ),
        pytest.param(
            "no-scope",
            403,
            'Bearer realm="api", error="insufficient_scope", '
            'error_description="The access token lacks a required scope", scope="read:tasks"',
            {
                "error": "insufficient_scope",
                "error_description": "The access token lacks a required scope",
                "scope": "read:tasks",
            },
            id="insufficient-scope",
        ),
    ],
)
def test_refusals_use_rfc6750_answers(
    client: TestClient,
    local_issuer: LocalIssuer,
    headers: Any,
    status: int,
    challenge: str,
    body: dict[str, str],
) -> None:
    """Refusals carry apiguard's status, challenge and JSON body, not FastAPI's detail."""
    if headers == "expired":
        headers = bearer(local_issuer.token(scope="read:tasks", expires_in=-60))
    elif headers == "no-scope":
        headers = bearer(local_issuer.token(scope="read:contacts"))
    response = client.get("/tasks", headers=headers)
    assert response.status_code == status
    assert response.headers["www-authenticate"] == challenge
    assert response.json() == body


def test_without_install_status_and_headers_still_hold(local_issuer: LocalIssuer) -> None:
    """Without ``install`` the status and challenge are right and the JSON is under detail."""
    app = build(Authorize(local_issuer.async_validator()), installed=False)
    with TestClient(app) as client:
        response = client.get("/tasks", headers=bearer(local_issuer.token(scope="x")))
    assert response.status_code == 403
    assert 'error="insufficient_scope"' in response.headers["www-authenticate"]
    assert response.json()["detail"]["error"] == "insufficient_scope"


def test_key_set_unavailable_is_503(client: TestClient, local_issuer: LocalIssuer) -> None:
    """An unreachable JWKS gives 503 with Retry-After and no challenge."""
    local_issuer.jwks_override = httpx.Response(500)
    response = client.get("/me", headers=bearer(local_issuer.token()))
    assert response.status_code == 503
    assert "www-authenticate" not in response.headers
    assert "retry-after" in response.headers


def test_token_validated_by_middleware_is_reused(local_issuer: LocalIssuer) -> None:
    """Behind the middleware, a validator-less Authorize uses the token it validated."""
    app = build(Authorize())
    stack = BearerAuthMiddleware(app, validator=local_issuer.async_validator(), realm="mw")
    with TestClient(stack) as client:
        granted = client.get("/tasks", headers=bearer(local_issuer.token(scope="read:tasks")))
        anonymous = client.get("/tasks")
    assert granted.status_code == 200
    assert anonymous.status_code == 401
    assert anonymous.headers["www-authenticate"] == 'Bearer realm="mw"'


class Counting(AsyncValidator):
    """An AsyncValidator that records every token it is asked to validate."""

    def __init__(self, issuer: LocalIssuer, **options: Any) -> None:
        super().__init__(
            issuer=issuer.issuer,
            audience=options.pop("audience", issuer.audience),
            http_client=httpx.AsyncClient(transport=issuer.transport()),
            **options,
        )
        self.calls: list[str] = []

    async def validate(self, token: str) -> AccessToken:
        self.calls.append(token)
        return await super().validate(token)


def test_middleware_token_is_reused_only_for_the_same_validator(
    local_issuer: LocalIssuer,
) -> None:
    """A dependency given the middleware's own validator object does not validate again."""
    shared = Counting(local_issuer)
    stack = BearerAuthMiddleware(build(Authorize(shared)), validator=shared)
    with TestClient(stack) as client:
        response = client.get("/tasks", headers=bearer(local_issuer.token(scope="read:tasks")))
    assert response.status_code == 200
    assert len(shared.calls) == 1


@pytest.mark.parametrize(
    ("options", "claims"),
    [
        pytest.param({"audience": "https://other.api"}, {}, id="other-audience"),
        pytest.param({"token_type": "at+jwt"}, {}, id="strict-rfc9068"),
        pytest.param({"required_claims": ["org_id"]}, {}, id="required-claim"),
        pytest.param({"max_token_age": 60}, {"iat": 1_000_000_000}, id="max-token-age"),
    ],
)
def test_dependency_decides_with_its_own_stricter_validator(
    local_issuer: LocalIssuer, options: dict[str, Any], claims: dict[str, Any]
) -> None:
    """Behind a lenient middleware, Authorize(strict_validator) refuses what only it rejects."""
    strict = Counting(local_issuer, **options)
    stack = BearerAuthMiddleware(build(Authorize(strict)), validator=local_issuer.async_validator())
    token = local_issuer.token(scope="read:tasks", expires_in=10**10, **claims)
    with TestClient(stack) as client:
        response = client.get("/tasks", headers=bearer(token))
    assert response.status_code == 401
    assert 'error="invalid_token"' in response.headers["www-authenticate"]
    assert strict.calls == [token]


def test_without_validator_or_middleware_it_is_a_programming_error() -> None:
    """Authorize without a validator and without the middleware raises at request time."""
    with (
        TestClient(build(Authorize()), raise_server_exceptions=True) as client,
        pytest.raises(RuntimeError, match="no validator"),
    ):
        client.get("/me", headers=bearer("a.b.c"))


@pytest.mark.parametrize(
    "options",
    [
        pytest.param({"validator": object()}, id="not-an-async-validator"),
        pytest.param({"match": "most"}, id="unknown-match"),
        pytest.param({"realm": "a\\b"}, id="unquotable-realm"),
    ],
)
def test_bad_configuration_is_refused(options: dict[str, Any]) -> None:
    """Wrong settings raise ConfigurationError when the dependency is built."""
    with pytest.raises(ConfigurationError):
        Authorize(**options)


def test_openapi_declares_the_bearer_scheme_with_scopes(local_issuer: LocalIssuer) -> None:
    """The OpenAPI document has an HTTP bearer JWT scheme and per-route requirements."""
    document = build(Authorize(local_issuer.async_validator())).openapi()
    assert document["components"]["securitySchemes"] == {
        "bearerAuth": {
            "type": "http",
            "scheme": "bearer",
            "bearerFormat": "JWT",
            "description": "An OAuth 2.0 access token (JWT)",
        }
    }
    assert document["paths"]["/tasks"]["get"]["security"] == [{"bearerAuth": ["read:tasks"]}]
    assert document["paths"]["/me"]["get"]["security"] == [{"bearerAuth": []}]
