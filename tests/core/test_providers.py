"""Identity providers: each docs/providers recipe accepts that provider's real token shape.

Every test runs the recipe's code exactly as the page shows it (its ``# recipe`` block), with
the page's placeholders filled in and the provider served in-process at its real URLs, then
mints tokens of the provider's shape (header, ``typ``, ``kid``, claims) with a local key. The
documented configuration must accept the access token and refuse the look-alike mistakes:
the provider's ID token, and a token for another audience or client.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from pathlib import Path
from typing import Any

import httpx
import pytest

import apiguard
from apiguard import InvalidToken, MalformedToken, Validator
from apiguard.testing import LocalIssuer, SigningKey

from .conftest import NOW, FakeClock

DOCS = Path(__file__).resolve().parents[2] / "docs" / "providers"
BLOCK = re.compile(r"```python\n# recipe(?P<label>[^\n]*)\n(?P<code>.*?)```", re.S)


def recipe(page: str, label: str = "") -> str:
    """The code of the page's ``# recipe<label>`` block."""
    text = (DOCS / f"{page}.md").read_text(encoding="utf-8")
    for match in BLOCK.finditer(text):
        if match["label"].strip(" :") == label:
            return match["code"]
    raise AssertionError(f"docs/providers/{page}.md has no '# recipe{label}' block")


class Provider:
    """A provider served in-process: its discovery document and JWKS at their real URLs."""

    def __init__(self, issuer: str, *, jwks_uri: str, kid: str, clock: FakeClock) -> None:
        self.local = LocalIssuer(issuer if "://" in issuer else "https://unused.test/", clock=clock)
        key = self.local.current_key
        self.key = SigningKey(kid, key.algorithm, key.private_key)
        self.local.keys[0] = self.key
        self.issuer = issuer
        self.jwks_uri = jwks_uri
        self.requests: Counter[str] = Counter()

    def handle(self, request: httpx.Request) -> httpx.Response:
        url = str(request.url)
        self.requests[url] += 1
        if url == self.jwks_uri:
            return httpx.Response(200, json=self.local.jwks)
        if url == self.issuer.rstrip("/") + "/.well-known/openid-configuration":
            return httpx.Response(200, json={"issuer": self.issuer, "jwks_uri": self.jwks_uri})
        return httpx.Response(404)

    def sign(self, header: dict[str, Any], claims: dict[str, Any]) -> str:
        head = {**header, "kid": self.key.kid} if "kid" in header else header
        return self.local.sign_raw(json.dumps(head).encode(), json.dumps(claims).encode())


@pytest.fixture
def offline(monkeypatch: pytest.MonkeyPatch, clock: FakeClock) -> list[Provider]:
    """Recipes build their Validator with a transport that reaches the providers in-process."""
    providers: list[Provider] = []

    def handle(request: httpx.Request) -> httpx.Response:
        for provider in providers:
            answer = provider.handle(request)
            if answer.status_code != 404:
                return answer
        return httpx.Response(404)

    class Offline(Validator):
        def __init__(self, **settings: Any) -> None:
            super().__init__(transport=httpx.MockTransport(handle), clock=clock, **settings)

    monkeypatch.setattr(apiguard, "Validator", Offline)
    return providers


def build(page: str, constants: dict[str, Any], label: str = "") -> Validator:
    namespace = dict(constants)
    exec(recipe(page, label), namespace)
    validator: Validator = namespace["validator"]
    return validator


def refused(validator: Validator, token: str, reason: str) -> None:
    with pytest.raises(InvalidToken) as caught:
        validator.validate(token)
    assert caught.value.reason == reason, caught.value.detail


T = int(NOW)


# -- Auth0 ----------------------------------------------------------------------------------------

AUTH0 = "https://tenant.eu.auth0.com/"
ORGANIZER = "https://organizer.example/api"


