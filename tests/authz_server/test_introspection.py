"""Token introspection (RFC 7662), opaque access tokens, and revocation seen at introspection."""

from __future__ import annotations

import base64
import sqlite3
from pathlib import Path
from typing import Any

import httpx
import pytest

from apiguard import AsyncIntrospector, InactiveToken, Introspection
from examples.authz_server import Settings
from examples.authz_server.rules import ValidationError
from examples.authz_server.services import Domain
from examples.authz_server.store import SCHEMA_VERSION, Store

from .support import (
    CALENDAR,
    ISSUER,
    ORGANIZER,
    WORLD_MAPPERS,
    FakeClock,
    management_token,
    token_request,
)

pytestmark = pytest.mark.anyio

API_CLIENT = {"client_id": "organizer-api", "client_secret": "organizer-api-dev-secret"}


def basic(client: dict[str, str]) -> dict[str, str]:
    pair = f"{client['client_id']}:{client['client_secret']}".encode()
    return {"Authorization": "Basic " + base64.b64encode(pair).decode()}


async def world_mappers_token(http: httpx.AsyncClient) -> str:
    response = await token_request(
        http, grant_type="client_credentials", audience=ORGANIZER, **WORLD_MAPPERS
    )
    assert response.status_code == 200, response.text
    token: str = response.json()["access_token"]
    return token


async def introspect(
    http: httpx.AsyncClient, token: str, client: dict[str, str] = API_CLIENT
) -> dict[str, Any]:
    response = await http.post("/oauth/introspect", data={"token": token}, headers=basic(client))
    assert response.status_code == 200, response.text
    assert response.headers["cache-control"] == "no-store"
    answer: dict[str, Any] = response.json()
    return answer


@pytest.fixture
def opaque(tenant: Domain) -> None:
    """The Organizer API issues opaque reference tokens."""
    tenant.apis.update(ORGANIZER, {"access_token_format": "opaque"})


async def test_discovery_advertises_the_endpoint(http: httpx.AsyncClient) -> None:
    """Both metadata documents name the endpoint and its (confidential) auth methods."""
    for path in ("/.well-known/openid-configuration", "/.well-known/oauth-authorization-server"):
        doc = (await http.get(path)).json()
        assert doc["introspection_endpoint"] == f"{ISSUER}oauth/introspect"
        methods = doc["introspection_endpoint_auth_methods_supported"]
        assert "client_secret_basic" in methods
        assert "none" not in methods


async def test_jwt_introspected_by_the_apis_client(http: httpx.AsyncClient) -> None:
    """The API's introspection client learns the JWT's members; the answer is RFC 7662's."""
    token = await world_mappers_token(http)
    answer = await introspect(http, token)
    assert answer["active"] is True
    assert answer["iss"] == ISSUER
    assert answer["aud"] == ORGANIZER
    assert answer["client_id"] == "world-mappers"
    assert answer["sub"] == "world-mappers@clients"
    assert answer["token_type"] == "Bearer"
    assert isinstance(answer["exp"], int)
    assert isinstance(answer["iat"], int)
    assert "read:appointments" in answer["scope"].split()
    assert "cnf" not in answer


@pytest.mark.parametrize(
    "caller",
    [
        pytest.param(WORLD_MAPPERS, id="the-token-s-own-client"),
        pytest.param(CALENDAR, id="another-client"),
    ],
)
async def test_other_callers_learn_nothing(http: httpx.AsyncClient, caller: dict[str, str]) -> None:
    """A client not allowed to introspect the token's API gets active: false, nothing more."""
    token = await world_mappers_token(http)
    # Both authenticate with client_secret_post, as registered.
    response = await http.post("/oauth/introspect", data={"token": token, **caller})
    assert response.status_code == 200
    assert response.json() == {"active": False}


