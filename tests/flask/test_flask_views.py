"""The decorators, protect() and current_token in views, blueprints and async views."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any

import pytest
from flask import Blueprint, Flask, Response, jsonify

from apiguard import ConfigurationError, InvalidToken, Validator
from apiguard.errors import BearerError
from apiguard.flask import ApiGuard, current_token, protect, requires_auth, requires_scope
from apiguard.testing import LocalIssuer


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@pytest.mark.parametrize(
    ("path", "scope", "status"),
    [
        pytest.param("/all", "read:a read:b", 200, id="all-granted"),
        pytest.param("/all", "read:a", 403, id="all-one-missing"),
        pytest.param("/any", "read:b", 200, id="any-one-granted"),
        pytest.param("/any", "read:c", 403, id="any-none-granted"),
        pytest.param("/any", "read:A read:a:all", 403, id="any-case-and-prefix-tricks"),
    ],
)
def test_scope_matching(
    app: Flask, local_issuer: LocalIssuer, path: str, scope: str, status: int
) -> None:
    """requires_scope wants every scope by default and one of them with match="any"."""
    response = app.test_client().get(path, headers=bearer(local_issuer.token(scope=scope)))
    assert response.status_code == status
    if status == 403:
        assert response.get_json()["scope"] == "read:a read:b"
        assert response.headers["WWW-Authenticate"].endswith(', scope="read:a read:b"')


def test_current_token_carries_the_claims(app: Flask, local_issuer: LocalIssuer) -> None:
    """current_token is the validated AccessToken of the request, scopes from scope and scp."""
    token = local_issuer.token(
        scope="read:a", scp=["read:c"], permissions=["read:b"], sub="auth0|demo"
    )
    response = app.test_client().get("/private", headers=bearer(token))
    assert response.get_json() == {"subject": "auth0|demo", "scopes": ["read:a", "read:c"]}


@pytest.mark.parametrize(
    ("path", "scope", "status"),
    [
        pytest.param("/async", "read:tasks", 200, id="granted"),
        pytest.param("/async", "read:contacts", 403, id="scope-missing"),
        pytest.param("/async", None, 401, id="no-token"),
        pytest.param("/async-private", "", 200, id="requires-auth"),
    ],
)
def test_async_views(
    app: Flask, local_issuer: LocalIssuer, path: str, scope: str | None, status: int
) -> None:
    """An async def view is guarded like a sync one and sees current_token."""
    headers = bearer(local_issuer.token(scope=scope)) if scope is not None else {}
    response = app.test_client().get(path, headers=headers)
    assert response.status_code == status
    if status == 200:
        assert response.get_json()["subject"] == "auth0|user-1"


def test_blueprint_defined_before_the_app(app: Flask, local_issuer: LocalIssuer) -> None:
    """Decorators applied at import time, on a blueprint, work once an app registers it."""
    client = app.test_client()
    assert client.get("/early/tasks").status_code == 401
    granted = client.get("/early/tasks", headers=bearer(local_issuer.token(scope="read:tasks")))
    assert granted.status_code == 200
    assert granted.get_json() == {"subject": "auth0|user-1"}


def test_init_app_after_the_routes(local_issuer: LocalIssuer, validators: list[Validator]) -> None:
    """The application-factory order (routes first, init_app last) guards the routes."""
    validator = local_issuer.validator()
    validators.append(validator)
    guard = ApiGuard(validator=validator)
    app = Flask("factory")

    @app.get("/x")
    @requires_auth
    def x() -> str:
        return "ok"

    guard.init_app(app)
    assert app.test_client().get("/x").status_code == 401
    assert app.test_client().get("/x", headers=bearer(local_issuer.token())).status_code == 200


def test_decorated_view_without_apiguard_fails_loudly() -> None:
    """A guarded view on an app where ApiGuard was never set up raises instead of serving."""
    app = Flask("forgotten")
    app.testing = True

    @app.get("/x")
    @requires_auth
    def x() -> str:
        return "ok"

    with pytest.raises(RuntimeError, match="apiguard is not set up"):
        app.test_client().get("/x")


# -- optional authentication ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("authorization", "status", "subject"),
    [
        pytest.param(None, 200, None, id="no-token"),
        pytest.param("Basic dXNlcjpwYXNz", 200, None, id="other-scheme"),
        pytest.param("Bearer {valid}", 200, "auth0|user-1", id="valid-token"),
        pytest.param("Bearer {expired}", 401, None, id="expired-token"),
        pytest.param("Bearer a b", 400, None, id="malformed-header"),
    ],
)
def test_optional_mode(
    app: Flask, local_issuer: LocalIssuer, authorization: str | None, status: int, subject: str
) -> None:
    """requires_auth(optional=True) lets a missing token through but never a bad one."""
    headers = {}
    if authorization is not None:
        tokens = {"valid": local_issuer.token(), "expired": local_issuer.token(expires_in=-300)}
        headers["Authorization"] = authorization.format(**tokens)
    response = app.test_client().get("/maybe", headers=headers)
    assert response.status_code == status
    if status == 200:
        assert response.get_json() == {"subject": subject}


# -- current_token outside a protected view ---------------------------------------------


def test_current_token_outside_a_protected_view(app: Flask, local_issuer: LocalIssuer) -> None:
    """In an unprotected view current_token is falsy and using it explains why it is absent."""
    response = app.test_client().get("/public", headers=bearer(local_issuer.token()))
    assert response.get_json() == {"token": False}
    with app.test_request_context("/public"):
        assert not current_token
        with pytest.raises(RuntimeError, match="only available in a view protected by"):
            _ = current_token.subject


def test_current_token_outside_any_request() -> None:
    """Without an app context current_token is falsy and its attributes raise RuntimeError."""
    assert not current_token
    with pytest.raises(RuntimeError, match="only available in a view protected by"):
        _ = current_token.scopes


def test_current_token_in_optional_view_without_token(app: Flask) -> None:
    """An optional view that got no token says so when current_token is used anyway."""

    @app.get("/careless")
    @requires_auth(optional=True)
    def careless() -> str:
        return current_token.subject or ""

    app.testing = True
    with pytest.raises(RuntimeError, match="no access token was sent"):
        app.test_client().get("/careless")


# -- OPTIONS (CORS preflight) ----------------------------------------------------------------


@pytest.mark.parametrize(
    "headers",
    [
        pytest.param({}, id="plain-options"),
        pytest.param(
            {"Origin": "https://spa.example", "Access-Control-Request-Method": "GET"},
            id="preflight-shaped",
        ),
    ],
)
def test_view_that_declares_options_checks_options_too(app: Flask, headers: dict[str, str]) -> None:
    """A view that declares OPTIONS itself asks OPTIONS requests for a token, preflight or not."""
    response = app.test_client().options("/explicit-options", headers=headers)
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"].startswith("Bearer")


def test_automatic_options_answer_passes_protect(make_app: Callable[..., Flask]) -> None:
    """protect() lets through the OPTIONS answer Flask gives itself (no view runs); off, it asks."""
    app = make_app()
    protect(app)
    preflight = {"Origin": "https://spa.example", "Access-Control-Request-Method": "GET"}
    response = app.test_client().options("/appointments", headers=preflight)
    assert response.status_code == 200
    assert "GET" in response.headers["Allow"]
    assert app.test_client().options("/explicit-options").status_code == 401
    strict = make_app(config={"APIGUARD_EXEMPT_OPTIONS": "false"})
    protect(strict)
    assert strict.test_client().options("/appointments", headers=preflight).status_code == 401


# -- protect(): a whole blueprint at once -----------------------------------------------------


def organizer_blueprint(*scopes: str, **options: Any) -> Blueprint:
    blueprint = Blueprint("organizer", __name__, url_prefix="/org")

    @blueprint.get("/contacts")
    def contacts() -> dict[str, Any]:
        return {"subject": current_token.subject if current_token else None}

    @blueprint.post("/contacts")
    @requires_scope("create:contacts")
    def create_contact() -> dict[str, Any]:
        return {"created_by": current_token.subject}

    protect(blueprint, *scopes, **options)
    return blueprint


@pytest.mark.parametrize(
    ("method", "scope", "status"),
    [
        pytest.param("GET", None, 401, id="no-token"),
        pytest.param("GET", "read:tasks", 403, id="blueprint-scope-missing"),
        pytest.param("GET", "read:contacts", 200, id="blueprint-scope-granted"),
        pytest.param("POST", "read:contacts", 403, id="view-scope-missing"),
        pytest.param("POST", "read:contacts create:contacts", 200, id="both-scopes"),
        pytest.param("POST", "create:contacts", 403, id="only-view-scope"),
        pytest.param("OPTIONS", None, 200, id="preflight"),
    ],
)
def test_protected_blueprint(
    app: Flask, local_issuer: LocalIssuer, method: str, scope: str | None, status: int
) -> None:
    """protect(blueprint, scope) guards every route of it; view decorators add to that."""
    app.register_blueprint(organizer_blueprint("read:contacts"))
    headers = bearer(local_issuer.token(scope=scope)) if scope is not None else {}
    response = app.test_client().open("/org/contacts", method=method, headers=headers)
    assert response.status_code == status
    # Routes outside the blueprint are not affected.
    assert app.test_client().get("/public").status_code == 200


def test_protected_blueprint_validates_once(
    app: Flask, local_issuer: LocalIssuer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A request through protect() and a view decorator validates its token only once."""
    app.register_blueprint(organizer_blueprint())
    validator = app.extensions["apiguard"].validator
    calls: list[str] = []
    original = validator.validate_credentials

    def counting(credentials: Any) -> Any:
        calls.append(credentials.token)
        return original(credentials)

    # The request path's validation step (the token, and a DPoP proof when there is one).
    monkeypatch.setattr(validator, "validate_credentials", counting)
    token = local_issuer.token(scope="create:contacts")
    response = app.test_client().post("/org/contacts", headers=bearer(token))
    assert response.status_code == 200
    assert len(calls) == 1


