"""Bearer-token authentication for ASGI apps (Starlette and anything built on it).

:class:`BearerAuthMiddleware` is pure ASGI: it reads the ``Authorization`` header straight
from the scope, validates the token with an :class:`~apiguard.AsyncValidator` and fills
Starlette's ``scope["auth"]`` and ``scope["user"]``, so ``request.auth.scopes``,
``request.user`` and Starlette's own ``@requires`` keep working. A bad token is answered at
once with its RFC 6750 response (websockets are closed before the handshake with 1008).
:func:`requires_auth` and :func:`requires_scope` guard endpoints with the proper 401/403
challenges. The rules are apiguard's one request path, shared with apiguard.flask and
apiguard.fastapi: this module only translates an ASGI scope for it.

>>> from starlette.applications import Starlette
>>> from starlette.middleware import Middleware
>>> from starlette.responses import JSONResponse
>>> from starlette.routing import Route
>>> @requires_scope("read:appointments")
... async def appointments(request):
...     return JSONResponse({"subject": request.auth.token.subject})
>>> app = Starlette(
...     routes=[Route("/api/appointments", appointments)],
...     middleware=[
...         Middleware(
...             BearerAuthMiddleware,
...             issuer="https://tenant.example/",
...             audience="https://api.example",
...         )
...     ],
... )
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Awaitable, Callable, Collection, Iterable, Iterator, Sequence
from typing import Any, Final, TypeVar, Unpack, overload

import anyio.from_thread
from starlette.authentication import AuthCredentials, BaseUser, UnauthenticatedUser
from starlette.requests import HTTPConnection, Request
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from starlette.websockets import WebSocket

from ._core import Settings
from ._health import needs_prefetch, readiness
from ._request import (
    FORWARDED_HEADERS,
    OPTIONAL,
    PathExemptions,
    RequestView,
    Requirement,
    Validate,
    confirm,
    guard,
    run_async,
)
from ._rules import Rule, has_permissions, has_roles, step_up
from .bearer import DEFAULT_REALM, ErrorResponse, pick_realm, render_error
from .claims import AccessToken, ClaimPath, Match
from .errors import ApiguardError, BearerError, ConfigurationError, ServiceUnavailable
from .issuers import IssuerPolicy
from .metadata import REQUIREMENT_ATTRIBUTE, ProtectedResource, declared_scopes, protected_resource
from .validator import AsyncValidator

__all__ = [
    "BearerAuthMiddleware",
    "TokenCredentials",
    "TokenUser",
    "get_token",
    "readiness_endpoint",
    "requires",
    "requires_auth",
    "requires_permission",
    "requires_role",
    "requires_scope",
    "requires_step_up",
]

#: The scope key under which the middleware leaves its ``realm`` for :func:`requires_scope`.
REALM_KEY: Final = "apiguard.realm"
#: The scope key of the protected-resource metadata URL, for the challenges downstream.
METADATA_KEY: Final = "apiguard.resource_metadata"
#: The scope key naming the validator that authenticated the request (absent when the
#: middleware did not inspect it): a FastAPI dependency reuses the middleware's result only
#: when it was given the very same validator.
VALIDATOR_KEY: Final = "apiguard.validator"
#: The scope key under which the middleware leaves the validator's DPoP gate (or None), so
#: that :func:`requires_scope` answers with the same challenges.
DPOP_KEY: Final = "apiguard.dpop"
#: WebSocket close code for a refused token (RFC 6455 §7.4.1, policy violation).
WS_POLICY_VIOLATION: Final = 1008
#: WebSocket close code when the issuer's keys cannot be had (IANA registry: try again later).
WS_TRY_AGAIN_LATER: Final = 1013

_AUTHORIZATION: Final = b"authorization"
_CONTENT_TYPE: Final = b"content-type"
_ORIGIN: Final = b"origin"
_PREFLIGHT_METHOD: Final = b"access-control-request-method"
_HOST: Final = b"host"
_DPOP: Final = b"dpop"
_FORWARDED: Final = frozenset(name.encode("latin-1") for name in FORWARDED_HEADERS)


def request_view(scope: Scope, *, dpop: bool = False) -> RequestView:
    """The neutral view of an ASGI ``http`` or ``websocket`` scope (the one request path's input).

    Every ``Authorization`` value is kept (ASGI passes repeats through, and a repeat must be
    refused); ``raw_path`` is the path as sent, which shows what decoding hid. With
    ``dpop``, what a DPoP proof is checked against is read too (scheme, ``Host``, the peer,
    every ``DPoP`` value and the forwarded headers).
    """
    authorization: list[str] = []
    content_type: str | None = None
    origin = preflight_method = False
    for name, value in scope["headers"]:
        if name == _AUTHORIZATION:
            authorization.append(value.decode("latin-1"))
        elif name == _CONTENT_TYPE:
            content_type = value.decode("latin-1")
        elif name == _ORIGIN:
            origin = True
        elif name == _PREFLIGHT_METHOD:
            preflight_method = True
    http = scope["type"] == "http"
    raw = scope.get("raw_path")
    # The fields in order, positionally: half the cost of keywords, on every request.
    view = RequestView(
        scope.get("method", "WEBSOCKET") if http else "WEBSOCKET",  # method
        scope["path"],  # path
        raw.decode("latin-1").split("?", 1)[0] if isinstance(raw, bytes) else None,  # raw_path
        tuple(authorization),  # authorization
        scope.get("query_string", b""),  # query
        content_type if http else None,  # content_type
        origin,  # origin
        preflight_method,  # preflight_method
    )
    return _with_dpop(view, scope) if dpop else view


def _with_dpop(view: RequestView, scope: Scope) -> RequestView:
    """``view`` with what a DPoP proof is checked against (only when DPoP is on)."""
    host: str | None = None
    proofs: list[str] = []
    forwarded: list[tuple[str, str]] = []
    for name, value in scope["headers"]:
        if name == _HOST:
            host = value.decode("latin-1")
        elif name == _DPOP:
            proofs.append(value.decode("latin-1"))
        elif name in _FORWARDED:
            forwarded.append((name.decode("latin-1"), value.decode("latin-1")))
    client = scope.get("client")
    return view._replace(
        scheme=scope.get("scheme", "http"),
        host=host,
        peer=client[0] if client else None,
        dpop=tuple(proofs),
        forwarded=tuple(forwarded),
    )


F = TypeVar("F", bound=Callable[..., Any])


class TokenCredentials(AuthCredentials):
    """Starlette credentials for a validated token: ``.scopes`` and the ``AccessToken``.

    Attributes:
        token: the validated :class:`~apiguard.AccessToken`.
        scopes: the token's scopes as a sorted list (Starlette's ``@requires`` reads it).
    """

    def __init__(self, token: AccessToken) -> None:
        # AuthCredentials.__init__ would only copy the list again.
        self.scopes = sorted(token.scopes)
        self.token = token


class TokenUser(BaseUser):
    """The Starlette user behind a validated token, identified by its subject.

    ``identity`` and ``display_name`` are the token's ``sub`` (for a machine-to-machine
    token, ``<client_id>@clients``), falling back to its client id.
    """

    __slots__ = ("token",)

    def __init__(self, token: AccessToken) -> None:
        self.token = token

    @property
    def is_authenticated(self) -> bool:
        """Always True: the token was validated."""
        return True

    @property
    def identity(self) -> str:
        """The token's subject (or client id when it has no ``sub``)."""
        return self.token.subject or self.token.client_id or ""

    @property
    def display_name(self) -> str:
        """The same as :attr:`identity`: a token carries no human-friendly name."""
        return self.identity

    def __repr__(self) -> str:
        return f"TokenUser(identity={self.identity!r})"


