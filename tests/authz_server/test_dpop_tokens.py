"""DPoP at the token endpoint (RFC 9449 §5, §8, §10): bound tokens, codes, refresh tokens."""

from __future__ import annotations

from typing import Any

import httpx
import jwt
import pytest
from starlette.applications import Starlette

from apiguard.testing import DPoPAuth, DPoPKey
from examples.authz_server import Settings, create_app
from examples.authz_server.services import Domain
from examples.authz_server.store import Store

from .support import (
    ISSUER,
    ORGANIZER,
    ORIGIN,
    SPA_CB,
    WORLD_MAPPERS,
    Browser,
    FakeClock,
    Validate,
    management_token,
    pkce_pair,
)

pytestmark = pytest.mark.anyio
TOKEN_URL = f"{ISSUER}oauth/token"


@pytest.fixture
def key(clock: FakeClock) -> DPoPKey:
    """The client's key, signing on the server's clock."""
    return DPoPKey(clock=clock)


def _claims(token: str) -> dict[str, Any]:
    claims: dict[str, Any] = jwt.decode(token, options={"verify_signature": False})
    return claims


async def _m2m(http: httpx.AsyncClient, *proofs: str) -> httpx.Response:
    headers = [("DPoP", proof) for proof in proofs]
    return await http.post(
        "/oauth/token",
        data={"grant_type": "client_credentials", "audience": ORGANIZER, **WORLD_MAPPERS},
        headers=headers,
    )


async def test_a_proof_binds_the_access_token(
    http: httpx.AsyncClient, key: DPoPKey, validate: Validate
) -> None:
    """token_type DPoP, cnf.jkt the key's thumbprint, and apiguard in DPoP mode accepts it."""
    answer = await _m2m(http, key.proof("POST", TOKEN_URL))
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["token_type"] == "DPoP"
    assert _claims(body["access_token"])["cnf"] == {"jkt": key.thumbprint}
    token = await validate(body["access_token"], dpop="required")
    assert (token.jkt, token.scheme) == (key.thumbprint, "DPoP")


async def test_without_a_proof_the_token_is_a_bearer_token(http: httpx.AsyncClient) -> None:
    """An API that does not require DPoP still gets bearer tokens for plain requests."""
    body = (await _m2m(http)).json()
    assert body["token_type"] == "Bearer"
    assert "cnf" not in _claims(body["access_token"])


@pytest.mark.parametrize(
    ("kind", "description"),
    [
        pytest.param("htu_other_path", "The DPoP proof is for another URI", id="another-uri"),
        pytest.param("htm", "The DPoP proof is for another HTTP method", id="another-method"),
        pytest.param(
            "alg_none", "The DPoP proof is signed with an algorithm that is not allowed", id="none"
        ),
        pytest.param("private_jwk", "The DPoP proof key is invalid", id="private-key"),
        pytest.param("other_key_signed", "The DPoP proof signature is invalid", id="signature"),
        pytest.param("iat_old", "The DPoP proof is too old", id="old"),
        pytest.param("typ_jwt", "The DPoP proof is not of type dpop+jwt", id="typ"),
    ],
)
async def test_bad_proofs_are_400_invalid_dpop_proof(
    http: httpx.AsyncClient, key: DPoPKey, kind: str, description: str
) -> None:
    """Each broken rule answers RFC 9449's token error with a fixed description."""
    answer = await _m2m(http, key.bad_proof(kind, "POST", TOKEN_URL))
    assert answer.status_code == 400
    assert answer.json() == {"error": "invalid_dpop_proof", "error_description": description}


async def test_a_replayed_or_repeated_proof_is_refused(
    http: httpx.AsyncClient, key: DPoPKey
) -> None:
    """A proof is accepted once; two DPoP headers are never accepted."""
    proof = key.proof("POST", TOKEN_URL)
    assert (await _m2m(http, proof)).status_code == 200
    again = await _m2m(http, proof)
    assert again.json()["error_description"] == "The DPoP proof was already used"
    two = await _m2m(http, key.proof("POST", TOKEN_URL), key.proof("POST", TOKEN_URL))
    assert (two.status_code, two.json()["error"]) == (400, "invalid_dpop_proof")


