"""Every DPoP rule (RFC 9449) against every framework layer: one status, challenge and body.

The API of ``adapters`` is built with a validator in DPoP mode ``allowed`` or ``required``
(proof algorithms ES256 and EdDSA); each row is one request to ``http://api.test``, and a
row passes only when every layer answers the expected status and ``WWW-Authenticate``, and
all of them the same JSON body.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
from adapters import LAYERS, Answer, Layer, assert_same

from apiguard.dpop import DPoPPolicy, NonceIssuer
from apiguard.events import ValidationEvent
from apiguard.testing import DPoPKey, LocalIssuer

ORIGIN = "http://api.test"
ALGS = 'algs="ES256 EdDSA"'
SUBJECT = {"subject": "auth0|user-1"}

#: The client's key and a thief's, one per session (key generation is the slow part).
KEY = DPoPKey()
THIEF = DPoPKey()

Make = Callable[[LocalIssuer, str, str], list[tuple[str, str]]]


def policy(mode: str, **options: Any) -> DPoPPolicy:
    return DPoPPolicy(mode=mode, algorithms=["ES256", "EdDSA"], **options)  # type: ignore[arg-type]


def dpop(text: str, *, on: str = "DPoP", bearer: bool = True) -> str:
    """The challenge value: the error parameters ``text`` on the scheme ``on``."""
    realm = 'realm="api"'
    dpop_part = f"DPoP {realm}, {text + ', ' if on == 'DPoP' and text else ''}{ALGS}"
    if not bearer:
        return dpop_part
    bearer_part = f"Bearer {realm}" + (f", {text}" if on == "Bearer" and text else "")
    return f"{bearer_part}, {dpop_part}"


def error(code: str, description: str) -> str:
    return f'error="{code}", error_description="{description}"'


def bound(*, scheme: str = "DPoP", proof: bool = True, **claims: Any) -> Make:
    """A DPoP-bound token with (or without) a good proof for the request."""

    def make(issuer: LocalIssuer, method: str, url: str) -> list[tuple[str, str]]:
        token = issuer.token(dpop_key=KEY, **claims)
        headers = [("Host", "api.test"), ("Authorization", f"{scheme} {token}")]
        if proof:
            headers.append(("DPoP", KEY.proof(method, url, access_token=token)))
        return headers

    return make


def unbound(scheme: str = "Bearer", *, proof: bool = False) -> Make:
    def make(issuer: LocalIssuer, method: str, url: str) -> list[tuple[str, str]]:
        token = issuer.token()
        headers = [("Host", "api.test"), ("Authorization", f"{scheme} {token}")]
        if proof:
            headers.append(("DPoP", KEY.proof(method, url, access_token=token)))
        return headers

    return make


def bad(kind: str) -> Make:
    def make(issuer: LocalIssuer, method: str, url: str) -> list[tuple[str, str]]:
        token = issuer.token(dpop_key=KEY)
        return [
            ("Host", "api.test"),
            ("Authorization", f"DPoP {token}"),
            ("DPoP", KEY.bad_proof(kind, method, url, access_token=token)),
        ]

    return make


def headers(*items: tuple[str, str]) -> Make:
    return lambda issuer, method, url: [("Host", "api.test"), *items]


def custom(build: Callable[[LocalIssuer, str, str, str], list[tuple[str, str]]]) -> Make:
    def make(issuer: LocalIssuer, method: str, url: str) -> list[tuple[str, str]]:
        token = issuer.token(dpop_key=KEY)
        return build(issuer, method, url, token)

    return make


@dataclass(frozen=True)
class Row:
    mode: str
    target: str
    headers: Make
    status: int
    challenge: str | None
    body: Any = None
    method: str = "GET"


_DESCRIPTIONS = {
    "dpop_proof_malformed": "The DPoP proof is malformed",
    "dpop_proof_wrong_type": "The DPoP proof is not of type dpop+jwt",
    "dpop_algorithm_not_allowed": "The DPoP proof is signed with an algorithm that is not allowed",
    "dpop_key_invalid": "The DPoP proof key is invalid",
    "dpop_signature_invalid": "The DPoP proof signature is invalid",
    "dpop_method_mismatch": "The DPoP proof is for another HTTP method",
    "dpop_uri_mismatch": "The DPoP proof is for another URI",
    "dpop_proof_expired": "The DPoP proof is too old",
    "dpop_proof_not_yet_valid": "The DPoP proof is issued in the future",
    "dpop_ath_mismatch": "The DPoP proof is for another access token",
}

ROWS = [
    # -- allowed: Bearer and DPoP ---------------------------------------------------------
    pytest.param(
        Row("allowed", "/private", headers(), 401, dpop("")),
        id="allowed-no-token-offers-both",
    ),
    pytest.param(
        Row("allowed", "/private", unbound(), 200, None, SUBJECT), id="allowed-bearer-token"
    ),
    pytest.param(Row("allowed", "/private", bound(), 200, None, SUBJECT), id="allowed-dpop-token"),
    pytest.param(
        Row("allowed", "/private?page=2", bound(), 200, None, SUBJECT),
        id="allowed-query-not-in-htu",
    ),
    pytest.param(
        Row(
            "allowed",
            "/private",
            bound(scheme="Bearer", proof=False),
            401,
            dpop(
                error(
                    "invalid_token",
                    "The access token is bound to a DPoP key and must be sent with DPoP",
                )
            ),
        ),
        id="allowed-bound-token-as-bearer",
    ),
    pytest.param(
        Row(
            "allowed",
            "/private",
            bound(scheme="Bearer"),
            401,
            dpop(
                error(
                    "invalid_token",
                    "The access token is bound to a DPoP key and must be sent with DPoP",
                )
            ),
        ),
        id="allowed-bound-token-as-bearer-even-with-a-proof",
    ),
    pytest.param(
        Row(
            "allowed",
            "/private",
            unbound("DPoP", proof=True),
            401,
            dpop(error("invalid_token", "The access token is not bound to a DPoP key")),
        ),
        id="allowed-unbound-token-as-dpop",
    ),
    pytest.param(
        Row(
            "allowed",
            "/private",
            bound(proof=False),
            401,
            dpop(error("invalid_dpop_proof", "The request carries no DPoP proof")),
            {
                "error": "invalid_dpop_proof",
                "error_description": "The request carries no DPoP proof",
            },
        ),
        id="allowed-dpop-without-proof",
    ),
    pytest.param(
        Row(
            "allowed",
            "/private",
            custom(
                lambda issuer, method, url, token: [
                    ("Host", "api.test"),
                    ("Authorization", f"DPoP {token}"),
                    ("DPoP", THIEF.proof(method, url, access_token=token)),
                ]
            ),
            401,
            dpop(error("invalid_token", "Invalid DPoP key binding")),
        ),
        id="allowed-stolen-token-with-the-thiefs-own-key",
    ),
    pytest.param(
        Row(
            "allowed",
            "/private",
            custom(
                lambda issuer, method, url, token: [
                    ("Host", "api.test"),
                    ("Authorization", f"DPoP {token}"),
                    ("DPoP", KEY.proof(method, url, access_token=token)),
                    ("DPoP", KEY.proof(method, url, access_token=token)),
                ]
            ),
            400,
            dpop(error("invalid_request", "The request carries more than one DPoP proof")),
        ),
        id="allowed-two-dpop-headers",
    ),
    pytest.param(
        Row(
            "allowed",
            "/private",
            custom(
                lambda issuer, method, url, token: [
                    ("Host", "api.test/scoped?"),
                    ("Authorization", f"DPoP {token}"),
                    ("DPoP", KEY.proof(method, ORIGIN + "/scoped", access_token=token)),
                ]
            ),
            400,
            dpop(error("invalid_request", "The request URI is malformed")),
        ),
        id="allowed-host-header-carrying-a-path",
    ),
    pytest.param(
        Row(
            "allowed",
            "/private",
            custom(
                lambda issuer, method, url, token: [
                    ("Host", "api.test"),
                    ("Authorization", f"DPoP {token}"),
                    ("DPoP", KEY.proof(method, ORIGIN + "/scoped", access_token=token)),
                ]
            ),
            401,
            dpop(error("invalid_dpop_proof", "The DPoP proof is for another URI")),
        ),
        id="allowed-proof-for-another-path",
    ),
    pytest.param(
        Row(
            "allowed",
            "/private",
            bound(expires_in=-3600),
            401,
            dpop(error("invalid_token", "The access token expired")),
        ),
        id="allowed-expired-dpop-token-answers-on-dpop",
    ),
    pytest.param(
        Row(
            "allowed",
            "/private",
            headers(("Authorization", "DPoP a.b.c"), ("DPoP", "x.y.z")),
            401,
            dpop(error("invalid_token", "The access token is malformed")),
        ),
        id="allowed-malformed-dpop-token",
    ),
    pytest.param(
        Row(
            "allowed",
            "/private",
            headers(("Authorization", "Bearer a.b.c")),
            401,
            dpop(error("invalid_token", "The access token is malformed"), on="Bearer"),
        ),
        id="allowed-malformed-bearer-token-answers-on-bearer",
    ),
    pytest.param(
        Row(
            "allowed",
            "/scoped",
            bound(scope="read:b"),
            403,
            dpop(
                error("insufficient_scope", "The access token lacks a required scope")
                + ', scope="read:a"'
            ),
        ),
        id="allowed-dpop-token-missing-a-scope",
    ),
    pytest.param(
        Row("allowed", "/scoped", bound(scope="read:a"), 200, None, SUBJECT),
        id="allowed-dpop-token-with-the-scope",
    ),
    pytest.param(
        Row("allowed", "/form", bound(), 200, None, SUBJECT, method="POST"),
        id="allowed-post",
    ),
    pytest.param(
        Row(
            "allowed",
            "/private",
            headers(("Authorization", "DPoP")),
            400,
            dpop(error("invalid_request", "The bearer token request is malformed")),
        ),
        id="allowed-empty-dpop-credentials",
    ),
    *[
        pytest.param(
            Row(
                "allowed",
                "/private",
                bad(kind),
                401,
                dpop(error("invalid_dpop_proof", _DESCRIPTIONS[reason])),
            ),
            id=f"allowed-bad-proof-{kind}",
        )
        for kind, reason in DPoPKey.BAD_PROOFS.items()
    ],
    # -- required: DPoP only ------------------------------------------------------------
    pytest.param(
        Row("required", "/private", headers(), 401, dpop("", bearer=False)),
        id="required-no-token-offers-dpop-only",
    ),
    pytest.param(
        Row(
            "required",
            "/private",
            headers(("Authorization", "Basic eDp5")),
            401,
            dpop("", bearer=False),
        ),
        id="required-other-scheme",
    ),
    pytest.param(
        Row(
            "required",
            "/private",
            unbound(),
            401,
            dpop(error("invalid_token", "The access token must be sent with DPoP"), bearer=False),
        ),
        id="required-bearer-token",
    ),
    pytest.param(
        Row(
            "required",
            "/private",
            bound(scheme="Bearer", proof=False),
            401,
            dpop(
                error(
                    "invalid_token",
                    "The access token is bound to a DPoP key and must be sent with DPoP",
                ),
                bearer=False,
            ),
        ),
        id="required-bound-token-as-bearer",
    ),
    pytest.param(
        Row("required", "/private", bound(), 200, None, SUBJECT), id="required-dpop-token"
    ),
    pytest.param(
        Row("required", "/optional", headers(), 200, None, {"subject": None}),
        id="required-optional-route-without-token",
    ),
    pytest.param(
        Row(
            "required",
            "/private",
            bound(proof=False),
            401,
            dpop(error("invalid_dpop_proof", "The request carries no DPoP proof"), bearer=False),
        ),
        id="required-dpop-without-proof",
    ),
]


def _send(layer: Layer, app: Any, row: Row, issuer: LocalIssuer) -> Answer:
    url = ORIGIN + row.target
    return layer.send(app, row.method, row.target, row.headers(issuer, row.method, url), b"")


@pytest.mark.parametrize("row", ROWS)
def test_every_layer_answers_dpop_the_same(local_issuer: LocalIssuer, row: Row) -> None:
    """The row's request gets the expected status and challenge, and one body, in every layer."""
    answers: dict[str, Answer] = {}
    for layer in LAYERS:
        app = layer.build(local_issuer, required=False, dpop=policy(row.mode))
        answers[layer.name] = _send(layer, app, row, local_issuer)
    assert_same(answers, row.status, row.challenge, row.body)


