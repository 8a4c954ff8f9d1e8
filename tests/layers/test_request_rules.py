"""Every request rule against every framework layer: identical status, challenge and body.

Each row is one request; each layer in ``adapters.LAYERS`` builds the same API and answers
it in-process from the raw request line. A row passes only when every layer answers the
expected status and ``WWW-Authenticate``, and all of them the same JSON body.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
from adapters import LAYERS, MAX_AGE, ROLES, Answer, Layer, assert_same

from apiguard import MULTI_FACTOR
from apiguard.testing import LocalIssuer

Make = Callable[[LocalIssuer], list[tuple[str, str]]]

BARE = 'Bearer realm="api"'
INVALID_REQUEST = (
    'Bearer realm="api", error="invalid_request", '
    'error_description="The bearer token request is malformed"'
)
INVALID_TOKEN = (
    'Bearer realm="api", error="invalid_token", error_description="The access token is invalid"'
)
EXPIRED = 'Bearer realm="api", error="invalid_token", error_description="The access token expired"'
MALFORMED = (
    'Bearer realm="api", error="invalid_token", error_description="The access token is malformed"'
)


def scope_challenge(scope: str) -> str:
    return (
        'Bearer realm="api", error="insufficient_scope", '
        f'error_description="The access token lacks a required scope", scope="{scope}"'
    )


def forbidden(description: str) -> str:
    return f'Bearer realm="api", error="insufficient_scope", error_description="{description}"'


def forbidden_body(description: str) -> dict[str, str]:
    return {"error": "insufficient_scope", "error_description": description}


NO_PERMISSION = "The access token lacks a required permission"
NO_ROLE = "The access token lacks a required role"
CLAIM_RULE = "The access token does not meet a requirement of this resource"
UNVERIFIED = "A verified email address is required"
INVALID_CLAIM = (
    'Bearer realm="api", error="invalid_token", '
    'error_description="The access token has an invalid claim"'
)
WEAK = "A different authentication level is required"
OLD = "More recent authentication is required"


def step_up_challenge(description: str) -> str:
    return (
        'Bearer realm="api", error="insufficient_user_authentication", '
        f'error_description="{description}", acr_values="{MULTI_FACTOR}", max_age="{MAX_AGE}"'
    )


def step_up_body(description: str) -> dict[str, str]:
    return {
        "error": "insufficient_user_authentication",
        "error_description": description,
        "acr_values": MULTI_FACTOR,
        "max_age": str(MAX_AGE),
    }


def signed_in(seconds_ago: float, **claims: Any) -> Make:
    """A token whose sign-in was ``seconds_ago`` on the issuer's clock."""
    return lambda issuer: [
        (
            "Authorization",
            f"Bearer {issuer.token(auth_time=issuer.clock() - seconds_ago, **claims)}",
        )
    ]


def bearer(**claims: Any) -> Make:
    return lambda issuer: [("Authorization", f"Bearer {issuer.token(**claims)}")]


def raw(*headers: tuple[str, str]) -> Make:
    return lambda issuer: list(headers)


NONE: Make = raw()
SUBJECT = {"subject": "auth0|user-1"}
ANONYMOUS = {"subject": None}


@dataclass(frozen=True)
class Row:
    method: str
    target: str
    headers: Make
    status: int
    challenge: str | None
    body: Any = None
    required: bool = False
    content: bytes = b""
    form: bool = False
    extra: Callable[[LocalIssuer], list[tuple[str, str]]] = field(default=NONE)


def form_headers(issuer: LocalIssuer) -> list[tuple[str, str]]:
    return [
        ("Authorization", f"Bearer {issuer.token()}"),
        ("Content-Type", "application/x-www-form-urlencoded"),
    ]


