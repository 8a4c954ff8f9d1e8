"""BearerAuthMiddleware: RFC 6750 answers, scope auth/user, websockets, exclusions, lifespan."""

from __future__ import annotations

import base64
import json
import logging
from collections.abc import Callable
from typing import Any

import anyio
import httpx
import pytest
from asgi_support import TestClient, bearer
from starlette.applications import Starlette
from starlette.authentication import requires
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse
from starlette.routing import Route
from starlette.types import Message, Receive, Scope, Send
from starlette.websockets import WebSocketDisconnect

from apiguard import AsyncValidator, ConfigurationError
from apiguard.asgi import BearerAuthMiddleware, TokenCredentials, TokenUser
from apiguard.testing import REMOVE, LocalIssuer

Headers = Callable[[LocalIssuer], list[tuple[str, str]]]


def _tampered(issuer: LocalIssuer) -> str:
    """A token whose payload was swapped after signing (a forgery)."""
    header, _, signature = issuer.token(scope="read:a").split(".")
    claims = issuer.claims(scope="read:a admin")
    payload = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode()
    return f"{header}.{payload}.{signature}"


def _unsigned(issuer: LocalIssuer) -> str:
    """A token with ``alg: none`` and no signature."""
    segments = [{"alg": "none", "typ": "JWT"}, issuer.claims()]
    encoded = [base64.urlsafe_b64encode(json.dumps(s).encode()).rstrip(b"=") for s in segments]
    return b".".join(encoded).decode() + "."


def _auth(value: str) -> list[tuple[str, str]]:
    return [("Authorization", value)]


REFUSALS = [
    pytest.param(lambda i: _auth("Bearer"), 400, "invalid_request", id="empty-bearer"),
    pytest.param(lambda i: _auth("Bearer a,b"), 400, "invalid_request", id="comma-in-token"),
    pytest.param(lambda i: _auth('Bearer "abc"'), 400, "invalid_request", id="quoted-token"),
    pytest.param(lambda i: _auth("Bearer abc def"), 400, "invalid_request", id="two-tokens"),
    pytest.param(
        lambda i: [*_auth(f"Bearer {i.token()}"), *_auth(f"Bearer {i.token()}")],
        400,
        "invalid_request",
        id="repeated-header",
    ),
    pytest.param(lambda i: _auth("Bearer abc.def.ghi"), 401, "invalid_token", id="malformed"),
    pytest.param(
        lambda i: _auth(f"Bearer {i.token(expires_in=-3600)}"), 401, "invalid_token", id="expired"
    ),
    pytest.param(
        lambda i: _auth(f"Bearer {i.token(aud='https://other.test')}"),
        401,
        "invalid_token",
        id="wrong-audience",
    ),
    pytest.param(
        lambda i: _auth(f"Bearer {i.token(iss='https://evil.test/')}"),
        401,
        "invalid_token",
        id="wrong-issuer",
    ),
    pytest.param(lambda i: _auth(f"Bearer {_tampered(i)}"), 401, "invalid_token", id="forged"),
    pytest.param(lambda i: _auth(f"Bearer {_unsigned(i)}"), 401, "invalid_token", id="alg-none"),
    pytest.param(
        lambda i: _auth(f"Bearer {i.token(header={'kid': 'nope'})}"),
        401,
        "invalid_token",
        id="unknown-kid",
    ),
]


@pytest.mark.parametrize(("headers", "status", "error"), REFUSALS)
def test_bad_credentials_get_their_rfc6750_answer(
    client: TestClient, local_issuer: LocalIssuer, headers: Headers, status: int, error: str
) -> None:
    """A bad Authorization header is answered by the middleware with status, challenge, body."""
    response = client.get("/whoami", headers=headers(local_issuer))
    assert response.status_code == status
    challenge = response.headers["www-authenticate"]
    assert challenge.startswith(f'Bearer realm="api", error="{error}", error_description="')
    assert response.headers["content-type"] == "application/json"
    assert response.headers["cache-control"] == "no-store"
    body = response.json()
    assert body["error"] == error
    assert f'error_description="{body["error_description"]}"' in challenge


