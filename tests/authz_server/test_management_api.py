"""The Management API: apiguard protection, Auth0 field names, the admin tasks end to end."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from starlette.applications import Starlette

from examples.authz_server.services import Domain

from .support import ORGANIZER, ORIGIN, Validate, management_token, token_request

pytestmark = pytest.mark.anyio

ALL_SCOPES = (
    "read:resource_servers",
    "create:resource_servers",
    "update:resource_servers",
    "delete:resource_servers",
    "read:clients",
    "create:clients",
    "update:clients",
    "delete:clients",
    "read:client_grants",
    "create:client_grants",
    "update:client_grants",
    "delete:client_grants",
    "read:users",
    "create:users",
    "update:users",
    "delete:users",
    "read:grants",
    "delete:grants",
    "read:signing_keys",
    "create:signing_keys",
    "update:signing_keys",
)


@pytest.fixture
async def admin(
    http: httpx.AsyncClient, tenant: Domain, app: Starlette
) -> AsyncIterator[httpx.AsyncClient]:
    """A client carrying a Management API token with every scope."""
    token = await management_token(http, tenant, *ALL_SCOPES)
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app),
        base_url=ORIGIN,
        headers={"Authorization": f"Bearer {token}"},
    ) as client:
        yield client


async def test_requests_without_a_token_are_401(http: httpx.AsyncClient) -> None:
    """No token gives apiguard's bare Bearer challenge."""
    response = await http.get("/api/v2/clients")
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == 'Bearer realm="management-api"'


async def test_an_organizer_token_is_not_a_management_token(http: httpx.AsyncClient) -> None:
    """A valid token for another audience is invalid_token here."""
    other = await token_request(
        http,
        grant_type="client_credentials",
        audience=ORGANIZER,
        client_id="world-mappers",
        client_secret="world-mappers-dev-secret",
    )
    response = await http.get(
        "/api/v2/clients", headers={"Authorization": f"Bearer {other.json()['access_token']}"}
    )
    assert response.status_code == 401
    assert 'error="invalid_token"' in response.headers["www-authenticate"]


async def test_missing_scope_is_403(http: httpx.AsyncClient, tenant: Domain) -> None:
    """A token with read:clients cannot create clients."""
    token = await management_token(http, tenant, "read:clients")
    headers = {"Authorization": f"Bearer {token}"}
    assert (await http.get("/api/v2/clients", headers=headers)).status_code == 200
    response = await http.post("/api/v2/clients", json={"name": "X"}, headers=headers)
    assert response.status_code == 403
    assert 'scope="create:clients"' in response.headers["www-authenticate"]


# Every route and the one scope it needs (Auth0's names).
ROUTE_SCOPES = [
    ("GET", "/api/v2/resource-servers", "read:resource_servers"),
    ("POST", "/api/v2/resource-servers", "create:resource_servers"),
    ("GET", f"/api/v2/resource-servers/{ORGANIZER}", "read:resource_servers"),
    ("PATCH", f"/api/v2/resource-servers/{ORGANIZER}", "update:resource_servers"),
    ("DELETE", f"/api/v2/resource-servers/{ORGANIZER}", "delete:resource_servers"),
    ("GET", "/api/v2/clients", "read:clients"),
    ("POST", "/api/v2/clients", "create:clients"),
    ("GET", "/api/v2/clients/calendar-app", "read:clients"),
    ("PATCH", "/api/v2/clients/calendar-app", "update:clients"),
    ("POST", "/api/v2/clients/calendar-app/rotate-secret", "update:clients"),
    ("DELETE", "/api/v2/clients/calendar-app", "delete:clients"),
    ("GET", "/api/v2/client-grants", "read:client_grants"),
    ("POST", "/api/v2/client-grants", "create:client_grants"),
    ("PATCH", "/api/v2/client-grants/x", "update:client_grants"),
    ("DELETE", "/api/v2/client-grants/x", "delete:client_grants"),
    ("GET", "/api/v2/users", "read:users"),
    ("POST", "/api/v2/users", "create:users"),
    ("GET", "/api/v2/users/auth0|demo", "read:users"),
    ("PATCH", "/api/v2/users/auth0|demo", "update:users"),
    ("DELETE", "/api/v2/users/auth0|demo", "delete:users"),
    ("GET", "/api/v2/grants", "read:grants"),
    ("DELETE", "/api/v2/grants?user_id=auth0|demo", "delete:grants"),
    ("DELETE", "/api/v2/grants/x", "delete:grants"),
    ("GET", "/api/v2/keys/signing", "read:signing_keys"),
    ("POST", "/api/v2/keys/signing/rotate", "create:signing_keys"),
    ("GET", "/api/v2/keys/signing/x", "read:signing_keys"),
    ("PUT", "/api/v2/keys/signing/x/revoke", "update:signing_keys"),
]