def test_auth0(offline: list[Provider], clock: FakeClock) -> None:
    """Auth0's access tokens (user and M2M, RBAC permissions) pass; ID tokens and others not."""
    auth0 = Provider(
        AUTH0, jwks_uri=AUTH0 + ".well-known/jwks.json", kid="x5ZkqOsHvDkc", clock=clock
    )
    offline.append(auth0)
    header = {"alg": "RS256", "typ": "JWT", "kid": ""}
    base = {"iss": AUTH0, "iat": T, "exp": T + 86400, "azp": "3kQpN0f4mZ9vXJtYb2cL7eRw"}
    user = {
        **base,
        "sub": "auth0|64f1c2a9e5b8a7d3c1f0e9b2",
        "aud": [ORGANIZER, AUTH0 + "userinfo"],
        "scope": "openid profile read:appointments",
        "permissions": ["read:appointments", "create:appointments"],
    }
    machine = {
        **base,
        "sub": "3kQpN0f4mZ9vXJtYb2cL7eRw@clients",
        "aud": ORGANIZER,
        "gty": "client-credentials",
        "scope": "read:tasks",
    }
    id_token = {
        **base,
        "sub": user["sub"],
        "aud": "3kQpN0f4mZ9vXJtYb2cL7eRw",
        "nonce": "n-0S6_WzA2Mj",
        "name": "Ada",
    }
    with build("auth0", {"AUTH0_DOMAIN": "tenant.eu.auth0.com", "API_IDENTIFIER": ORGANIZER}) as v:
        token = v.validate(auth0.sign(header, user))
        assert token.has_scopes("read:appointments", "create:appointments")
        assert token.client_id == "3kQpN0f4mZ9vXJtYb2cL7eRw"
        assert v.validate(auth0.sign(header, machine)).has_scopes("read:tasks")
        refused(v, auth0.sign(header, id_token), "wrong_token_type")
        without_nonce = {name: value for name, value in id_token.items() if name != "nonce"}
        refused(v, auth0.sign(header, without_nonce), "wrong_audience")
        refused(v, auth0.sign(header, {**id_token, "aud": ORGANIZER}), "wrong_token_type")
        refused(
            v, auth0.sign(header, {**user, "aud": "https://billing.example/api"}), "wrong_audience"
        )
        other = {**user, "iss": "https://other.eu.auth0.com/"}
        refused(v, auth0.sign(header, other), "untrusted_issuer")
    assert not any("other.eu.auth0.com" in url for url in auth0.requests)


# -- Okta -----------------------------------------------------------------------------------------

OKTA = "https://dev-123456.okta.com/oauth2/default"


def test_okta(offline: list[Provider], clock: FakeClock) -> None:
    """Okta's custom-server access tokens (no typ, scp list, cid) pass; ID tokens do not."""
    okta = Provider(OKTA, jwks_uri=OKTA + "/v1/keys", kid="3hW7aVZk5U2X9mQ0pR4s8tB1", clock=clock)
    offline.append(okta)
    header = {"kid": "", "alg": "RS256"}
    access = {
        "ver": 1,
        "jti": "AT.9d2Fh0Qx7yzT4hW3kL1mN8bV6cR5",
        "iss": OKTA,
        "aud": "api://default",
        "iat": T,
        "exp": T + 3600,
        "cid": "0oa1b2c3d4e5F6g7H8i9",
        "uid": "00u1a2b3c4D5e6F7g8h9",
        "scp": ["openid", "read:appointments"],
        "auth_time": T - 10,
        "sub": "ada@example.com",
    }
    id_token = {
        "ver": 1,
        "sub": "00u1a2b3c4D5e6F7g8h9",
        "iss": OKTA,
        "aud": "0oa1b2c3d4e5F6g7H8i9",
        "iat": T,
        "exp": T + 3600,
        "jti": "ID.x",
        "amr": ["pwd"],
        "nonce": "n-1",
        "at_hash": "77QmUPtjPfzWtF2AnpK9RQ",
    }
    constants = {
        "OKTA_DOMAIN": "dev-123456.okta.com",
        "AUTH_SERVER_ID": "default",
        "OKTA_AUDIENCE": "api://default",
    }
    with build("okta", constants) as v:
        token = v.validate(okta.sign(header, access))
        assert token.scopes == {"openid", "read:appointments"}
        assert token.claims["cid"] == "0oa1b2c3d4e5F6g7H8i9"
        refused(v, okta.sign(header, id_token), "wrong_token_type")
        refused(v, okta.sign(header, {**id_token, "aud": "api://default"}), "wrong_token_type")
        refused(v, okta.sign(header, {**access, "aud": "api://other"}), "wrong_audience")
        org_server = {**access, "iss": "https://dev-123456.okta.com"}
        refused(v, okta.sign(header, org_server), "untrusted_issuer")