@pytest.mark.parametrize(
    "name", [pytest.param("access_token", id="plain"), pytest.param("access%5Ftoken", id="escaped")]
)
def test_header_and_query_token_together_are_refused(
    client: TestClient, local_issuer: LocalIssuer, name: str
) -> None:
    """A token sent both in the header and as ``access_token`` in the query gets 400."""
    token = local_issuer.token()
    response = client.get(f"/whoami?x=1&{name}={token}", headers=bearer(token))
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_request"


@pytest.mark.parametrize(
    "header",
    [
        pytest.param("Bearer {}", id="canonical"),
        pytest.param("bearer {}", id="lower-case-scheme"),
        pytest.param("BEARER  {}", id="upper-case-two-spaces"),
    ],
)
def test_valid_token_fills_auth_and_user(
    client: TestClient, local_issuer: LocalIssuer, header: str
) -> None:
    """A valid token sets scope auth (scopes, token) and an authenticated user."""
    token = local_issuer.token(scope="read:a write:a", sub="auth0|ada")
    response = client.get("/whoami", headers={"Authorization": header.format(token)})
    assert response.status_code == 200
    assert response.json() == {
        "authenticated": True,
        "identity": "auth0|ada",
        "scopes": ["read:a", "write:a"],
        "subject": "auth0|ada",
    }


@pytest.mark.parametrize(
    ("headers", "query"),
    [
        pytest.param({}, "", id="no-header"),
        pytest.param({"Authorization": "Basic dXNlcjpwYXNz"}, "", id="basic-scheme"),
        pytest.param({"Authorization": "DPoP abc.def.ghi"}, "", id="dpop-scheme"),
        pytest.param({}, "?access_token={token}", id="query-token-not-read"),
    ],
)
def test_requests_without_bearer_token_are_anonymous(
    client: TestClient, local_issuer: LocalIssuer, headers: dict[str, str], query: str
) -> None:
    """Without a bearer token in the header the request goes on as Starlette's anonymous."""
    url = "/whoami" + query.format(token=local_issuer.token())
    response = client.get(url, headers=headers)
    assert response.status_code == 200
    assert response.json() == {
        "authenticated": False,
        "identity": "",
        "scopes": [],
        "subject": None,
    }


@pytest.mark.parametrize(
    "headers",
    [
        pytest.param({}, id="no-header"),
        pytest.param({"Authorization": "Basic dXNlcjpwYXNz"}, id="basic-scheme"),
    ],
)
def test_required_mode_answers_401_bare_challenge(
    make_app: Callable[..., Starlette], headers: dict[str, str]
) -> None:
    """With ``required`` a request without a bearer token gets 401 and no error code."""
    with TestClient(make_app(required=True, realm="organizer")) as client:
        response = client.get("/whoami", headers=headers)
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == 'Bearer realm="organizer"'
    assert response.json() == {"error_description": "Authentication required"}


def test_realm_defaults_to_the_audience(
    make_app: Callable[..., Starlette], local_issuer: LocalIssuer
) -> None:
    """Without a realm setting the challenge names the one audience, as apiguard.flask does."""
    with TestClient(make_app(required=True)) as client:
        missing = client.get("/whoami")
    assert missing.headers["www-authenticate"] == f'Bearer realm="{local_issuer.audience}"'


def test_challenge_has_no_realm_when_set_to_none(
    make_app: Callable[..., Starlette], local_issuer: LocalIssuer
) -> None:
    """With ``realm=None`` the challenge starts with the error code."""
    with TestClient(make_app(required=True, realm=None)) as client:
        missing = client.get("/whoami")
        expired = client.get("/whoami", headers=bearer(local_issuer.token(expires_in=-60)))
    assert missing.headers["www-authenticate"] == "Bearer"
    assert expired.headers["www-authenticate"] == (
        'Bearer error="invalid_token", error_description="The access token expired"'
    )


def test_key_set_unavailable_is_503_with_retry_after(
    client: TestClient, local_issuer: LocalIssuer
) -> None:
    """When the JWKS cannot be fetched and nothing is cached, the answer is 503, no challenge."""
    local_issuer.jwks_override = httpx.Response(500)
    response = client.get("/whoami", headers=bearer(local_issuer.token()))
    assert response.status_code == 503
    assert "www-authenticate" not in response.headers
    assert int(response.headers["retry-after"]) >= 1
    assert response.json()["error"] == "temporarily_unavailable"


