"""Discovery documents, the JWKS, and key rotation."""

from __future__ import annotations

import httpx
import pytest

from apiguard import UnknownSigningKey
from examples.authz_server.services import Domain

from .support import ISSUER, ORGANIZER, WORLD_MAPPERS, Validate, token_request

pytestmark = pytest.mark.anyio


@pytest.mark.parametrize(
    "path", ["/.well-known/openid-configuration", "/.well-known/oauth-authorization-server"]
)
async def test_metadata_names_the_issuer_and_endpoints(http: httpx.AsyncClient, path: str) -> None:
    """Both metadata documents name the issuer (ending in /) and the Auth0 endpoint paths."""
    doc = (await http.get(path)).json()
    assert doc["issuer"] == ISSUER
    assert doc["jwks_uri"] == f"{ISSUER}.well-known/jwks.json"
    assert doc["token_endpoint"] == f"{ISSUER}oauth/token"
    assert doc["authorization_endpoint"] == f"{ISSUER}authorize"
    assert doc["registration_endpoint"] == f"{ISSUER}oidc/register"
    assert doc["code_challenge_methods_supported"] == ["S256"]
    assert doc["authorization_response_iss_parameter_supported"] is True
    assert set(doc["token_endpoint_auth_methods_supported"]) == {
        "client_secret_basic",
        "client_secret_post",
        "none",
    }


async def test_jwks_publishes_only_public_rsa_keys(http: httpx.AsyncClient) -> None:
    """The JWKS holds current and next RSA keys: unique kids, alg RS256, no private members."""
    keys = (await http.get("/.well-known/jwks.json")).json()["keys"]
    assert len(keys) == 2
    assert len({k["kid"] for k in keys}) == 2
    for key in keys:
        assert key["kty"] == "RSA"
        assert key["alg"] == "RS256"
        assert key["use"] == "sig"
        assert not {"d", "p", "q", "dp", "dq", "qi", "k"} & set(key)
        assert len(key["n"]) >= 342  # 2048 bits in base64url


async def test_tokens_from_the_current_key_validate_with_apiguard(
    http: httpx.AsyncClient, validate: Validate
) -> None:
    """A client-credentials token validates through discovery with the current key's kid."""
    response = await token_request(
        http, grant_type="client_credentials", audience=ORGANIZER, **WORLD_MAPPERS
    )
    token = await validate(response.json()["access_token"])
    jwks = (await http.get("/.well-known/jwks.json")).json()
    assert token.header["kid"] == jwks["keys"][0]["kid"]
    assert token.header["typ"] == "JWT"


async def test_rotation_publishes_before_use_and_keeps_previous_until_revoked(
    http: httpx.AsyncClient, tenant: Domain, validate: Validate
) -> None:
    """Rotation signs with the already published next key; the old key stays until revoked."""
    before = {k["kid"] for k in (await http.get("/.well-known/jwks.json")).json()["keys"]}
    old = (
        await token_request(
            http, grant_type="client_credentials", audience=ORGANIZER, **WORLD_MAPPERS
        )
    ).json()["access_token"]
    previous_kid = tenant.keys.current().kid
    new_current = tenant.keys.rotate()
    assert new_current.kid in before
    after = {k["kid"] for k in (await http.get("/.well-known/jwks.json")).json()["keys"]}
    assert previous_kid in after
    assert len(after) == 3
    new = (
        await token_request(
            http, grant_type="client_credentials", audience=ORGANIZER, **WORLD_MAPPERS
        )
    ).json()["access_token"]
    assert (await validate(new)).header["kid"] == new_current.kid
    await validate(old)
    tenant.keys.revoke(previous_kid)
    published = {k["kid"] for k in (await http.get("/.well-known/jwks.json")).json()["keys"]}
    assert previous_kid not in published
    with pytest.raises(UnknownSigningKey):
        await validate(old)


async def test_only_the_previous_key_can_be_revoked(tenant: Domain) -> None:
    """Revoking the current key is refused, so the server can always sign."""
    from examples.authz_server.keys import SigningKeyError

    with pytest.raises(SigningKeyError):
        tenant.keys.revoke(tenant.keys.current().kid)


async def test_every_response_forbids_framing(http: httpx.AsyncClient) -> None:
    """Every answer carries X-Frame-Options DENY and CSP frame-ancestors 'none'."""
    for path in ("/.well-known/jwks.json", "/authorize", "/login", "/nowhere"):
        response = await http.get(path)
        assert response.headers["x-frame-options"] == "DENY"
        assert "frame-ancestors 'none'" in response.headers["content-security-policy"]
