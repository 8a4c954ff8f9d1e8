"""Protected-resource metadata (RFC 9728) in every layer: the document, the challenges."""

# No postponed annotations: FastAPI evaluates the routes' annotations at run time.
from collections.abc import Callable
from typing import Annotated, Any

import pytest
from adapters import LAYERS, Answer, DjangoApp, Layer, django_state
from fastapi import FastAPI, Security
from flask import Flask
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.routing import Route

from apiguard import AccessToken, ConfigurationError
from apiguard import asgi as ag
from apiguard import fastapi as fa
from apiguard import flask as fg
from apiguard.metadata import ProtectedResource
from apiguard.testing import LocalIssuer

RESOURCE = "https://api.test/v1"
METADATA = "https://api.test/.well-known/oauth-protected-resource/v1"
DOCUMENT = {
    "resource": RESOURCE,
    "authorization_servers": ["https://issuer.test/"],
    "scopes_supported": ["read:a", "read:b", "write:a"],
    "bearer_methods_supported": ["header"],
}


def _flask(issuer: LocalIssuer, resource: Any) -> Flask:
    app = Flask("metadata")
    app.config["APIGUARD_REALM"] = "api"
    app.config["APIGUARD_RESOURCE"] = resource

    def view() -> dict[str, str]:
        return {"ok": "yes"}

    app.add_url_rule("/read", "read", fg.requires_scope("read:a", "read:b")(view))
    app.add_url_rule("/write", "write", fg.requires_scope("write:a")(view), methods=["GET", "POST"])
    app.add_url_rule("/open", "open", view)
    fg.ApiGuard(app, validator=issuer.validator())
    fg.protect(app)  # every path needs a token, the metadata's excepted
    return app


def _starlette(issuer: LocalIssuer, resource: Any) -> Starlette:
    async def view(request: Any) -> Any:
        from starlette.responses import JSONResponse

        return JSONResponse({"ok": "yes"})

    routes = [
        Route("/read", ag.requires_scope("read:a", "read:b")(view)),
        Route("/write", ag.requires_scope("write:a")(view), methods=["GET", "POST"]),
        Route("/open", view),
    ]
    guard = Middleware(
        ag.BearerAuthMiddleware,
        validator=issuer.async_validator(),
        required=True,
        realm="api",
        resource=resource,
    )
    return Starlette(routes=routes, middleware=[guard])


def _fastapi(issuer: LocalIssuer, resource: Any) -> FastAPI:
    auth = fa.Authorize(issuer.async_validator(), realm="api", resource=resource)
    app = FastAPI()
    fa.install(app)

    @app.get("/read")
    async def read(
        token: Annotated[AccessToken, Security(auth, scopes=["read:a", "read:b"])],
    ) -> Any:
        return {"ok": "yes"}

    @app.api_route("/write", methods=["GET", "POST"])
    async def write(token: Annotated[AccessToken, Security(auth, scopes=["write:a"])]) -> Any:
        return {"ok": "yes"}

    fa.serve_metadata(app)  # what install() does at start-up
    return app


def _django_urls(*, asynchronous: bool = False) -> Any:
    from django.http import JsonResponse
    from django.urls import path
    from django.views.decorators.http import require_http_methods

    from apiguard import django as dj

    def view(request: Any) -> Any:
        return JsonResponse({"ok": "yes"})

    async def async_view(request: Any) -> Any:
        return JsonResponse({"ok": "yes"})

    chosen = async_view if asynchronous else view
    return _module(
        [
            path("read", dj.requires_scope("read:a", "read:b")(chosen)),
            path(
                "write", require_http_methods(["GET", "POST"])(dj.requires_scope("write:a")(chosen))
            ),
            path("open", chosen),
        ]
    )


