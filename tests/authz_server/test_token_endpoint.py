"""The token endpoint: client credentials, client authentication, request format and errors."""

from __future__ import annotations

import base64
import json
from urllib.parse import quote_plus

import httpx
import jwt
import pytest

from examples.authz_server.security import (
    hash_client_secret,
    hash_password,
    is_slow_hash,
    verify_secret,
)
from examples.authz_server.services import Domain
from examples.authz_server.services import clients as tenant_module

from .support import (
    CALENDAR,
    ISSUER,
    MANAGEMENT,
    ORGANIZER,
    WORLD_MAPPERS,
    Validate,
    token_request,
)

pytestmark = pytest.mark.anyio
CC = {"grant_type": "client_credentials", "audience": ORGANIZER}


def basic(client_id: str, secret: str) -> dict[str, str]:
    """An RFC 6749 Appendix B Basic header (each part form-urlencoded first)."""
    raw = f"{quote_plus(client_id)}:{quote_plus(secret)}".encode()
    return {"Authorization": "Basic " + base64.b64encode(raw).decode()}


async def test_client_credentials_issues_an_auth0_shaped_token(
    http: httpx.AsyncClient, validate: Validate
) -> None:
    """World Mappers gets a token with the granted scopes, sub <client_id>@clients and gty."""
    response = await token_request(http, **CC, **WORLD_MAPPERS)
    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"access_token", "token_type", "expires_in", "scope"}
    assert body["token_type"] == "Bearer"
    assert body["expires_in"] == 86400
    token = await validate(body["access_token"])
    assert token.subject == "world-mappers@clients"
    assert token.issuer == ISSUER
    assert token.audience == (ORGANIZER,)
    assert token.scopes == {"read:appointments", "read:contacts"}
    assert token.claims["azp"] == "world-mappers"
    assert token.claims["gty"] == "client-credentials"
    assert token.claims["jti"]
    assert token.header["alg"] == "RS256"
    assert "refresh_token" not in body


async def test_client_credentials_accepts_json_and_resource(
    http: httpx.AsyncClient, validate: Validate
) -> None:
    """A JSON body works as at Auth0, and RFC 8707 resource is an alias of audience."""
    body = {"grant_type": "client_credentials", "resource": ORGANIZER, **WORLD_MAPPERS}
    response = await http.post("/oauth/token", json=body)
    assert response.status_code == 200, response.text
    assert (await validate(response.json()["access_token"])).audience == (ORGANIZER,)


async def test_requested_scope_narrows_the_token(http: httpx.AsyncClient) -> None:
    """Asking for a subset of the granted scopes yields exactly that subset."""
    response = await token_request(http, **CC, scope="read:contacts", **WORLD_MAPPERS)
    assert response.json()["scope"] == "read:contacts"


async def test_missing_client_grant_is_auth0s_403(http: httpx.AsyncClient, tenant: Domain) -> None:
    """Without a client grant the answer is Auth0's 403 access_denied message."""
    tenant.client_grants.delete(tenant.client_grants.all(client_id="world-mappers")[0].id)
    response = await token_request(http, **CC, **WORLD_MAPPERS)
    assert response.status_code == 403
    assert response.json() == {
        "error": "access_denied",
        "error_description": f'Client is not authorized to access "{ORGANIZER}". You might '
        'probably want to create a "client-grant" associated to this API. See: '
        "https://auth0.com/docs/api/v2#!/Client_Grants/post_client_grants",
    }


@pytest.mark.parametrize(
    ("extra", "status", "error"),
    [
        pytest.param({"scope": "create:tasks"}, 403, "access_denied", id="scope-not-granted"),
        pytest.param({"scope": "delete:everything"}, 400, "invalid_scope", id="scope-unknown"),
        pytest.param({"audience": "https://unknown.example"}, 400, "invalid_target", id="aud"),
        pytest.param({"audience": ""}, 400, "invalid_request", id="no-audience"),
        pytest.param(
            {"resource": "https://other.example"}, 400, "invalid_request", id="aud-resource-differ"
        ),
    ],
)
async def test_client_credentials_failures(
    http: httpx.AsyncClient, extra: dict[str, str], status: int, error: str
) -> None:
    """Scopes outside the grant, unknown APIs and missing audiences are refused."""
    response = await token_request(http, **(CC | extra), **WORLD_MAPPERS)
    assert response.status_code == status
    assert response.json()["error"] == error