ROWS = [
    # -- reading the token ---------------------------------------------------------------
    pytest.param(Row("GET", "/private", NONE, 401, BARE), id="no-header"),
    pytest.param(Row("GET", "/private", bearer(), 200, None, SUBJECT), id="valid-token"),
    pytest.param(
        Row(
            "GET",
            "/private",
            lambda i: [("Authorization", f"bearer  {i.token()}")],
            200,
            None,
            SUBJECT,
        ),
        id="lower-case-scheme-two-spaces",
    ),
    pytest.param(
        Row("GET", "/private", raw(("Authorization", "Basic dXNlcjpwYXNz")), 401, BARE),
        id="another-scheme",
    ),
    pytest.param(
        Row("GET", "/private", raw(("Authorization", "Bearer")), 400, INVALID_REQUEST),
        id="empty-bearer",
    ),
    pytest.param(
        Row("GET", "/private", raw(("Authorization", "Bearer a b")), 400, INVALID_REQUEST),
        id="two-tokens-in-one-header",
    ),
    pytest.param(
        Row("GET", "/private", raw(("Authorization", 'Bearer "x"')), 400, INVALID_REQUEST),
        id="not-a-b64token",
    ),
    pytest.param(
        Row(
            "GET",
            "/private",
            lambda i: [("Authorization", f"Bearer {i.token()}")] * 2,
            400,
            INVALID_REQUEST,
        ),
        id="header-repeated",
    ),
    pytest.param(
        Row(
            "GET",
            "/private",
            lambda i: [("Authorization", "Basic eDp5"), ("Authorization", f"Bearer {i.token()}")],
            400,
            INVALID_REQUEST,
        ),
        id="bearer-next-to-another-scheme",
    ),
    pytest.param(
        Row(
            "GET",
            "/private",
            raw(("Authorization", "Basic eDp5"), ("Authorization", "Basic eTp6")),
            401,
            BARE,
        ),
        id="two-headers-without-bearer",
    ),
    pytest.param(
        Row("GET", "/private?access_token=abc", bearer(), 400, INVALID_REQUEST),
        id="header-and-query",
    ),
    pytest.param(
        Row("GET", "/private?access%5Ftoken=abc", bearer(), 400, INVALID_REQUEST),
        id="header-and-encoded-query-name",
    ),
    pytest.param(Row("GET", "/private?access_token=abc", NONE, 401, BARE), id="query-only"),
    pytest.param(
        Row("POST", "/form", form_headers, 400, INVALID_REQUEST, content=b"access_token=abc"),
        id="header-and-form-body",
    ),
    pytest.param(
        Row("POST", "/form", form_headers, 200, None, SUBJECT, content=b"title=x&token=y"),
        id="form-body-without-token",
    ),
    pytest.param(
        Row(
            "POST",
            "/form",
            raw(("Content-Type", "application/x-www-form-urlencoded")),
            401,
            BARE,
            content=b"access_token=abc",
        ),
        id="form-body-only",
    ),
    # -- the token itself ----------------------------------------------------------------
    pytest.param(
        Row("GET", "/private", raw(("Authorization", "Bearer a.b.c")), 401, MALFORMED),
        id="malformed-token",
    ),
    pytest.param(Row("GET", "/private", bearer(expires_in=-3600), 401, EXPIRED), id="expired"),
    pytest.param(
        Row("GET", "/private", bearer(aud="https://other.api"), 401, None), id="wrong-audience"
    ),
    # -- scopes --------------------------------------------------------------------------
    pytest.param(
        Row("GET", "/scoped", bearer(scope="read:b"), 403, scope_challenge("read:a")),
        id="scope-missing",
    ),
    pytest.param(
        Row("GET", "/scoped", bearer(scope="read:a"), 200, None, SUBJECT), id="scope-granted"
    ),
    pytest.param(
        Row("GET", "/scoped", bearer(scope="read:all Read:a"), 403, scope_challenge("read:a")),
        id="scope-prefix-and-case",
    ),
    pytest.param(
        Row(
            "GET",
            "/scoped",
            bearer(scope="read:b", permissions=["read:a"]),
            403,
            scope_challenge("read:a"),
        ),
        id="user-permissions-are-not-app-scopes",
    ),
    pytest.param(Row("GET", "/scoped", NONE, 401, BARE), id="scope-route-no-token"),
    pytest.param(
        Row("GET", "/all", bearer(scope="read:a"), 403, scope_challenge("read:a read:b")),
        id="all-of-one-missing",
    ),
    pytest.param(
        Row("GET", "/all", bearer(scope="read:b read:a"), 200, None, SUBJECT), id="all-of"
    ),
    pytest.param(Row("GET", "/any", bearer(scope="read:b"), 200, None, SUBJECT), id="any-of"),
    pytest.param(
        Row("GET", "/any", bearer(scope="read:c"), 403, scope_challenge("read:a read:b")),
        id="any-of-none",
    ),
    pytest.param(Row("GET", "/noscopes", NONE, 401, BARE), id="no-scopes-needs-a-token"),
    pytest.param(
        Row("GET", "/noscopes", bearer(), 200, None, SUBJECT), id="no-scopes-any-valid-token"
    ),
    # -- optional ------------------------------------------------------------------------
    pytest.param(Row("GET", "/optional", NONE, 200, None, ANONYMOUS), id="optional-no-token"),
    pytest.param(
        Row("GET", "/optional", raw(("Authorization", "Basic eDp5")), 200, None, ANONYMOUS),
        id="optional-other-scheme",
    ),
    pytest.param(Row("GET", "/optional", bearer(), 200, None, SUBJECT), id="optional-valid-token"),
    pytest.param(
        Row("GET", "/optional", raw(("Authorization", "Bearer a.b.c")), 401, MALFORMED),
        id="optional-bad-token",
    ),
    pytest.param(
        Row("GET", "/optional", raw(("Authorization", "Bearer ")), 400, INVALID_REQUEST),
        id="optional-empty-bearer",
    ),
    # -- OPTIONS -------------------------------------------------------------------------
    pytest.param(Row("OPTIONS", "/options", NONE, 401, BARE), id="declared-options-no-token"),
    pytest.param(
        Row(
            "OPTIONS",
            "/options",
            raw(("Origin", "https://spa.example"), ("Access-Control-Request-Method", "GET")),
            401,
            BARE,
        ),
        id="declared-options-preflight-shaped",
    ),
    pytest.param(
        Row("OPTIONS", "/options", bearer(), 200, None, SUBJECT), id="declared-options-token"
    ),
    # -- authorization beyond scopes (permissions, roles, claims, step-up) ----------------
    pytest.param(
        Row("GET", "/permission", bearer(permissions=["delete:a"]), 200, None, SUBJECT),
        id="permission-granted",
    ),
    pytest.param(
        Row(
            "GET",
            "/permission",
            bearer(permissions=["read:a"], scope="delete:a"),
            403,
            forbidden(NO_PERMISSION),
            forbidden_body(NO_PERMISSION),
        ),
        id="permission-missing-scope-does-not-count",
    ),
    pytest.param(
        Row("GET", "/permission", bearer(permissions="delete:a"), 200, None, SUBJECT),
        id="permission-as-a-string",
    ),
    pytest.param(
        Row("GET", "/permission", bearer(permissions=[1]), 401, INVALID_CLAIM),
        id="permission-wrong-type",
    ),
    pytest.param(Row("GET", "/permission", NONE, 401, BARE), id="permission-no-token"),
    pytest.param(
        Row("GET", "/role", bearer(**{ROLES[0]: ["organizer-admin"]}), 200, None, SUBJECT),
        id="role-from-namespaced-claim",
    ),
    pytest.param(
        Row(
            "GET",
            "/role",
            bearer(**{ROLES[0]: ["assistant"]}),
            403,
            forbidden(NO_ROLE),
            forbidden_body(NO_ROLE),
        ),
        id="role-missing",
    ),
    pytest.param(
        Row("GET", "/role", bearer(roles=["organizer-admin"]), 403, forbidden(NO_ROLE)),
        id="role-in-another-claim",
    ),
    pytest.param(
        Row("GET", "/role", bearer(**{ROLES[0]: {"organizer-admin": True}}), 401, INVALID_CLAIM),
        id="role-claim-an-object",
    ),
    pytest.param(
        Row(
            "GET",
            "/configured-role",
            bearer(realm_access={"roles": ["admin"]}),
            200,
            None,
            SUBJECT,
        ),
        id="role-from-role_claims",
    ),
    pytest.param(
        Row(
            "GET",
            "/configured-role",
            bearer(realm_access={"roles": ["user"]}),
            403,
            forbidden(NO_ROLE),
        ),
        id="role-from-role_claims-missing",
    ),
    pytest.param(
        Row("GET", "/private", bearer(realm_access=["admin"]), 401, INVALID_CLAIM),
        id="role_claims-parent-not-an-object",
    ),
    pytest.param(Row("GET", "/tenant", bearer(tid="t1"), 200, None, SUBJECT), id="equals"),
    pytest.param(
        Row(
            "GET",
            "/tenant",
            bearer(tid="attacker-tenant"),
            403,
            forbidden(CLAIM_RULE),
            forbidden_body(CLAIM_RULE),
        ),
        id="equals-other-value-not-echoed",
    ),
    pytest.param(
        Row("GET", "/groups", bearer(groups=["staff", "x"]), 200, None, SUBJECT), id="includes"
    ),
    pytest.param(
        Row("GET", "/groups", bearer(groups=["guests"]), 403, forbidden(CLAIM_RULE)),
        id="includes-missing",
    ),
    pytest.param(
        Row("GET", "/groups", bearer(groups=7), 401, INVALID_CLAIM), id="includes-wrong-type"
    ),
    pytest.param(
        Row("GET", "/verified", bearer(email_verified=True), 200, None, SUBJECT),
        id="predicate",
    ),
    pytest.param(
        Row(
            "GET",
            "/verified",
            bearer(email_verified="true"),
            403,
            forbidden(UNVERIFIED),
            forbidden_body(UNVERIFIED),
        ),
        id="predicate-own-description",
    ),
    pytest.param(
        Row("GET", "/step-up", signed_in(5, acr=MULTI_FACTOR), 200, None, SUBJECT),
        id="step-up-met",
    ),
    pytest.param(
        Row(
            "GET",
            "/step-up",
            signed_in(5, acr="urn:password"),
            401,
            step_up_challenge(WEAK),
            step_up_body(WEAK),
        ),
        id="step-up-weak-acr",
    ),
    pytest.param(
        Row(
            "GET",
            "/step-up",
            signed_in(MAX_AGE + 60, acr=MULTI_FACTOR),
            401,
            step_up_challenge(OLD),
            step_up_body(OLD),
        ),
        id="step-up-too-old",
    ),
    pytest.param(
        Row("GET", "/step-up", bearer(acr=MULTI_FACTOR), 401, step_up_challenge(OLD)),
        id="step-up-no-auth-time",
    ),
    pytest.param(
        Row("GET", "/step-up", signed_in(5, acr=[MULTI_FACTOR]), 401, INVALID_CLAIM),
        id="step-up-acr-wrong-type",
    ),
    pytest.param(
        Row(
            "GET",
            "/delete",
            bearer(scope="delete:a", **{ROLES[0]: ["organizer-admin"]}),
            200,
            None,
            SUBJECT,
        ),
        id="scope-and-role",
    ),
    pytest.param(
        Row("GET", "/delete", bearer(scope="delete:a"), 403, forbidden(NO_ROLE)),
        id="scope-without-role",
    ),
    pytest.param(
        Row(
            "GET",
            "/delete",
            bearer(**{ROLES[0]: ["organizer-admin"]}),
            403,
            scope_challenge("delete:a"),
        ),
        id="role-without-scope",
    ),
    # -- excluded paths (app-wide guard required) ---------------------------------------
    pytest.param(
        Row("GET", "/public", NONE, 200, None, ANONYMOUS, required=True), id="excluded-exact"
    ),
    pytest.param(
        Row(
            "GET",
            "/public",
            raw(("Authorization", "Bearer a.b.c")),
            200,
            None,
            ANONYMOUS,
            required=True,
        ),
        id="excluded-not-inspected",
    ),
    pytest.param(
        Row("GET", "/static/public/app.css", NONE, 200, None, ANONYMOUS, required=True),
        id="excluded-prefix",
    ),
    pytest.param(
        Row("GET", "/static/private/key.txt", NONE, 401, BARE, required=True),
        id="not-excluded",
    ),
    pytest.param(
        Row("GET", "/public/", NONE, 401, BARE, required=True), id="exact-is-not-a-prefix"
    ),
    pytest.param(
        Row("GET", "/static/publicity", NONE, 401, BARE, required=True),
        id="prefix-stops-at-segment",
    ),
    *[
        pytest.param(Row("GET", target, NONE, 401, BARE, required=True), id=f"escape-{name}")
        for name, target in [
            ("dot-dot", "/static/public/../private/secret.txt"),
            ("dot", "/static/public/./app.css"),
            ("encoded-dot-dot", "/static/public/%2e%2e/private/secret.txt"),
            ("encoded-dot-dot-upper", "/static/public/%2E%2E/private/secret.txt"),
            ("mixed-case-escape", "/static/public/.%2E/private/secret.txt"),
            ("encoded-slash", "/static/public/..%2fprivate%2fsecret.txt"),
            ("encoded-slash-upper", "/static/public/..%2Fprivate%2Fsecret.txt"),
            ("empty-segment", "/static/public//etc/passwd"),
            ("backslash", "/static/public/..\\private\\secret.txt"),
            ("encoded-backslash", "/static/public/..%5cprivate"),
            ("double-encoded", "/static/public/%252e%252e/private"),
            ("trailing-dot-dot", "/static/public/.."),
        ]
    ],
]