@pytest.mark.parametrize("layer", LAYERS, ids=lambda layer: layer.name)
def test_a_replayed_proof_is_refused(local_issuer: LocalIssuer, layer: Layer) -> None:
    """The same proof twice: accepted once, then 401 invalid_dpop_proof (its jti is spent)."""
    app = layer.build(local_issuer, required=False, dpop=policy("required"))
    sent = bound()(local_issuer, "GET", ORIGIN + "/private")
    assert layer.send(app, "GET", "/private", sent, b"").status == 200
    again = layer.send(app, "GET", "/private", sent, b"")
    assert again.status == 401
    assert again.json() == {
        "error": "invalid_dpop_proof",
        "error_description": "The DPoP proof was already used",
    }


@pytest.mark.parametrize("layer", LAYERS, ids=lambda layer: layer.name)
def test_a_cached_token_still_needs_a_fresh_proof(local_issuer: LocalIssuer, layer: Layer) -> None:
    """The verified-token cache never makes a DPoP token a bearer token."""
    app = layer.build(local_issuer, required=False, dpop=policy("required"))
    token = local_issuer.token(dpop_key=KEY)
    url = ORIGIN + "/private"

    def send(*extra: tuple[str, str]) -> Answer:
        auth = [("Host", "api.test"), ("Authorization", f"DPoP {token}"), *extra]
        return layer.send(app, "GET", "/private", auth, b"")

    for _ in range(3):  # admitted to the cache from the second validation on
        assert send(("DPoP", KEY.proof("GET", url, access_token=token))).status == 200
    assert send().status == 401
    assert send(("DPoP", THIEF.proof("GET", url, access_token=token))).status == 401
    replayed = KEY.proof("GET", url, access_token=token)
    assert send(("DPoP", replayed)).status == 200
    assert send(("DPoP", replayed)).status == 401


