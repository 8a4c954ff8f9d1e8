"""One adapter per framework layer, so that one table of request rules runs against all.

An adapter builds the same small API in its framework and sends it a raw request (method,
request target exactly as a client would write it, headers, body) in-process, without a
test client that would normalise the path. Adding a layer means adding one adapter here.

The API, in every layer (realm ``"api"``):

- ``GET /private``: any valid token; ``GET /noscopes``: ``requires_scope()`` with no scopes;
- ``GET /scoped``: ``read:a``; ``GET /all``: ``read:a`` and ``read:b``; ``GET /any``: either;
- ``GET /optional``: a token if one is sent;
- ``GET, OPTIONS /options``: any valid token, the view declares ``OPTIONS`` itself;
- ``GET, POST /form``: any valid token (a form body may come with it);
- ``GET /public`` and ``GET /static/public/{path}``: excluded paths, and
  ``GET /static/private/{path}``: behind the app-wide guard only;
- authorization beyond scopes: ``GET /permission`` (``delete:a``), ``GET /role``
  (``organizer-admin`` from ``https://organizer.example/roles``), ``GET /configured-role``
  (``admin`` from the validator's ``role_claims``, ``realm_access.roles``), ``GET /tenant``
  (``tid`` equals ``t1``), ``GET /groups`` (``groups`` includes ``staff``), ``GET /verified``
  (a predicate with its own description), ``GET /step-up`` (multi-factor ``acr``, signed in
  within 600 s), ``GET /delete`` (scope ``delete:a`` and the role).

Each route answers ``{"subject": <sub or null>}``. With ``required=True`` the app-wide guard
(Flask ``protect``, ``BearerAuthMiddleware(required=True)``) asks every other path for a
token; with ``required=False`` it only validates a token that is sent.
"""

# No postponed annotations: FastAPI evaluates the routes' annotations at run time, and the
# dependencies in them are local variables.
import asyncio
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Any
from urllib.parse import unquote

from fastapi import Depends, FastAPI, Security
from flask import Flask
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route
from werkzeug.test import EnvironBuilder, run_wsgi_app

from apiguard import (
    MULTI_FACTOR,
    AccessToken,
    AsyncValidator,
    Validator,
    claim_check,
    claim_equals,
    claim_includes,
)
from apiguard import asgi as ag
from apiguard import fastapi as fa
from apiguard import flask as fg
from apiguard.testing import LocalIssuer

EXCLUDED = ["/public", "/static/public/*"]
REALM = "api"
ROLES = ("https://organizer.example/roles",)
#: Where every layer's validator reads AccessToken.roles from.
ROLE_CLAIMS = ["realm_access.roles"]
TENANT = claim_equals("tid", "t1")
STAFF = claim_includes("groups", "staff")
VERIFIED = claim_check(
    lambda token: token.claims.get("email_verified") is True,
    description="A verified email address is required",
    reason="email_not_verified",
)
MAX_AGE = 600


@dataclass(frozen=True)
class Answer:
    """What a layer answered: status, headers (lower-case names) and the body."""

    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body) if self.body else None


Headers = list[tuple[str, str]]


class Layer:
    """An adapter: build the API over ``issuer`` and send it raw requests."""

    name: str

    def build(self, issuer: LocalIssuer, *, required: bool, **options: Any) -> Any:
        """Build the API; ``options`` go to the validator (``dpop="required"``...)."""
        raise NotImplementedError

    def send(self, app: Any, method: str, target: str, headers: Headers, body: bytes) -> Answer:
        raise NotImplementedError


# -- Flask -------------------------------------------------------------------------------------


def _flask_subject() -> dict[str, Any]:
    return {"subject": fg.current_token.subject if fg.current_token else None}