def test_optional_blueprint(app: Flask, local_issuer: LocalIssuer) -> None:
    """protect(optional=True) lets anonymous requests in and still refuses bad tokens."""
    app.register_blueprint(organizer_blueprint(optional=True))
    client = app.test_client()
    assert client.get("/org/contacts").get_json() == {"subject": None}
    assert client.get("/org/contacts", headers=bearer("abc.def.ghi")).status_code == 401
    # The view's own requires_scope still wants a token.
    assert client.post("/org/contacts").status_code == 401


def test_protect_the_whole_app(local_issuer: LocalIssuer, validators: list[Validator]) -> None:
    """protect(app) guards every request of the app, unknown URLs included."""
    validator = local_issuer.validator()
    validators.append(validator)
    app = Flask("all-protected")

    @app.get("/anything")
    def anything() -> str:
        return current_token.subject or ""

    protect(app, "read:tasks")
    ApiGuard(app, validator=validator)
    client = app.test_client()
    assert client.get("/anything").status_code == 401
    assert client.get("/missing").status_code == 401
    token = local_issuer.token(scope="read:tasks")
    assert client.get("/anything", headers=bearer(token)).get_data(as_text=True) == "auth0|user-1"


@pytest.mark.parametrize(
    ("call", "message"),
    [
        pytest.param(lambda: requires_scope("read a"), "scope token", id="space-in-scope"),
        pytest.param(lambda: requires_scope('read"a'), "scope token", id="quote-in-scope"),
        pytest.param(lambda: requires_scope(""), "scope token", id="empty-scope"),
        pytest.param(lambda: requires_scope("a", match="some"), "match", id="bad-match"),
        pytest.param(
            lambda: protect(Blueprint("b", __name__), "a", optional=True),
            "optional",
            id="optional-with-scopes",
        ),
    ],
)
def test_wrong_decorator_arguments_fail_at_import(call: Callable[[], Any], message: str) -> None:
    """A wrong scope or match fails where the decorator is applied, not at request time."""
    with pytest.raises(ConfigurationError, match=message):
        call()