def test_machine_token_user_falls_back_to_client_id(
    client: TestClient, local_issuer: LocalIssuer
) -> None:
    """A token without ``sub`` is identified by its client id."""
    response = client.get("/whoami", headers=bearer(local_issuer.token(sub=REMOVE)))
    assert response.status_code == 200
    assert response.json()["identity"] == "test-client"


def test_rejected_token_never_reaches_the_log(
    client: TestClient, local_issuer: LocalIssuer, caplog: pytest.LogCaptureFixture
) -> None:
    """Refusing a token logs its reason at debug level but never the token itself."""
    token = local_issuer.token(expires_in=-3600)
    with caplog.at_level(logging.DEBUG):
        response = client.get("/whoami", headers=bearer(token))
    assert response.status_code == 401
    assert caplog.records
    assert all(token not in record.getMessage() for record in caplog.records)
    assert token not in response.text


# -- exclusions -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "status"),
    [
        pytest.param("/health", 200, id="exact-path"),
        pytest.param("/health/", 401, id="exact-path-is-exact"),
        pytest.param("/static/app.js", 200, id="prefix"),
        pytest.param("/whoami", 401, id="not-excluded"),
    ],
)
def test_excluded_paths_need_no_token(
    make_app: Callable[..., Starlette], path: str, status: int
) -> None:
    """Excluded paths pass without a token in required mode; the others do not."""
    app = make_app(required=True, exclude_paths=("/health", "/static/*"))
    with TestClient(app) as client:
        response = client.get(path)
    assert response.status_code == status


def test_excluded_paths_ignore_even_a_bad_token(make_app: Callable[..., Starlette]) -> None:
    """An excluded path is not inspected: a garbage token there leaves the request anonymous."""
    with TestClient(make_app(exclude_paths=["/health"])) as client:
        response = client.get("/health", headers=bearer("garbage"))
    assert response.status_code == 200
    assert response.json()["authenticated"] is False


def test_exclude_predicate_sees_the_scope(make_app: Callable[..., Starlette]) -> None:
    """A predicate on the scope excludes what it returns True for."""
    app = make_app(required=True, exclude=lambda scope: scope["path"] == "/health")
    with TestClient(app) as client:
        assert client.get("/health").status_code == 200
        assert client.get("/whoami").status_code == 401


@pytest.mark.parametrize(
    "options",
    [
        pytest.param({}, id="neither-validator-nor-settings"),
        pytest.param({"issuer": "https://issuer.test/"}, id="issuer-without-audience"),
        pytest.param({"validator": object()}, id="not-an-async-validator"),
        pytest.param({"validator": "own", "issuer": "https://x.test/"}, id="validator-and-issuer"),
        pytest.param({"validator": "own", "leeway": 10}, id="validator-and-options"),
        pytest.param({"validator": "own", "realm": 'a"b'}, id="unquotable-realm"),
        pytest.param({"validator": "own", "exclude_paths": "/health"}, id="paths-as-string"),
        pytest.param({"validator": "own", "exclude_paths": ["health"]}, id="relative-path"),
        pytest.param(
            {"issuer": "http://issuer.test/", "audience": "https://api.test"}, id="http-issuer"
        ),
    ],
)
def test_bad_configuration_is_refused_at_construction(
    local_issuer: LocalIssuer, options: dict[str, Any]
) -> None:
    """Wrong or contradictory settings raise ConfigurationError when the middleware is built."""
    if options.get("validator") == "own":
        options["validator"] = local_issuer.async_validator()
    with pytest.raises(ConfigurationError):
        BearerAuthMiddleware(PlainTextResponse("ok"), **options)


# -- websockets -------------------------------------------------------------------------------


def test_websocket_with_valid_token_is_accepted(
    client: TestClient, local_issuer: LocalIssuer
) -> None:
    """A websocket with a valid token is accepted and sees the token's user."""
    headers = bearer(local_issuer.token(sub="auth0|ws"))
    with client.websocket_connect("/ws", headers=headers) as ws:
        assert ws.receive_json() == {"identity": "auth0|ws"}


def test_websocket_without_token_is_anonymous(client: TestClient) -> None:
    """A websocket without a token is accepted as anonymous when tokens are optional."""
    with client.websocket_connect("/ws") as ws:
        assert ws.receive_json() == {"identity": ""}