# -- Entra ID -------------------------------------------------------------------------------------

TID = "72f988bf-86f1-41af-91ab-2d7cd011db47"
OTHER_TID = "8eaef023-2b34-4da1-9baa-8bc8c9d6a490"
API_CLIENT = "6e74172b-be56-4843-9ff4-e66a39bb12e3"
LOGIN = "https://login.microsoftonline.com"


def _entra_v2(tid: str) -> dict[str, Any]:
    return {
        "aud": API_CLIENT,
        "iss": f"{LOGIN}/{tid}/v2.0",
        "iat": T,
        "nbf": T,
        "exp": T + 3900,
        "azp": "0e1b5c2a-44d3-4b8f-9f0e-7d3a6c5b4a29",
        "azpacr": "0",
        "name": "Ada Lovelace",
        "oid": "690222be-ff1a-4d56-abd1-7e4f7d38e474",
        "preferred_username": "ada@contoso.com",
        "scp": "access_as_user read:appointments",
        "sub": "bPX3jnF2xWq2o7bN0jVtQe1wZxR1o6H3rK8mUuYpQ2s",
        "tid": tid,
        "uti": "fqiBqXLPj0eQa82S-IYFAA",
        "ver": "2.0",
    }


ENTRA_HEADER = {"typ": "JWT", "alg": "RS256", "kid": "", "x5t": "CNv0OI3RwqlHFEVnaoMAshCH2XE"}


def test_entra_v2(offline: list[Provider], clock: FakeClock) -> None:
    """Entra v2.0 tokens (scp string, roles, tid) pass; ID tokens, Graph's and others' not."""
    entra = Provider(
        f"{LOGIN}/{TID}/v2.0",
        jwks_uri=f"{LOGIN}/{TID}/discovery/v2.0/keys",
        kid="CNv0OI3R",
        clock=clock,
    )
    offline.append(entra)
    access = _entra_v2(TID)
    app_only = {**access, "roles": ["Appointments.Read.All"], "idtyp": "app"}
    del app_only["scp"]
    id_token = {**access, "aud": "0e1b5c2a-44d3-4b8f-9f0e-7d3a6c5b4a29", "nonce": "n"}
    del id_token["scp"]
    graph = {**access, "aud": "00000003-0000-0000-c000-000000000000"}
    with build("entra", {"TENANT_ID": TID, "API_CLIENT_ID": API_CLIENT}) as v:
        token = v.validate(entra.sign(ENTRA_HEADER, access))
        assert token.has_scopes("access_as_user", "read:appointments")
        assert v.validate(entra.sign(ENTRA_HEADER, app_only)).claims["roles"] == [
            "Appointments.Read.All"
        ]
        refused(v, entra.sign(ENTRA_HEADER, id_token), "wrong_token_type")
        without_nonce = {name: value for name, value in id_token.items() if name != "nonce"}
        refused(v, entra.sign(ENTRA_HEADER, without_nonce), "wrong_audience")
        refused(v, entra.sign(ENTRA_HEADER, graph), "wrong_audience")
        refused(v, entra.sign(ENTRA_HEADER, {**access, "tid": OTHER_TID}), "invalid_claim")
        refused(v, entra.sign(ENTRA_HEADER, _entra_v2(OTHER_TID)), "untrusted_issuer")