class FlaskLayer(Layer):
    name = "flask"

    def build(self, issuer: LocalIssuer, *, required: bool, **options: Any) -> Flask:
        app = Flask("layer-table")
        app.config["APIGUARD_REALM"] = REALM
        view = _flask_subject
        routes: list[tuple[str, list[str], Callable[..., Any]]] = [
            ("/private", ["GET"], fg.requires_auth(view)),
            ("/noscopes", ["GET"], fg.requires_scope()(view)),
            ("/scoped", ["GET"], fg.requires_scope("read:a")(view)),
            ("/all", ["GET"], fg.requires_scope("read:a", "read:b")(view)),
            ("/any", ["GET"], fg.requires_scope("read:a", "read:b", match="any")(view)),
            ("/optional", ["GET"], fg.requires_auth(optional=True)(view)),
            ("/options", ["GET", "OPTIONS"], fg.requires_auth(view)),
            ("/form", ["GET", "POST"], fg.requires_auth(view)),
            ("/public", ["GET"], view),
            ("/static/public/<path:name>", ["GET"], lambda name: view()),
            ("/static/private/<path:name>", ["GET"], lambda name: view()),
            ("/permission", ["GET"], fg.requires_permission("delete:a")(view)),
            ("/role", ["GET"], fg.requires_role("organizer-admin", claim=ROLES)(view)),
            ("/configured-role", ["GET"], fg.requires_role("admin")(view)),
            ("/tenant", ["GET"], fg.requires(TENANT)(view)),
            ("/groups", ["GET"], fg.requires(STAFF)(view)),
            ("/verified", ["GET"], fg.requires(VERIFIED)(view)),
            ("/step-up", ["GET"], fg.requires_step_up([MULTI_FACTOR], MAX_AGE)(view)),
            (
                "/delete",
                ["GET"],
                fg.requires_scope("delete:a")(
                    fg.requires_role("organizer-admin", claim=ROLES)(view)
                ),
            ),
        ]
        for index, (rule, methods, function) in enumerate(routes):
            app.add_url_rule(rule, f"route{index}", function, methods=methods)
        fg.ApiGuard(app, validator=issuer.validator(**{"role_claims": ROLE_CLAIMS, **options}))
        fg.protect(app, optional=not required, exclude_paths=EXCLUDED)
        return app

    def send(self, app: Flask, method: str, target: str, headers: Headers, body: bytes) -> Answer:
        return _call_wsgi(app, method, target, headers, body)


def _call_wsgi(app: Any, method: str, target: str, headers: Headers, body: bytes) -> Answer:
    raw_path, _, query = target.partition("?")
    builder = EnvironBuilder(method=method, path="/", query_string=query, data=body)
    environ = builder.get_environ()
    # What a WSGI server makes of the request line: PATH_INFO decoded, the target kept.
    environ["PATH_INFO"] = unquote(raw_path, encoding="latin-1")
    environ["RAW_URI"] = environ["REQUEST_URI"] = target
    merged: dict[str, str] = {}
    for name, value in headers:
        key = name.upper().replace("-", "_")
        key = key if key in ("CONTENT_TYPE", "CONTENT_LENGTH") else f"HTTP_{key}"
        # A WSGI server joins a repeated header into one value, as RFC 9110 allows.
        merged[key] = f"{merged[key]}, {value}" if key in merged else value
    environ.update(merged)
    app_iter, status, answer_headers = run_wsgi_app(app, environ)
    try:
        content = b"".join(app_iter)
    finally:
        getattr(app_iter, "close", lambda: None)()
    return Answer(
        int(status.split()[0]),
        {k.lower(): v for k, v in answer_headers.items()},
        content,
    )


# -- ASGI (Starlette) ------------------------------------------------------------------------


async def _asgi_subject(request: Request) -> JSONResponse:
    token = ag.get_token(request)
    return JSONResponse({"subject": token.subject if token else None})


