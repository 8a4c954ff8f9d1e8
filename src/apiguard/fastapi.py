"""Bearer-token security for FastAPI: a ``Security`` dependency that returns the token.

:class:`Authorize` is a FastAPI security scheme (HTTP bearer, JWT) that reads the route's
``SecurityScopes``, returns the validated :class:`~apiguard.AccessToken` and answers RFC 6750
errors. It appears in the OpenAPI document, so Swagger UI's "Authorize" button sends tokens.
It reuses the token :class:`~apiguard.asgi.BearerAuthMiddleware` validated when that runs,
and validates the header itself otherwise.

>>> from fastapi import FastAPI, Security
>>> from apiguard import AccessToken, AsyncValidator
>>> validator = AsyncValidator(issuer="https://tenant.example/", audience="https://api")
>>> auth = Authorize(validator)
>>> app = FastAPI()
>>> install(app)
>>> @app.get("/api/tasks")
... async def tasks(token: AccessToken = Security(auth, scopes=["read:tasks"])):
...     return {"tasks": [], "subject": token.subject}

Close a validator you built in the app's lifespan (``await validator.aclose()``), or let the
middleware build and close it.
"""

from __future__ import annotations

import contextlib
import copy
import json
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Sequence
from typing import Any

from fastapi import FastAPI, HTTPException
from fastapi.openapi.models import HTTPBearer as HTTPBearerModel
from fastapi.routing import APIRoute
from fastapi.security import SecurityScopes
from fastapi.security.base import SecurityBase
from starlette.requests import Request
from starlette.responses import Response

from ._request import Requirement, check_rules, guard, run_async
from ._rules import Rule, has_permissions, has_roles, step_up
from .asgi import METADATA_KEY, REALM_KEY, VALIDATOR_KEY, get_token, request_view
from .bearer import DEFAULT_REALM, ErrorResponse, pick_realm, render_error
from .claims import AccessToken, ClaimPath, check_match
from .errors import ApiguardError, BearerError, ConfigurationError, KeySetUnavailable
from .metadata import ProtectedResource, ResourceMetadata, protected_resource
from .validator import AsyncValidator

__all__ = [
    "Authorize",
    "BearerException",
    "bearer_exception_handler",
    "check_routes",
    "install",
    "serve_metadata",
]


class BearerException(HTTPException):
    """A refused request, carrying the RFC 6750 answer apiguard rendered.

    It is an ``HTTPException`` with the right status and headers, so even without
    :func:`install` the client gets them (the body is then FastAPI's ``{"detail": ...}``);
    with :func:`install` the body is apiguard's ``{"error", "error_description"}`` JSON.

    Attributes:
        error: the apiguard error that caused the refusal.
        answer: the rendered response (status, headers, body).
    """

    def __init__(
        self,
        error: ApiguardError,
        realm: str | None = None,
        resource_metadata: str | None = None,
    ) -> None:
        answer = render_error(error, realm, resource_metadata)
        # The same JSON as the installed handler's body, so both paths say the same.
        detail: dict[str, str] = json.loads(answer.body)
        super().__init__(answer.status_code, detail=detail, headers=answer.headers)
        self.error = error
        self.answer: ErrorResponse = answer


async def bearer_exception_handler(request: Request, exc: Exception) -> Response:
    """Answer a :class:`BearerException` with apiguard's RFC 6750 response."""
    if not isinstance(exc, BearerException):  # pragma: no cover - registered for it only
        raise exc
    answer = exc.answer
    return Response(answer.body, answer.status_code, answer.headers, media_type=answer.media_type)