def get_token(conn: HTTPConnection) -> AccessToken | None:
    """The validated token of a request or websocket, or None when it carries none.

    >>> token = get_token(request)  # doctest: +SKIP
    """
    auth = conn.scope.get("auth")
    return auth.token if isinstance(auth, TokenCredentials) else None


def _encode_headers(answer: ErrorResponse) -> list[tuple[bytes, bytes]]:
    headers = [
        (name.lower().encode("latin-1"), v.encode("latin-1")) for name, v in answer.headers.items()
    ]
    headers.append((b"content-type", answer.media_type.encode("latin-1")))
    headers.append((b"content-length", str(len(answer.body)).encode("latin-1")))
    return headers


class BearerAuthMiddleware:
    """Authenticate HTTP requests and websockets by their bearer token (RFC 6750).

    For ``http`` and ``websocket`` scopes: without a token the connection goes on as
    anonymous (``AuthCredentials()`` and ``UnauthenticatedUser()``, as Starlette's own
    ``AuthenticationMiddleware`` sets), or is refused with 401 when ``required`` is set.
    With a token it is validated; on success ``scope["auth"]`` is a
    :class:`TokenCredentials` (``.scopes``, ``.token``) and ``scope["user"]`` a
    :class:`TokenUser`. A bad token is answered at once: 400, 401 or 503 with the RFC 6750
    challenge and JSON body; a websocket is closed before the handshake with code 1008.
    ``lifespan`` and other scopes pass through untouched.

    Args:
        app: the ASGI app to protect.
        validator: the :class:`~apiguard.AsyncValidator` to use. If None, one is built
            from ``issuer``/``issuers`` and ``validator_settings``, and closed when the
            app's lifespan shuts down.
        issuer: the token issuer, when no ``validator`` is given.
        issuers: several trusted issuers (URLs and/or :class:`~apiguard.IssuerPolicy`),
            when no ``validator`` is given.
        exclude_paths: paths that need no token and are not inspected at all (a token
            there is ignored): exact paths, or ``"/prefix/*"`` for a whole subtree. A
            request path with a dot-segment (decoded or percent-encoded), an encoded slash
            or an empty segment never matches: it stays protected (SECURITY.md).
        exclude: a predicate on the ASGI scope; True means the same as an excluded path.
        required: refuse requests without a token (401) everywhere but the excluded paths.
        realm: the ``realm`` of the ``WWW-Authenticate`` challenges, or None for none.
            Default: the audience when there is one, else ``"api"`` (as in apiguard.flask).
        resource: the resource identifier (one of the audiences) or a
            :class:`~apiguard.metadata.ProtectedResource`: the middleware then answers
            ``GET /.well-known/oauth-protected-resource`` (the resource's path inserted,
            RFC 9728 §3.1) itself, without a token, and every challenge carries
            ``resource_metadata``. ``scopes_supported`` defaults to the scopes the app's
            Starlette routes declare with :func:`requires_scope`.
        **validator_settings: the :class:`~apiguard.AsyncValidator` settings
            (``audience`` at least), when no ``validator`` is given.

    Raises:
        ConfigurationError: both a validator and settings for one are given, or neither,
            or ``exclude_paths`` is not a collection of absolute paths.

    Tokens are read from the ``Authorization`` header only: a token in the query string or
    a form body is never used, and one sent there as well as in the header is refused
    (RFC 6750 §2). The rules are apiguard's one request path, the same as in apiguard.flask
    and apiguard.fastapi; :data:`VALIDATOR_KEY` in the scope records which validator
    decided.

    Warning:
        Every method is checked, ``OPTIONS`` included: the middleware cannot know whether
        the endpoint answers ``OPTIONS`` itself. Put ``CORSMiddleware`` outside this one
        (earlier in Starlette's ``middleware`` list) so that CORS preflights, which carry
        no token, are answered before they get here. Paths excluded here are open to
        anyone.
    """

    def __init__(
        self,
        app: ASGIApp,
        /,
        *,
        validator: AsyncValidator | None = None,
        issuer: str | None = None,
        issuers: Iterable[str | IssuerPolicy] | None = None,
        exclude_paths: Collection[str] = (),
        exclude: Callable[[Scope], bool] | None = None,
        required: bool = False,
        realm: str | None = DEFAULT_REALM,
        resource: str | ProtectedResource | None = None,
        **validator_settings: Unpack[Settings],
    ) -> None:
        if validator is None:
            if issuer is None and issuers is None and "resolver" not in validator_settings:
                raise ConfigurationError(
                    "issuer: give a validator, or an issuer (or issuers) and an audience",
                    setting="issuer",
                )
            validator = AsyncValidator(issuer=issuer, issuers=issuers, **validator_settings)
            self._owns_validator = True
        elif not isinstance(validator, AsyncValidator):
            raise ConfigurationError("validator: must be an apiguard.AsyncValidator")
        elif issuer is not None or issuers is not None or validator_settings:
            raise ConfigurationError("validator: give either a validator or the settings for one")
        else:
            self._owns_validator = False
        realm = pick_realm(realm, validator.audiences)
        self.metadata = protected_resource(resource, validator, name="resource")
        self._document: tuple[bytes, dict[str, str]] | None = None
        self.app = app
        self.validator = validator
        self.realm = realm
        self.required = required
        self._requirement = Requirement.declare(optional=not required)
        self._exemptions = PathExemptions(exclude_paths) or None
        self._exclude = exclude
        # A validator's DPoP gate and resolver are fixed at its construction.
        self._gate = validator.dpop
        self._full_view = self._gate is not None or validator.wants_request

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind != "http" and kind != "websocket":
            if kind == "lifespan" and self._owns_validator:
                await self._lifespan(scope, receive, send)
            else:
                await self.app(scope, receive, send)
            return
        if self.realm is not None:
            scope[REALM_KEY] = self.realm
        metadata = self.metadata
        if metadata is not None:
            scope[METADATA_KEY] = metadata.url
            if kind == "http" and scope["path"] in metadata.paths:
                await self._serve_metadata(scope, send)
                return
        gate = self._gate
        scope[DPOP_KEY] = gate
        # The full view (scheme, Host, peer...) for a DPoP proof, or for an issuer resolver.
        view = request_view(scope, dpop=self._full_view)
        if (self._exemptions is not None and self._exemptions.match(view.path, view.raw_path)) or (
            self._exclude is not None and self._exclude(scope)
        ):
            # Not inspected at all: no token is read, and none is recorded.
            scope["auth"] = AuthCredentials()
            scope["user"] = UnauthenticatedUser()
            await self.app(scope, receive, send)
            return
        buffered: list[Message] = []

        async def read_form() -> bytes:
            # The body is read (only for a valid token sent with a form body) and replayed
            # to the app, which then sees the request as it came.
            body = bytearray()
            while True:
                message = await receive()
                buffered.append(message)
                if message["type"] != "http.request":
                    break
                body += message.get("body", b"")
                if not message.get("more_body", False):
                    break
            return bytes(body)

        try:
            token = await run_async(
                guard(view, self._requirement, dpop=gate),
                self.validator.validate_credentials,
                read_form,
            )
        except (BearerError, ServiceUnavailable) as exc:
            await self._refuse(exc, scope, send)
            return
        scope[VALIDATOR_KEY] = self.validator
        if token is None:
            scope["auth"] = AuthCredentials()
            scope["user"] = UnauthenticatedUser()
        else:
            scope["auth"] = TokenCredentials(token)
            scope["user"] = TokenUser(token)
        if buffered:
            replay = iter(buffered)

            async def replaying() -> Message:
                for message in replay:
                    return message
                return await receive()

            await self.app(scope, replaying, send)
        else:
            await self.app(scope, receive, send)

    async def _serve_metadata(self, scope: Scope, send: Send) -> None:
        # Public (RFC 9728 §3): matched on the exact path, never inspected for a token.
        if scope["method"] not in ("GET", "HEAD"):
            await send(
                {
                    "type": "http.response.start",
                    "status": 405,
                    "headers": [(b"allow", b"GET, HEAD"), (b"content-length", b"0")],
                }
            )
            await send({"type": "http.response.body", "body": b""})
            return
        if self._document is None:
            assert self.metadata is not None
            # The app's routes are complete once it serves; gather their scopes once.
            routes = getattr(scope.get("app"), "routes", ())
            self._document = self.metadata.with_route_scopes(
                declared_scopes(_endpoints(routes))
            ).render()
        body, headers = self._document
        raw = [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in headers.items()]
        raw.append((b"content-length", str(len(body)).encode("latin-1")))
        await send({"type": "http.response.start", "status": 200, "headers": raw})
        await send(
            {"type": "http.response.body", "body": b"" if scope["method"] == "HEAD" else body}
        )

    async def _refuse(self, error: ApiguardError, scope: Scope, send: Send) -> None:
        if scope["type"] == "websocket":
            # Closing before accept makes the server deny the handshake (HTTP 403).
            await send(
                {
                    "type": "websocket.close",
                    "code": _ws_code(error),
                    "reason": _ws_reason(error),
                }
            )
            return
        answer = render_error(error, self.realm, scope.get(METADATA_KEY))
        await send(
            {
                "type": "http.response.start",
                "status": answer.status_code,
                "headers": _encode_headers(answer),
            }
        )
        await send({"type": "http.response.body", "body": answer.body})

    async def _lifespan(self, scope: Scope, receive: Receive, send: Send) -> None:
        shutting_down = closed = False

        async def close() -> None:
            nonlocal closed
            if not closed:
                closed = True
                await self.validator.aclose()

        async def receive_watching() -> Message:
            nonlocal shutting_down
            message = await receive()
            if message["type"] == "lifespan.shutdown":
                shutting_down = True
            return message

        async def send_closing(message: Message) -> None:
            # Close the HTTP client after the app's own shutdown, before the server is told
            # that the shutdown is complete (it may stop the event loop right after).
            if message["type"] in ("lifespan.shutdown.complete", "lifespan.shutdown.failed"):
                await close()
            await send(message)

        try:
            await self.app(scope, receive_watching, send_closing)
        finally:
            # An app without lifespan support fails at once; the server then runs without
            # lifespan, and the validator must stay open for the requests to come.
            if shutting_down:
                await close()