def test_entra_multi_tenant(offline: list[Provider], clock: FakeClock) -> None:
    """The multi-tenant recipe trusts the allowed tenants only; others are never fetched."""
    providers = [
        Provider(
            f"{LOGIN}/{tid}/v2.0",
            jwks_uri=f"{LOGIN}/{tid}/discovery/v2.0/keys",
            kid="k",
            clock=clock,
        )
        for tid in (TID, OTHER_TID)
    ]
    offline.extend(providers)
    constants = {"ALLOWED_TENANTS": [TID], "API_CLIENT_ID": API_CLIENT}
    with build("entra", constants, "multi-tenant") as v:
        assert v.validate(providers[0].sign(ENTRA_HEADER, _entra_v2(TID))).claims["tid"] == TID
        refused(v, providers[1].sign(ENTRA_HEADER, _entra_v2(OTHER_TID)), "untrusted_issuer")
        refused(
            v,
            providers[0].sign(ENTRA_HEADER, {**_entra_v2(TID), "tid": OTHER_TID}),
            "invalid_claim",
        )
    assert sum(providers[1].requests.values()) == 0


def test_entra_v1(offline: list[Provider], clock: FakeClock) -> None:
    """Entra v1.0 tokens (sts.windows.net issuer, appid, Application ID URI audience) pass."""
    issuer = f"https://sts.windows.net/{TID}/"
    entra = Provider(
        issuer, jwks_uri=f"{LOGIN}/{TID}/discovery/keys", kid="nOo3ZDrODXEK", clock=clock
    )
    offline.append(entra)
    access = {
        "aud": f"api://{API_CLIENT}",
        "iss": issuer,
        "iat": T,
        "nbf": T,
        "exp": T + 3900,
        "appid": "0e1b5c2a-44d3-4b8f-9f0e-7d3a6c5b4a29",
        "appidacr": "0",
        "oid": "690222be-ff1a-4d56-abd1-7e4f7d38e474",
        "scp": "access_as_user",
        "sub": "bPX3jnF2xWq2o7bN0jVtQe1wZxR1o6H3rK8mUuYpQ2s",
        "tid": TID,
        "unique_name": "ada@contoso.com",
        "upn": "ada@contoso.com",
        "ver": "1.0",
    }
    with build("entra", {"TENANT_ID": TID, "API_CLIENT_ID": API_CLIENT}, "v1.0") as v:
        assert v.validate(entra.sign(ENTRA_HEADER, access)).has_scopes("access_as_user")
        refused(
            v,
            entra.sign(ENTRA_HEADER, {**access, "aud": "https://graph.windows.net"}),
            "wrong_audience",
        )
        v2_issuer = {**access, "iss": f"{LOGIN}/{TID}/v2.0"}
        refused(v, entra.sign(ENTRA_HEADER, v2_issuer), "untrusted_issuer")
    assert entra.requests[f"{LOGIN}/{TID}/discovery/keys"] == 1


# -- Keycloak -------------------------------------------------------------------------------------

KEYCLOAK = "https://sso.example.com/realms/organizer"


def test_keycloak(offline: list[Provider], clock: FakeClock) -> None:
    """Keycloak tokens with the audience mapper pass; without it, and ID tokens, do not."""
    keycloak = Provider(
        KEYCLOAK,
        jwks_uri=KEYCLOAK + "/protocol/openid-connect/certs",
        kid="pM0KJb5o3nQ2",
        clock=clock,
    )
    offline.append(keycloak)
    header = {"alg": "RS256", "typ": "JWT", "kid": ""}
    access = {
        "exp": T + 300,
        "iat": T,
        "auth_time": T - 10,
        "jti": "onrtac:6f1c0d7e-5b4a-4c3d-8e2f-1a0b9c8d7e6f",
        "iss": KEYCLOAK,
        "aud": ["organizer-api", "account"],
        "sub": "f3b0c4d2-6a1e-4f5b-9c8d-7e6a5b4c3d2e",
        "typ": "Bearer",
        "azp": "calendar-app",
        "sid": "0d9c8b7a-6f5e-4d3c-2b1a-0f9e8d7c6b5a",
        "acr": "1",
        "realm_access": {"roles": ["organizer-admin", "default-roles-organizer"]},
        "resource_access": {"organizer-api": {"roles": ["editor"]}},
        "scope": "openid profile read:appointments",
        "preferred_username": "ada",
    }
    no_mapper = {**access, "aud": "account"}
    id_token = {**access, "typ": "ID", "aud": "organizer-api"}
    del id_token["scope"]
    with build(
        "keycloak",
        {
            "KEYCLOAK_HOST": "sso.example.com",
            "REALM": "organizer",
            "API_CLIENT_ID": "organizer-api",
        },
    ) as v:
        token = v.validate(keycloak.sign(header, access))
        assert token.has_scopes("read:appointments")
        assert token.client_id == "calendar-app"
        assert "organizer-admin" in token.claims["realm_access"]["roles"]
        refused(v, keycloak.sign(header, no_mapper), "wrong_audience")
        refused(v, keycloak.sign(header, id_token), "invalid_claim")
        refused(v, keycloak.sign(header, {**id_token, "nonce": "n"}), "wrong_token_type")
        other_realm = {**access, "iss": "https://sso.example.com/realms/master"}
        refused(v, keycloak.sign(header, other_realm), "untrusted_issuer")