async def test_client_credentials_needs_the_grant_type(
    http: httpx.AsyncClient, tenant: Domain
) -> None:
    """A client without client_credentials in its grant types gets unauthorized_client."""
    tenant.client_grants.create("calendar-app", ORGANIZER, ["read:appointments"])
    response = await token_request(http, **CC, **CALENDAR)
    assert response.status_code == 400
    assert response.json()["error"] == "unauthorized_client"


async def test_client_credentials_for_an_hs256_api(
    http: httpx.AsyncClient, tenant: Domain, validate: Validate
) -> None:
    """An HS256 API's tokens are signed with its own secret and carry no kid."""
    api = tenant.apis.create(name="Legacy", identifier="urn:legacy", signing_alg="HS256")
    assert api.signing_secret is not None
    assert len(api.signing_secret) >= 43
    tenant.apis.update(api.id, {"scopes": [{"value": "read:x", "description": "x"}]})
    tenant.client_grants.create("world-mappers", "urn:legacy", ["read:x"])
    response = await token_request(
        http, grant_type="client_credentials", audience="urn:legacy", **WORLD_MAPPERS
    )
    access_token = response.json()["access_token"]
    assert jwt.get_unverified_header(access_token) == {"alg": "HS256", "typ": "JWT"}
    token = await validate(
        access_token, "urn:legacy", shared_secret=api.signing_secret, algorithms=["HS256"]
    )
    assert token.scopes == {"read:x"}
    jwks = (await http.get("/.well-known/jwks.json")).text
    assert api.signing_secret not in jwks


async def test_rfc9068_dialect_sets_at_jwt_and_client_id(
    http: httpx.AsyncClient, tenant: Domain, validate: Validate
) -> None:
    """An API with the rfc9068_profile_authz dialect gets typ at+jwt, client_id, permissions."""
    tenant.apis.update(ORGANIZER, {"token_dialect": "rfc9068_profile_authz"})
    response = await token_request(http, **CC, **WORLD_MAPPERS)
    token = await validate(response.json()["access_token"], token_type="at+jwt")
    assert token.header["typ"] == "at+jwt"
    assert token.claims["client_id"] == "world-mappers"
    assert token.claims["permissions"] == ["read:appointments", "read:contacts"]


# ------------------------------------------------------------- client authentication


async def test_basic_auth_with_special_characters(http: httpx.AsyncClient, tenant: Domain) -> None:
    """A secret with ':', '%', '+' and spaces works when encoded per RFC 6749 Appendix B."""
    client, _ = tenant.clients.create(
        name="Basic",
        app_type="non_interactive",
        token_endpoint_auth_method="client_secret_basic",
        client_secret="a:b%c+d e-long-enough",
    )
    tenant.client_grants.create(client.client_id, ORGANIZER, ["read:tasks"])
    headers = basic(client.client_id, "a:b%c+d e-long-enough")
    response = await http.post("/oauth/token", data=CC, headers=headers)
    assert response.status_code == 200, response.text


