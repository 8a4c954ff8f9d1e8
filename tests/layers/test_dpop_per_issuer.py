"""DPoP modes per issuer, in one validator, against every framework layer.

Issuer A requires DPoP, issuer B allows it and issuer C leaves it off (the validator-wide
``dpop``, inherited); each row is one request, and every layer must answer it alike.
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from adapters import LAYERS, Answer, assert_same

from apiguard import ConfigurationError, IssuerPolicy, Validator
from apiguard.dpop import DPoPPolicy
from apiguard.testing import DPoPKey, LocalIssuer

A = "https://required.test/"
B = "https://allowed.test/"
C = "https://off.test/"
AUD = "https://api.test"
ORIGIN = "http://api.test"
KEY = DPoPKey()
ALGS = 'algs="ES256 EdDSA"'


class Issuers:
    """Stands in for a LocalIssuer in the adapters: one validator trusting A, B and C."""

    def __init__(self) -> None:
        self.issuers = {url: LocalIssuer(url, audience=AUD) for url in (A, B, C)}
        self.required = DPoPPolicy(mode="required", algorithms=["ES256"])
        self.allowed = DPoPPolicy(mode="allowed", algorithms=["ES256", "EdDSA"])

    def _handle(self, request: httpx.Request) -> httpx.Response:
        for url, issuer in self.issuers.items():
            if request.url.host == httpx.URL(url).host:
                return issuer.handle(request)
        return httpx.Response(404)

    def _settings(self, extra: dict[str, Any]) -> dict[str, Any]:
        from apiguard.issuers import policy_names

        # The adapter's per-issuer settings (role_claims...) go on every policy.
        own = {k: extra.pop(k) for k in list(extra) if k in policy_names()}
        policies = [
            IssuerPolicy(A, audience=AUD, dpop=self.required, **own),
            IssuerPolicy(B, audience=AUD, dpop=self.allowed, **own),
            IssuerPolicy(C, audience=AUD, **own),
        ]
        return {"issuers": policies, "transport": httpx.MockTransport(self._handle), **extra}

    def validator(self, **extra: Any) -> Any:
        return Validator(**self._settings(extra))

    def async_validator(self, **extra: Any) -> Any:
        from apiguard import AsyncValidator

        return AsyncValidator(**self._settings(extra))


def request(issuer: str, scheme: str, *, bound: bool, proof: bool) -> Any:
    def make(issuers: Issuers) -> list[tuple[str, str]]:
        token = issuers.issuers[issuer].token(dpop_key=KEY if bound else None)
        headers = [("Host", "api.test"), ("Authorization", f"{scheme} {token}")]
        if proof:
            headers.append(("DPoP", KEY.proof("GET", ORIGIN + "/private", access_token=token)))
        return headers

    return make


def error(code: str, description: str) -> str:
    return f'error="{code}", error_description="{description}"'


#: Before the issuer is known, the challenge offers every issuer's schemes and algorithms.
ANY_ISSUER = f'Bearer realm="api", DPoP realm="api", {ALGS}'
#: A bound token of the issuer whose mode is off is refused by the claim checks, as with
#: DPoP off everywhere; the challenge offers what any issuer accepts.
CLAIM = error("invalid_token", "The access token has an invalid claim")
OFF_AS_BEARER = f'Bearer realm="api", {CLAIM}, DPoP realm="api", {ALGS}'
OFF_AS_DPOP = f'Bearer realm="api", DPoP realm="api", {CLAIM}, {ALGS}'
REQUIRED = error("invalid_token", "The access token must be sent with DPoP")
NOT_BOUND = error("invalid_token", "The access token is not bound to a DPoP key")

ROWS = [
    pytest.param(A, "DPoP", True, True, 200, None, id="required-dpop-token"),
    pytest.param(
        A,
        "Bearer",
        False,
        False,
        401,
        f'DPoP realm="api", {REQUIRED}, algs="ES256"',
        id="required-bearer-token",
    ),
    pytest.param(B, "Bearer", False, False, 200, None, id="allowed-bearer-token"),
    pytest.param(B, "DPoP", True, True, 200, None, id="allowed-dpop-token"),
    pytest.param(C, "Bearer", False, False, 200, None, id="off-bearer-token"),
    pytest.param(C, "Bearer", True, False, 401, OFF_AS_BEARER, id="off-bound-token-as-bearer"),
    pytest.param(C, "DPoP", True, True, 401, OFF_AS_DPOP, id="off-bound-token-as-dpop"),
    pytest.param(
        C,
        "DPoP",
        False,
        True,
        401,
        f'Bearer realm="api", DPoP realm="api", {NOT_BOUND}, {ALGS}',
        id="off-unbound-token-as-dpop",
    ),
    pytest.param(
        B,
        "Bearer",
        True,
        False,
        401,
        'Bearer realm="api", DPoP realm="api", error="invalid_token", error_description="The '
        'access token is bound to a DPoP key and must be sent with DPoP", algs="ES256 EdDSA"',
        id="allowed-bound-token-as-bearer",
    ),
]


@pytest.mark.parametrize(("issuer", "scheme", "bound", "proof", "status", "challenge"), ROWS)
def test_each_issuer_gets_its_own_dpop_mode_in_every_layer(
    issuer: str, scheme: str, bound: bool, proof: bool, status: int, challenge: str | None
) -> None:
    """The token's issuer decides: required refuses Bearer, allowed takes both, off no binding."""
    issuers = Issuers()
    answers: dict[str, Answer] = {}
    for layer in LAYERS:
        app = layer.build(issuers, required=True)  # type: ignore[arg-type]
        sent = request(issuer, scheme, bound=bound, proof=proof)(issuers)
        answers[layer.name] = layer.send(app, "GET", "/private", sent, b"")
    assert_same(answers, status, challenge, None)