@pytest.mark.parametrize("layer", LAYERS, ids=lambda layer: layer.name)
def test_a_server_nonce_is_asked_for_and_then_accepted(
    local_issuer: LocalIssuer, layer: Layer
) -> None:
    """With nonces: 401 use_dpop_nonce and a DPoP-Nonce header, then the retry passes."""
    nonces = NonceIssuer(b"n" * 32)
    app = layer.build(local_issuer, required=False, dpop=policy("required", nonces=nonces))
    token = local_issuer.token(dpop_key=KEY)
    url = ORIGIN + "/private"
    base = [("Host", "api.test"), ("Authorization", f"DPoP {token}")]
    first = layer.send(
        app, "GET", "/private", [*base, ("DPoP", KEY.proof("GET", url, access_token=token))], b""
    )
    assert first.status == 401
    assert first.headers["dpop-nonce"] == nonces.current()
    assert first.headers["www-authenticate"] == dpop(
        error("use_dpop_nonce", "Resource server requires nonce in DPoP proof"), bearer=False
    )
    assert first.json()["error"] == "use_dpop_nonce"
    retry = KEY.proof("GET", url, access_token=token, nonce=first.headers["dpop-nonce"])
    assert layer.send(app, "GET", "/private", [*base, ("DPoP", retry)], b"").status == 200