def _drf_urls() -> Any:
    from django.urls import path
    from rest_framework.response import Response
    from rest_framework.views import APIView

    from apiguard import django as dj

    class Read(APIView):
        permission_classes = [dj.HasScope("read:a", "read:b")]

        def get(self, request: Any) -> Any:
            return Response({"ok": "yes"})

    class Write(APIView):
        permission_classes = [dj.HasScope]
        required_scopes = {"GET": ["write:a"], "POST": ["write:a"]}

        def get(self, request: Any) -> Any:
            return Response({"ok": "yes"})

        post = get

    return _module([path("read", Read.as_view()), path("write", Write.as_view())])


def _module(patterns: list[Any]) -> Any:
    import types

    module = types.ModuleType("metadata_urls")
    module.urlpatterns = patterns  # type: ignore[attr-defined]
    return module


def _django(urls: Callable[[], Any]) -> Callable[[LocalIssuer, Any], Any]:
    def build(issuer: LocalIssuer, resource: Any) -> Any:
        # Every path needs a token (REQUIRED), the metadata's excepted.
        return DjangoApp(django_state(issuer, required=True, resource=resource), urls())

    return build


BUILDERS: dict[str, Callable[[LocalIssuer, Any], Any]] = {
    "flask": _flask,
    "starlette": _starlette,
    "fastapi": _fastapi,
    "django": _django(_django_urls),
    "django-asgi": _django(lambda: _django_urls(asynchronous=True)),
    "drf": _django(_drf_urls),
}


@pytest.fixture
def issuer(local_issuer_factory: Callable[..., LocalIssuer]) -> LocalIssuer:
    """An issuer whose tokens are for the resource."""
    return local_issuer_factory(audience=RESOURCE)


def ask(layer: Layer, issuer: LocalIssuer, method: str, target: str, token: str | None) -> Answer:
    app = BUILDERS[layer.name](issuer, RESOURCE)
    headers = [("Authorization", f"Bearer {token}")] if token else []
    return layer.send(app, method, target, headers, b"")


@pytest.mark.parametrize("layer", LAYERS, ids=[layer.name for layer in LAYERS])
@pytest.mark.parametrize(
    "path",
    [
        pytest.param("/.well-known/oauth-protected-resource/v1", id="path-inserted"),
        pytest.param("/.well-known/oauth-protected-resource", id="bare"),
    ],
)
@pytest.mark.parametrize("token", [None, "garbage"], ids=["no-token", "bad-token"])
def test_document_is_served_without_a_token(
    layer: Layer, issuer: LocalIssuer, path: str, token: str | None
) -> None:
    """Each layer serves the same document, with the routes' scopes, to anyone, cacheable."""
    answer = ask(layer, issuer, "GET", path, token)
    assert answer.status == 200
    assert answer.json() == DOCUMENT
    assert answer.headers["content-type"] == "application/json"
    assert answer.headers["cache-control"] == "public, max-age=3600"


@pytest.mark.parametrize("layer", LAYERS, ids=[layer.name for layer in LAYERS])
@pytest.mark.parametrize(
    ("target", "make_token", "status", "challenge"),
    [
        pytest.param("/read", lambda i: None, 401, 'Bearer realm="api"', id="no-token"),
        pytest.param(
            "/read",
            lambda i: i.token(scope="read:a"),
            403,
            'Bearer realm="api", error="insufficient_scope", '
            'error_description="The access token lacks a required scope", '
            'scope="read:a read:b"',
            id="insufficient-scope",
        ),
        pytest.param(
            "/write",
            lambda i: i.token(expires_in=-120),
            401,
            'Bearer realm="api", error="invalid_token", '
            'error_description="The access token expired"',
            id="expired",
        ),
    ],
)
def test_every_challenge_names_the_metadata(
    layer: Layer,
    issuer: LocalIssuer,
    target: str,
    make_token: Callable[[LocalIssuer], str | None],
    status: int,
    challenge: str,
) -> None:
    """401 and 403 challenges end with resource_metadata (RFC 9728 §5.1), in every layer."""
    answer = ask(layer, issuer, "GET", target, make_token(issuer))
    assert answer.status == status
    assert answer.headers["www-authenticate"] == f'{challenge}, resource_metadata="{METADATA}"'


