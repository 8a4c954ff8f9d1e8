"""DPoP on websockets: the handshake (a GET) carries the proof, checked like any request."""

from __future__ import annotations

import pytest
from asgi_support import TestClient, ws_whoami
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.routing import WebSocketRoute
from starlette.websockets import WebSocketDisconnect

from apiguard.asgi import BearerAuthMiddleware
from apiguard.dpop import MemoryReplayStore
from apiguard.errors import ReplayStoreUnavailable
from apiguard.testing import DPoPKey, LocalIssuer

KEY = DPoPKey()


def _app(issuer: LocalIssuer, **options: object) -> Starlette:
    guard = Middleware(
        BearerAuthMiddleware,
        validator=issuer.async_validator(dpop="required", **options),
        required=True,
    )
    return Starlette(routes=[WebSocketRoute("/ws", ws_whoami)], middleware=[guard])


@pytest.mark.parametrize(
    "url",
    [
        pytest.param("ws://testserver/ws", id="ws-scheme"),
        pytest.param("http://testserver/ws", id="http-scheme"),
    ],
)
def test_a_websocket_with_a_proof_is_accepted(local_issuer: LocalIssuer, url: str) -> None:
    """htm is GET, and htu the handshake's URI (ws:// and http:// name the same one)."""
    token = local_issuer.token(dpop_key=KEY, sub="auth0|ws")
    headers = {"Authorization": f"DPoP {token}", "DPoP": KEY.proof("GET", url, access_token=token)}
    with (
        TestClient(_app(local_issuer)) as client,
        client.websocket_connect("/ws", headers=headers) as ws,
    ):
        assert ws.receive_json() == {"identity": "auth0|ws"}


@pytest.mark.parametrize(
    ("proof", "code", "reason"),
    [
        pytest.param(None, 1008, "invalid_dpop_proof", id="no-proof"),
        pytest.param("wrong-method", 1008, "invalid_dpop_proof", id="proof-for-post"),
        pytest.param("thief", 1008, "invalid_token", id="another-key"),
        pytest.param("store-down", 1013, "temporarily_unavailable", id="replay-store-down"),
    ],
)
def test_a_websocket_with_a_bad_proof_is_closed_before_accept(
    local_issuer: LocalIssuer, proof: str | None, code: int, reason: str
) -> None:
    """A refused handshake is closed with 1008 (1013 when the replay store is down)."""
    token = local_issuer.token(dpop_key=KEY)
    url = "ws://testserver/ws"
    headers = {"Authorization": f"DPoP {token}"}
    options: dict[str, object] = {}
    if proof == "wrong-method":
        headers["DPoP"] = KEY.proof("POST", url, access_token=token)
    elif proof == "thief":
        headers["DPoP"] = DPoPKey().proof("GET", url, access_token=token)
    elif proof == "store-down":
        headers["DPoP"] = KEY.proof("GET", url, access_token=token)

        class Down(MemoryReplayStore):
            def add(self, key: str, ttl: float) -> bool:
                raise ReplayStoreUnavailable("down")

        options["replay_store"] = Down()
    with (
        TestClient(_app(local_issuer, **options)) as client,
        pytest.raises(WebSocketDisconnect) as info,
        client.websocket_connect("/ws", headers=headers),
    ):
        pass
    assert (info.value.code, info.value.reason) == (code, reason)