@pytest.mark.parametrize(
    ("data", "headers", "status", "error", "challenge"),
    [
        pytest.param(
            {"client_id": "world-mappers", "client_secret": "wrong"},
            {},
            401,
            "invalid_client",
            False,
            id="wrong-secret-post",
        ),
        pytest.param(
            {}, basic("world-mappers", "wrong"), 401, "invalid_client", True, id="basic-wrong"
        ),
        pytest.param(
            {},
            basic("world-mappers", "world-mappers-dev-secret"),
            401,
            "invalid_client",
            True,
            id="basic-for-a-post-client",
        ),
        pytest.param(
            {"client_id": "nobody", "client_secret": "x"},
            {},
            401,
            "invalid_client",
            False,
            id="unknown-client",
        ),
        pytest.param({}, {}, 401, "invalid_client", False, id="no-credentials"),
        pytest.param(
            {"client_id": "world-mappers"}, {}, 401, "invalid_client", False, id="no-secret"
        ),
        pytest.param(
            {}, {"Authorization": "Basic !!!"}, 401, "invalid_client", True, id="basic-garbage"
        ),
        pytest.param(
            {},
            {"Authorization": "Basic " + base64.b64encode(b"no-colon").decode()},
            401,
            "invalid_client",
            True,
            id="basic-no-colon",
        ),
        pytest.param(
            {"client_secret": "world-mappers-dev-secret"},
            basic("world-mappers", "world-mappers-dev-secret"),
            400,
            "invalid_request",
            False,
            id="basic-and-body-secret",
        ),
        pytest.param(
            {"client_id": "calendar-app"},
            basic("world-mappers", "world-mappers-dev-secret"),
            400,
            "invalid_request",
            False,
            id="basic-and-other-body-id",
        ),
        pytest.param(
            {"client_id": "textapp-io", "client_secret": "anything"},
            {},
            401,
            "invalid_client",
            False,
            id="public-client-sends-secret",
        ),
    ],
)
async def test_client_authentication_matrix(
    http: httpx.AsyncClient,
    data: dict[str, str],
    headers: dict[str, str],
    status: int,
    error: str,
    challenge: bool,
) -> None:
    """Bad, mixed or wrong-method client credentials fail; Basic failures get a challenge."""
    response = await http.post("/oauth/token", data=CC | data, headers=headers)
    assert response.status_code == status
    assert response.json()["error"] == error
    assert ("www-authenticate" in response.headers) is challenge
    if challenge:
        assert response.headers["www-authenticate"].startswith("Basic")


async def test_basic_client_must_use_basic(http: httpx.AsyncClient, tenant: Domain) -> None:
    """A client registered for client_secret_basic that posts its secret gets invalid_client."""
    client, secret = tenant.clients.create(
        name="Basic only",
        app_type="non_interactive",
        token_endpoint_auth_method="client_secret_basic",
    )
    assert secret is not None
    tenant.client_grants.create(client.client_id, ORGANIZER, ["read:tasks"])
    posted = await token_request(http, **CC, client_id=client.client_id, client_secret=secret)
    assert posted.status_code == 401
    good = await http.post("/oauth/token", data=CC, headers=basic(client.client_id, secret))
    assert good.status_code == 200


async def test_expired_secret_is_refused(http: httpx.AsyncClient, tenant: Domain) -> None:
    """A secret past client_secret_expires_at no longer authenticates."""
    tenant.store.execute(
        "UPDATE clients SET secret_expires_at = ? WHERE client_id = 'world-mappers'",
        (tenant.now() - 1,),
    )
    response = await token_request(http, **CC, **WORLD_MAPPERS)
    assert response.status_code == 401
    assert response.json()["error"] == "invalid_client"


async def test_public_client_cannot_use_client_credentials(http: httpx.AsyncClient) -> None:
    """A public client asking for client_credentials gets unauthorized_client."""
    response = await token_request(http, **CC, client_id="textapp-io")
    assert response.status_code == 400
    assert response.json()["error"] == "unauthorized_client"


# ----------------------------------------------------------------- request format


