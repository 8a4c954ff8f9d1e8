"""FastAPI's Swagger UI login: Authorize described as an OAuth 2.0 code flow, Swagger UI set up."""

# No postponed annotations: FastAPI evaluates the routes' annotations at run time.
import logging
from pathlib import Path
from typing import Annotated, Any

import httpx
import pytest
from asgi_support import TestClient
from fastapi import FastAPI, Security

from apiguard import AccessToken, AsyncValidator, ConfigurationError
from apiguard.fastapi import Authorize, install, swagger_ui
from apiguard.testing import LocalIssuer

AS_METADATA = {
    "authorization_endpoint": "https://issuer.test/authorize",
    "token_endpoint": "https://issuer.test/oauth/token",
}


def validator_for(issuer: LocalIssuer, discovery: dict[str, Any] | None) -> AsyncValidator:
    """A validator whose issuer publishes ``discovery`` (None: no discovery document at all)."""

    def handle(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/openid-configuration") or "authorization-server" in str(
            request.url
        ):
            if discovery is None:
                return httpx.Response(404)
            return httpx.Response(200, json={**issuer.discovery, **discovery})
        return issuer.handle(request)

    client = httpx.AsyncClient(transport=httpx.MockTransport(handle))
    return AsyncValidator(issuer=issuer.issuer, audience=issuer.audience, http_client=client)


def organizer(auth: Authorize) -> FastAPI:
    app = FastAPI(title="Organizer API")
    install(app)

    @app.get("/appointments")
    async def appointments(
        token: Annotated[AccessToken, Security(auth, scopes=["read:appointments"])],
    ) -> Any:
        return {"subject": token.subject}

    @app.post("/appointments")
    async def create(
        token: Annotated[AccessToken, Security(auth, scopes=["create:appointments"])],
    ) -> Any:
        return {}

    return app


def schemes(app: FastAPI) -> dict[str, Any]:
    with TestClient(app) as client:
        document: dict[str, Any] = client.get("/openapi.json").json()
    return document["components"]["securitySchemes"]


def test_code_flow_takes_its_endpoints_from_discovery(local_issuer: LocalIssuer) -> None:
    """The endpoints come from the issuer's discovery; the scopes from the routes."""
    auth = Authorize(
        validator_for(local_issuer, AS_METADATA),
        flow="authorization_code",
        scope_descriptions={"read:appointments": "Read your appointments"},
    )
    assert schemes(organizer(auth)) == {
        "bearerAuth": {
            "type": "oauth2",
            "description": "An OAuth 2.0 access token (JWT)",
            "flows": {
                "authorizationCode": {
                    "authorizationUrl": "https://issuer.test/authorize",
                    "tokenUrl": "https://issuer.test/oauth/token",
                    "scopes": {
                        "create:appointments": "create:appointments",
                        "read:appointments": "Read your appointments",
                    },
                }
            },
        }
    }


def test_configured_endpoints_need_no_discovery(local_issuer: LocalIssuer) -> None:
    """Endpoints given to Authorize are used as they are, with no fetch."""
    auth = Authorize(
        local_issuer.async_validator(),
        flow="authorization_code",
        authorization_url="https://login.example/authorize",
        token_url="https://login.example/token",
    )
    flow = schemes(organizer(auth))["bearerAuth"]["flows"]["authorizationCode"]
    assert flow["authorizationUrl"] == "https://login.example/authorize"
    assert local_issuer.requests["/.well-known/openid-configuration"] == 0


@pytest.mark.parametrize(
    "discovery",
    [
        pytest.param(None, id="no-document"),
        pytest.param({}, id="no-endpoints"),
        pytest.param(
            {"authorization_endpoint": "http://evil.example/authorize"}, id="plain-http-endpoint"
        ),
        pytest.param({**AS_METADATA, "issuer": "https://other.test/"}, id="another-issuer"),
    ],
)
def test_without_usable_discovery_openapi_keeps_the_bearer_scheme(
    local_issuer: LocalIssuer, discovery: dict[str, Any] | None, caplog: pytest.LogCaptureFixture
) -> None:
    """When the endpoints cannot be had, the app still starts, described as HTTP bearer."""
    auth = Authorize(validator_for(local_issuer, discovery), flow="authorization_code")
    with caplog.at_level(logging.WARNING, logger="apiguard.fastapi"):
        scheme = schemes(organizer(auth))["bearerAuth"]
    assert scheme["type"] == "http"
    assert "could not be discovered" in caplog.text


@pytest.mark.parametrize(
    ("options", "message"),
    [
        pytest.param({"flow": "implicit"}, "flow", id="unknown-flow"),
        pytest.param(
            {"flow": "authorization_code", "token_url": "http://evil.example/token"},
            "https",
            id="plain-http-url",
        ),
        pytest.param({"scope_descriptions": {"read me": "x"}}, "scope token", id="bad-scope-name"),
    ],
)
def test_bad_login_settings_fail_at_once(
    local_issuer: LocalIssuer, options: dict[str, Any], message: str
) -> None:
    """A wrong flow, an unsafe endpoint or a bad scope name is refused when declared."""
    with pytest.raises(ConfigurationError, match=message):
        Authorize(local_issuer.async_validator(), **options)


def test_code_flow_without_validator_needs_both_urls() -> None:
    """Behind the middleware (no validator), the endpoints cannot be discovered: give them."""
    with pytest.raises(ConfigurationError, match="authorization_url and token_url"):
        Authorize(flow="authorization_code", token_url="https://login.example/token")


def test_swagger_ui_is_set_for_code_with_pkce_and_local_assets(local_issuer: LocalIssuer) -> None:
    """The docs page signs in as the public client with PKCE and Auth0's audience, no CDN."""
    app = organizer(Authorize(local_issuer.async_validator()))
    swagger_ui(app, client_id="api-explorer", audience="https://api.test", scopes=["read:a"])
    with TestClient(app) as client:
        page = client.get("/docs").text
        script = client.get("/docs/assets/swagger-ui-bundle.js")
        css = client.get("/docs/assets/swagger-ui.css")
        redirect = client.get("/docs/oauth2-redirect")
    assert '"clientId": "api-explorer"' in page
    assert '"usePkceWithAuthorizationCodeGrant": true' in page
    assert '"additionalQueryStringParams": {"audience": "https://api.test"}' in page
    assert '"scopes": "read:a"' in page
    assert 'src="/docs/assets/swagger-ui-bundle.js"' in page
    assert "cdn.jsdelivr.net" not in page
    assert (script.status_code, css.status_code, redirect.status_code) == (200, 200, 200)
    assert "SwaggerUIBundle" in script.text


def test_swagger_ui_assets_from_a_folder(local_issuer: LocalIssuer, tmp_path: Path) -> None:
    """A folder of one's own serves the files; one without them is refused."""
    app = organizer(Authorize(local_issuer.async_validator()))
    with pytest.raises(ConfigurationError, match=r"swagger-ui\.css"):
        swagger_ui(app, client_id="x", assets=tmp_path)
    (tmp_path / "swagger-ui-bundle.js").write_text("// bundle")
    (tmp_path / "swagger-ui.css").write_text("/* css */")
    swagger_ui(app, client_id="x", assets=tmp_path)
    with TestClient(app) as client:
        assert client.get("/docs/assets/swagger-ui-bundle.js").text == "// bundle"


def test_swagger_ui_needs_a_docs_page() -> None:
    """An app without docs gets a clear error, not a silent no-op."""
    with pytest.raises(ConfigurationError, match="docs_url"):
        swagger_ui(FastAPI(docs_url=None), client_id="x")