async def test_opaque_token_is_random_stored_hashed_and_introspected(
    http: httpx.AsyncClient, tenant: Domain, opaque: None
) -> None:
    """An opaque API's token is random, its value is not in the store, introspection answers."""
    token = await world_mappers_token(http)
    assert "." not in token
    assert len(token) >= 43
    rows = tenant.store.all("SELECT * FROM reference_tokens")
    assert len(rows) == 1
    assert all(token not in str(value) for value in tuple(rows[0]))
    answer = await introspect(http, token)
    assert (answer["active"], answer["aud"], answer["client_id"]) == (
        True,
        ORGANIZER,
        "world-mappers",
    )


async def test_revocation_takes_effect_at_once(
    http: httpx.AsyncClient, tenant: Domain, opaque: None
) -> None:
    """Revoking an opaque token at /oauth/revoke makes the very next introspection inactive."""
    token = await world_mappers_token(http)
    assert (await introspect(http, token))["active"] is True
    revoked = await http.post("/oauth/revoke", data={"token": token, **WORLD_MAPPERS})
    assert revoked.status_code == 200
    assert await introspect(http, token) == {"active": False}
    assert tenant.store.all("SELECT * FROM reference_tokens") == []


async def test_another_client_cannot_revoke(http: httpx.AsyncClient, opaque: None) -> None:
    """Only the client a token was issued to may revoke it (RFC 7009 §2.1)."""
    token = await world_mappers_token(http)
    refused = await http.post("/oauth/revoke", data={"token": token, **CALENDAR})
    assert refused.status_code == 400
    assert refused.json()["error"] == "invalid_grant"
    assert (await introspect(http, token))["active"] is True


async def test_revoked_jwt_is_inactive(http: httpx.AsyncClient) -> None:
    """A JWT revoked at /oauth/revoke is inactive at introspection from then on."""
    token = await world_mappers_token(http)
    await http.post("/oauth/revoke", data={"token": token, **WORLD_MAPPERS})
    assert await introspect(http, token) == {"active": False}


async def test_expired_tokens_are_inactive(
    http: httpx.AsyncClient, tenant: Domain, clock: FakeClock, opaque: None
) -> None:
    """An opaque token past its lifetime is inactive, and its row is purged later."""
    tenant.apis.update(ORGANIZER, {"token_lifetime": 60})
    token = await world_mappers_token(http)
    clock.advance(60)
    assert await introspect(http, token) == {"active": False}
    await world_mappers_token(http)
    assert len(tenant.store.all("SELECT * FROM reference_tokens")) == 1


@pytest.mark.parametrize(
    "token",
    [
        pytest.param("nope", id="unknown"),
        pytest.param("a.b.c", id="jwt-shaped-garbage"),
        pytest.param("x" * 5000, id="long"),
        pytest.param("eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0.", id="alg-none"),
    ],
)
async def test_garbage_tokens_are_inactive(http: httpx.AsyncClient, token: str) -> None:
    """Whatever the token, a bad one is active: false (never a 500, never an error echo)."""
    assert await introspect(http, token) == {"active": False}


@pytest.mark.parametrize(
    ("request_kwargs", "status", "error"),
    [
        pytest.param({"data": {"token": "t"}}, 401, "invalid_client", id="no-client-auth"),
        pytest.param(
            {"data": {"token": "t"}, "headers": basic({**API_CLIENT, "client_secret": "wrong"})},
            401,
            "invalid_client",
            id="wrong-secret",
        ),
        pytest.param(
            {"data": {"token": "t", "client_id": "textapp-io"}},
            401,
            "invalid_client",
            id="public-client",
        ),
        pytest.param(
            {"data": {}, "headers": basic(API_CLIENT)}, 400, "invalid_request", id="no-token"
        ),
        pytest.param(
            {"content": b"token=a&token=b", "headers": basic(API_CLIENT)},
            400,
            "invalid_request",
            id="repeated-token",
        ),
        pytest.param(
            {
                "data": {"token": "t"},
                "headers": {**basic(API_CLIENT), "Content-Type": "text/plain"},
            },
            400,
            "invalid_request",
            id="not-a-form",
        ),
    ],
)
async def test_bad_introspection_requests(
    http: httpx.AsyncClient, request_kwargs: dict[str, Any], status: int, error: str
) -> None:
    """Unauthenticated or malformed requests get the RFC 6749 error, never an answer."""
    headers = request_kwargs.pop("headers", {})
    if "content" in request_kwargs:
        headers = {**headers, "Content-Type": "application/x-www-form-urlencoded"}
    response = await http.post("/oauth/introspect", headers=headers, **request_kwargs)
    assert (response.status_code, response.json()["error"]) == (status, error)
    assert "active" not in response.json()


