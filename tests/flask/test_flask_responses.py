"""What a protected Flask view answers, exactly as RFC 6750 and DESIGN §3 say."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from flask import Flask, request
from werkzeug.datastructures import Headers

from apiguard import (
    AlgorithmNotAllowed,
    InsufficientScope,
    InvalidClaim,
    InvalidRequest,
    InvalidSignature,
    KeySetUnavailable,
    MalformedToken,
    MissingToken,
    TokenExpired,
    UnknownSigningKey,
    WrongAudience,
    WrongIssuer,
)
from apiguard.flask import requires_auth
from apiguard.testing import REMOVE, LocalIssuer

REALM = 'Bearer realm="https://api.test"'


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def forge(token: str) -> str:
    """The same token with its claims changed after signing (scopes elevated)."""
    header, payload, signature = token.split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    claims["scope"] = "read:appointments create:appointments"
    forged = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode()
    return f"{header}.{forged}.{signature}"


def unsigned(issuer: LocalIssuer) -> str:
    """An ``alg: none`` token with the claims of a valid one."""
    header = base64.urlsafe_b64encode(b'{"alg":"none","typ":"JWT"}').rstrip(b"=").decode()
    payload = issuer.token().split(".")[1]
    return f"{header}.{payload}."


def test_no_token_gets_a_bare_challenge(app: Flask) -> None:
    """A request without an Authorization header gets 401 with a bare challenge, no error code."""
    response = app.test_client().get("/private")
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"] == 'Bearer realm="https://api.test"'
    assert response.headers["Cache-Control"] == "no-store"
    assert response.mimetype == "application/json"
    assert response.get_json() == {"error_description": "Authentication required"}


@pytest.mark.parametrize(
    "authorization",
    [
        pytest.param("Basic dXNlcjpwYXNz", id="basic"),
        pytest.param("Digest username=x", id="digest"),
        pytest.param("DPoP abc.def.ghi", id="dpop"),
    ],
)
def test_another_scheme_counts_as_no_token(app: Flask, authorization: str) -> None:
    """Credentials of another scheme get the same bare 401 challenge as none at all."""
    response = app.test_client().get("/private", headers={"Authorization": authorization})
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"] == REALM
    assert response.get_json() == {"error_description": MissingToken.description}


def test_other_query_parameters_are_fine(app: Flask, local_issuer: LocalIssuer) -> None:
    """A query that names no access_token (even with escapes) leaves a valid token alone."""
    headers = {"Authorization": f"Bearer {local_issuer.token()}"}
    client = app.test_client()
    assert client.get("/private?q=access%20denied&token=1", headers=headers).status_code == 200


def test_token_only_in_query_is_not_read(app: Flask, local_issuer: LocalIssuer) -> None:
    """A token sent only as ?access_token= is ignored: the request is unauthenticated."""
    query = {"access_token": local_issuer.token()}
    response = app.test_client().get("/private", query_string=query)
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"] == REALM


@pytest.mark.parametrize(
    ("headers", "extra"),
    [
        pytest.param([("Authorization", "Bearer")], {}, id="empty"),
        pytest.param([("Authorization", "Bearer   ")], {}, id="blank"),
        pytest.param([("Authorization", "Bearer a b")], {}, id="two-words"),
        pytest.param([("Authorization", 'Bearer "abc"')], {}, id="quoted"),
        pytest.param([("Authorization", "Bearer a,b")], {}, id="comma"),
        pytest.param(
            [("Authorization", "Bearer {token}"), ("Authorization", "Bearer {token}")],
            {},
            id="header-twice",
        ),
        pytest.param(
            [("Authorization", "Bearer {token}")],
            {"query_string": {"access_token": "{token}"}},
            id="header-and-query",
        ),
        pytest.param(
            [("Authorization", "Bearer {token}")],
            {"query_string": "page=2&acce%73s%5Ftoken={token}"},
            id="header-and-percent-escaped-query",
        ),
        pytest.param(
            [("Authorization", "Bearer {token}")],
            {"data": {"access_token": "{token}"}},
            id="header-and-form-body",
        ),
    ],
)
def test_malformed_requests_get_invalid_request(
    app: Flask, local_issuer: LocalIssuer, headers: list[tuple[str, str]], extra: dict[str, Any]
) -> None:
    """An ill-formed, repeated or doubly-sent bearer token gets 400 invalid_request."""
    token = local_issuer.token()
    filled = Headers([(name, value.format(token=token)) for name, value in headers])
    options = {
        name: fields.format(token=token)
        if isinstance(fields, str)
        else {key: value.format(token=token) for key, value in fields.items()}
        for name, fields in extra.items()
    }
    method = "POST" if "data" in options else "GET"
    response = app.test_client().open("/private", method=method, headers=filled, **options)
    assert response.status_code == 400
    assert response.headers["WWW-Authenticate"] == (
        f'{REALM}, error="invalid_request", error_description="{InvalidRequest.description}"'
    )
    assert response.get_json() == {
        "error": "invalid_request",
        "error_description": InvalidRequest.description,
    }


@pytest.mark.parametrize(
    "authorization",
    [
        pytest.param("bearer {token}", id="lower-case-scheme"),
        pytest.param("BEARER {token}", id="upper-case-scheme"),
        pytest.param("Bearer   {token}", id="several-spaces"),
    ],
)
def test_lenient_header_forms_are_accepted(
    app: Flask, local_issuer: LocalIssuer, authorization: str
) -> None:
    """The scheme name is case-insensitive and more than one space may follow it."""
    headers = {"Authorization": authorization.format(token=local_issuer.token())}
    response = app.test_client().get("/private", headers=headers)
    assert response.status_code == 200
    assert response.get_json()["subject"] == "auth0|user-1"


def test_form_body_stays_readable_after_the_check(app: Flask, local_issuer: LocalIssuer) -> None:
    """Looking for a second token in a form body leaves both form and raw body to the view."""

    @app.post("/echo")
    @requires_auth
    def echo() -> dict[str, Any]:
        return {"form": dict(request.form), "raw": request.get_data(as_text=True)}

    response = app.test_client().post(
        "/echo", headers=bearer(local_issuer.token()), data={"title": "Dentist"}
    )
    assert response.status_code == 200
    assert response.get_json() == {"form": {"title": "Dentist"}, "raw": "title=Dentist"}


@pytest.mark.parametrize(
    ("make_token", "description"),
    [
        pytest.param(lambda i: i.token(expires_in=-120), TokenExpired.description, id="expired"),
        pytest.param(
            lambda i: i.token(aud="https://other.test"), WrongAudience.description, id="audience"
        ),
        pytest.param(
            lambda i: i.token(iss="https://evil.test/"), WrongIssuer.description, id="issuer"
        ),
        pytest.param(lambda i: forge(i.token()), InvalidSignature.description, id="forged"),
        pytest.param(
            lambda i: i.token(header={"kid": "nobody"}),
            UnknownSigningKey.description,
            id="unknown-kid",
        ),
        pytest.param(unsigned, AlgorithmNotAllowed.description, id="alg-none"),
        pytest.param(lambda i: "abc.def.ghi", MalformedToken.description, id="malformed"),
        pytest.param(lambda i: i.token(exp=REMOVE), InvalidClaim.description, id="no-exp"),
    ],
)
def test_unacceptable_tokens_get_invalid_token(
    app: Flask,
    local_issuer: LocalIssuer,
    make_token: Callable[[LocalIssuer], str],
    description: str,
) -> None:
    """A token that fails validation gets 401 invalid_token with apiguard's fixed description."""
    response = app.test_client().get("/private", headers=bearer(make_token(local_issuer)))
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"] == (
        f'{REALM}, error="invalid_token", error_description="{description}"'
    )
    assert response.headers["Cache-Control"] == "no-store"
    assert response.get_json() == {"error": "invalid_token", "error_description": description}


