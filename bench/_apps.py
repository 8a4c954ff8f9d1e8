"""The apps the frameworks section measures: the same endpoint bare, protected, and raw.

``raw`` is the floor a JWT check cannot go below: split the header, decode the signature
and verify it with a preloaded key, nothing else (no claims, no cache, no errors worth the
name). Run as ``python -m bench._apps FRAMEWORK KIND ISSUER AUDIENCE PORT`` to serve one of
them on 127.0.0.1 (werkzeug's threaded server for Flask, uvicorn for Starlette), in a
process of its own so that the load generator does not share its interpreter.
"""

from __future__ import annotations

import base64
import functools
import json
import logging
import sys
import urllib.request
from collections.abc import Callable
from typing import Any

import httpx
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding
from flask import Flask, abort, request
from jwt.algorithms import RSAAlgorithm
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

from apiguard import AsyncValidator, Validator
from apiguard.asgi import BearerAuthMiddleware
from apiguard.flask import ApiGuard, requires_auth

ANSWER = {"ok": True}


def flask_app(validator: Validator | None) -> Flask:
    """A Flask app answering ``GET /``; protected by ``@requires_auth`` with a validator."""
    app = Flask("bench")

    def index() -> Any:
        return ANSWER

    if validator is not None:
        ApiGuard(app, validator=validator)
        index = requires_auth(index)
    app.add_url_rule("/", view_func=index)
    return app


def starlette_app(validator: AsyncValidator | None) -> Starlette:
    """A Starlette app answering ``GET /``; behind BearerAuthMiddleware with a validator."""

    async def index(request: Request) -> JSONResponse:
        return JSONResponse(ANSWER)

    middleware = []
    if validator is not None:
        middleware.append(Middleware(BearerAuthMiddleware, validator=validator, required=True))
    return Starlette(routes=[Route("/", index)], middleware=middleware)


def fetch_key(issuer: str) -> Any:
    """The issuer's first public key, fetched once from its JWKS."""
    with urllib.request.urlopen(f"{issuer.rstrip('/')}/.well-known/jwks.json") as answer:
        return RSAAlgorithm.from_jwk(json.load(answer)["keys"][0])


def raw_verifier(key: Any) -> Callable[[str], bool]:
    """Verify an RS256 signature with ``key``, and no more."""
    pkcs1 = padding.PKCS1v15()

    def verify(token: str) -> bool:
        signing_input, _, signature = token.rpartition(".")
        raw = base64.urlsafe_b64decode(signature + "=" * (-len(signature) % 4))
        try:
            key.verify(raw, signing_input.encode(), pkcs1, hashes.SHA256())
        except Exception:
            return False
        return True

    return verify


def flask_raw_app(verify: Callable[[str], bool]) -> Flask:
    """The Flask app with a view decorator that only verifies the signature."""
    app = Flask("bench")

    def raw_check(view: Callable[[], Any]) -> Callable[[], Any]:
        @functools.wraps(view)
        def wrapper() -> Any:
            value = request.environ.get("HTTP_AUTHORIZATION", "")
            if not value.startswith("Bearer ") or not verify(value[7:]):
                abort(401)
            return view()

        return wrapper

    @app.get("/")
    @raw_check
    def index() -> Any:
        return ANSWER

    return app


class RawCheckMiddleware:
    """A pure ASGI middleware that only verifies the signature."""

    def __init__(self, app: ASGIApp, verify: Callable[[str], bool]) -> None:
        self.app = app
        self.verify = verify

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            value = dict(scope["headers"]).get(b"authorization", b"").decode("latin-1")
            if not value.startswith("Bearer ") or not self.verify(value[7:]):
                await send({"type": "http.response.start", "status": 401, "headers": []})
                await send({"type": "http.response.body", "body": b""})
                return
        await self.app(scope, receive, send)


def _serve(framework: str, kind: str, issuer: str, audience: str, port: int) -> None:
    if framework == "flask":
        from werkzeug.serving import make_server

        logging.getLogger("werkzeug").setLevel(logging.ERROR)  # no line per request
        if kind == "raw":
            app: Any = flask_raw_app(raw_verifier(fetch_key(issuer)))
        else:
            protected = kind == "protected"
            app = flask_app(Validator(issuer=issuer, audience=audience) if protected else None)
        make_server("127.0.0.1", port, app, threaded=True).serve_forever()
    else:
        import uvicorn

        if kind == "raw":
            app = RawCheckMiddleware(starlette_app(None), raw_verifier(fetch_key(issuer)))
        else:
            async_validator = None
            if kind == "protected":
                client = httpx.AsyncClient()
                async_validator = AsyncValidator(
                    issuer=issuer, audience=audience, http_client=client
                )
            app = starlette_app(async_validator)
        # h11 and asyncio, as the published figures were measured (uvicorn would pick up
        # httptools, which the examples extra installs for the authz server).
        uvicorn.run(
            app,
            host="127.0.0.1",
            port=port,
            log_level="warning",
            access_log=False,
            http="h11",
            loop="asyncio",
        )


if __name__ == "__main__":
    framework, kind, issuer, audience, port = sys.argv[1:6]
    _serve(framework, kind, issuer, audience, int(port))