# -- error handlers ----------------------------------------------------------------------------


def test_error_handler_override(app: Flask, local_issuer: LocalIssuer) -> None:
    """An app's own handler for one error class replaces apiguard's answer for that class only."""

    def teapot(error: InvalidToken) -> tuple[Response, int]:
        return jsonify(reason=error.reason), 418

    app.register_error_handler(InvalidToken, teapot)
    client = app.test_client()
    expired = client.get("/private", headers=bearer(local_issuer.token(expires_in=-300)))
    assert expired.status_code == 418
    assert expired.get_json() == {"reason": "token_expired"}
    assert client.get("/private").status_code == 401


def test_handler_registered_before_init_app_is_kept(
    local_issuer: LocalIssuer, validators: list[Validator]
) -> None:
    """A handler for BearerError registered before ApiGuard(app) is not overwritten."""
    validator = local_issuer.validator()
    validators.append(validator)
    app = Flask("own-handler")

    @app.get("/x")
    @requires_auth
    def x() -> str:
        return "ok"

    app.register_error_handler(BearerError, lambda error: ("custom", error.status_code))
    ApiGuard(app, validator=validator)
    response = app.test_client().get("/x")
    assert (response.status_code, response.get_data(as_text=True)) == (401, "custom")


# -- logging and concurrency ------------------------------------------------------------------


def test_token_never_logged(
    app: Flask, local_issuer: LocalIssuer, caplog: pytest.LogCaptureFixture
) -> None:
    """Failures are logged with their reason at debug level, never with the token."""
    caplog.set_level(logging.DEBUG, logger="apiguard")
    tokens = [
        local_issuer.token(expires_in=-300),
        local_issuer.token(aud="https://other.test"),
        local_issuer.token(scope="read:tasks"),
    ]
    client = app.test_client()
    for token in tokens:
        client.get("/appointments", headers=bearer(token))
    client.get("/appointments", headers=[("Authorization", f"Bearer {tokens[0]} x")])
    messages = " ".join(record.getMessage() for record in caplog.records)
    for reason in ("token_expired", "wrong_audience", "insufficient_scope", "invalid_request"):
        assert reason in messages
    for token in tokens:
        signature = token.rsplit(".", 1)[1]
        assert signature not in caplog.text
        assert token.split(".")[1] not in caplog.text


def test_concurrent_requests_share_one_key_fetch(app: Flask, local_issuer: LocalIssuer) -> None:
    """Threads of one app share its validator: a burst of first requests fetches the JWKS once."""
    token = local_issuer.token(scope="read:appointments")
    barrier = threading.Barrier(8)
    statuses: list[int] = []

    def call() -> None:
        client = app.test_client()
        barrier.wait(timeout=10)
        statuses.append(client.get("/appointments", headers=bearer(token)).status_code)

    threads = [threading.Thread(target=call) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=10)
    assert statuses == [200] * 8
    assert local_issuer.requests["/.well-known/jwks.json"] == 1
    assert local_issuer.requests["/.well-known/openid-configuration"] == 1