@pytest.mark.parametrize("row", ROWS)
def test_every_layer_answers_the_same(local_issuer: LocalIssuer, row: Row) -> None:
    """The row's request gets the expected status and challenge, and one body, in every layer."""
    answers: dict[str, Answer] = {}
    for layer in LAYERS:
        app = layer.build(local_issuer, required=row.required)
        answers[layer.name] = layer.send(
            app, row.method, row.target, row.headers(local_issuer), row.content
        )
    assert_same(answers, row.status, row.challenge, row.body)


def test_every_layer_answers_503_without_keys(local_issuer: LocalIssuer) -> None:
    """With the issuer's keys unavailable, every layer answers 503, Retry-After, no challenge."""
    local_issuer.jwks_override = httpx.Response(500)
    token = local_issuer.token()
    answers = [
        layer.send(
            layer.build(local_issuer, required=False),
            "GET",
            "/private",
            [("Authorization", f"Bearer {token}")],
            b"",
        )
        for layer in LAYERS
    ]
    for answer in answers:
        assert answer.status == 503
        assert "www-authenticate" not in answer.headers
        assert int(answer.headers["retry-after"]) >= 1
    assert len({answer.body for answer in answers}) == 1


@pytest.mark.parametrize("layer", LAYERS, ids=lambda layer: layer.name)
def test_the_view_still_reads_a_form_body_after_the_check(
    local_issuer: LocalIssuer, layer: Layer
) -> None:
    """Checking a form body for a second token leaves the body readable for the view."""
    app = layer.build(local_issuer, required=False)
    answer = layer.send(app, "POST", "/form", form_headers(local_issuer), b"a=1&b=2")
    assert answer.status == 200


def test_every_layer_checks_step_up_on_the_validators_clock(
    local_issuer_factory: Callable[..., LocalIssuer],
) -> None:
    """A fake clock years away from now holds for max_age too: no layer reads the wall."""
    frozen = 1_500_000_000.0
    issuer = local_issuer_factory(clock=lambda: frozen)
    fresh = signed_in(5, acr=MULTI_FACTOR)(issuer)
    stale = signed_in(MAX_AGE + 1, acr=MULTI_FACTOR)(issuer)
    for layer in LAYERS:
        app = layer.build(issuer, required=False)
        assert layer.send(app, "GET", "/step-up", fresh, b"").status == 200, layer.name
        assert layer.send(app, "GET", "/step-up", stale, b"").status == 401, layer.name