@pytest.mark.parametrize(
    ("options", "headers", "code", "reason"),
    [
        pytest.param(
            {}, lambda i: bearer(i.token(expires_in=-60)), 1008, "invalid_token", id="expired"
        ),
        pytest.param({}, lambda i: bearer("a b"), 1008, "invalid_request", id="malformed-header"),
        pytest.param({"required": True}, lambda i: {}, 1008, "unauthorized", id="required-missing"),
        pytest.param({}, "outage", 1013, "temporarily_unavailable", id="keys-unavailable"),
    ],
)
def test_websocket_refused_before_accept(
    make_app: Callable[..., Starlette],
    local_issuer: LocalIssuer,
    options: dict[str, Any],
    headers: Any,
    code: int,
    reason: str,
) -> None:
    """A refused websocket is closed before the handshake completes, with a close code."""
    if headers == "outage":
        local_issuer.jwks_override = httpx.Response(500)
        headers = lambda i: bearer(i.token())  # noqa: E731
    with (
        TestClient(make_app(**options)) as client,
        pytest.raises(WebSocketDisconnect) as info,
        client.websocket_connect("/ws", headers=headers(local_issuer)),
    ):
        pass  # pragma: no cover - the handshake fails
    assert (info.value.code, info.value.reason) == (code, reason)


# -- Starlette compatibility ------------------------------------------------------------------


@requires("read:a")
async def starlette_guarded(request: Request) -> JSONResponse:
    """Guarded by Starlette's own decorator."""
    return JSONResponse({"user": request.user.display_name})


@pytest.mark.parametrize(
    ("scope", "status"),
    [
        pytest.param("read:a", 200, id="has-scope"),
        pytest.param("read:b", 403, id="lacks-scope"),
        pytest.param(None, 403, id="anonymous"),
    ],
)
def test_starlette_requires_reads_the_token_scopes(
    make_app: Callable[..., Starlette], local_issuer: LocalIssuer, scope: str | None, status: int
) -> None:
    """Starlette's ``@requires`` works on the credentials the middleware set."""
    app = make_app([Route("/starlette", starlette_guarded)])
    headers = bearer(local_issuer.token(scope=scope)) if scope else {}
    with TestClient(app) as client:
        response = client.get("/starlette", headers=headers)
    assert response.status_code == status


# -- lifespan and other scopes ----------------------------------------------------------------


def _spy_aclose(validator: AsyncValidator) -> list[str]:
    calls: list[str] = []
    original = validator.aclose

    async def aclose() -> None:
        calls.append("aclose")
        await original()

    validator.aclose = aclose  # type: ignore[method-assign]
    return calls


def test_owned_validator_closed_at_lifespan_shutdown(local_issuer: LocalIssuer) -> None:
    """A validator the middleware built is closed when the app shuts down, not before."""
    states: list[str] = []

    async def lifespan_app(scope: Scope, receive: Receive, send: Send) -> None:
        assert scope["type"] == "lifespan"
        while True:
            message = await receive()
            states.append(message["type"])
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            else:
                await send({"type": "lifespan.shutdown.complete"})
                return

    middleware = BearerAuthMiddleware(
        lifespan_app, issuer=local_issuer.issuer, audience=local_issuer.audience
    )
    calls = _spy_aclose(middleware.validator)
    with TestClient(middleware):
        assert calls == []
    assert states == ["lifespan.startup", "lifespan.shutdown"]
    assert calls == ["aclose"]


@pytest.mark.anyio
async def test_app_without_lifespan_keeps_the_validator_open(local_issuer: LocalIssuer) -> None:
    """An app that refuses the lifespan scope does not get its validator closed at startup."""

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        raise RuntimeError("no lifespan here")

    middleware = BearerAuthMiddleware(
        app, issuer=local_issuer.issuer, audience=local_issuer.audience
    )
    calls = _spy_aclose(middleware.validator)

    async def receive() -> Message:
        return {"type": "lifespan.startup"}

    async def send(message: Message) -> None:  # pragma: no cover - never called
        raise AssertionError(message)

    with pytest.raises(RuntimeError, match="no lifespan"):
        await middleware({"type": "lifespan"}, receive, send)
    assert calls == []
    await middleware.validator.aclose()


