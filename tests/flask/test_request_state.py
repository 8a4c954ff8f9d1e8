"""Each Flask request reads and validates its own Authorization header (no state in flask.g).

Flask reuses a pushed application context (and its ``flask.g``) for the requests that come
while it is pushed, so anything cached there leaks from one request into the next. The
three ways that happens in practice are each tested here.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest
from flask import Flask

from apiguard.flask import current_token, requires_auth
from apiguard.testing import LocalIssuer


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


FORGED = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJhZG1pbiJ9.c2lnbmF0dXJl"


@pytest.mark.parametrize(
    "second", [pytest.param({}, id="no-token"), pytest.param(bearer(FORGED), id="forged-token")]
)
def test_pushed_app_context_does_not_carry_the_identity(
    app: Flask, local_issuer: LocalIssuer, second: dict[str, str]
) -> None:
    """Inside ``with app.app_context():`` (a test fixture), a later request is judged alone."""
    client = app.test_client()
    with app.app_context():
        assert client.get("/private", headers=bearer(local_issuer.token())).status_code == 200
        assert client.get("/private", headers=second).status_code == 401
        assert client.get("/maybe", headers={}).get_json() == {"subject": None}


def test_import_time_pushed_context_does_not_carry_the_identity(
    app: Flask, local_issuer: LocalIssuer
) -> None:
    """An app context pushed for good (``app.app_context().push()`` at import) leaks nothing."""
    context = app.app_context()
    context.push()
    try:
        client = app.test_client()
        token = local_issuer.token(sub="auth0|alice")
        assert client.get("/private", headers=bearer(token)).get_json()["subject"] == "auth0|alice"
        assert client.get("/private").status_code == 401
        other = local_issuer.token(sub="auth0|bob")
        assert client.get("/private", headers=bearer(other)).get_json()["subject"] == "auth0|bob"
    finally:
        context.pop()


def test_sub_request_inside_a_view_is_judged_on_its_own_header(
    make_app: Callable[..., Flask], local_issuer: LocalIssuer
) -> None:
    """A ``test_client()`` request made inside a protected view needs its own token."""
    app = make_app()

    @app.get("/outer")
    @requires_auth
    def outer() -> dict[str, object]:
        inner = app.test_client()
        anonymous = inner.get("/private").status_code
        forged = inner.get("/private", headers=bearer(FORGED)).status_code
        # The outer request's own token is still its own after the sub-requests.
        return {"anonymous": anonymous, "forged": forged, "outer": current_token.subject}

    answer = app.test_client().get("/outer", headers=bearer(local_issuer.token()))
    assert answer.get_json() == {"anonymous": 401, "forged": 401, "outer": "auth0|user-1"}