@pytest.mark.parametrize("layer", LAYERS, ids=[layer.name for layer in LAYERS])
def test_a_valid_token_still_reaches_the_route(layer: Layer, issuer: LocalIssuer) -> None:
    """Serving the metadata changes nothing for an authorized request."""
    answer = ask(layer, issuer, "GET", "/read", issuer.token(scope="read:a read:b"))
    assert (answer.status, answer.json()) == (200, {"ok": "yes"})


@pytest.mark.parametrize("layer", LAYERS, ids=[layer.name for layer in LAYERS])
def test_the_document_is_read_only(layer: Layer, issuer: LocalIssuer) -> None:
    """A POST to the metadata path is not answered with the document.

    (Flask's app-wide guard sees a request no rule allows, so it asks for a token first.)
    """
    answer = ask(layer, issuer, "POST", "/.well-known/oauth-protected-resource/v1", None)
    assert answer.status in (401, 405)
    assert b"authorization_servers" not in answer.body


@pytest.mark.parametrize("layer", LAYERS, ids=[layer.name for layer in LAYERS])
def test_configured_scopes_replace_the_routes(layer: Layer, issuer: LocalIssuer) -> None:
    """A ProtectedResource with its own scopes_supported and documentation is served as given."""
    resource = ProtectedResource(
        RESOURCE,
        scopes_supported=("read:a",),
        resource_documentation="https://api.test/docs",
        resource_name="Test API",
    )
    app = BUILDERS[layer.name](issuer, resource)
    answer = layer.send(app, "GET", "/.well-known/oauth-protected-resource/v1", [], b"")
    assert answer.json() == {
        **DOCUMENT,
        "scopes_supported": ["read:a"],
        "resource_name": "Test API",
        "resource_documentation": "https://api.test/docs",
    }


@pytest.mark.parametrize("layer", LAYERS, ids=[layer.name for layer in LAYERS])
@pytest.mark.parametrize(
    ("resource", "message"),
    [
        pytest.param("https://other.test/v1", "audiences", id="not-an-audience"),
        pytest.param("https://api.test/v1#x", "fragment", id="fragment"),
        pytest.param(42, "ProtectedResource", id="not-a-url"),
    ],
)
def test_a_wrong_resource_fails_at_start_up(
    layer: Layer, issuer: LocalIssuer, resource: Any, message: str
) -> None:
    """The resource is checked when the layer starts: it must be one of the audiences."""

    def start() -> None:
        app = BUILDERS[layer.name](issuer, resource)
        layer.send(app, "GET", "/read", [], b"")  # Starlette builds middleware on first use

    with pytest.raises(ConfigurationError, match=message):
        start()


def test_fastapi_behind_the_middleware_names_the_middlewares_metadata(
    issuer: LocalIssuer,
) -> None:
    """An Authorize without its own resource names the middleware's metadata in challenges."""
    validator = issuer.async_validator()
    auth = fa.Authorize()
    app = FastAPI()
    fa.install(app)

    @app.get("/read")
    async def read(token: Annotated[AccessToken, Security(auth, scopes=["read:a"])]) -> Any:
        return {"ok": "yes"}

    guarded = ag.BearerAuthMiddleware(app, validator=validator, realm="api", resource=RESOURCE)
    fastapi = next(layer for layer in LAYERS if layer.name == "fastapi")
    token = issuer.token(scope="read:b")
    answer = fastapi.send(guarded, "GET", "/read", [("Authorization", f"Bearer {token}")], b"")
    assert answer.status == 403
    assert answer.headers["www-authenticate"].endswith(f'resource_metadata="{METADATA}"')
    document = fastapi.send(guarded, "GET", "/.well-known/oauth-protected-resource/v1", [], b"")
    assert document.json()["resource"] == RESOURCE