def test_given_validator_is_left_open(
    make_app: Callable[..., Starlette], local_issuer: LocalIssuer
) -> None:
    """A validator passed in belongs to the caller: the middleware does not close it."""
    validator = local_issuer.async_validator()
    calls = _spy_aclose(validator)
    with TestClient(make_app(validator=validator)) as client:
        assert client.get("/whoami", headers=bearer(local_issuer.token())).status_code == 200
    assert calls == []


@pytest.mark.anyio
async def test_other_scope_types_pass_through_untouched(local_issuer: LocalIssuer) -> None:
    """Scopes other than http and websocket reach the app unchanged."""
    seen: list[Scope] = []

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        seen.append(dict(scope))

    middleware = BearerAuthMiddleware(app, validator=local_issuer.async_validator(), realm="x")
    scope: Scope = {"type": "custom", "headers": [(b"authorization", b"Bearer bad token")]}

    async def receive() -> Message:  # pragma: no cover - never called
        return {}

    async def send(message: Message) -> None:  # pragma: no cover - never called
        raise AssertionError(message)

    await middleware(scope, receive, send)
    assert seen == [{"type": "custom", "headers": [(b"authorization", b"Bearer bad token")]}]


# -- concurrency ------------------------------------------------------------------------------


@pytest.mark.anyio
async def test_concurrent_requests_on_cold_cache_fetch_keys_once(
    make_app: Callable[..., Starlette], local_issuer: LocalIssuer
) -> None:
    """Fifty concurrent requests with a cold key cache cause one discovery and one JWKS fetch."""
    app = make_app()
    tokens = [local_issuer.token(sub=f"user-{n}") for n in range(50)]
    statuses: dict[str, int] = {}
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://api.test") as client:

        async def call(token: str) -> None:
            response = await client.get("/whoami", headers=bearer(token))
            statuses[response.json()["identity"]] = response.status_code

        async with anyio.create_task_group() as group:
            for token in tokens:
                group.start_soon(call, token)
    assert statuses == {f"user-{n}": 200 for n in range(50)}
    assert local_issuer.requests == {
        "/.well-known/openid-configuration": 1,
        "/.well-known/jwks.json": 1,
    }


def test_token_credentials_and_user_expose_the_token(local_issuer: LocalIssuer) -> None:
    """TokenCredentials keeps sorted scopes and the token; TokenUser is authenticated."""
    token = local_issuer.validator().validate(local_issuer.token(scope="b a", sub="s"))
    credentials, user = TokenCredentials(token), TokenUser(token)
    assert (credentials.scopes, credentials.token) == (["a", "b"], token)
    assert (user.is_authenticated, user.identity, user.display_name) == (True, "s", "s")
    assert repr(user) == "TokenUser(identity='s')"


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("value", "status"),
    [
        pytest.param(b"Bearer \x00abc", 400, id="nul-byte"),
        pytest.param(b"Bearer \xe9t\xe9.a.b", 400, id="latin-1-bytes"),
        pytest.param(b"Bearer " + b"a" * 20000, 401, id="oversized"),
        pytest.param(b"Bearer " + b"." * 50, 401, id="only-dots"),
        pytest.param(b"Bearer e30.e30.", 401, id="empty-json-objects"),
        pytest.param(b"Bearer\ttoken", 401, id="tab-after-scheme-is-another-scheme"),
        pytest.param(b"Bearer a.b.c.d.e", 401, id="five-segments"),
    ],
)
async def test_hostile_headers_never_reach_500(
    local_issuer: LocalIssuer, value: bytes, status: int
) -> None:
    """Hostile header bytes get a 400/401 answer from the middleware, never an exception."""
    reached: list[str] = []

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        reached.append(scope["type"])
        await PlainTextResponse("reached")(scope, receive, send)

    middleware = BearerAuthMiddleware(app, validator=local_issuer.async_validator(), required=True)
    sent: list[Message] = []

    async def receive() -> Message:  # pragma: no cover - the body is never read
        return {"type": "http.request", "body": b""}

    async def send(message: Message) -> None:
        sent.append(message)

    scope: Scope = {
        "type": "http",
        "method": "GET",
        "path": "/",
        "query_string": b"",
        "headers": [(b"authorization", value)],
    }
    await middleware(scope, receive, send)
    assert reached == []
    assert sent[0]["status"] == status
    assert json.loads(sent[1]["body"])["error_description"]