@pytest.mark.parametrize("layer", LAYERS, ids=lambda layer: layer.name)
def test_the_replay_store_down_is_a_503(local_issuer: LocalIssuer, layer: Layer) -> None:
    """A replay store that cannot answer makes every layer answer 503, never accept."""
    from apiguard.errors import ReplayStoreUnavailable

    class Down:
        def add(self, key: str, ttl: float) -> bool:
            raise ReplayStoreUnavailable("down")

    app = layer.build(local_issuer, required=False, dpop=policy("required"), replay_store=Down())
    answer = layer.send(
        app, "GET", "/private", bound()(local_issuer, "GET", ORIGIN + "/private"), b""
    )
    assert answer.status == 503
    assert answer.headers["retry-after"] == "5"
    assert "www-authenticate" not in answer.headers


@pytest.mark.parametrize("layer", LAYERS, ids=lambda layer: layer.name)
def test_with_dpop_off_a_bound_token_is_refused(local_issuer: LocalIssuer, layer: Layer) -> None:
    """DPoP off (the default): a cnf token is refused and the DPoP scheme is no token."""
    app = layer.build(local_issuer, required=False)
    token = local_issuer.token(dpop_key=KEY)
    as_bearer = layer.send(app, "GET", "/private", [("Authorization", f"Bearer {token}")], b"")
    assert as_bearer.status == 401
    assert as_bearer.headers["www-authenticate"].startswith('Bearer realm="api", error=')
    as_dpop = layer.send(app, "GET", "/private", [("Authorization", f"DPoP {token}")], b"")
    assert (as_dpop.status, as_dpop.headers["www-authenticate"]) == (401, 'Bearer realm="api"')


