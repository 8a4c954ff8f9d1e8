"""Fixtures for the Flask layer: an app protected by ApiGuard over a LocalIssuer."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from flask import Blueprint, Flask

from apiguard import Validator
from apiguard.flask import ApiGuard, current_token, requires_auth, requires_scope
from apiguard.testing import LocalIssuer

# Defined at import time, long before any app: the decorators must not need one.
early = Blueprint("early", __name__, url_prefix="/early")


@early.get("/tasks")
@requires_scope("read:tasks")
def early_tasks() -> dict[str, Any]:
    return {"subject": current_token.subject}


def add_routes(app: Flask) -> None:
    """The routes most tests call: one per kind of protection."""

    @app.get("/public")
    def public() -> dict[str, Any]:
        return {"token": bool(current_token)}

    @app.route("/private", methods=["GET", "POST"])
    @requires_auth
    def private() -> dict[str, Any]:
        return {"subject": current_token.subject, "scopes": sorted(current_token.scopes)}

    @app.get("/appointments")
    @requires_scope("read:appointments")
    def appointments() -> dict[str, Any]:
        return {"subject": current_token.subject}

    @app.get("/all")
    @requires_scope("read:a", "read:b")
    def all_of() -> dict[str, Any]:
        return {"ok": True}

    @app.get("/any")
    @requires_scope("read:a", "read:b", match="any")
    def any_of() -> dict[str, Any]:
        return {"ok": True}

    @app.get("/maybe")
    @requires_auth(optional=True)
    def maybe() -> dict[str, Any]:
        return {"subject": current_token.subject if current_token else None}

    @app.get("/async")
    @requires_scope("read:tasks")
    async def async_view() -> dict[str, Any]:
        return {"subject": current_token.subject, "async": True}

    @app.get("/async-private")
    @requires_auth
    async def async_private() -> dict[str, Any]:
        return {"subject": current_token.subject}

    @app.route("/explicit-options", methods=["GET", "OPTIONS"])
    @requires_auth
    def explicit_options() -> dict[str, Any]:
        return {"token": bool(current_token)}

    app.register_blueprint(early)


@pytest.fixture
def validators() -> Iterator[list[Validator]]:
    """Validators made by a test, closed after it."""
    made: list[Validator] = []
    yield made
    for validator in made:
        validator.close()


@pytest.fixture
def make_app(local_issuer: LocalIssuer, validators: list[Validator]) -> Callable[..., Flask]:
    """Build an app with the standard routes, guarded by a validator of ``local_issuer``."""

    def make(*, config: dict[str, Any] | None = None, **options: Any) -> Flask:
        app = Flask("protected")
        app.config.update(config or {})
        add_routes(app)
        if "validator" not in options and "issuer" not in options:
            options["validator"] = local_issuer.validator()
        if isinstance(options.get("validator"), Validator):
            validators.append(options["validator"])
        ApiGuard(app, **options)
        return app

    return make


@pytest.fixture
def app(make_app: Callable[..., Flask]) -> Flask:
    """The standard protected app."""
    return make_app()