async def test_introspection_is_post_only(http: httpx.AsyncClient) -> None:
    """GET (a token in a URL would end up in logs) is a 405."""
    response = await http.get("/oauth/introspect?token=abc", headers=basic(API_CLIENT))
    assert response.status_code == 405


async def test_token_in_the_query_is_refused(http: httpx.AsyncClient) -> None:
    """A token in the query string of a POST is refused too (RFC 6749 §3.2 parameters)."""
    response = await http.post(
        "/oauth/introspect?token=abc", data={"token": "abc"}, headers=basic(API_CLIENT)
    )
    assert response.status_code == 400


async def test_apiguard_introspector_against_the_server(
    http: httpx.AsyncClient, clock: FakeClock, opaque: None
) -> None:
    """apiguard's AsyncIntrospector discovers the endpoint and validates an opaque token."""
    token = await world_mappers_token(http)
    async with AsyncIntrospector(
        issuer=ISSUER,
        audience=ORGANIZER,
        introspection=Introspection(**API_CLIENT),
        http_client=http,
        clock=clock,
    ) as introspector:
        granted = await introspector.validate(token)
        assert granted.client_id == "world-mappers"
        assert "read:appointments" in granted.scopes
        await http.post("/oauth/revoke", data={"token": token, **WORLD_MAPPERS})
        introspector.cache_clear()
        with pytest.raises(InactiveToken):
            await introspector.validate(token)


async def test_userinfo_accepts_opaque_tokens(tenant: Domain, http: httpx.AsyncClient) -> None:
    """An opaque token with openid (and the userinfo audience) works at /userinfo."""
    bundle: Any = http._transport.app.state.services  # type: ignore[attr-defined]
    tenant.apis.update(ORGANIZER, {"access_token_format": "opaque"})
    user = tenant.users.find_by_email("demo@organizer.example")
    assert user is not None
    issued = bundle.minter.access_token(
        api=tenant.apis.get(ORGANIZER),
        subject=user.user_id,
        client_id="organizer-web",
        scopes=["openid", "email"],
    )
    response = await http.get("/userinfo", headers={"Authorization": f"Bearer {issued.token}"})
    assert response.status_code == 200
    assert response.json()["email"] == "demo@organizer.example"


# -- the settings ------------------------------------------------------------------------------