@pytest.mark.parametrize(
    ("request_kwargs", "error"),
    [
        pytest.param(
            {"content": "grant_type=client_credentials&grant_type=password"},
            "invalid_request",
            id="repeated-parameter",
        ),
        pytest.param({"content": "x", "ctype": "text/plain"}, "invalid_request", id="text-plain"),
        pytest.param(
            {"content": json.dumps(["not", "an", "object"]), "ctype": "application/json"},
            "invalid_request",
            id="json-array",
        ),
        pytest.param(
            {"content": '{"grant_type": 1}', "ctype": "application/json"},
            "invalid_request",
            id="json-non-string",
        ),
        pytest.param(
            {"content": '{"a": "1", "a": "2"}', "ctype": "application/json"},
            "invalid_request",
            id="json-duplicate",
        ),
        pytest.param({"content": b"\xff\xfe"}, "invalid_request", id="bad-utf8"),
        pytest.param({"content": "client_id=world-mappers"}, "invalid_client", id="no-secret"),
    ],
)
async def test_malformed_requests_get_clear_errors(
    http: httpx.AsyncClient, request_kwargs: dict[str, str], error: str
) -> None:
    """Malformed bodies are answered with a JSON 4xx error, never a 500."""
    ctype = request_kwargs.pop("ctype", "application/x-www-form-urlencoded")
    response = await http.post(
        "/oauth/token", content=request_kwargs["content"], headers={"Content-Type": ctype}
    )
    assert 400 <= response.status_code < 500
    assert response.json()["error"] == error
    assert response.headers["cache-control"] == "no-store"


@pytest.mark.parametrize(
    ("grant_type", "error"),
    [
        pytest.param(None, "invalid_request", id="missing"),
        pytest.param("urn:unknown", "unsupported_grant_type", id="unknown"),
        pytest.param("password", "unauthorized_client", id="not-allowed-for-client"),
    ],
)
async def test_grant_type_errors(
    http: httpx.AsyncClient, grant_type: str | None, error: str
) -> None:
    """A missing, unknown or disallowed grant_type gets its RFC 6749 error code."""
    data = dict(WORLD_MAPPERS, audience=ORGANIZER)
    if grant_type:
        data["grant_type"] = grant_type
    response = await token_request(http, **data)
    assert response.status_code == 400
    assert response.json()["error"] == error


async def test_secret_in_query_is_refused(http: httpx.AsyncClient) -> None:
    """Credentials in the URL query are refused, even with a valid body."""
    response = await http.post(
        "/oauth/token?client_secret=world-mappers-dev-secret", data=CC | WORLD_MAPPERS
    )
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_request"


async def test_get_is_not_allowed(http: httpx.AsyncClient) -> None:
    """GET on the token endpoint is 405, with no-store."""
    response = await http.get("/oauth/token")
    assert response.status_code == 405
    assert response.headers["cache-control"] == "no-store"


@pytest.mark.parametrize(
    "data",
    [pytest.param(CC | WORLD_MAPPERS, id="success"), pytest.param(CC, id="error")],
)
async def test_every_token_answer_is_not_cached(
    http: httpx.AsyncClient, data: dict[str, str]
) -> None:
    """Success and error answers carry Cache-Control no-store, Pragma no-cache and JSON."""
    response = await token_request(http, **data)
    assert response.headers["cache-control"] == "no-store"
    assert response.headers["pragma"] == "no-cache"
    assert response.headers["content-type"] == "application/json"


async def test_bad_secrets_are_rate_limited_per_address(app: object) -> None:
    """After 20 bad secrets from one address it gets 429; another address is unaffected."""
    from starlette.applications import Starlette

    assert isinstance(app, Starlette)

    def client(ip: str) -> httpx.AsyncClient:
        transport = httpx.ASGITransport(app=app, client=(ip, 1234))
        return httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1:9000")

    async with client("10.0.0.1") as attacker, client("10.0.0.2") as legit:
        wrong = CC | {"client_id": "world-mappers", "client_secret": "guess"}
        statuses = [(await token_request(attacker, **wrong)).status_code for _ in range(21)]
        assert statuses[:20] == [401] * 20
        assert statuses[20] == 429
        blocked = await token_request(attacker, **CC, **WORLD_MAPPERS)
        assert blocked.status_code == 429
        assert int(blocked.headers["retry-after"]) > 0
        assert (await token_request(legit, **CC, **WORLD_MAPPERS)).status_code == 200


