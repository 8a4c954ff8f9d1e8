"""Helpers shared by the ASGI and FastAPI tests: the test client, headers, echo endpoints."""

from __future__ import annotations

import warnings

from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.websockets import WebSocket

# Starlette's test client announces a move to another HTTP package at import time; the
# notice is about the test tool, not about the code under test.
with warnings.catch_warnings():
    warnings.filterwarnings("ignore", message="Using `httpx` with `starlette.testclient`")
    from starlette.testclient import TestClient

__all__ = ["TestClient", "bearer", "whoami", "ws_whoami"]


def bearer(token: str) -> dict[str, str]:
    """The Authorization header for ``token``."""
    return {"Authorization": f"Bearer {token}"}


async def whoami(request: Request) -> JSONResponse:
    """Echo what the middleware left on the request."""
    token = getattr(request.auth, "token", None)
    return JSONResponse(
        {
            "authenticated": request.user.is_authenticated,
            "identity": request.user.identity,
            "scopes": list(request.auth.scopes),
            "subject": token.subject if token is not None else None,
        }
    )


async def ws_whoami(websocket: WebSocket) -> None:
    """Accept and send the user's identity, then close."""
    await websocket.accept()
    await websocket.send_json({"identity": websocket.user.identity})
    await websocket.close()