async def test_every_route_needs_its_own_scope(http: httpx.AsyncClient, app: Starlette) -> None:
    """A token with every scope but a route's own gets 403 naming that scope; nothing changes."""
    bundle = app.state.services
    api = bundle.domain.apis.get(bundle.settings.management_audience)
    before = bundle.domain.export()
    refused = []
    for method, path, scope in ROUTE_SCOPES:
        token = bundle.minter.access_token(
            api=api,
            subject="world-mappers@clients",
            client_id="world-mappers",
            scopes=[s for s in ALL_SCOPES if s != scope],
        ).token
        response = await http.request(
            method, path, headers={"Authorization": f"Bearer {token}"}, json={}
        )
        challenge = response.headers.get("www-authenticate", "")
        if response.status_code != 403 or f'scope="{scope}"' not in challenge:
            refused.append(f"{method} {path}: {response.status_code} {challenge}")
    assert refused == []
    assert bundle.domain.export() == before


async def test_quickstart_loop_through_the_management_api(
    admin: httpx.AsyncClient, http: httpx.AsyncClient, validate: Validate
) -> None:
    """Create an API, add a scope, create an M2M client, authorize it, get a token, use it."""
    created = await admin.post(
        "/api/v2/resource-servers",
        json={
            "name": "Weather",
            "identifier": "https://weather.example",
            "scopes": [{"value": "read:forecast", "description": "Read forecasts"}],
        },
    )
    assert created.status_code == 201, created.text
    api = created.json()
    assert api["signing_alg"] == "RS256"
    assert api["token_lifetime"] == 86400
    patched = await admin.patch(
        f"/api/v2/resource-servers/{api['id']}",
        json={"scopes": [*api["scopes"], {"value": "write:forecast", "description": "Write"}]},
    )
    assert [s["value"] for s in patched.json()["scopes"]] == ["read:forecast", "write:forecast"]
    client = await admin.post(
        "/api/v2/clients", json={"name": "Forecaster", "app_type": "non_interactive"}
    )
    assert client.status_code == 201
    credentials = client.json()
    assert credentials["grant_types"] == ["client_credentials"]
    secret = credentials["client_secret"]
    grant = await admin.post(
        "/api/v2/client-grants",
        json={
            "client_id": credentials["client_id"],
            "audience": "https://weather.example",
            "scope": ["read:forecast"],
        },
    )
    assert grant.status_code == 201
    assert set(grant.json()) == {"id", "client_id", "audience", "scope"}
    token = await token_request(
        http,
        grant_type="client_credentials",
        audience="https://weather.example",
        client_id=credentials["client_id"],
        client_secret=secret,
    )
    assert token.status_code == 200, token.text
    validated = await validate(token.json()["access_token"], "https://weather.example")
    assert validated.scopes == {"read:forecast"}
    fetched = await admin.get(f"/api/v2/clients/{credentials['client_id']}")
    assert "client_secret" not in fetched.json()


async def test_resource_server_by_identifier_and_immutables(admin: httpx.AsyncClient) -> None:
    """An API can be addressed by its identifier; identifier and signing_alg cannot change."""
    fetched = await admin.get(f"/api/v2/resource-servers/{ORGANIZER}")
    assert fetched.status_code == 200
    assert fetched.json()["identifier"] == ORGANIZER
    for field, value in (("identifier", "https://other.example"), ("signing_alg", "HS256")):
        response = await admin.patch(f"/api/v2/resource-servers/{ORGANIZER}", json={field: value})
        assert response.status_code == 400
        assert response.json()["errorCode"] == "invalid_body"


