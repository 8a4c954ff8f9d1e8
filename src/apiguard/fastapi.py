"""Bearer-token security for FastAPI: a ``Security`` dependency that returns the token.

:class:`Authorize` is a FastAPI security scheme (HTTP bearer, JWT) that reads the route's
``SecurityScopes``, returns the validated :class:`~apiguard.AccessToken` and answers RFC 6750
errors. It appears in the OpenAPI document, so Swagger UI's "Authorize" button sends tokens.
It decides with the validator it was given, by apiguard's one request path (the rules of
apiguard.flask and apiguard.asgi); behind :class:`~apiguard.asgi.BearerAuthMiddleware` it
reuses the middleware's result only when the middleware ran with that very validator.
``Authorize(validator, required=False)`` is the optional mode (None without a token).

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
import importlib.resources
import json
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

from fastapi import FastAPI, HTTPException
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.openapi.models import HTTPBearer as HTTPBearerModel
from fastapi.openapi.models import OAuth2 as OAuth2Model
from fastapi.openapi.models import OAuthFlowAuthorizationCode, OAuthFlows
from fastapi.routing import APIRoute
from fastapi.security import SecurityScopes
from fastapi.security.base import SecurityBase
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import Mount
from starlette.staticfiles import StaticFiles

from ._request import Requirement, check_rules, guard, run_async
from ._rules import Rule, has_permissions, has_roles, step_up
from .asgi import (
    DPOP_KEY,
    METADATA_KEY,
    REALM_KEY,
    VALIDATOR_KEY,
    get_token,
    readiness_endpoint,
    request_view,
)
from .bearer import DEFAULT_REALM, ErrorResponse, pick_realm, render_error
from .claims import AccessToken, ClaimPath, check_match, check_scope_names
from .errors import ApiguardError, BearerError, ConfigurationError, ServiceUnavailable
from .jwks import FetchRequest, discovery_urls, is_safe_url, server_metadata
from .metadata import ProtectedResource, ResourceMetadata, protected_resource
from .validator import AsyncValidator

__all__ = [
    "Authorize",
    "BearerException",
    "bearer_exception_handler",
    "check_routes",
    "describe_login",
    "install",
    "readiness_endpoint",
    "serve_metadata",
    "swagger_ui",
]

logger = logging.getLogger("apiguard.fastapi")


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
    paths, with the scopes its routes ask for; and every :class:`Authorize` with
    ``flow="authorization_code"`` learns its endpoints for OpenAPI (:func:`describe_login`).
    """
    app.add_exception_handler(BearerException, bearer_exception_handler)
    original = app.router.lifespan_context

    @contextlib.asynccontextmanager
    async def checked(target: Any) -> AsyncIterator[Any]:
        check_routes(app)
        serve_metadata(app)
        await describe_login(app)
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


async def describe_login(app: FastAPI) -> None:
    """Describe every ``flow="authorization_code"`` :class:`Authorize` of ``app`` in OpenAPI.

    :func:`install` runs this at start-up: each such dependency takes its authorization
    and token URLs from its issuer's discovery document (unless it was given them) and the
    scopes from the routes' ``Security(scopes=...)``, so that Swagger UI's "Authorize"
    button runs the authorization-code flow. When the discovery document cannot be had, the
    dependency stays described as an HTTP bearer scheme (a warning is logged): the API
    itself works either way.
    """
    scopes: dict[Authorize, list[str]] = {}
    for route in app.routes:
        if isinstance(route, APIRoute):
            for auth, asked in _security_scopes(route.dependant):
                scopes.setdefault(auth, []).extend(asked)
    for auth, asked in scopes.items():
        if auth.flow == "authorization_code":
            await auth.describe(asked)
    app.openapi_schema = None  # built again, with the schemes as they are now