def install(app: FastAPI) -> None:
    """Register :func:`bearer_exception_handler`, check the routes, serve the metadata.

    Refusals then get the RFC 6750 JSON body. At start-up (the app's lifespan), before any
    request is served, :func:`check_routes` checks every scope the routes ask of an
    :class:`Authorize` dependency, so that a name that could never be granted stops the
    app instead of answering 500 per request; and the protected-resource metadata (RFC
    9728) of every :class:`Authorize` given a ``resource`` is served at its well-known
    paths, with the scopes its routes ask for.
    """
    app.add_exception_handler(BearerException, bearer_exception_handler)
    original = app.router.lifespan_context

    @contextlib.asynccontextmanager
    async def checked(target: Any) -> AsyncIterator[Any]:
        check_routes(app)
        serve_metadata(app)
        async with original(target) as state:
            yield state

    app.router.lifespan_context = checked


def _security_scopes(dependant: Any) -> Iterable[tuple[Authorize, list[str]]]:
    call = getattr(dependant, "call", None)
    if isinstance(call, Authorize):
        own = getattr(dependant, "own_oauth_scopes", None) or []
        parent = getattr(dependant, "parent_oauth_scopes", None) or []
        yield call, [*parent, *own]
    for sub in getattr(dependant, "dependencies", ()):
        yield from _security_scopes(sub)


def serve_metadata(app: FastAPI) -> None:
    """Add a route for the metadata document of each :class:`Authorize` with a resource.

    :func:`install` runs this at start-up, once the routes are known (their scopes make
    ``scopes_supported`` unless the resource names its own).

    Raises:
        ConfigurationError: two resources would be served at the same path.
    """
    # By metadata, not by dependency: a dependency derived with Authorize.requires() serves
    # the same resource, and its routes' scopes belong in the same document.
    scopes: dict[int, tuple[ResourceMetadata, list[str]]] = {}
    for route in app.routes:
        if isinstance(route, APIRoute):
            for auth, asked in _security_scopes(route.dependant):
                if auth.metadata is not None:
                    scopes.setdefault(id(auth.metadata), (auth.metadata, []))[1].extend(asked)
    # A second start (a test client entered twice) finds the routes of the first.
    served: dict[str, str] = {
        route.path: route.description
        for route in app.routes
        if isinstance(route, APIRoute) and route.name == _METADATA_ROUTE
    }
    for resource, asked in scopes.values():
        metadata = resource.with_route_scopes(asked)
        for path in metadata.paths:
            if path in served:
                if served[path] == metadata.resource:
                    continue
                raise ConfigurationError(
                    f"resource: {metadata.resource!r} and another resource would both be "
                    f"served at {path}"
                )
            served[path] = metadata.resource
            app.add_api_route(
                path,
                _metadata_endpoint(metadata),
                methods=["GET"],
                include_in_schema=False,
                name=_METADATA_ROUTE,
                description=metadata.resource,
            )


_METADATA_ROUTE = "apiguard_protected_resource"


def _metadata_endpoint(metadata: ResourceMetadata) -> Callable[[], Awaitable[Response]]:
    body, headers = metadata.render()

    async def protected_resource_metadata() -> Response:
        return Response(body, 200, headers)

    return protected_resource_metadata


def check_routes(app: FastAPI) -> None:
    """Check the requirement of every route that depends on an :class:`Authorize`.

    :func:`install` runs this at start-up; call it yourself after adding routes later.

    Raises:
        ConfigurationError: a route asks for a scope that is not an RFC 6749 scope token,
            or an optional dependency is asked for scopes (the message names the route).
    """
    for route in app.routes:
        if not isinstance(route, APIRoute):
            continue
        for auth, scopes in _security_scopes(route.dependant):
            try:
                auth.requirement(scopes)
            except ConfigurationError as exc:
                raise ConfigurationError(f"route {route.path!r}: {exc}") from None