async def _call_asgi(
    app: Any, method: str, target: str, headers: Headers, body: bytes, *, hold: bool = False
) -> Answer:
    raw_path, _, query = target.partition("?")
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "server": ("testserver", 80),
        "client": ("127.0.0.1", 50000),
        "root_path": "",
        # What uvicorn makes of the request line: path decoded, raw_path as sent.
        "path": unquote(raw_path),
        "raw_path": raw_path.encode("latin-1"),
        "query_string": query.encode("latin-1"),
        "headers": [(n.lower().encode("latin-1"), v.encode("latin-1")) for n, v in headers],
    }
    incoming = [{"type": "http.request", "body": body, "more_body": False}]
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        if incoming:
            return incoming.pop(0)
        if hold:
            # The client stays connected (Django listens for a disconnect meanwhile).
            await asyncio.Event().wait()
        return {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    await app(scope, receive, send)
    start = next(m for m in sent if m["type"] == "http.response.start")
    content = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
    answer_headers = {n.decode("latin-1").lower(): v.decode("latin-1") for n, v in start["headers"]}
    return Answer(start["status"], answer_headers, content)


class StarletteLayer(Layer):
    name = "starlette"

    def build(self, issuer: LocalIssuer, *, required: bool, **options: Any) -> Starlette:
        view = _asgi_subject
        routes = [
            Route("/private", ag.requires_auth(view)),
            Route("/noscopes", ag.requires_scope()(view)),
            Route("/scoped", ag.requires_scope("read:a")(view)),
            Route("/all", ag.requires_scope("read:a", "read:b")(view)),
            Route("/any", ag.requires_scope("read:a", "read:b", match="any")(view)),
            Route("/optional", ag.requires_auth(optional=True)(view)),
            Route("/options", ag.requires_auth(view), methods=["GET", "OPTIONS"]),
            Route("/form", ag.requires_auth(view), methods=["GET", "POST"]),
            Route("/public", view),
            Route("/static/public/{name:path}", view),
            Route("/static/private/{name:path}", view),
            Route("/permission", ag.requires_permission("delete:a")(view)),
            Route("/role", ag.requires_role("organizer-admin", claim=ROLES)(view)),
            Route("/configured-role", ag.requires_role("admin")(view)),
            Route("/tenant", ag.requires(TENANT)(view)),
            Route("/groups", ag.requires(STAFF)(view)),
            Route("/verified", ag.requires(VERIFIED)(view)),
            Route("/step-up", ag.requires_step_up([MULTI_FACTOR], MAX_AGE)(view)),
            Route(
                "/delete",
                ag.requires_scope("delete:a")(
                    ag.requires_role("organizer-admin", claim=ROLES)(view)
                ),
            ),
        ]
        guard = Middleware(
            ag.BearerAuthMiddleware,
            validator=issuer.async_validator(**{"role_claims": ROLE_CLAIMS, **options}),
            required=required,
            exclude_paths=EXCLUDED,
            realm=REALM,
        )
        return Starlette(routes=routes, middleware=[guard])

    def send(self, app: Any, method: str, target: str, headers: Headers, body: bytes) -> Answer:
        return asyncio.run(_call_asgi(app, method, target, headers, body))


# -- FastAPI ---------------------------------------------------------------------------------


class FastAPILayer(Layer):
    """FastAPI's own dependency decides; with ``required`` the middleware guards the app too.

    Without ``required`` there is no middleware at all, so ``Authorize`` reads and
    validates the request itself; with it, the middleware and the dependency share one
    validator object (the dependency then reuses the middleware's result).
    """

    name = "fastapi"

    def build(self, issuer: LocalIssuer, *, required: bool, **options: Any) -> Any:
        validator: AsyncValidator = issuer.async_validator(
            **{"role_claims": ROLE_CLAIMS, **options}
        )
        auth = fa.Authorize(validator, realm=REALM)
        organizer_admin = auth.requires_role("organizer-admin", claim=ROLES)
        either = fa.Authorize(validator, match="any", realm=REALM)
        maybe = fa.Authorize(validator, required=False, realm=REALM)
        app = FastAPI()
        fa.install(app)
        Token = Annotated[AccessToken, Depends(auth)]

        def subject(token: AccessToken | None) -> dict[str, Any]:
            return {"subject": token.subject if token else None}

        @app.get("/private")
        async def private(token: Token) -> dict[str, Any]:
            return subject(token)

        @app.get("/noscopes")
        async def noscopes(token: Annotated[AccessToken, Security(auth, scopes=[])]) -> Any:
            return subject(token)

        @app.get("/scoped")
        async def scoped(token: Annotated[AccessToken, Security(auth, scopes=["read:a"])]) -> Any:
            return subject(token)

        @app.get("/all")
        async def all_of(
            token: Annotated[AccessToken, Security(auth, scopes=["read:a", "read:b"])],
        ) -> Any:
            return subject(token)

        @app.get("/any")
        async def any_of(
            token: Annotated[AccessToken, Security(either, scopes=["read:a", "read:b"])],
        ) -> Any:
            return subject(token)

        @app.get("/optional")
        async def optional(token: Annotated[AccessToken | None, Depends(maybe)]) -> Any:
            return subject(token)

        @app.api_route("/options", methods=["GET", "OPTIONS"])
        async def options(token: Token) -> Any:
            return subject(token)

        @app.api_route("/form", methods=["GET", "POST"])
        async def form(token: Token) -> Any:
            return subject(token)

        @app.get("/public")
        async def public() -> Any:
            return subject(None)

        @app.get("/static/public/{name:path}")
        async def static_public(name: str) -> Any:
            return subject(None)

        @app.get("/static/private/{name:path}")
        async def static_private(name: str) -> Any:
            return subject(None)

        @app.get("/permission")
        async def permission(
            token: Annotated[AccessToken, Security(auth.requires_permission("delete:a"))],
        ) -> Any:
            return subject(token)

        @app.get("/role")
        async def role(token: Annotated[AccessToken, Security(organizer_admin)]) -> Any:
            return subject(token)

        @app.get("/configured-role")
        async def configured_role(
            token: Annotated[AccessToken, Security(auth.requires_role("admin"))],
        ) -> Any:
            return subject(token)

        @app.get("/tenant")
        async def tenant(token: Annotated[AccessToken, Security(auth.requires(TENANT))]) -> Any:
            return subject(token)

        @app.get("/groups")
        async def groups(token: Annotated[AccessToken, Security(auth.requires(STAFF))]) -> Any:
            return subject(token)

        @app.get("/verified")
        async def verified(
            token: Annotated[AccessToken, Security(auth.requires(VERIFIED))],
        ) -> Any:
            return subject(token)

        step_up = auth.requires_step_up([MULTI_FACTOR], MAX_AGE)

        @app.get("/step-up")
        async def stepped_up(token: Annotated[AccessToken, Security(step_up)]) -> Any:
            return subject(token)

        @app.get("/delete")
        async def delete(
            token: Annotated[AccessToken, Security(organizer_admin, scopes=["delete:a"])],
        ) -> Any:
            return subject(token)

        fa.check_routes(app)
        if not required:
            return app
        return ag.BearerAuthMiddleware(
            app, validator=validator, required=True, exclude_paths=EXCLUDED, realm=REALM
        )

    def send(self, app: Any, method: str, target: str, headers: Headers, body: bytes) -> Answer:
        return asyncio.run(_call_asgi(app, method, target, headers, body))


# -- Django (plain views, sync and async) and Django REST framework ---------------------------


@dataclass(frozen=True)
class DjangoApp:
    """What a Django adapter serves: the layer's state and a URLconf module."""

    state: Any
    urls: Any


class DjangoLayer(Layer):
    """Django behind its WSGI or ASGI handler, with apiguard's middleware and one URLconf."""

    def __init__(self, name: str, urls: str, *, asgi: bool = False) -> None:
        self.name = name
        self.urls = urls
        self.asgi = asgi

    def build(self, issuer: LocalIssuer, *, required: bool, **options: Any) -> DjangoApp:
        import django_views

        return DjangoApp(
            django_state(issuer, options, required=required, exclude_paths=EXCLUDED),
            getattr(django_views, self.urls),
        )

    def send(self, app: Any, method: str, target: str, headers: Headers, body: bytes) -> Answer:
        from django.core.handlers.asgi import ASGIHandler
        from django.core.handlers.wsgi import WSGIHandler
        from django.test import override_settings

        from apiguard import django as dj

        with override_settings(ROOT_URLCONF=app.urls), dj.use_state(app.state):
            if self.asgi:
                return asyncio.run(
                    _call_asgi(ASGIHandler(), method, target, headers, body, hold=True)
                )
            return _call_wsgi(WSGIHandler(), method, target, headers, body)


def django_state(
    issuer: LocalIssuer, validator_options: dict[str, Any] | None = None, **settings: Any
) -> Any:
    """The Django layer's state for ``issuer`` with these settings (realm ``"api"``);
    ``validator_options`` go to the validators (``dpop="required"``...)."""
    from apiguard import django as dj

    options = {"role_claims": ROLE_CLAIMS, **(validator_options or {})}
    return dj.build_state(
        {
            "VALIDATOR": issuer.validator(**options),
            "ASYNC_VALIDATOR": issuer.async_validator(**options),
            "REALM": REALM,
            **{key.upper(): value for key, value in settings.items()},
        }
    )


LAYERS: list[Layer] = [
    FlaskLayer(),
    StarletteLayer(),
    FastAPILayer(),
    DjangoLayer("django", "sync_urls"),
    DjangoLayer("django-asgi", "async_urls", asgi=True),
    DjangoLayer("drf", "drf_urls"),
]


def assert_same(
    answers: dict[str, Answer], status: int, challenge: str | None, body: Any = None
) -> None:
    """Every layer answered ``status`` (and ``challenge``, ``body`` when given), and the same."""
    for name, answer in answers.items():
        assert answer.status == status, (name, answer)
        if challenge is not None:
            assert answer.headers.get("www-authenticate") == challenge, name
        elif status < 400:
            assert "www-authenticate" not in answer.headers, name
        if body is not None:
            assert answer.json() == body, name
    bodies = {name: answer.json() for name, answer in answers.items()}
    challenges = {name: answer.headers.get("www-authenticate") for name, answer in answers.items()}
    assert len({repr(b) for b in bodies.values()}) == 1, bodies
    assert len(set(challenges.values())) == 1, challenges


__all__ = [
    "EXCLUDED",
    "LAYERS",
    "MAX_AGE",
    "REALM",
    "ROLES",
    "Answer",
    "DjangoApp",
    "Layer",
    "Validator",
    "assert_same",
    "django_state",
]