def swagger_ui(
    app: FastAPI,
    *,
    client_id: str,
    audience: str | None = None,
    scopes: Iterable[str] = (),
    assets: str | Path | None = None,
) -> None:
    """Serve Swagger UI with its "Authorize" button set for code + PKCE, assets served locally.

    Args:
        app: the app; its ``docs_url`` page (``/docs``) is replaced, its
            ``swagger_ui_oauth2_redirect_url`` (``/docs/oauth2-redirect``) kept: register
            that URL as the client's callback.
        client_id: the public client Swagger UI signs in as (no secret: PKCE protects the
            code, as for any browser app).
        audience: sent as Auth0's ``audience`` parameter, so that the token is for this API.
        scopes: the scopes ticked in the dialog at first.
        assets: a folder with ``swagger-ui-bundle.js`` and ``swagger-ui.css``. Default: the
            copy ``fastapi-offline`` ships (``pip install apiguard[swagger]``), else
            FastAPI's CDN.

    Raises:
        ConfigurationError: the app has no docs page, or ``assets`` lacks the files.

    >>> swagger_ui(app, client_id="api-explorer", audience=API)  # doctest: +SKIP
    """
    if not app.docs_url or not app.openapi_url:
        raise ConfigurationError("swagger_ui: the app has no docs_url or openapi_url")
    if not isinstance(client_id, str) or not client_id:
        raise ConfigurationError("client_id: must be a non-empty string")
    folder = _assets(assets)
    init_oauth: dict[str, Any] = {
        "clientId": client_id,
        "usePkceWithAuthorizationCodeGrant": True,
    }
    chosen = check_scope_names(scopes)
    if chosen:
        init_oauth["scopes"] = " ".join(chosen)
    if audience is not None:
        init_oauth["additionalQueryStringParams"] = {"audience": audience}
    app.swagger_ui_init_oauth = init_oauth
    docs_url, openapi_url = app.docs_url, app.openapi_url
    app.router.routes[:] = [
        route for route in app.router.routes if getattr(route, "path", None) != docs_url
    ]
    assets_url = docs_url.rstrip("/") + "/assets"
    urls: dict[str, str] = {}
    if folder is not None:
        app.router.routes.append(
            Mount(assets_url, StaticFiles(directory=folder), name="apiguard_swagger_assets")
        )
        urls = {
            "swagger_js_url": f"{assets_url}/swagger-ui-bundle.js",
            "swagger_css_url": f"{assets_url}/swagger-ui.css",
        }
        if (folder / "favicon.png").is_file():
            urls["swagger_favicon_url"] = f"{assets_url}/favicon.png"

    async def docs(request: Request) -> HTMLResponse:
        root = request.scope.get("root_path", "")
        redirect = app.swagger_ui_oauth2_redirect_url
        return get_swagger_ui_html(
            openapi_url=root + openapi_url,
            title=f"{app.title} - Swagger UI",
            oauth2_redirect_url=root + redirect if redirect else None,
            init_oauth=app.swagger_ui_init_oauth,
            swagger_ui_parameters=app.swagger_ui_parameters,
            **{name: root + url for name, url in urls.items()},
        )

    app.add_route(docs_url, docs, include_in_schema=False)


