"""One declaration rule in every layer: scope names and ``match`` are checked where declared."""

# No postponed annotations: FastAPI evaluates the routes' annotations at run time.
import warnings
from collections.abc import Callable
from typing import Annotated, Any

import pytest
from fastapi import FastAPI, Security
from flask import Blueprint

from apiguard import AccessToken, ConfigurationError
from apiguard import asgi as ag
from apiguard import django as dj
from apiguard import fastapi as fa
from apiguard import flask as fg
from apiguard.testing import LocalIssuer

with warnings.catch_warnings():
    warnings.filterwarnings("ignore", message="Using `httpx` with `starlette.testclient`")
    from starlette.testclient import TestClient

BAD_NAMES = [
    pytest.param('read "x"', id="double-quote"),
    pytest.param("read x", id="space"),
    pytest.param("", id="empty"),
    pytest.param("read\\x", id="backslash"),
    pytest.param("lecture:\u00e9", id="non-ascii"),
    pytest.param("read\nx", id="newline"),
    pytest.param(42, id="not-a-string"),
]


def fastapi_route(scopes: list[Any], match: str = "all") -> Callable[[], None]:
    def declare() -> None:
        auth = fa.Authorize(LocalIssuer().async_validator(), match=match)
        app = FastAPI()
        fa.install(app)

        @app.get("/x")
        async def x(token: Annotated[AccessToken, Security(auth, scopes=scopes)]) -> None:
            return None

        # The app's start-up is where FastAPI routes are checked, before any request.
        with TestClient(app):
            pass

    return declare


DECLARATIONS: list[Any] = [
    pytest.param(lambda name: fg.requires_scope(name), id="flask-requires_scope"),
    pytest.param(lambda name: fg.protect(Blueprint("b", "b"), name), id="flask-protect"),
    pytest.param(lambda name: ag.requires_scope(name), id="asgi-requires_scope"),
    pytest.param(lambda name: fastapi_route([name])(), id="fastapi-security"),
    pytest.param(lambda name: dj.requires_scope(name), id="django-requires_scope"),
    pytest.param(lambda name: dj.HasScope(name), id="drf-HasScope"),
    pytest.param(lambda name: dj.HasAnyScope(name), id="drf-HasAnyScope"),
]


@pytest.mark.parametrize("name", BAD_NAMES)
@pytest.mark.parametrize("declare", DECLARATIONS)
def test_bad_scope_names_fail_where_declared(declare: Callable[[Any], Any], name: Any) -> None:
    """A name that is not an RFC 6749 scope token raises ConfigurationError, never a 500."""
    with pytest.raises(ConfigurationError, match="scope token"):
        declare(name)


@pytest.mark.parametrize(
    "declare",
    [
        pytest.param(lambda: fg.requires_scope("a", match="most"), id="flask"),  # type: ignore[arg-type]
        pytest.param(lambda: ag.requires_scope("a", match="most"), id="asgi"),  # type: ignore[arg-type]
        pytest.param(lambda: fa.Authorize(match="most"), id="fastapi"),
        pytest.param(lambda: dj.requires_scope("a", match="most"), id="django"),
    ],
)
def test_match_is_all_or_any_in_every_layer(declare: Callable[[], Any]) -> None:
    """``match`` other than "all" or "any" raises ConfigurationError in every layer."""
    with pytest.raises(ConfigurationError, match="match"):
        declare()


def test_fastapi_routes_can_be_checked_without_a_lifespan() -> None:
    """check_routes() names the route whose scope is wrong."""
    auth = fa.Authorize(LocalIssuer().async_validator())
    app = FastAPI()

    @app.get("/tasks")
    async def tasks(token: Annotated[AccessToken, Security(auth, scopes=['read "x"'])]) -> None:
        return None

    with pytest.raises(ConfigurationError, match="/tasks"):
        fa.check_routes(app)


def test_optional_fastapi_dependency_cannot_ask_for_scopes() -> None:
    """An optional dependency asked for scopes is a configuration error at start-up."""
    auth = fa.Authorize(LocalIssuer().async_validator(), required=False)
    app = FastAPI()

    @app.get("/x")
    async def x(token: Annotated[AccessToken, Security(auth, scopes=["read:a"])]) -> None:
        return None

    with pytest.raises(ConfigurationError, match="optional"):
        fa.check_routes(app)


def _fastapi_auth(**options: Any) -> fa.Authorize:
    return fa.Authorize(LocalIssuer().async_validator(), **options)


@pytest.mark.parametrize(
    "declare",
    [
        pytest.param(lambda: fg.requires("read:a"), id="flask-requires-a-string"),
        pytest.param(lambda: fg.requires(lambda token: True), id="flask-requires-a-function"),
        pytest.param(lambda: fg.requires_permission(), id="flask-no-permission"),
        pytest.param(lambda: fg.requires_role("a", claim="a..b"), id="flask-bad-claim-path"),
        pytest.param(lambda: fg.requires_step_up(), id="flask-step-up-nothing"),
        pytest.param(lambda: ag.requires("read:a"), id="asgi-requires-a-string"),
        pytest.param(lambda: ag.requires_role(), id="asgi-no-role"),
        pytest.param(lambda: ag.requires_step_up(["a b"]), id="asgi-acr-with-space"),
        pytest.param(lambda: _fastapi_auth(rules=["read:a"]), id="fastapi-rules-a-string"),
        pytest.param(lambda: _fastapi_auth().requires(object()), id="fastapi-requires-object"),
        pytest.param(lambda: _fastapi_auth().requires_permission(), id="fastapi-no-permission"),
        pytest.param(
            lambda: _fastapi_auth().requires_step_up(max_age=-1), id="fastapi-negative-max-age"
        ),
        pytest.param(
            lambda: _fastapi_auth(required=False).requires_role("admin"),
            id="fastapi-optional-with-rules",
        ),
    ],
)
def test_bad_rules_fail_where_declared(declare: Callable[[], Any]) -> None:
    """A rule that is not one, or could never work, fails at declaration in every layer."""
    with pytest.raises(ConfigurationError):
        declare()


def test_fastapi_derived_dependency_keeps_the_original() -> None:
    """requires() returns a new dependency; the one it came from asks for nothing more."""
    auth = _fastapi_auth()
    admin = auth.requires_role("admin").requires_permission("delete:a")
    assert auth.rules == ()
    assert [repr(rule) for rule in admin.rules] == [
        "has_roles('admin', match='all')",
        "has_permissions('delete:a', match='all')",
    ]
    assert admin.validator is auth.validator