async def test_management_api_is_not_available_to_user_flows(http: httpx.AsyncClient) -> None:
    """The Management API audience needs a client grant like any other API."""
    response = await token_request(
        http, grant_type="client_credentials", audience=MANAGEMENT, **WORLD_MAPPERS
    )
    assert response.status_code == 403
    assert response.json()["error"] == "access_denied"


# --- client-secret storage -------------------------------------------------------------------


def _stored_hash(tenant: Domain, client_id: str) -> str:
    client = tenant.clients.find(client_id)
    assert client is not None
    assert client.secret_hash is not None
    return client.secret_hash


async def test_client_secrets_use_the_fast_hash_and_passwords_scrypt(
    http: httpx.AsyncClient, tenant: Domain
) -> None:
    """Seeded and generated client secrets are SHA-256 hashed; user passwords stay scrypt."""
    assert _stored_hash(tenant, "world-mappers").startswith("sha256$")
    client, secret = tenant.clients.create(name="Bot", app_type="non_interactive")
    assert secret is not None
    assert _stored_hash(tenant, client.client_id).startswith("sha256$")
    users = tenant.store.all("SELECT password_hash FROM users")
    assert users
    assert all(row["password_hash"].startswith("scrypt$") for row in users)


async def test_scrypt_hashed_client_secret_still_works_and_is_rehashed(
    http: httpx.AsyncClient, tenant: Domain
) -> None:
    """A store from an earlier version (scrypt client hashes) keeps working: the first good
    authentication replaces the scrypt hash by the fast one; a bad secret changes nothing."""
    old = hash_password(WORLD_MAPPERS["client_secret"])
    tenant.store.execute(
        "UPDATE clients SET secret_hash = ? WHERE client_id = ?", (old, "world-mappers")
    )
    wrong = {**WORLD_MAPPERS, "client_secret": "not-the-secret"}
    assert (await token_request(http, **CC, **wrong)).status_code == 401
    assert _stored_hash(tenant, "world-mappers") == old
    assert (await token_request(http, **CC, **WORLD_MAPPERS)).status_code == 200
    assert _stored_hash(tenant, "world-mappers") == hash_client_secret(
        WORLD_MAPPERS["client_secret"]
    )
    assert (await token_request(http, **CC, **WORLD_MAPPERS)).status_code == 200
    assert (await token_request(http, **CC, **wrong)).status_code == 401


def test_rehash_does_not_undo_a_rotation(tenant: Domain, monkeypatch: pytest.MonkeyPatch) -> None:
    """The re-hash only replaces the scrypt hash it verified: a secret rotated meanwhile
    (between the check and the update) stays rotated."""
    secret = WORLD_MAPPERS["client_secret"]
    tenant.store.execute(
        "UPDATE clients SET secret_hash = ? WHERE client_id = ?",
        (hash_password(secret), "world-mappers"),
    )
    real_verify = tenant_module.verify_secret
    rotated: list[str] = []

    def verify_then_rotate(candidate: str, stored: str | None) -> bool:
        ok = real_verify(candidate, stored)
        rotated.append(tenant.clients.rotate_secret("world-mappers")[1])
        return ok

    monkeypatch.setattr(tenant_module, "verify_secret", verify_then_rotate)
    assert tenant.clients.authenticate("world-mappers", secret) is not None
    assert _stored_hash(tenant, "world-mappers") == hash_client_secret(rotated[0])


def test_verify_secret_schemes() -> None:
    """Both stored schemes verify the right secret only; a missing or junk hash never does."""
    for stored in (hash_client_secret("s3cret"), hash_password("s3cret")):
        assert verify_secret("s3cret", stored)
        assert not verify_secret("s3cret ", stored)
    assert is_slow_hash(hash_password("x"))
    assert not is_slow_hash(hash_client_secret("x"))
    assert not is_slow_hash(None)
    for stored in (None, "", "sha256$", "scrypt$1$2", "md5$abc"):
        assert not verify_secret("s3cret", stored)