def _assets(assets: str | Path | None) -> Path | None:
    if assets is None:
        try:
            found = importlib.resources.files("fastapi_offline").joinpath("static")
        except ModuleNotFoundError:
            return None
        folder = Path(str(found))
    else:
        folder = Path(assets)
    missing = [n for n in ("swagger-ui-bundle.js", "swagger-ui.css") if not (folder / n).is_file()]
    if missing:
        raise ConfigurationError(f"assets: {folder} lacks {', '.join(missing)}")
    return folder


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
        flow: how OpenAPI describes the scheme: ``"bearer"`` (paste a token) or
            ``"authorization_code"`` (OAuth 2.0 code flow, which Swagger UI runs with PKCE
            when set up with :func:`swagger_ui`; the endpoints come from the issuer's
            discovery at start-up, see :func:`describe_login`).
        authorization_url, token_url: the endpoints for ``"authorization_code"``, instead
            of the discovered ones.
        scope_descriptions: what each scope means, for Swagger UI's dialog (default: the
            scope's own name). Scopes listed here are offered even if no route asks.

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
        flow: Literal["bearer", "authorization_code"] = "bearer",
        authorization_url: str | None = None,
        token_url: str | None = None,
        scope_descriptions: Mapping[str, str] | None = None,
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
            protected_resource(resource, validator, name="resource")
            if validator is not None
            else None
        )
        if flow not in ("bearer", "authorization_code"):
            raise ConfigurationError(f"flow: 'bearer' or 'authorization_code', not {flow!r}")
        for name, url in (("authorization_url", authorization_url), ("token_url", token_url)):
            if url is not None and (not isinstance(url, str) or not is_safe_url(url)):
                raise ConfigurationError(f"{name}: must be an https URL (http for loopback)")
        if (
            flow == "authorization_code"
            and validator is None
            and None
            in (
                authorization_url,
                token_url,
            )
        ):
            raise ConfigurationError(
                "flow: authorization_code needs a validator (to discover the endpoints) "
                "or both authorization_url and token_url"
            )
        descriptions = dict(scope_descriptions or {})
        check_scope_names(descriptions, name="scope_descriptions")
        self.flow = flow
        self._endpoints = (authorization_url, token_url)
        self._scope_descriptions = descriptions
        self._description = description
        # What OpenAPI shows until describe() knows the flow's endpoints (or for good).
        self.model: HTTPBearerModel | OAuth2Model = HTTPBearerModel(
            bearerFormat="JWT", description=description
        )
        self.scheme_name = scheme_name

    async def describe(self, scopes: Iterable[str]) -> None:
        """Describe this dependency in OpenAPI as an OAuth 2.0 authorization-code flow.

        Args:
            scopes: the scopes the routes ask for (offered in Swagger UI's dialog).

        The endpoints are the configured ones, else those of the issuer's discovery
        document (fetched with the validator's client and rules: no redirects, its
        deadline, its size cap; the document must name the issuer). When neither can be
        had, the HTTP bearer description stays and a warning is logged.
        """
        authorize, token = self._endpoints
        if authorize is None or token is None:
            found = await self._discover()
            if found is None:
                return
            authorize, token = authorize or found[0], token or found[1]
        names = sorted({*scopes, *self._scope_descriptions})
        code = OAuthFlowAuthorizationCode(
            authorizationUrl=authorize,
            tokenUrl=token,
            scopes={name: self._scope_descriptions.get(name, name) for name in names},
        )
        self.model = OAuth2Model(
            flows=OAuthFlows(authorizationCode=code), description=self._description
        )

    async def _discover(self) -> tuple[str, str] | None:
        validator = self.validator
        assert validator is not None  # checked in __init__
        issuer = validator.issuers[0]
        why = "no discovery document"
        for url in discovery_urls(issuer):
            answer = await validator._fetch(FetchRequest(url, "discovery"))
            if isinstance(answer, Exception):
                why = f"{url}: {answer.__class__.__name__}"
                continue
            try:
                document = server_metadata(answer, issuer)
            except ValueError as exc:
                why = f"{url}: {exc}"
                continue
            authorize = document.get("authorization_endpoint")
            token = document.get("token_endpoint")
            if all(isinstance(u, str) and is_safe_url(u) for u in (authorize, token)):
                return str(authorize), str(token)
            why = f"{url}: no usable authorization_endpoint and token_endpoint"
        logger.warning(
            "Swagger UI login: the endpoints of %s could not be discovered (%s); "
            "OpenAPI describes an HTTP bearer scheme instead",
            issuer,
            why,
        )
        return None

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
        except (BearerError, ServiceUnavailable) as exc:
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
            try:
                requirement.check(token, clock)
            except BearerError as exc:
                gate = scope.get(DPOP_KEY)
                if gate is not None:
                    gate.mark(exc, token, None if token is None else token.scheme)
                raise
            return token

        async def read_form() -> bytes | Iterable[str]:
            # FastAPI may have parsed the form already, which consumes the stream.
            form = getattr(request, "_form", None)
            if form is not None:
                return list(form.keys())
            return await request.body()

        gate = self.validator.dpop
        # The full view (scheme, Host, peer...) for a DPoP proof, or for an issuer resolver.
        full = gate is not None or self.validator.wants_request
        return await run_async(
            guard(
                request_view(scope, dpop=full),
                requirement,
                dpop=gate,
                clock=self.validator.clock,
            ),
            self.validator.validate_credentials,
            read_form,
        )

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
