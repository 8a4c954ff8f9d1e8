"""The testing kit's DPoP helpers: bound tokens, proofs, and an httpx.Auth that adds them."""

from __future__ import annotations

import json

import httpx
import jwt
import pytest

from apiguard import errors
from apiguard.dpop import (
    DPoPPolicy,
    MemoryReplayStore,
    NonceIssuer,
    ProofVerifier,
    check_replay,
    jwk_thumbprint,
    request_uri,
)
from apiguard.testing import DPoPAuth, DPoPKey, LocalIssuer

from .conftest import NOW, Clock


def _resource(verifier: ProofVerifier, store: MemoryReplayStore) -> httpx.MockTransport:
    """A resource server that checks DPoP as an API would (401 with the error otherwise)."""

    def handle(request: httpx.Request) -> httpx.Response:
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        try:
            uri = request_uri(
                scheme=request.url.scheme, host=request.headers["host"], path=request.url.raw_path
            )
            proof = verifier.verify(
                request.headers.get_list("dpop"),
                method=request.method,
                uri=uri,
                now=NOW,
                access_token=token if scheme == "DPoP" else None,
            )
            check_replay(store, proof)
        except errors.UseDPoPNonce as exc:
            return httpx.Response(401, headers={"DPoP-Nonce": exc.nonce}, json={"error": exc.error})
        except errors.BearerError as exc:
            return httpx.Response(401, json={"error": exc.error, "reason": exc.reason})
        return httpx.Response(200, json={"jkt": proof.jkt})

    return httpx.MockTransport(handle)


def test_local_issuer_binds_a_token_to_a_key(issuer: LocalIssuer, key: DPoPKey) -> None:
    """dpop_key= puts the key's RFC 7638 thumbprint in cnf.jkt."""
    claims = jwt.decode(issuer.token(dpop_key=key), options={"verify_signature": False})
    assert claims["cnf"] == {"jkt": key.thumbprint}
    assert key.thumbprint == jwk_thumbprint(key.public_jwk)


@pytest.mark.parametrize("algorithm", ["ES256", "ES384", "ES512", "EdDSA", "RS256", "PS256"])
def test_dpop_auth_sends_a_fresh_proof_with_every_request(algorithm: str, clock: Clock) -> None:
    """DPoPAuth adds `Authorization: DPoP` and a new proof each time, so none is a replay."""
    key = DPoPKey(algorithm, clock=clock)
    verifier = ProofVerifier(DPoPPolicy(mode="required"))
    transport = _resource(verifier, MemoryReplayStore())
    with httpx.Client(transport=transport, auth=DPoPAuth(key, "the.token.value")) as client:
        for _ in range(3):
            answer = client.get("https://api.test/api/private?page=2")
            assert answer.status_code == 200, answer.text
            assert answer.json() == {"jkt": key.thumbprint}


def test_dpop_auth_without_a_token_signs_token_requests(key: DPoPKey) -> None:
    """Without a token, requests carry only the proof (a token request), with no ath."""
    seen: list[httpx.Request] = []

    def handle(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200)

    with httpx.Client(transport=httpx.MockTransport(handle), auth=DPoPAuth(key)) as client:
        client.post("https://issuer.test/oauth/token", data={"grant_type": "client_credentials"})
    assert "authorization" not in seen[0].headers
    payload = json.loads(jwt.utils.base64url_decode(seen[0].headers["dpop"].split(".")[1]))
    assert payload["htm"] == "POST"
    assert payload["htu"] == "https://issuer.test/oauth/token"
    assert "ath" not in payload


def test_dpop_auth_retries_once_with_the_nonce_it_is_given(key: DPoPKey) -> None:
    """A use_dpop_nonce answer is retried with the nonce, which later proofs keep using."""
    nonces = NonceIssuer(b"n" * 32)
    verifier = ProofVerifier(DPoPPolicy(mode="required", nonces=nonces))
    calls: list[int] = []
    inner = _resource(verifier, MemoryReplayStore())

    def handle(request: httpx.Request) -> httpx.Response:
        answer = inner.handle_request(request)
        calls.append(answer.status_code)
        return answer

    auth = DPoPAuth(key, "tok")
    with httpx.Client(transport=httpx.MockTransport(handle), auth=auth) as client:
        assert client.get("https://api.test/x").status_code == 200
        assert client.get("https://api.test/x").status_code == 200
    assert calls == [401, 200, 200]
    assert auth.nonce == nonces.current(NOW)


def test_dpop_auth_does_not_loop_on_a_refusal(key: DPoPKey) -> None:
    """A 401 without a new nonce is returned as it is, after one request."""
    calls: list[httpx.Request] = []

    def handle(request: httpx.Request) -> httpx.Response:
        calls.append(request)
        return httpx.Response(401, headers={"DPoP-Nonce": "same"})

    auth = DPoPAuth(key, "tok")
    auth.nonce = "same"
    with httpx.Client(transport=httpx.MockTransport(handle), auth=auth) as client:
        assert client.get("https://api.test/x").status_code == 401
    assert len(calls) == 1


def test_dpop_auth_works_with_async_clients(key: DPoPKey) -> None:
    """httpx.Auth flows serve AsyncClient too."""
    import anyio

    verifier = ProofVerifier(DPoPPolicy(mode="required"))
    transport = _resource(verifier, MemoryReplayStore())

    async def main() -> int:
        async with httpx.AsyncClient(
            transport=httpx.MockTransport(transport.handle_request), auth=DPoPAuth(key, "t")
        ) as client:
            return (await client.get("https://api.test/x")).status_code

    assert anyio.run(main) == 200


def test_unknown_bad_proof_kinds_are_refused(key: DPoPKey) -> None:
    """bad_proof knows its kinds; a typo is an error, not a good proof."""
    with pytest.raises(ValueError, match="unknown kind"):
        key.bad_proof("typo", "GET", "https://api.test/")
    with pytest.raises(ValueError, match="unsupported"):
        DPoPKey("HS256")
    assert "ES256" in repr(key)
