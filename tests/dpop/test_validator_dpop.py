"""DPoP settings of the validators, the core's cnf rules, and the challenges rendered."""

from __future__ import annotations

from typing import Any

import anyio
import pytest
from flask import Flask

from apiguard import AsyncValidator, errors
from apiguard._request import RequestView, Validate
from apiguard.bearer import extract_credentials, render_error
from apiguard.dpop import (
    AsyncRedisReplayStore,
    DPoPPolicy,
    MemoryReplayStore,
    RedisReplayStore,
    TrustedProxies,
)
from apiguard.flask import ApiGuard
from apiguard.testing import DPoPKey, LocalIssuer

from .conftest import Clock

URL = "https://api.test/api/private"


def _view(proof: str | None, **fields: Any) -> RequestView:
    options: dict[str, Any] = {
        "method": "GET",
        "path": "/api/private",
        "raw_path": "/api/private",
        "scheme": "https",
        "host": "api.test",
        "dpop": () if proof is None else (proof,),
    }
    options.update(fields)
    return RequestView(**options)


@pytest.mark.parametrize(
    ("options", "match"),
    [
        pytest.param({"dpop": "on"}, "dpop", id="unknown-mode"),
        pytest.param({"dpop": 1}, "dpop", id="not-a-mode"),
        pytest.param(
            {"replay_store": MemoryReplayStore()}, "replay_store", id="store-without-dpop"
        ),
        pytest.param({"trusted_proxies": ["10.0.0.1"]}, "trusted_proxies", id="proxies-without"),
        pytest.param(
            {"dpop": "allowed", "trusted_proxies": ["proxy.internal"]},
            "trusted_proxies",
            id="proxy-by-name",
        ),
        pytest.param({"dpop": "allowed", "replay_store": object()}, "replay_store", id="no-add"),
        pytest.param(
            {"dpop": "allowed", "replay_store": "http://127.0.0.1:6379"},
            "replay store",
            id="store-url-not-redis",
        ),
    ],
)
def test_bad_dpop_settings_are_refused(
    local_issuer: LocalIssuer, options: dict[str, Any], match: str
) -> None:
    """DPoP settings are checked at construction and name themselves."""
    with pytest.raises(errors.ConfigurationError, match=match):
        local_issuer.validator(**options)


def test_an_async_store_needs_the_async_validator(local_issuer: LocalIssuer) -> None:
    """A sync validator cannot await a store; the async one takes both kinds."""

    class Async:
        async def add(self, key: str, ttl: float) -> bool:
            return True

    with pytest.raises(errors.ConfigurationError, match="AsyncValidator"):
        local_issuer.validator(dpop="required", replay_store=Async())
    assert local_issuer.async_validator(dpop="required", replay_store=Async()).dpop is not None


def test_a_redis_url_makes_the_store_of_the_shells_kind(local_issuer: LocalIssuer) -> None:
    """replay_store="redis://..." is a RedisReplayStore, or its async twin, closed with it."""
    sync = local_issuer.validator(dpop="allowed", replay_store="redis://127.0.0.1:1/0")
    assert isinstance(sync._replay_store, RedisReplayStore)
    sync.close()
    asynchronous = local_issuer.async_validator(dpop="allowed", replay_store="redis://x:1/0")
    assert isinstance(asynchronous._replay_store, AsyncRedisReplayStore)
    anyio.run(asynchronous.aclose)


def test_trusted_proxies_as_addresses(local_issuer: LocalIssuer) -> None:
    """A list (or a string) of addresses means X-Forwarded-* from those peers."""
    validator = local_issuer.validator(dpop="allowed", trusted_proxies="127.0.0.1 10.0.0.0/8")
    assert validator.dpop is not None
    assert isinstance(validator.dpop.proxies, TrustedProxies)
    assert validator.dpop.proxies.trusts("10.1.2.3")