@pytest.mark.parametrize(
    ("method", "path", "body", "status"),
    [
        pytest.param("POST", "/api/v2/resource-servers", {"name": "x"}, 400, id="rs-no-identifier"),
        pytest.param(
            "POST",
            "/api/v2/resource-servers",
            {"identifier": ORGANIZER},
            409,
            id="rs-duplicate",
        ),
        pytest.param(
            "POST",
            "/api/v2/resource-servers",
            {"identifier": "urn:x", "signing_alg": "none"},
            400,
            id="rs-alg-none",
        ),
        pytest.param(
            "POST",
            "/api/v2/resource-servers",
            {"identifier": "urn:x", "token_lifetime": "long"},
            400,
            id="rs-lifetime-type",
        ),
        pytest.param(
            "POST",
            "/api/v2/resource-servers",
            {"identifier": "urn:x", "scopes": [{"value": "has space"}]},
            400,
            id="rs-bad-scope",
        ),
        pytest.param(
            "POST",
            "/api/v2/resource-servers",
            {"identifier": "urn:x", "scopes": "read:x"},
            400,
            id="rs-scopes-not-a-list",
        ),
        pytest.param("GET", "/api/v2/resource-servers/nope", None, 404, id="rs-missing"),
        pytest.param("POST", "/api/v2/clients", {"name": "x", "app_type": "tv"}, 400, id="app"),
        pytest.param(
            "POST",
            "/api/v2/clients",
            {"name": "x", "callbacks": ["http://evil.example/cb"]},
            400,
            id="client-http-callback",
        ),
        pytest.param(
            "POST",
            "/api/v2/clients",
            {"name": "x", "app_type": "spa", "grant_types": ["client_credentials"]},
            400,
            id="spa-client-credentials",
        ),
        pytest.param("POST", "/api/v2/clients", {"secret": "x", "name": "y"}, 400, id="unknown"),
        pytest.param(
            "POST",
            "/api/v2/client-grants",
            {"client_id": "world-mappers", "audience": ORGANIZER, "scope": []},
            409,
            id="grant-duplicate",
        ),
        pytest.param(
            "POST",
            "/api/v2/client-grants",
            {"client_id": "calendar-app", "audience": ORGANIZER, "scope": ["fly"]},
            400,
            id="grant-unknown-scope",
        ),
        pytest.param(
            "POST",
            "/api/v2/client-grants",
            {"client_id": "textapp-io", "audience": ORGANIZER, "scope": []},
            400,
            id="grant-to-public-client",
        ),
        pytest.param(
            "POST",
            "/api/v2/users",
            {"email": "not-an-email", "password": "long-enough"},
            400,
            id="user-email",
        ),
        pytest.param(
            "POST", "/api/v2/users", {"email": "a@b.example", "password": "short"}, 400, id="pw"
        ),
        pytest.param(
            "POST",
            "/api/v2/users",
            {"email": "demo@organizer.example", "password": "long-enough"},
            409,
            id="user-duplicate",
        ),
        pytest.param("DELETE", "/api/v2/grants", None, 400, id="grants-delete-needs-user"),
        pytest.param("PUT", "/api/v2/keys/signing/nope/revoke", None, 404, id="key-missing"),
    ],
)
async def test_bad_management_requests_get_auth0_errors(
    admin: httpx.AsyncClient, method: str, path: str, body: object, status: int
) -> None:
    """Invalid payloads get Auth0's error shape with a 4xx status, never a 500."""
    response = await admin.request(method, path, json=body)
    assert response.status_code == status, response.text
    assert set(response.json()) == {"statusCode", "error", "message", "errorCode"}
    assert response.json()["statusCode"] == status