def _ws_code(error: ApiguardError) -> int:
    return WS_TRY_AGAIN_LATER if isinstance(error, ServiceUnavailable) else WS_POLICY_VIOLATION


async def _no_form() -> bytes:
    return b""  # behind the middleware, the body was checked for a second token already


async def _unchecked(credentials: Validate) -> AccessToken:
    raise AssertionError("a token without the middleware's validator")  # pragma: no cover


def _ws_reason(error: ApiguardError) -> str:
    if isinstance(error, BearerError) and error.error is not None:
        return error.error
    if isinstance(error, ServiceUnavailable):
        return "temporarily_unavailable"
    return "unauthorized"


def _endpoints(routes: Iterable[object]) -> Iterator[object]:
    """The endpoint functions of Starlette routes, mounted sub-apps' routes included."""
    for route in routes:
        endpoint = getattr(route, "endpoint", None)
        if inspect.isclass(endpoint):
            # An HTTPEndpoint: its handlers are its methods.
            yield from (getattr(endpoint, name.lower(), None) for name in _METHODS)
        elif endpoint is not None:
            yield endpoint
        yield from _endpoints(getattr(route, "routes", ()))


_METHODS: Final = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")


def _find_connection(args: tuple[Any, ...], kwargs: dict[str, Any]) -> HTTPConnection:
    for value in (kwargs.get("request"), kwargs.get("websocket"), *args):
        if isinstance(value, HTTPConnection):
            return value
    raise TypeError("requires_scope: the endpoint received no Request or WebSocket")