async def test_the_host_header_does_not_choose_the_uri(
    http: httpx.AsyncClient, key: DPoPKey
) -> None:
    """The server checks htu against its own token endpoint URI, whatever Host says."""
    proof = key.proof("POST", "http://evil.example/oauth/token")
    answer = await _m2m(http, proof)
    assert answer.json()["error_description"] == "The DPoP proof is for another URI"


async def test_an_api_that_requires_dpop_refuses_bearer_tokens(
    http: httpx.AsyncClient, tenant: Domain, key: DPoPKey, browser: Browser
) -> None:
    """proof_of_possession.required: no bearer token is issued for the API, by any flow."""
    tenant.apis.update(ORGANIZER, {"proof_of_possession": {"mechanism": "dpop", "required": True}})
    plain = await _m2m(http)
    assert plain.status_code == 400
    assert plain.json() == {
        "error": "invalid_request",
        "error_description": "This API requires a DPoP proof",
    }
    assert (await _m2m(http, key.proof("POST", TOKEN_URL))).json()["token_type"] == "DPoP"
    implicit = await browser.authorize(
        response_type="token",
        client_id="organizer-spa",
        redirect_uri=SPA_CB,
        scope="read:appointments",
        audience=ORGANIZER,
    )
    assert "error=invalid_request" in implicit.headers["location"]


async def _spa_code(browser: Browser, **extra: str) -> tuple[str, str]:
    verifier, challenge = pkce_pair()
    params = await browser.code(
        response_type="code",
        client_id="organizer-spa",
        redirect_uri=SPA_CB,
        scope="openid read:appointments offline_access",
        audience=ORGANIZER,
        code_challenge=challenge,
        code_challenge_method="S256",
        **extra,
    )
    return params["code"], verifier


async def _redeem(
    http: httpx.AsyncClient, code: str, verifier: str, *proofs: str
) -> httpx.Response:
    return await http.post(
        "/oauth/token",
        data={
            "grant_type": "authorization_code",
            "client_id": "organizer-spa",
            "code": code,
            "code_verifier": verifier,
            "redirect_uri": SPA_CB,
        },
        headers=[("DPoP", proof) for proof in proofs],
    )


async def test_dpop_jkt_binds_the_code_to_the_key(
    http: httpx.AsyncClient, browser: Browser, key: DPoPKey
) -> None:
    """RFC 9449 §10: a code issued for dpop_jkt is redeemed only with that key's proof."""
    code, verifier = await _spa_code(browser, dpop_jkt=key.thumbprint)
    thief = DPoPKey(clock=key.clock)
    wrong = await _redeem(http, code, verifier, thief.proof("POST", TOKEN_URL))
    assert wrong.json() == {
        "error": "invalid_dpop_proof",
        "error_description": "The code is bound to another DPoP key",
    }
    assert (await _redeem(http, code, verifier)).json()["error"] == "invalid_dpop_proof"
    right = await _redeem(http, code, verifier, key.proof("POST", TOKEN_URL))
    assert right.status_code == 200, right.text
    assert right.json()["token_type"] == "DPoP"


async def test_a_malformed_dpop_jkt_is_refused(browser: Browser) -> None:
    """dpop_jkt is a SHA-256 thumbprint: 43 base64url characters."""
    verifier, challenge = pkce_pair()
    answer = await browser.authorize(
        response_type="code",
        client_id="organizer-spa",
        redirect_uri=SPA_CB,
        scope="read:appointments",
        audience=ORGANIZER,
        code_challenge=challenge,
        code_challenge_method="S256",
        dpop_jkt="not-a-thumbprint",
    )
    assert "error=invalid_request" in answer.headers["location"]
    del verifier