@pytest.mark.parametrize("layer", LAYERS, ids=lambda layer: layer.name)
def test_without_a_token_the_challenge_offers_what_any_issuer_accepts(layer: Any) -> None:
    """No token: Bearer (B and C take it) and DPoP with the union of A's and B's algorithms."""
    issuers = Issuers()
    app = layer.build(issuers, required=True)
    answer = layer.send(app, "GET", "/private", [("Host", "api.test")], b"")
    assert (answer.status, answer.headers["www-authenticate"]) == (401, ANY_ISSUER)


def test_only_required_issuers_offer_no_bearer() -> None:
    """When every issuer requires DPoP, a request without a token is not offered Bearer."""
    validator = Validator(
        issuers=[
            LocalIssuer(A).policy(dpop="required", audience=AUD),
            LocalIssuer(B).policy(dpop="required", audience=AUD),
        ]
    )
    assert validator.dpop is not None
    assert validator.dpop.offers_bearer is False
    assert validator.dpop.policy(A).mode == "required"


def test_every_issuer_off_builds_no_gate() -> None:
    """Per-issuer modes all off (and the validator's): the request path stays DPoP-free."""
    validator = Validator(
        issuers=[IssuerPolicy(A, audience=AUD, dpop="off", jwks_uri=A + "jwks")], dpop="off"
    )
    assert validator.dpop is None


def test_one_issuer_keeps_the_validator_wide_setting() -> None:
    """issuer= with dpop= on the validator: the issuer inherits it (no per-issuer override)."""
    validator = Validator(issuer=A, audience=AUD, jwks_uri=A + "jwks", dpop="required")
    assert validator.dpop is not None
    assert validator.dpop.policy(A).mode == "required"


@pytest.mark.parametrize(
    "value",
    [
        pytest.param("sometimes", id="unknown-mode"),
        pytest.param("Required", id="wrong-case"),
        pytest.param(True, id="a-boolean"),
        pytest.param(["required"], id="a-list"),
    ],
)
def test_a_bad_per_issuer_dpop_is_a_configuration_error(value: Any) -> None:
    """A bad per-issuer mode fails when the policy is built, naming the setting."""
    with pytest.raises(ConfigurationError, match=r"^dpop: ") as caught:
        IssuerPolicy(A, audience=AUD, dpop=value)
    assert caught.value.setting == "dpop"


def test_a_resolved_policy_with_its_own_dpop_is_refused() -> None:
    """A resolver's policy cannot bring its own DPoP mode: 503, never a silent downgrade."""
    from apiguard.errors import ServiceUnavailable

    issuer = LocalIssuer(C, audience=AUD)
    validator = Validator(
        issuers=[IssuerPolicy(A, audience=AUD, jwks_uri=A + "jwks")],
        resolver=lambda iss, request: IssuerPolicy(iss, audience=AUD, dpop="required"),
        transport=httpx.MockTransport(issuer.handle),
    )
    with pytest.raises(ServiceUnavailable):
        validator.validate(issuer.token())