def test_missing_scope_gets_insufficient_scope(app: Flask, local_issuer: LocalIssuer) -> None:
    """A valid token without the route's scope gets 403 naming the scope in challenge and body."""
    token = local_issuer.token(scope="read:contacts read:appointmentsX")
    response = app.test_client().get("/appointments", headers=bearer(token))
    assert response.status_code == 403
    assert response.headers["WWW-Authenticate"] == (
        f'{REALM}, error="insufficient_scope", '
        f'error_description="{InsufficientScope.description}", scope="read:appointments"'
    )
    assert response.get_json() == {
        "error": "insufficient_scope",
        "error_description": InsufficientScope.description,
        "scope": "read:appointments",
    }


def test_unreachable_keys_get_503_with_retry_after(app: Flask, local_issuer: LocalIssuer) -> None:
    """When the issuer's keys cannot be fetched the answer is 503 with Retry-After, no challenge."""
    local_issuer.jwks_override = httpx.Response(500)
    response = app.test_client().get("/private", headers=bearer(local_issuer.token()))
    assert response.status_code == 503
    assert "WWW-Authenticate" not in response.headers
    assert int(response.headers["Retry-After"]) >= 1
    assert response.get_json() == {
        "error": "temporarily_unavailable",
        "error_description": KeySetUnavailable.description,
    }


def test_valid_token_reaches_the_view(app: Flask, local_issuer: LocalIssuer) -> None:
    """A valid token with the scope reaches the view, which sees it as current_token."""
    token = local_issuer.token(scope="read:appointments", sub="auth0|demo")
    response = app.test_client().get("/appointments", headers=bearer(token))
    assert response.status_code == 200
    assert response.get_json() == {"subject": "auth0|demo"}