async def test_management_api_sets_format_and_introspection_clients(
    http: httpx.AsyncClient, tenant: Domain
) -> None:
    """The Management API creates and changes an API's token format and introspection clients."""
    token = await management_token(
        http, tenant, "create:resource_servers", "update:resource_servers"
    )
    auth = {"Authorization": f"Bearer {token}"}
    created = await http.post(
        "/api/v2/resource-servers",
        json={
            "identifier": "https://opaque.example/api",
            "access_token_format": "opaque",
            "introspection_clients": ["organizer-api"],
        },
        headers=auth,
    )
    assert created.status_code == 201, created.text
    body = created.json()
    assert (body["access_token_format"], body["introspection_clients"]) == (
        "opaque",
        ["organizer-api"],
    )
    changed = await http.patch(
        f"/api/v2/resource-servers/{body['id']}",
        json={"access_token_format": "jwt", "introspection_clients": []},
        headers=auth,
    )
    assert changed.status_code == 200, changed.text
    assert (changed.json()["access_token_format"], changed.json()["introspection_clients"]) == (
        "jwt",
        [],
    )


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        pytest.param({"access_token_format": "paseto"}, "jwt or opaque", id="format"),
        pytest.param({"introspection_clients": "organizer-api"}, "list", id="not-a-list"),
        pytest.param({"introspection_clients": ["nobody"]}, "existing", id="unknown-client"),
        pytest.param({"introspection_clients": [5]}, "existing", id="not-a-string"),
        pytest.param({"introspection_clients": ["textapp-io"]}, "confidential", id="public"),
    ],
)
def test_bad_settings_are_refused(tenant: Domain, changes: dict[str, Any], message: str) -> None:
    """Unusable formats and clients are validation errors; nothing is changed."""
    with pytest.raises(ValidationError, match=message):
        tenant.apis.update(ORGANIZER, changes)
    api = tenant.apis.get(ORGANIZER)
    assert (api.access_token_format, api.introspection_clients) == ("jwt", ("organizer-api",))


def test_deleting_a_client_drops_its_introspection_right(tenant: Domain) -> None:
    """A deleted client no longer appears among any API's introspection clients."""
    tenant.clients.delete("organizer-api")
    assert tenant.apis.get(ORGANIZER).introspection_clients == ()


def test_export_and_import_keep_the_settings(tenant: Domain) -> None:
    """An exported tenant imports with its token formats and introspection clients."""
    tenant.apis.update(ORGANIZER, {"access_token_format": "opaque"})
    exported = tenant.export()
    fresh = Domain(Store(":memory:"), Settings(db_path=":memory:"))
    fresh.keys.ensure()
    fresh.load(exported)
    api = fresh.apis.get(ORGANIZER)
    assert (api.access_token_format, api.introspection_clients) == ("opaque", ("organizer-api",))


def test_older_store_files_gain_the_new_columns(tmp_path: Path) -> None:
    """A store of the previous schema version is migrated: APIs default to JWTs."""
    path = str(tmp_path / "old.sqlite3")
    Domain(Store(path), Settings(db_path=path)).initialise()
    with sqlite3.connect(path) as conn:
        conn.execute("ALTER TABLE resource_servers DROP COLUMN access_token_format")
        conn.execute("ALTER TABLE resource_servers DROP COLUMN introspection_clients")
        conn.execute("DROP TABLE reference_tokens")
        conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION - 1}")
    store = Store(path)
    tenant = Domain(store, Settings(db_path=path))
    api = tenant.apis.get(ORGANIZER)
    assert (api.access_token_format, api.introspection_clients) == ("jwt", ())
    assert store.all("SELECT * FROM reference_tokens") == []
    store.close()


def test_cli_sets_the_token_format(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """create-api takes a format and introspection clients; set-token-format changes it."""
    import json

    from examples.authz_server.__main__ import main

    monkeypatch.setenv("AUTHZ_DB", str(tmp_path / "cli.sqlite3"))
    monkeypatch.delenv("AUTHZ_ISSUER", raising=False)

    def cli(*argv: str) -> Any:
        assert main(list(argv)) == 0, capsys.readouterr().err
        return json.loads(capsys.readouterr().out)

    created = cli(
        "create-api",
        "--name",
        "Ref",
        "--identifier",
        "https://ref.example",
        "--token-format",
        "opaque",
        "--introspection-client",
        "organizer-api",
    )
    assert (created["access_token_format"], created["introspection_clients"]) == (
        "opaque",
        ["organizer-api"],
    )
    assert cli("set-token-format", "https://ref.example", "jwt")["access_token_format"] == "jwt"
    with pytest.raises(SystemExit):
        main(["set-token-format", "https://ref.example", "paseto"])