def _guard_endpoint(requirement: Requirement) -> Callable[[F], F]:
    """Wrap an endpoint so that the request's token (left by the middleware) must satisfy it."""

    def response(conn: HTTPConnection, error: ApiguardError) -> Response:
        gate = conn.scope.get(DPOP_KEY)
        if gate is not None and isinstance(error, BearerError):
            token = get_token(conn)
            gate.mark(error, token, None if token is None else token.scheme)
        answer = render_error(error, conn.scope.get(REALM_KEY), conn.scope.get(METADATA_KEY))
        return Response(
            answer.body, answer.status_code, answer.headers, media_type=answer.media_type
        )

    def clock_of(conn: HTTPConnection) -> Any:
        # Time rules run on the clock of the validator that decided (a test's fake clock).
        validator = conn.scope.get(VALIDATOR_KEY)
        return validator.clock if isinstance(validator, AsyncValidator) else None

    async def confirmed(conn: HTTPConnection) -> None:
        # The requirement, and the revocation check it may ask for (one request path).
        validator = conn.scope.get(VALIDATOR_KEY)
        view = request_view(conn.scope)
        flow = confirm(view, requirement, get_token(conn), clock_of(conn))
        check = validator.validate_credentials if validator else _unchecked
        await run_async(flow, check, _no_form)

    async def refusal(conn: HTTPConnection) -> ApiguardError | None:
        try:
            if requirement.check_revocation:
                await confirmed(conn)
            else:
                requirement.check(get_token(conn), clock_of(conn))
        except (BearerError, ServiceUnavailable) as exc:
            return exc
        return None

    def sync_refusal(conn: HTTPConnection) -> ApiguardError | None:
        if requirement.check_revocation:
            # Starlette runs a sync endpoint in a worker thread of anyio's: the async
            # validator is driven from there on the event loop.
            return anyio.from_thread.run(refusal, conn)
        try:
            requirement.check(get_token(conn), clock_of(conn))
        except BearerError as exc:
            return exc
        return None

    def decorator(func: F) -> F:
        if inspect.iscoroutinefunction(func):

            @functools.wraps(func)
            async def async_wrapper(*args: Any, **kwargs: Any) -> Any:
                conn = _find_connection(args, kwargs)
                error = await refusal(conn)
                if error is None:
                    return await func(*args, **kwargs)
                if isinstance(conn, WebSocket):
                    await conn.close(_ws_code(error), _ws_reason(error))
                    return None
                return response(conn, error)

            setattr(async_wrapper, REQUIREMENT_ATTRIBUTE, requirement)
            return async_wrapper  # type: ignore[return-value]

        @functools.wraps(func)
        def sync_wrapper(*args: Any, **kwargs: Any) -> Any:
            conn = _find_connection(args, kwargs)
            error = sync_refusal(conn)
            if error is None:
                return func(*args, **kwargs)
            return response(conn, error)

        setattr(sync_wrapper, REQUIREMENT_ATTRIBUTE, requirement)
        return sync_wrapper  # type: ignore[return-value]

    return decorator