#: Requests whose token validates and whose DPoP check then fails (or passes), each with
#: the one validation event every layer must report: outcome and reason.
EVENT_ROWS = [
    pytest.param(bound(), ("accepted", None), id="good-proof"),
    pytest.param(bound(proof=False), ("refused", "dpop_proof_missing"), id="no-proof"),
    pytest.param(
        bad("other_key_signed"), ("refused", "dpop_signature_invalid"), id="bad-signature"
    ),
    pytest.param(bad("htu_other_path"), ("refused", "dpop_uri_mismatch"), id="other-uri"),
    pytest.param(
        bound(scheme="Bearer", proof=False),
        ("refused", "dpop_bound_token_as_bearer"),
        id="bound-token-as-bearer",
    ),
    pytest.param(
        custom(
            lambda issuer, method, url, token: [
                ("Host", "api.test"),
                ("Authorization", f"DPoP {token}"),
                ("DPoP", THIEF.proof(method, url, access_token=token)),
            ]
        ),
        ("refused", "dpop_key_mismatch"),
        id="thiefs-key",
    ),
]


@pytest.mark.parametrize("layer", LAYERS, ids=lambda layer: layer.name)
@pytest.mark.parametrize(("make", "expected"), EVENT_ROWS)
def test_every_layer_reports_the_dpop_verdict_as_one_event(
    local_issuer: LocalIssuer, layer: Layer, make: Make, expected: tuple[str, str | None]
) -> None:
    """A request whose token validates reports one event: refused with the proof's reason
    when its DPoP check fails, and never the token, whatever the layer."""
    events: list[Any] = []
    app = layer.build(local_issuer, required=False, dpop=policy("allowed"), on_event=events.append)
    sent = make(local_issuer, "GET", ORIGIN + "/private")
    layer.send(app, "GET", "/private", sent, b"")
    (event,) = [event for event in events if isinstance(event, ValidationEvent)]
    assert (event.outcome, event.reason) == expected
    assert (event.issuer, event.algorithm) == (local_issuer.issuer, "RS256")
    assert event.subject is None
    token = dict(sent)["Authorization"].split(" ", 1)[1]
    assert token not in repr(event)


@pytest.mark.parametrize("layer", LAYERS, ids=lambda layer: layer.name)
def test_every_layer_reports_replays_nonces_and_a_store_outage(
    local_issuer: LocalIssuer, layer: Layer
) -> None:
    """A replayed proof, a proof without the server's nonce and a replay store that is down
    are each one event: refused (dpop_proof_replayed, use_dpop_nonce) or unavailable."""
    from apiguard.errors import ReplayStoreUnavailable

    class Down:
        def add(self, key: str, ttl: float) -> bool:
            raise ReplayStoreUnavailable("down")

    def verdicts(app: Any, *requests: list[tuple[str, str]]) -> list[tuple[str, str | None]]:
        for sent in requests:
            layer.send(app, "GET", "/private", sent, b"")
        return [(e.outcome, e.reason) for e in events if isinstance(e, ValidationEvent)]

    url = ORIGIN + "/private"
    events: list[Any] = []
    replaying = layer.build(
        local_issuer, required=False, dpop=policy("required"), on_event=events.append
    )
    sent = bound()(local_issuer, "GET", url)
    assert verdicts(replaying, sent, sent) == [
        ("accepted", None),
        ("refused", "dpop_proof_replayed"),
    ]
    events.clear()
    nonces = NonceIssuer(b"n" * 32)
    asking = layer.build(
        local_issuer,
        required=False,
        dpop=policy("required", nonces=nonces),
        on_event=events.append,
    )
    assert verdicts(asking, bound()(local_issuer, "GET", url)) == [("refused", "use_dpop_nonce")]
    events.clear()
    down = layer.build(
        local_issuer,
        required=False,
        dpop=policy("required"),
        replay_store=Down(),
        on_event=events.append,
    )
    assert verdicts(down, bound()(local_issuer, "GET", url)) == [
        ("unavailable", "replay_store_unavailable")
    ]