@pytest.mark.parametrize(
    "cnf",
    [
        pytest.param({"x5t#S256": "abc"}, id="mtls-binding"),
        pytest.param({"jkt": "abc", "x5t#S256": "abc"}, id="jkt-and-mtls"),
        pytest.param({"jkt": ""}, id="empty-jkt"),
        pytest.param({"jkt": 7}, id="jkt-not-a-string"),
        pytest.param({"jkt": "j" * 129}, id="jkt-too-long"),
        pytest.param("jkt", id="not-an-object"),
    ],
)
def test_only_a_dpop_binding_is_accepted(local_issuer: LocalIssuer, cnf: Any) -> None:
    """With DPoP on, cnf must be exactly {"jkt": thumbprint}; anything else cannot be checked."""
    validator = local_issuer.validator(dpop="allowed")
    with pytest.raises(errors.InvalidClaim, match="cnf"):
        validator.validate(local_issuer.token(cnf=cnf))


def test_a_bound_token_exposes_its_binding(local_issuer: LocalIssuer) -> None:
    """AccessToken.jkt is cnf.jkt and its scheme DPoP; an unbound token is a Bearer token."""
    key = DPoPKey()
    validator = local_issuer.validator(dpop="allowed")
    token = validator.validate(local_issuer.token(dpop_key=key))
    assert (token.jkt, token.scheme) == (key.thumbprint, "DPoP")
    plain = validator.validate(local_issuer.token())
    assert (plain.jkt, plain.scheme) == (None, "Bearer")


def test_validate_credentials_checks_the_proof(clock: Clock) -> None:
    """The validation step of the request path: token, binding, proof, replay."""
    issuer = LocalIssuer(audience="https://api.test", clock=clock)
    key = DPoPKey(clock=clock)
    validator = issuer.validator(dpop="required")
    raw = issuer.token(dpop_key=key)
    proof = key.proof("GET", URL, access_token=raw)
    token = validator.validate_credentials(Validate(raw, "DPoP", _view(proof)))
    assert token.jkt == key.thumbprint
    with pytest.raises(errors.DPoPProofReplayed):
        validator.validate_credentials(Validate(raw, "DPoP", _view(proof)))
    with pytest.raises(errors.DPoPRequired):
        validator.validate_credentials(Validate(issuer.token(), "Bearer", _view(None)))


def test_async_validate_credentials_checks_the_proof(clock: Clock) -> None:
    """The async shell does the same, awaiting its store."""
    issuer = LocalIssuer(audience="https://api.test", clock=clock)
    key = DPoPKey(clock=clock)
    validator: AsyncValidator = issuer.async_validator(dpop="allowed")
    raw = issuer.token(dpop_key=key)
    proof = key.proof("GET", URL, access_token=raw)

    async def main() -> None:
        await validator.validate_credentials(Validate(raw, "DPoP", _view(proof)))
        with pytest.raises(errors.DPoPProofReplayed):
            await validator.validate_credentials(Validate(raw, "DPoP", _view(proof)))
        plain = issuer.token()
        assert (
            await validator.validate_credentials(Validate(plain, "Bearer", _view(None)))
        ).jkt is None

    anyio.run(main)


def test_forwarded_headers_from_a_trusted_proxy_give_the_uri(clock: Clock) -> None:
    """Behind a TLS-terminating proxy the proof names the public https URI."""
    issuer = LocalIssuer(audience="https://api.test", clock=clock)
    key = DPoPKey(clock=clock)
    validator = issuer.validator(dpop="required", trusted_proxies=["10.0.0.1"])
    raw = issuer.token(dpop_key=key)
    proof = key.proof("GET", "https://public.example/api/private", access_token=raw)
    behind = _view(
        proof,
        scheme="http",
        host="app:8000",
        peer="10.0.0.1",
        forwarded=(("x-forwarded-proto", "https"), ("x-forwarded-host", "public.example")),
    )
    assert validator.validate_credentials(Validate(raw, "DPoP", behind)).jkt == key.thumbprint
    spoofed = _view(
        key.proof("GET", "https://public.example/api/private", access_token=raw),
        scheme="http",
        host="app:8000",
        peer="192.0.2.9",
        forwarded=behind.forwarded,
    )
    with pytest.raises(errors.DPoPURIMismatch):
        validator.validate_credentials(Validate(raw, "DPoP", spoofed))