class Authorize(SecurityBase):
    """A FastAPI security dependency: require a valid bearer token with the route's scopes.

    Use it with ``Security(auth, scopes=[...])`` (all scopes are required, or any one with
    ``match="any"``), or ``Depends(auth)`` for any valid token. It returns the
    :class:`~apiguard.AccessToken` (or None, with ``required=False``, for a request without
    one). OpenAPI shows an HTTP bearer (JWT) scheme. The rules are apiguard's one request
    path, the same as in apiguard.flask and apiguard.asgi: every method is checked,
    ``OPTIONS`` included.

    Args:
        validator: the :class:`~apiguard.AsyncValidator` that decides. It always decides
            with its own settings: the token :class:`~apiguard.asgi.BearerAuthMiddleware`
            validated is reused only when the middleware ran with this very validator.
            May be None when the middleware protects the app: its result is then used
            (and a request it let through without a token gets 401).
        match: ``"all"`` or ``"any"`` of the scopes asked for by ``Security``.
        required: False lets a request without a token through (the dependency returns
            None); a token that is sent must still be valid. Not allowed with scopes or
            rules.
        rules: authorization rules beyond scopes (:func:`~apiguard.has_permissions`,
            :func:`~apiguard.has_roles`, claim rules, :func:`~apiguard.step_up`), checked
            after the scopes; or derive a dependency with :meth:`requires`,
            :meth:`requires_permission`, :meth:`requires_role`, :meth:`requires_step_up`.
        realm: the challenge's ``realm``, or None for none. Default: the middleware's when
            it validated the token, else the validator's one audience (or ``"api"``).
        resource: the resource identifier (one of the validator's audiences) or a
            :class:`~apiguard.metadata.ProtectedResource`: :func:`install` then serves the
            RFC 9728 metadata at ``/.well-known/oauth-protected-resource`` (the resource's
            path inserted), with the scopes the routes ask of this dependency, and every
            challenge carries ``resource_metadata``. Without it, the middleware's metadata
            (if it has one) is named in the challenges.
        scheme_name: the name of the security scheme in the OpenAPI document.
        description: its description there.

    Raises:
        ConfigurationError: ``validator`` is not an AsyncValidator, or ``match`` is wrong;
            at start-up (see :func:`install`), a route's scope is not a scope token.
        BearerException: (per request) 400, 401, 403 or 503 with the RFC 6750 answer.
        RuntimeError: (per request) neither a validator nor the middleware is there.

    >>> maybe = Authorize(validator, required=False)  # doctest: +SKIP
    >>> @app.get("/api/feed")  # doctest: +SKIP
    ... async def feed(token: AccessToken | None = Depends(maybe)): ...
    """

    def __init__(
        self,
        validator: AsyncValidator | None = None,
        *,
        match: str = "all",
        required: bool = True,
        rules: Iterable[Rule] = (),
        realm: str | None = DEFAULT_REALM,
        resource: str | ProtectedResource | None = None,
        scheme_name: str = "bearerAuth",
        description: str | None = "An OAuth 2.0 access token (JWT)",
    ) -> None:
        if validator is not None and not isinstance(validator, AsyncValidator):
            raise ConfigurationError("validator: must be an apiguard.AsyncValidator")
        self.match = check_match(match)
        self.required = required
        self.rules: tuple[Rule, ...] = check_rules(rules)
        self._requirements: dict[tuple[str, ...], Requirement] = {}
        self.requirement(())
        self._own_realm = realm is not DEFAULT_REALM
        audiences = validator.audiences if validator is not None else ()
        self.validator = validator
        self.realm = pick_realm(realm, audiences) if self._own_realm or audiences else None
        if resource is not None and validator is None:
            raise ConfigurationError(
                "resource: needs a validator (or give it to BearerAuthMiddleware)"
            )
        self.metadata = (
            protected_resource(resource, audiences, validator.issuers, name="resource")
            if validator is not None
            else None
        )
        self.model = HTTPBearerModel(bearerFormat="JWT", description=description)
        self.scheme_name = scheme_name

    def requirement(self, scopes: Iterable[str]) -> Requirement:
        """The checked requirement for a route's scopes (built once per set of scopes).

        Raises:
            ConfigurationError: a scope is not an RFC 6749 scope token, or scopes are
                asked of an optional dependency.
        """
        key = tuple(scopes)
        known = self._requirements.get(key)
        if known is None:
            known = Requirement.declare(
                key, self.match, optional=not self.required, rules=self.rules
            )
            self._requirements[key] = known
        return known

    async def __call__(
        self, request: Request, security_scopes: SecurityScopes
    ) -> AccessToken | None:
        """Return the request's validated token, or raise :class:`BearerException`."""
        realm = self.realm if self._own_realm else request.scope.get(REALM_KEY, self.realm)
        requirement = self.requirement(security_scopes.scopes)
        try:
            return await self._decide(request, requirement)
        except (BearerError, KeySetUnavailable) as exc:
            metadata = (
                self.metadata.url if self.metadata is not None else request.scope.get(METADATA_KEY)
            )
            raise BearerException(exc, realm, metadata) from None

    async def _decide(self, request: Request, requirement: Requirement) -> AccessToken | None:
        scope = request.scope
        decided_by = scope.get(VALIDATOR_KEY)
        if self.validator is None or decided_by is self.validator:
            if decided_by is None and "auth" not in scope:
                raise RuntimeError(
                    "Authorize has no validator and BearerAuthMiddleware did not run"
                )
            # The middleware decided with this validator (or on an excluded path, did not
            # look at all: then there is no token, and the requirement says what that means).
            token = get_token(request)
            validator = self.validator or decided_by
            clock = validator.clock if isinstance(validator, AsyncValidator) else None
            requirement.check(token, clock)
            return token

        async def read_form() -> bytes | Iterable[str]:
            # FastAPI may have parsed the form already, which consumes the stream.
            form = getattr(request, "_form", None)
            if form is not None:
                return list(form.keys())
            return await request.body()

        flow = guard(request_view(scope), requirement, clock=self.validator.clock)
        return await run_async(flow, self.validator.validate, read_form)

    def requires(self, *rules: Rule) -> Authorize:
        """A dependency like this one that also requires every one of ``rules``.

        Raises:
            ConfigurationError: an argument is not a rule, or this dependency is optional.

        >>> admin = auth.requires(has_roles("admin"), step_up(max_age=600))  # doctest: +SKIP
        >>> @app.delete("/api/appointments/{id}")  # doctest: +SKIP
        ... async def delete(id: str, token: AccessToken = Security(admin)): ...
        """
        derived = copy.copy(self)
        derived.rules = self.rules + check_rules(rules)
        derived._requirements = {}
        derived.requirement(())  # a bad combination fails here, where it is declared
        return derived

    def requires_permission(self, *permissions: str, match: str = "all") -> Authorize:
        """A dependency that also requires Auth0 RBAC permissions (the ``permissions`` claim).

        >>> Security(auth.requires_permission("delete:appointments"))  # doctest: +SKIP
        """
        return self.requires(has_permissions(*permissions, match=match))

    def requires_role(
        self,
        *roles: str,
        match: str = "all",
        claim: str | Sequence[str] | ClaimPath | None = None,
    ) -> Authorize:
        """A dependency that also requires roles (from ``claim``, or the token's ``roles``).

        >>> Security(auth.requires_role("organizer-admin"))  # doctest: +SKIP
        """
        return self.requires(has_roles(*roles, match=match, claim=claim))

    def requires_step_up(
        self, acr_values: Iterable[str] = (), max_age: int | None = None
    ) -> Authorize:
        """A dependency that also requires RFC 9470 step-up (see :func:`~apiguard.step_up`).

        >>> Security(auth.requires_step_up([MULTI_FACTOR], max_age=600))  # doctest: +SKIP
        """
        return self.requires(step_up(acr_values, max_age))

    def __repr__(self) -> str:
        return f"Authorize(validator={self.validator!r}, scheme_name={self.scheme_name!r})"