@pytest.mark.parametrize(
    "content",
    [pytest.param(b"{", id="truncated"), pytest.param(b"[1]", id="array")],
)
async def test_malformed_json_is_400(admin: httpx.AsyncClient, content: bytes) -> None:
    """A body that is not a JSON object is a 400 payload error."""
    response = await admin.post(
        "/api/v2/clients", content=content, headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 400


async def test_hs256_secret_is_shown_to_admins_only_via_the_api(
    admin: httpx.AsyncClient,
) -> None:
    """Creating an HS256 API returns its signing secret (the RS needs it), never the JWKS."""
    created = await admin.post(
        "/api/v2/resource-servers", json={"identifier": "urn:hs", "signing_alg": "HS256"}
    )
    secret = created.json()["signing_secret"]
    assert len(secret) >= 43
    jwks = await admin.get("/.well-known/jwks.json")
    assert secret not in jwks.text
    listed = await admin.get("/api/v2/resource-servers")
    assert secret not in listed.text


async def test_users_and_user_grants(admin: httpx.AsyncClient, tenant: Domain) -> None:
    """Users are created with Auth0's shape; consent records can be listed and withdrawn."""
    created = await admin.post(
        "/api/v2/users",
        json={"email": "new@organizer.example", "password": "new-user-password", "name": "New"},
    )
    assert created.status_code == 201
    user = created.json()
    assert user["user_id"].startswith("auth0|")
    assert "password" not in created.text
    tenant.consents.remember(user["user_id"], "calendar-app", ORGANIZER, ["read:appointments"])
    grants = (await admin.get("/api/v2/grants", params={"user_id": user["user_id"]})).json()
    assert grants == [
        {
            "id": grants[0]["id"],
            "clientID": "calendar-app",
            "user_id": user["user_id"],
            "audience": ORGANIZER,
            "scope": ["read:appointments"],
        }
    ]
    assert (await admin.delete(f"/api/v2/grants/{grants[0]['id']}")).status_code == 204
    assert (await admin.get("/api/v2/grants", params={"user_id": user["user_id"]})).json() == []
    patched = await admin.patch(f"/api/v2/users/{user['user_id']}", json={"name": "Renamed"})
    assert patched.json()["name"] == "Renamed"
    assert (await admin.delete(f"/api/v2/users/{user['user_id']}")).status_code == 204
    assert (await admin.get(f"/api/v2/users/{user['user_id']}")).status_code == 404


async def test_client_secret_rotation(admin: httpx.AsyncClient, http: httpx.AsyncClient) -> None:
    """Rotating a secret returns a new one once; the old one stops working."""
    rotated = await admin.post("/api/v2/clients/world-mappers/rotate-secret")
    assert rotated.status_code == 200
    new_secret = rotated.json()["client_secret"]
    data = {"grant_type": "client_credentials", "audience": ORGANIZER}
    old = await token_request(
        http, **data, client_id="world-mappers", client_secret="world-mappers-dev-secret"
    )
    assert old.status_code == 401
    new = await token_request(http, **data, client_id="world-mappers", client_secret=new_secret)
    assert new.status_code == 200


async def test_key_rotation_through_the_api(admin: httpx.AsyncClient, tenant: Domain) -> None:
    """POST rotate makes next current; PUT revoke drops the previous key from the JWKS."""
    keys = (await admin.get("/api/v2/keys/signing")).json()
    assert {k["current"] for k in keys} == {True, False}
    assert all("private" not in str(k).lower() for k in keys)
    previous = tenant.keys.current().kid
    rotated = await admin.post("/api/v2/keys/signing/rotate")
    assert rotated.status_code == 201
    assert (await admin.get(f"/api/v2/keys/signing/{previous}")).json()["previous"] is True
    # The management token (signed by the old key) still works until that key is revoked.
    revoked = await admin.put(f"/api/v2/keys/signing/{previous}/revoke")
    assert revoked.status_code == 200
    assert revoked.json()["revoked"] is True
    jwks = (await admin.get("/.well-known/jwks.json")).json()
    assert previous not in {k["kid"] for k in jwks["keys"]}


async def test_deleting_an_api_removes_its_grants(admin: httpx.AsyncClient, tenant: Domain) -> None:
    """Deleting the Organizer API deletes its client grants; the system API cannot go."""
    assert (await admin.delete(f"/api/v2/resource-servers/{ORGANIZER}")).status_code == 204
    assert tenant.client_grants.all(audience=ORGANIZER) == []
    system = tenant.apis.ensure_management_api()
    response = await admin.delete(f"/api/v2/resource-servers/{system.id}")
    assert response.status_code == 400