def requires_scope(
    *scopes: str, match: Match = "all", check_revocation: bool = False
) -> Callable[[F], F]:
    """Guard a Starlette endpoint: the request needs a valid token granting ``scopes``.

    Works on request/response functions (async or sync) and ``HTTPEndpoint`` methods, and
    on websocket endpoints. The token is the one :class:`BearerAuthMiddleware` validated;
    every method is checked, ``OPTIONS`` included.

    Args:
        *scopes: the scopes required. None at all means a valid token and nothing more, as
            :func:`requires_auth` (the same in every apiguard layer).
        match: ``"all"`` (default) requires every scope, ``"any"`` at least one.

    Raises:
        ConfigurationError: (a ValueError) at decoration time, for a name that is not an
            RFC 6749 scope token or another ``match``.

    Answers 401 with a bare ``Bearer`` challenge when the request carries no validated
    token (or :class:`BearerAuthMiddleware` did not run), 403 ``insufficient_scope`` naming
    the scopes when it lacks them; a websocket is closed with 1008 instead.

    >>> @requires_scope("read:contacts", "read:tasks", match="any")
    ... async def overview(request): ...
    """
    return _guard_endpoint(Requirement.declare(scopes, match, check_revocation=check_revocation))


@overload
def requires_auth(func: F, /) -> F: ...
@overload
def requires_auth(
    *, optional: bool = False, check_revocation: bool = False
) -> Callable[[F], F]: ...
def requires_auth(
    func: F | None = None, /, *, optional: bool = False, check_revocation: bool = False
) -> F | Callable[[F], F]:
    """Guard a Starlette endpoint: the request needs a valid token (as in apiguard.flask).

    Use bare (``@requires_auth``) or with options (``@requires_auth(optional=True)``). With
    ``optional`` a request without a token goes through (:func:`get_token` is then None);
    a token that was sent has been validated by :class:`BearerAuthMiddleware` already.

    ``check_revocation=True`` also asks the issuer whether the token is still active
    (RFC 7662, the issuer's ``introspection`` settings and cache): a revoked JWT is then
    refused before it expires.

    Raises:
        ConfigurationError: at decoration time, a flag is not a boolean.

    >>> @requires_auth
    ... async def private(request): ...
    """
    if optional is True and check_revocation is False:
        requirement = OPTIONAL
    else:
        requirement = Requirement.declare(optional=optional, check_revocation=check_revocation)
    decorate = _guard_endpoint(requirement)
    return decorate(func) if func is not None else decorate


