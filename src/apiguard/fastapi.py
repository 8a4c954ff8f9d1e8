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

import json

from fastapi import FastAPI, HTTPException
from fastapi.openapi.models import HTTPBearer as HTTPBearerModel
from fastapi.security import SecurityScopes
from fastapi.security.base import SecurityBase
from starlette.requests import Request
from starlette.responses import Response

from .asgi import REALM_KEY, get_token
from .bearer import (
    DEFAULT_REALM,
    ErrorResponse,
    extract_token,
    pick_realm,
    query_names_token,
    render_error,
)
from .claims import AccessToken, check_match
from .errors import (
    ApiguardError,
    BearerError,
    ConfigurationError,
    InsufficientScope,
    InvalidRequest,
    KeySetUnavailable,
    MissingToken,
)
from .validator import AsyncValidator

__all__ = ["Authorize", "BearerException", "bearer_exception_handler", "install"]


class BearerException(HTTPException):
    """A refused request, carrying the RFC 6750 answer apiguard rendered.

    It is an ``HTTPException`` with the right status and headers, so even without
    :func:`install` the client gets them (the body is then FastAPI's ``{"detail": ...}``);
    with :func:`install` the body is apiguard's ``{"error", "error_description"}`` JSON.

    Attributes:
        error: the apiguard error that caused the refusal.
        answer: the rendered response (status, headers, body).
    """

    def __init__(self, error: ApiguardError, realm: str | None = None) -> None:
        answer = render_error(error, realm)
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
    """Register :func:`bearer_exception_handler` so refusals get the RFC 6750 JSON body."""
    app.add_exception_handler(BearerException, bearer_exception_handler)


class Authorize(SecurityBase):
    """A FastAPI security dependency: require a valid bearer token with the route's scopes.

    Use it with ``Security(auth, scopes=[...])`` (all scopes are required, or any one with
    ``match="any"``), or ``Depends(auth)`` for any valid token. It returns the
    :class:`~apiguard.AccessToken`. OpenAPI shows an HTTP bearer (JWT) scheme.

    Args:
        validator: the :class:`~apiguard.AsyncValidator` that checks the
            ``Authorization`` header. May be None when
            :class:`~apiguard.asgi.BearerAuthMiddleware` protects the app: the token it
            validated is then used (and a request it let through without one gets 401).
        match: ``"all"`` or ``"any"`` of the scopes asked for by ``Security``.
        realm: the challenge's ``realm``, or None for none. Default: the middleware's when
            it validated the token, else the validator's one audience (or ``"api"``).
        scheme_name: the name of the security scheme in the OpenAPI document.
        description: its description there.

    Raises:
        ConfigurationError: ``validator`` is not an AsyncValidator, or ``match`` is wrong.
        BearerException: (per request) 400, 401, 403 or 503 with the RFC 6750 answer.
        RuntimeError: (per request) neither a validator nor the middleware is there.
    """

    def __init__(
        self,
        validator: AsyncValidator | None = None,
        *,
        match: str = "all",
        realm: str | None = DEFAULT_REALM,
        scheme_name: str = "bearerAuth",
        description: str | None = "An OAuth 2.0 access token (JWT)",
    ) -> None:
        if validator is not None and not isinstance(validator, AsyncValidator):
            raise ConfigurationError("validator: must be an apiguard.AsyncValidator")
        try:
            self.match = check_match(match)
        except ValueError as exc:
            raise ConfigurationError(str(exc)) from None
        self._own_realm = realm is not DEFAULT_REALM
        audiences = validator.audiences if validator is not None else ()
        self.validator = validator
        self.realm = pick_realm(realm, audiences) if self._own_realm or audiences else None
        self.model = HTTPBearerModel(bearerFormat="JWT", description=description)
        self.scheme_name = scheme_name

    async def __call__(self, request: Request, security_scopes: SecurityScopes) -> AccessToken:
        """Return the request's validated token, or raise :class:`BearerException`."""
        realm = self.realm if self._own_realm else request.scope.get(REALM_KEY, self.realm)
        try:
            token = await self._token(request)
            required = security_scopes.scopes
            if required and not token.has_scopes(*required, match=self.match):
                raise InsufficientScope(required, match=self.match)
        except (BearerError, KeySetUnavailable) as exc:
            raise BearerException(exc, realm) from None
        return token

    async def _token(self, request: Request) -> AccessToken:
        token = get_token(request)
        if token is not None:
            return token
        if self.validator is None:
            if "auth" in request.scope:
                raise MissingToken("no validated token on the request")
            raise RuntimeError("Authorize has no validator and BearerAuthMiddleware did not run")
        values = request.headers.getlist("authorization")
        raw = extract_token(values or None)
        if query_names_token(request.scope.get("query_string", b"")):
            raise InvalidRequest("bearer token sent in both the header and the query")
        return await self.validator.validate(raw)

    def __repr__(self) -> str:
        return f"Authorize(validator={self.validator!r}, scheme_name={self.scheme_name!r})"