# -- Cognito --------------------------------------------------------------------------------------

POOL = "https://cognito-idp.eu-west-1.amazonaws.com/eu-west-1_AbCdEfGhI"
APP_CLIENT = "4hl2c3d4e5f6g7h8i9j0k1l2m3"


def test_cognito(offline: list[Provider], clock: FakeClock) -> None:
    """Cognito access tokens (no aud, client_id, token_use) pass; its ID tokens do not."""
    cognito = Provider(
        POOL, jwks_uri=POOL + "/.well-known/jwks.json", kid="bA1b2C3d4E5f=", clock=clock
    )
    offline.append(cognito)
    header = {"kid": "", "alg": "RS256"}
    access = {
        "sub": "aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee",
        "cognito:groups": ["organizer-admin"],
        "iss": POOL,
        "version": 2,
        "client_id": APP_CLIENT,
        "origin_jti": "11111111-2222-3333-4444-555555555555",
        "event_id": "66666666-7777-8888-9999-000000000000",
        "token_use": "access",
        "scope": "openid organizer/read:appointments",
        "auth_time": T - 10,
        "iat": T,
        "exp": T + 3600,
        "jti": "abcdef01-2345-6789-abcd-ef0123456789",
        "username": "ada",
    }
    id_token = {
        "sub": access["sub"],
        "aud": APP_CLIENT,
        "iss": POOL,
        "token_use": "id",
        "auth_time": T - 10,
        "iat": T,
        "exp": T + 3600,
        "cognito:username": "ada",
        "email": "ada@example.com",
        "origin_jti": access["origin_jti"],
        "event_id": access["event_id"],
        "jti": "0f0f0f0f-1111-2222-3333-444444444444",
    }
    constants = {
        "REGION": "eu-west-1",
        "USER_POOL_ID": "eu-west-1_AbCdEfGhI",
        "APP_CLIENT_IDS": [APP_CLIENT],
    }
    with build("cognito", constants) as v:
        token = v.validate(cognito.sign(header, access))
        assert token.has_scopes("organizer/read:appointments")
        assert token.client_id == APP_CLIENT
        refused(v, cognito.sign(header, id_token), "wrong_audience")  # no client_id claim
        refused(v, cognito.sign(header, {**id_token, "client_id": APP_CLIENT}), "invalid_claim")
        refused(
            v, cognito.sign(header, {**access, "client_id": "another-app-client"}), "wrong_audience"
        )
        refused(v, cognito.sign(header, {**access, "token_use": "id"}), "invalid_claim")
        other_pool = {**access, "iss": POOL.replace("AbCdEfGhI", "ZyXwVuTsR")}
        refused(v, cognito.sign(header, other_pool), "untrusted_issuer")


# -- Google ---------------------------------------------------------------------------------------

ROBOT = "scheduler@my-project.iam.gserviceaccount.com"