def requires(*rules: Rule) -> Callable[[F], F]:
    """Guard a Starlette endpoint: a valid token that meets every one of ``rules``.

    The rules are apiguard's, the same in every layer (:func:`~apiguard.has_permissions`,
    :func:`~apiguard.has_roles`, :func:`~apiguard.claim_equals`,
    :func:`~apiguard.claim_includes`, :func:`~apiguard.claim_check`,
    :func:`~apiguard.step_up`), checked in the order given on the token
    :class:`BearerAuthMiddleware` validated.

    Raises:
        ConfigurationError: at decoration time, an argument is not a rule.

    A refusal answers 403 ``insufficient_scope`` with the rule's fixed description, or 401
    ``insufficient_user_authentication`` for step-up; a websocket is closed with 1008.

    >>> from apiguard import claim_equals
    >>> @requires(claim_equals("tid", "9188040d-6c67-4c5b-b112-36a304b66dad"))
    ... async def tenant(request): ...
    """
    return _guard_endpoint(Requirement.declare(rules=rules))


def requires_permission(*permissions: str, match: Match = "all") -> Callable[[F], F]:
    """Guard a Starlette endpoint with Auth0 RBAC permissions (as in apiguard.flask).

    Raises:
        ConfigurationError: at decoration time, no permission or a bad ``match``.

    >>> @requires_permission("delete:appointments")
    ... async def delete_appointment(request): ...
    """
    return requires(has_permissions(*permissions, match=match))


