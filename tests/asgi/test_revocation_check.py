"""check_revocation on a sync Starlette endpoint (run in a worker thread), as on an async one."""

from __future__ import annotations

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route
from starlette.testclient import TestClient

from apiguard import asgi as ag
from apiguard.testing import LocalIssuer


def test_sync_endpoint_checks_revocation(local_issuer: LocalIssuer) -> None:
    """A sync endpoint refuses a revoked JWT with 401 inactive_token, and serves a live one."""

    def view(request: Request) -> JSONResponse:
        token = ag.get_token(request)
        return JSONResponse({"subject": token.subject if token else None})

    app = Starlette(
        routes=[Route("/revocable", ag.requires_auth(check_revocation=True)(view))],
        middleware=[Middleware(ag.BearerAuthMiddleware, validator=local_issuer.async_validator())],
    )
    live, revoked = local_issuer.token(), local_issuer.token(sub="auth0|gone")
    local_issuer.revoke(revoked)
    with TestClient(app) as client:
        ok = client.get("/revocable", headers={"Authorization": f"Bearer {live}"})
        refused = client.get("/revocable", headers={"Authorization": f"Bearer {revoked}"})
    assert (ok.status_code, ok.json()) == (200, {"subject": "auth0|user-1"})
    assert refused.status_code == 401
    assert refused.json()["error_description"] == "The access token is not active"
    assert local_issuer.requests["/oauth/introspect"] == 2