def test_google(offline: list[Provider], clock: FakeClock) -> None:
    """Service-account JWTs pass; Google ID tokens, opaque tokens and other accounts do not."""
    google = Provider(
        ROBOT,
        jwks_uri=f"https://www.googleapis.com/service_accounts/v1/jwk/{ROBOT}",
        kid="1f6c2a4b8d0e3f5a7c9b",
        clock=clock,
    )
    offline.append(google)
    header = {"alg": "RS256", "typ": "JWT", "kid": ""}
    access = {"iss": ROBOT, "sub": ROBOT, "aud": ORGANIZER, "iat": T, "exp": T + 3600}
    id_token = {
        "iss": "https://accounts.google.com",
        "azp": "1234567890-abc.apps.googleusercontent.com",
        "aud": "1234567890-abc.apps.googleusercontent.com",
        "sub": "110169484474386276334",
        "email": "ada@gmail.com",
        "email_verified": True,
        "at_hash": "HK6E_P6Dh8Y93mRNtsDB1Q",
        "iat": T,
        "exp": T + 3600,
    }
    with build("google", {"SERVICE_ACCOUNT": ROBOT, "API_AUDIENCE": ORGANIZER}) as v:
        assert v.validate(google.sign(header, access)).subject == ROBOT
        refused(v, google.sign(header, id_token), "untrusted_issuer")
        refused(v, google.sign(header, {**id_token, "aud": ORGANIZER}), "untrusted_issuer")
        refused(
            v,
            google.sign(header, {**access, "aud": "https://billing.example/api"}),
            "wrong_audience",
        )
        other = "intruder@evil-project.iam.gserviceaccount.com"
        refused(v, google.sign(header, {**access, "iss": other, "sub": other}), "untrusted_issuer")
        with pytest.raises(MalformedToken):
            v.validate("ya29.a0AfB_byC1d2e3f4g5h6i7j8k9l0")
        old = {**access, "iat": T - 7200, "exp": T + 3600}
        refused(v, google.sign(header, old), "token_expired")


def test_google_id_token_refused_even_under_a_policy_for_its_issuer(clock: FakeClock) -> None:
    """Trusting accounts.google.com does not make an ID token an access token (at_hash)."""
    google = LocalIssuer("https://accounts.google.com", audience=ORGANIZER, clock=clock)
    with Validator(
        issuer="https://accounts.google.com", audience=ORGANIZER, jwks=google.jwks, clock=clock
    ) as v:
        refused(v, google.token(at_hash="HK6E_P6Dh8Y93mRNtsDB1Q"), "wrong_token_type")


def test_every_provider_page_has_a_recipe() -> None:
    """Each docs/providers page shows a configuration that a test here runs."""
    pages = sorted(path.stem for path in DOCS.glob("*.md"))
    assert pages == ["auth0", "cognito", "entra", "google", "keycloak", "okta"]
    for page in pages:
        assert recipe(page)


def test_readme_several_issuers_snippet(offline: list[Provider], clock: FakeClock) -> None:
    """The README's "Several issuers" code builds what it says, and prefetch() reports health."""
    readme = (DOCS.parents[1] / "README.md").read_text(encoding="utf-8")
    section = readme.split("## Several issuers", 1)[1].split("\n## ", 1)[0]
    code = re.search(r"```python\n(.*?)```", section, re.S)
    assert code is not None
    auth0 = Provider(AUTH0, jwks_uri=AUTH0 + ".well-known/jwks.json", kid="k1", clock=clock)
    offline.append(auth0)
    namespace: dict[str, Any] = {}
    exec(code[1], namespace)
    validator: Validator = namespace["validator"]
    with validator:
        assert len(validator.issuers) == 3
        assert validator.wants_request
        health = validator.health()
        assert health[AUTH0].state == "fresh"  # prefetched
        assert health["https://login.organizer.example/"].state == "missing"
        token = auth0.sign(
            {"alg": "RS256", "typ": "JWT", "kid": ""},
            {"iss": AUTH0, "sub": "x", "aud": ORGANIZER, "iat": T, "exp": T + 60},
        )
        assert validator.validate(token).subject == "x"