def requires_role(
    *roles: str, match: Match = "all", claim: str | Sequence[str] | ClaimPath | None = None
) -> Callable[[F], F]:
    """Guard a Starlette endpoint with roles of the token's subject (as in apiguard.flask).

    ``claim`` says where the roles are; default: the token's
    :attr:`~apiguard.AccessToken.roles` (the validator's ``role_claims``).

    Raises:
        ConfigurationError: at decoration time, no role, a bad ``match`` or claim path.

    >>> @requires_role("organizer-admin", claim=("https://organizer.example/roles",))
    ... async def admin(request): ...
    """
    return requires(has_roles(*roles, match=match, claim=claim))


def requires_step_up(
    acr_values: Iterable[str] = (), max_age: int | None = None
) -> Callable[[F], F]:
    """Guard a Starlette endpoint with RFC 9470 step-up (see :func:`~apiguard.step_up`).

    >>> @requires_step_up(max_age=600)
    ... async def security(request): ...
    """
    return requires(step_up(acr_values, max_age))


def readiness_endpoint(validator: AsyncValidator) -> Callable[[Request], Awaitable[Response]]:
    """A readiness probe endpoint for ``validator``: 200 when every issuer's keys can serve.

    Mount it on a path of its own, outside any token requirement: ``Route("/ready",
    readiness_endpoint(validator))`` in Starlette, ``app.add_route("/ready", ...)`` in
    FastAPI. When some issuer has no keys yet, it fetches them first (at most once per
    cooldown), so the first probes also warm the app up. The answer is JSON:
    ``{"status": "ready" | "unavailable", "issuers": {issuer: {"state", "keys"}}}``, 503
    while some issuer's keys are missing; fetch errors go to the log, not the answer.

    >>> routes = [Route("/ready", readiness_endpoint(validator))]  # doctest: +SKIP
    """
    if not isinstance(validator, AsyncValidator):
        raise ConfigurationError("validator: must be an apiguard.AsyncValidator")

    async def ready(request: Request) -> Response:
        health = validator.health()
        if needs_prefetch(health):
            health = await validator.prefetch()
        answer = readiness(health)
        return Response(
            answer.body, answer.status_code, answer.headers, media_type=answer.media_type
        )

    return ready