async def test_a_public_clients_refresh_token_is_bound_to_its_key(
    http: httpx.AsyncClient, browser: Browser, key: DPoPKey
) -> None:
    """RFC 9449 §5: refreshing needs the same key; a failed attempt does not burn the token."""
    code, verifier = await _spa_code(browser)
    tokens = (await _redeem(http, code, verifier, key.proof("POST", TOKEN_URL))).json()
    refresh = tokens["refresh_token"]

    async def use(*proofs: str) -> httpx.Response:
        return await http.post(
            "/oauth/token",
            data={
                "grant_type": "refresh_token",
                "client_id": "organizer-spa",
                "refresh_token": refresh,
            },
            headers=[("DPoP", proof) for proof in proofs],
        )

    stolen = await use(DPoPKey(clock=key.clock).proof("POST", TOKEN_URL))
    assert stolen.json()["error_description"] == "The refresh token is bound to another DPoP key"
    assert (await use()).json()["error"] == "invalid_dpop_proof"
    ok = await use(key.proof("POST", TOKEN_URL))
    assert ok.status_code == 200, ok.text
    assert _claims(ok.json()["access_token"])["cnf"] == {"jkt": key.thumbprint}


async def test_server_nonces_when_configured(seeded_store: Store, clock: FakeClock) -> None:
    """With a nonce secret: 400 use_dpop_nonce with DPoP-Nonce, then DPoPAuth's retry passes."""
    settings = Settings(db_path=":memory:", clock=clock, dpop_nonce_secret="n" * 32)
    app: Starlette = create_app(settings, store=Store.copy_of(seeded_store))
    key = DPoPKey(clock=clock)
    transport = httpx.ASGITransport(app=app)
    data = {"grant_type": "client_credentials", "audience": ORGANIZER, **WORLD_MAPPERS}
    async with httpx.AsyncClient(transport=transport, base_url=ORIGIN) as http:
        first = await http.post(
            "/oauth/token", data=data, headers={"DPoP": key.proof("POST", TOKEN_URL)}
        )
        assert first.status_code == 400
        assert first.json()["error"] == "use_dpop_nonce"
        assert first.headers["dpop-nonce"]
        auth = DPoPAuth(key)
        answer = await http.post("/oauth/token", data=data, auth=auth)
        assert answer.status_code == 200, answer.text
        assert answer.json()["token_type"] == "DPoP"
        assert auth.nonce == first.headers["dpop-nonce"]


async def test_discovery_advertises_the_proof_algorithms(http: httpx.AsyncClient) -> None:
    """dpop_signing_alg_values_supported: asymmetric algorithms only (RFC 9449 §5.1)."""
    document = (await http.get("/.well-known/openid-configuration")).json()
    algs = document["dpop_signing_alg_values_supported"]
    assert "ES256" in algs
    assert "RS256" in algs
    assert not any(alg.startswith("HS") or alg == "none" for alg in algs)


async def test_proof_of_possession_through_the_management_api(
    http: httpx.AsyncClient, tenant: Domain
) -> None:
    """Auth0's resource-server field: set, read back, cleared; anything else is refused."""
    token = await management_token(http, tenant, "read:resource_servers", "update:resource_servers")
    headers = {"Authorization": f"Bearer {token}"}
    url = f"/api/v2/resource-servers/{ORGANIZER}"
    assert (await http.get(url, headers=headers)).json()["proof_of_possession"] is None
    required = {"mechanism": "dpop", "required": True}
    changed = await http.patch(url, json={"proof_of_possession": required}, headers=headers)
    assert changed.status_code == 200, changed.text
    assert changed.json()["proof_of_possession"] == required
    assert tenant.apis.get(ORGANIZER).dpop_required
    for bad in ({"mechanism": "mtls", "required": True}, {"required": "yes"}, "dpop"):
        refused = await http.patch(url, json={"proof_of_possession": bad}, headers=headers)
        assert refused.status_code == 400, bad
    cleared = await http.patch(url, json={"proof_of_possession": None}, headers=headers)
    assert cleared.json()["proof_of_possession"] is None
