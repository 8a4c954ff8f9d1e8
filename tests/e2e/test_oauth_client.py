"""An OAuth client library none of us wrote (Authlib) drives the authorization server."""

from __future__ import annotations

import warnings

import authlib.deprecate  # noqa: F401 - installs its "always show" filter first
import httpx
import pytest

with warnings.catch_warnings():
    # Authlib announces at import that it prefers httpx2; that is about the test tool.
    warnings.simplefilter("ignore")
    from authlib.common.security import generate_token
    from authlib.integrations.httpx_client import AsyncOAuth2Client, OAuth2Client
    from authlib.oauth2.rfc8414 import AuthorizationServerMetadata

from examples.demo.browser import Browser
from examples.demo.servers import Stack
from examples.demo.walk import CALENDAR_APP, DEMO_USER, ORGANIZER, WORLD_MAPPERS

pytestmark = pytest.mark.e2e


@pytest.fixture
def anyio_backend() -> str:
    """Async tests run on asyncio."""
    return "asyncio"


@pytest.fixture(scope="module")
def metadata(stack: Stack) -> AuthorizationServerMetadata:
    """The server's RFC 8414 metadata, checked by Authlib's own validator."""
    document = httpx.get(stack.issuer + ".well-known/oauth-authorization-server").json()
    parsed = AuthorizationServerMetadata(document)
    parsed.validate()
    return parsed


def status_everywhere(apis: dict[str, str], token: dict[str, str], path: str) -> set[int]:
    """The statuses both APIs answer to ``path`` with this token."""
    headers = {"Authorization": f"Bearer {token['access_token']}"}
    return {httpx.get(base + path, headers=headers).status_code for base in apis.values()}


def test_discovery_documents_pass_authlibs_validation(
    stack: Stack, metadata: AuthorizationServerMetadata
) -> None:
    """Both discovery documents name this issuer and the endpoints Authlib needs."""
    oidc = httpx.get(stack.issuer + ".well-known/openid-configuration").json()
    assert metadata["issuer"] == oidc["issuer"] == stack.issuer
    assert "S256" in metadata["code_challenge_methods_supported"]
    assert metadata["token_endpoint"] == stack.issuer + "oauth/token"


def test_client_credentials_with_authlib(
    metadata: AuthorizationServerMetadata, apis: dict[str, str]
) -> None:
    """Authlib's client-credentials token is accepted by both APIs, and scopes still count."""
    client_id, secret = WORLD_MAPPERS
    with OAuth2Client(client_id, secret, token_endpoint_auth_method="client_secret_post") as oauth:
        token = oauth.fetch_token(
            metadata["token_endpoint"], grant_type="client_credentials", audience=ORGANIZER
        )
    assert token["token_type"].lower() == "bearer"
    assert status_everywhere(apis, token, "/api/appointments") == {200}
    assert status_everywhere(apis, token, "/api/tasks") == {403}


@pytest.mark.anyio
async def test_authorization_code_pkce_and_refresh_with_authlib(
    stack: Stack, metadata: AuthorizationServerMetadata, apis: dict[str, str]
) -> None:
    """Authlib runs code + PKCE through the real login and consent pages, then refreshes."""
    client_id, secret, redirect_uri = CALENDAR_APP
    async with AsyncOAuth2Client(
        client_id,
        secret,
        scope="offline_access read:appointments",
        redirect_uri=redirect_uri,
        code_challenge_method="S256",
        token_endpoint_auth_method="client_secret_post",
    ) as oauth:
        verifier = generate_token(48)
        url, state = oauth.create_authorization_url(
            metadata["authorization_endpoint"], code_verifier=verifier, audience=ORGANIZER
        )
        params = dict(httpx.URL(url).params)
        with Browser(stack.issuer) as browser:
            callback = browser.authorize(params, email=DEMO_USER[0], password=DEMO_USER[1])
        token = await oauth.fetch_token(
            metadata["token_endpoint"],
            authorization_response=callback,
            code_verifier=verifier,
            state=state,
        )
        assert status_everywhere(apis, token, "/api/appointments") == {200}
        assert status_everywhere(apis, token, "/api/tasks") == {403}
        refreshed = await oauth.refresh_token(metadata["token_endpoint"])
    assert refreshed["refresh_token"] != token["refresh_token"]
    assert status_everywhere(apis, refreshed, "/api/appointments") == {200}