def test_validate_alone_does_not_check_a_proof(local_issuer: LocalIssuer) -> None:
    """validate() answers for the token only (documented): the layers check the proof."""
    validator = local_issuer.validator(dpop="required")
    assert validator.validate(local_issuer.token(dpop_key=DPoPKey())).scheme == "DPoP"


# -- the header and the answers ------------------------------------------------------------


@pytest.mark.parametrize(
    ("header", "dpop", "expected"),
    [
        pytest.param("DPoP abc", True, ("DPoP", "abc"), id="dpop"),
        pytest.param("dpop  abc", True, ("DPoP", "abc"), id="case-and-spaces"),
        pytest.param("Bearer abc", True, ("Bearer", "abc"), id="bearer-too"),
        pytest.param("DPoP abc", False, errors.MissingToken, id="dpop-off-is-no-token"),
        pytest.param("DPoP", True, errors.InvalidRequest, id="empty"),
        pytest.param("DPoP a b", True, errors.InvalidRequest, id="two-tokens"),
    ],
)
def test_extract_credentials(header: str, dpop: bool, expected: Any) -> None:
    """The DPoP scheme is read only when asked, with the syntax of a bearer token."""
    if isinstance(expected, tuple):
        assert extract_credentials(header, dpop=dpop) == expected
    else:
        with pytest.raises(expected):
            extract_credentials(header, dpop=dpop)


def test_use_dpop_nonce_answer_carries_the_nonce() -> None:
    """use_dpop_nonce: 401, the DPoP challenge with the error, and DPoP-Nonce."""
    error = errors.UseDPoPNonce("the-nonce")
    error.dpop_algs, error.bearer_offered = "ES256", False
    answer = render_error(error, "api")
    assert answer.status_code == 401
    assert answer.headers["DPoP-Nonce"] == "the-nonce"
    assert answer.headers["WWW-Authenticate"] == (
        'DPoP realm="api", error="use_dpop_nonce", '
        'error_description="Resource server requires nonce in DPoP proof", algs="ES256"'
    )


def test_a_plain_error_renders_as_before() -> None:
    """Unmarked errors (DPoP off) keep the RFC 6750 answer exactly."""
    answer = render_error(errors.TokenExpired(), None)
    assert answer.headers["WWW-Authenticate"] == (
        'Bearer error="invalid_token", error_description="The access token expired"'
    )


def test_flask_reads_the_dpop_settings(redis_url: str) -> None:
    """APIGUARD_DPOP, APIGUARD_REPLAY_STORE and APIGUARD_TRUSTED_PROXIES come as text."""
    app = Flask("dpop-config")
    app.config.update(
        APIGUARD_ISSUER="https://issuer.test/",
        APIGUARD_AUDIENCE="https://api.test",
        APIGUARD_DPOP="required",
        APIGUARD_REPLAY_STORE=redis_url,
        APIGUARD_TRUSTED_PROXIES="127.0.0.1 10.0.0.0/8",
    )
    ApiGuard(app)
    validator = ApiGuard.state(app).validator
    assert validator.dpop is not None
    assert validator.dpop.offers_bearer is False
    assert isinstance(validator._replay_store, RedisReplayStore)
    assert validator._replay_store.add("flask-config-test", 1)
    validator.close()


def test_policy_objects_are_taken_as_they_are(local_issuer: LocalIssuer) -> None:
    """A DPoPPolicy gives algorithms, window and nonces; its algs go in the challenge."""
    validator = local_issuer.validator(dpop=DPoPPolicy(mode="allowed", algorithms=["EdDSA"]))
    assert validator.dpop is not None
    assert (validator.dpop.algs, validator.dpop.offers_bearer) == ("EdDSA", True)
