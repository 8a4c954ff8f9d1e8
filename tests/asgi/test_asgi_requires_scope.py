"""requires_scope: 401/403 challenges on functions, sync endpoints, HTTPEndpoint, websockets."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
from asgi_support import TestClient, bearer
from starlette.applications import Starlette
from starlette.endpoints import HTTPEndpoint
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse
from starlette.routing import Route, WebSocketRoute
from starlette.websockets import WebSocket, WebSocketDisconnect

from apiguard.asgi import get_token, requires_scope
from apiguard.testing import LocalIssuer


@requires_scope("read:a", "read:b")
async def needs_all(request: Request) -> JSONResponse:
    """Needs both scopes."""
    token = get_token(request)
    assert token is not None
    return JSONResponse({"subject": token.subject})


@requires_scope("read:a", "read:b", match="any")
async def needs_any(request: Request) -> PlainTextResponse:
    """Needs one of the scopes."""
    return PlainTextResponse("any")


@requires_scope()
def needs_token_sync(request: Request) -> PlainTextResponse:
    """A sync endpoint that needs any valid token."""
    return PlainTextResponse("sync")


class Notes(HTTPEndpoint):
    """A class-based endpoint with one guard per method."""

    @requires_scope("read:notes")
    async def get(self, request: Request) -> PlainTextResponse:
        """Read notes."""
        return PlainTextResponse("notes")

    @requires_scope("write:notes")
    def post(self, request: Request) -> PlainTextResponse:
        """Write a note (sync method)."""
        return PlainTextResponse("written", status_code=201)


@requires_scope("chat")
async def chat(websocket: WebSocket) -> None:
    """A websocket that needs the chat scope."""
    await websocket.accept()
    await websocket.send_text("hello")
    await websocket.close()


ROUTES = [
    Route("/all", needs_all),
    Route("/any", needs_any),
    Route("/sync", needs_token_sync),
    Route("/notes", Notes, methods=["GET", "POST"]),
    WebSocketRoute("/chat", chat),
]


@pytest.fixture
def guarded(make_app: Callable[..., Starlette]) -> Iterator[TestClient]:
    """A test client for the guarded routes behind the middleware, realm "api"."""
    with TestClient(make_app(ROUTES, realm="api")) as client:
        yield client


@pytest.mark.parametrize(
    ("method", "path", "scope", "status"),
    [
        pytest.param("GET", "/all", "read:a read:b", 200, id="all-granted"),
        pytest.param("GET", "/all", "read:a", 403, id="all-one-missing"),
        pytest.param("GET", "/all", "read:a read:bb", 403, id="all-no-prefix-tricks"),
        pytest.param("GET", "/any", "read:b", 200, id="any-one-granted"),
        pytest.param("GET", "/any", "Read:a", 403, id="any-case-matters"),
        pytest.param("GET", "/sync", "", 200, id="sync-any-token"),
        pytest.param("GET", "/notes", "read:notes", 200, id="endpoint-get-granted"),
        pytest.param("GET", "/notes", "write:notes", 403, id="endpoint-get-missing"),
        pytest.param("POST", "/notes", "write:notes", 201, id="endpoint-sync-post-granted"),
        pytest.param("POST", "/notes", "read:notes", 403, id="endpoint-sync-post-missing"),
    ],
)
def test_scopes_decide_between_answer_and_403(
    guarded: TestClient, local_issuer: LocalIssuer, method: str, path: str, scope: str, status: int
) -> None:
    """The endpoint runs when the token grants the scopes, else 403 insufficient_scope."""
    response = guarded.request(method, path, headers=bearer(local_issuer.token(scope=scope)))
    assert response.status_code == status


@pytest.mark.parametrize(
    ("path", "match_scope"),
    [
        pytest.param("/all", "read:a read:b", id="all"),
        pytest.param("/notes", "read:notes", id="endpoint"),
    ],
)
def test_403_names_the_required_scopes(
    guarded: TestClient, local_issuer: LocalIssuer, path: str, match_scope: str
) -> None:
    """A 403 carries the insufficient_scope challenge with the scopes and the same JSON."""
    response = guarded.get(path, headers=bearer(local_issuer.token(scope="other")))
    assert response.status_code == 403
    assert response.headers["www-authenticate"] == (
        'Bearer realm="api", error="insufficient_scope", '
        f'error_description="The access token lacks a required scope", scope="{match_scope}"'
    )
    assert response.json() == {
        "error": "insufficient_scope",
        "error_description": "The access token lacks a required scope",
        "scope": match_scope,
    }


@pytest.mark.parametrize("path", ["/all", "/sync", "/notes"])
def test_anonymous_request_gets_401_bare_challenge(guarded: TestClient, path: str) -> None:
    """Without a token a guarded endpoint answers 401 with a bare challenge and the realm."""
    response = guarded.get(path)
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == 'Bearer realm="api"'
    assert response.json() == {"error_description": "Authentication required"}


def test_without_middleware_the_guard_answers_401() -> None:
    """With no middleware in front the guard still answers 401, never 500."""
    with TestClient(Starlette(routes=ROUTES)) as client:
        response = client.get("/all", headers=bearer("unchecked.token.value"))
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == "Bearer"


@pytest.mark.parametrize(
    ("scope", "accepted"),
    [
        pytest.param("chat", True, id="granted"),
        pytest.param("other", False, id="missing"),
        pytest.param(None, False, id="anonymous"),
    ],
)
def test_websocket_guard_closes_with_1008(
    guarded: TestClient, local_issuer: LocalIssuer, scope: str | None, accepted: bool
) -> None:
    """A guarded websocket without the scope is closed with 1008 before the handshake."""
    headers = bearer(local_issuer.token(scope=scope)) if scope else {}
    if accepted:
        with guarded.websocket_connect("/chat", headers=headers) as ws:
            assert ws.receive_text() == "hello"
        return
    with (
        pytest.raises(WebSocketDisconnect) as info,
        guarded.websocket_connect("/chat", headers=headers),
    ):
        pass  # pragma: no cover - the handshake fails
    assert info.value.code == 1008


@pytest.mark.parametrize(
    ("scopes", "match"),
    [
        pytest.param(("a",), "some", id="unknown-match"),
        pytest.param(("a b",), "all", id="scope-with-space"),
        pytest.param(("",), "all", id="empty-scope"),
        pytest.param(('a"b',), "all", id="unquotable-scope"),
    ],
)
def test_bad_decorator_arguments_fail_at_import(scopes: tuple[str, ...], match: str) -> None:
    """Wrong ``match`` values and unusable scope names raise ValueError when decorating."""
    with pytest.raises(ValueError):  # noqa: PT011 - the message varies by argument
        requires_scope(*scopes, match=match)


def test_guard_needs_a_connection_argument() -> None:
    """A decorated function called without a Request or WebSocket raises TypeError."""

    @requires_scope("a")
    def not_an_endpoint(value: int) -> int:
        return value  # pragma: no cover - never reached

    with pytest.raises(TypeError):
        not_an_endpoint(1)
