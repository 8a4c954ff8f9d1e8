"""Protect Flask views with OAuth 2.0 JWT access tokens.

>>> from flask import Flask
>>> from apiguard.flask import ApiGuard, current_token, requires_scope
>>> app = Flask(__name__)
>>> app.config.update(
...     APIGUARD_ISSUER="https://tenant.example/",
...     APIGUARD_AUDIENCE="https://organizer.example/api",
... )
>>> guard = ApiGuard(app)
>>> @app.get("/api/appointments")
... @requires_scope("read:appointments")
... def appointments():
...     return {"owner": current_token.subject}

:class:`ApiGuard` builds one :class:`~apiguard.Validator` per app from its ``APIGUARD_*``
settings and answers every failure as RFC 6750 asks (see :mod:`apiguard.bearer`):
401 with a bare challenge when no token was sent, 400 ``invalid_request``, 401
``invalid_token``, 403 ``insufficient_scope``, 503 with ``Retry-After`` when the issuer's
keys cannot be had. Those answers come from error handlers registered on the app, so
``app.register_error_handler(InvalidToken, ...)`` (or any other class of
:mod:`apiguard.errors`) replaces one of them.

The decorators find the extension at request time, so they can be used on views and
blueprints defined before the app exists (application factories). The validated token is
kept on :data:`flask.g` for the request and read through :data:`current_token`.

The validator's HTTP client lives as long as the app; Flask has no shutdown hook, so it is
closed by process exit. Call ``app.extensions["apiguard"].validator.close()`` to close it
earlier (in tests, say).
"""

from __future__ import annotations

import functools
import inspect
import logging
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Final, Literal, NoReturn, TypeVar, cast, overload

import httpx
from flask import Blueprint, Flask, Request, Response, current_app, g, has_app_context, request
from werkzeug.local import LocalProxy

from .bearer import DEFAULT_REALM, extract_token, pick_realm, query_names_token, render_error
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
from .validator import Validator

__all__ = [
    "ApiGuard",
    "GuardState",
    "current_token",
    "protect",
    "requires_auth",
    "requires_scope",
]

logger = logging.getLogger("apiguard.flask")

F = TypeVar("F", bound=Callable[..., Any])

#: Where the extension keeps its per-app state (a :class:`GuardState`).
EXTENSION_KEY: Final = "apiguard"
_G_TOKEN: Final = "_apiguard_token"
_UNSET: Any = object()

# Validator keyword arguments and how a string from the config (an environment variable,
# say) is read for each: numbers parsed, lists split on whitespace.
_NUMBERS: Final = frozenset(
    {
        "leeway",
        "max_token_age",
        "cache_max_age",
        "cooldown",
        "max_stale",
        "timeout",
        "max_token_size",
        "max_jwks_size",
        "token_cache_size",
    }
)
_LISTS: Final = frozenset(
    {"audience", "algorithms", "required_claims", "scope_claims", "role_claims"}
)
_STRINGS: Final = frozenset({"issuer", "jwks_uri", "token_type", "shared_secret"})
# Python objects only (a callable cannot come from the environment).
_OBJECTS: Final = frozenset({"claims_validator"})
_VALIDATOR_OPTIONS: Final = _NUMBERS | _LISTS | _STRINGS | _OBJECTS
# Settings of this layer, not the validator's.
_OWN_OPTIONS: Final = frozenset({"realm", "exempt_options"})
_CONFIG_PREFIX: Final = "APIGUARD_"
_TRUE: Final = frozenset({"1", "true", "yes", "on"})
_FALSE: Final = frozenset({"0", "false", "no", "off"})
# RFC 6749 §3.3 scope-token: no space, no double quote, no backslash.
_SCOPE_TOKEN: Final = re.compile(r"[\x21\x23-\x5B\x5D-\x7E]+")


@dataclass(frozen=True, slots=True)
class GuardState:
    """What :meth:`ApiGuard.init_app` keeps in ``app.extensions["apiguard"]``.

    Attributes:
        validator: the app's validator (one per app, shared by all its threads).
        realm: the ``realm`` of the ``WWW-Authenticate`` challenges, or None for none.
        exempt_options: whether ``OPTIONS`` requests (CORS preflight) pass unauthenticated.
    """

    validator: Validator
    realm: str | None
    exempt_options: bool


class ApiGuard:
    """The Flask extension: one validator per app, and RFC 6750 error answers.

    Settings come from ``app.config`` as ``APIGUARD_<NAME>``: ``APIGUARD_ISSUER`` and
    ``APIGUARD_AUDIENCE`` (required), and every other keyword of :class:`~apiguard.Validator`
    (``APIGUARD_JWKS_URI``, ``APIGUARD_ALGORITHMS``, ``APIGUARD_LEEWAY``,
    ``APIGUARD_MAX_TOKEN_AGE``, ``APIGUARD_REQUIRED_CLAIMS``, ``APIGUARD_TOKEN_TYPE``,
    ``APIGUARD_SCOPE_CLAIMS``, ``APIGUARD_ROLE_CLAIMS``, ``APIGUARD_CLAIMS_VALIDATOR``,
    ``APIGUARD_SHARED_SECRET``, ``APIGUARD_CACHE_MAX_AGE``,
    ``APIGUARD_COOLDOWN``, ``APIGUARD_MAX_STALE``, ``APIGUARD_TIMEOUT``,
    ``APIGUARD_MAX_TOKEN_SIZE``, ``APIGUARD_MAX_JWKS_SIZE``, ``APIGUARD_TOKEN_CACHE_SIZE``),
    plus ``APIGUARD_REALM`` (default: the audience when there is one, else ``"api"``; None
    for no realm) and ``APIGUARD_EXEMPT_OPTIONS`` (default True). Strings are accepted for
    every setting, so values can come straight from the environment: numbers are parsed,
    and lists (audience, algorithms, claims) are split on whitespace. An unknown
    ``APIGUARD_*`` key is an error, so that a misspelt setting is not silently ignored.

    Args:
        app: the app to set up now; or call :meth:`init_app` later (application factory).
        validator: a ready :class:`~apiguard.Validator` to use instead of building one from
            the settings (e.g. ``LocalIssuer.validator()`` in tests); the validator settings
            in ``app.config`` are then not read.
        http_client: the ``httpx.Client`` the built validator fetches keys with.
        **options: settings by their lower-case name (``issuer=...``, ``leeway=5``,
            ``realm="organizer"``, ``clock=...``); they override ``app.config``.

    Raises:
        ConfigurationError: at :meth:`init_app`, when a setting is missing, unknown or
            unsafe (the message names it). Never per request.

    Warning:
        ``APIGUARD_EXEMPT_OPTIONS`` lets every ``OPTIONS`` request through, so that CORS
        preflights work; a view that handles ``OPTIONS`` itself runs without a token then.
        Set it to False when nothing needs preflight.
    """

    def __init__(
        self,
        app: Flask | None = None,
        *,
        validator: Validator | None = None,
        http_client: httpx.Client | None = None,
        **options: Any,
    ) -> None:
        unknown = sorted(set(options) - _VALIDATOR_OPTIONS - _OWN_OPTIONS - {"clock"})
        if unknown:
            raise ConfigurationError(f"ApiGuard: unknown options {unknown!r}")
        if validator is not None:
            if not isinstance(validator, Validator):
                raise ConfigurationError("validator: must be an apiguard.Validator")
            clashing = sorted(set(options) - _OWN_OPTIONS)
            clashing += ["http_client"] if http_client is not None else []
            if clashing:
                raise ConfigurationError(
                    f"validator: a ready validator excludes the options {clashing!r}"
                )
        self._validator = validator
        self._http_client = http_client
        self._options = dict(options)
        if app is not None:
            self.init_app(app)

    def init_app(self, app: Flask) -> None:
        """Build the app's validator, store it and register the error handlers.

        Raises:
            ConfigurationError: a setting is missing, unknown or unsafe.
        """
        settings = _read_config(app.config)
        settings.update(self._options)
        realm_setting = settings.pop("realm", _UNSET)
        exempt_options = _boolean(settings.pop("exempt_options", True))
        if self._validator is not None:
            validator = self._validator
        else:
            for name in ("issuer", "audience"):
                if settings.get(name) in (None, ""):
                    raise ConfigurationError(
                        f"{_CONFIG_PREFIX}{name.upper()}: required (set it in app.config "
                        f"or pass {name}= to ApiGuard)"
                    )
            validator = Validator(http_client=self._http_client, **_coerce(settings))
        realm = pick_realm(
            DEFAULT_REALM if realm_setting is _UNSET else realm_setting,
            validator.audiences,
            name=f"{_CONFIG_PREFIX}REALM",
        )
        app.extensions[EXTENSION_KEY] = GuardState(validator, realm, exempt_options)
        # An application that registered its own handler first keeps it.
        handlers = app.error_handler_spec[None][None]
        for error in (BearerError, KeySetUnavailable):
            if error not in handlers:
                app.register_error_handler(error, _answer)

    @staticmethod
    def state(app: Flask | None = None) -> GuardState:
        """The :class:`GuardState` of ``app`` (default: the current app).

        Raises:
            RuntimeError: ApiGuard was not set up on the app.
        """
        return _state(app or current_app)


def _read_config(config: Mapping[str, Any]) -> dict[str, Any]:
    settings: dict[str, Any] = {}
    for key, value in config.items():
        if not key.startswith(_CONFIG_PREFIX):
            continue
        name = key[len(_CONFIG_PREFIX) :].lower()
        if name not in _VALIDATOR_OPTIONS | _OWN_OPTIONS:
            raise ConfigurationError(f"{key}: not an apiguard setting")
        settings[name] = value
    return settings


def _coerce(settings: dict[str, Any]) -> dict[str, Any]:
    coerced: dict[str, Any] = {}
    for name, value in settings.items():
        if isinstance(value, str) and name in _NUMBERS:
            try:
                value = float(value) if "." in value else int(value)
            except ValueError:
                raise ConfigurationError(
                    f"{_CONFIG_PREFIX}{name.upper()}: must be a number, not {value!r}"
                ) from None
        elif isinstance(value, str) and name in _LISTS:
            value = value.split()
        coerced[name] = value
    return coerced


def _boolean(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in _TRUE | _FALSE:
        return value.lower() in _TRUE
    raise ConfigurationError(f"{_CONFIG_PREFIX}EXEMPT_OPTIONS: must be a boolean, not {value!r}")


def _state(app: Flask) -> GuardState:
    state = app.extensions.get(EXTENSION_KEY)
    if not isinstance(state, GuardState):
        raise RuntimeError(
            f"apiguard is not set up on app {app.name!r}: call ApiGuard(app) or "
            "guard.init_app(app) before serving requests"
        )
    return state


def _answer(error: ApiguardError) -> Response:
    state = current_app.extensions.get(EXTENSION_KEY)
    realm = state.realm if isinstance(state, GuardState) else None
    rendered = render_error(error, realm)
    return Response(
        rendered.body,
        status=rendered.status_code,
        headers=rendered.headers,
        mimetype=rendered.media_type,
    )


# -- authentication of one request ----------------------------------------------------------


def _authenticate(state: GuardState, req: Request, *, optional: bool) -> AccessToken | None:
    """Validate the request's bearer token once per request; None when optional and absent."""
    context = g._get_current_object()
    known = context.get(_G_TOKEN, None)
    if isinstance(known, AccessToken):
        return known
    environ = req.environ
    try:
        # A WSGI environ holds one Authorization value (what request.headers would list).
        token = extract_token(environ.get("HTTP_AUTHORIZATION"))
    except MissingToken:
        if optional:
            setattr(context, _G_TOKEN, None)
            return None
        logger.debug("bearer authentication failed: missing_token")
        raise
    except InvalidRequest as exc:
        logger.debug("bearer authentication failed: %s (%s)", exc.reason, exc.detail)
        raise
    # RFC 6750 §2: a client must not use more than one method to send the token. Only the
    # header is read, but a token also in the query or the form body makes the request
    # ambiguous; it is refused rather than guessed at.
    if query_names_token(environ.get("QUERY_STRING", "")):
        _sent_twice()
    access_token = state.validator.validate(token)
    # The body is looked at only for a valid token: no buffering for anonymous clients.
    if environ.get("CONTENT_TYPE") and req.mimetype == "application/x-www-form-urlencoded":
        # Cache the raw body first so that the view can still read it after the form.
        req.get_data(cache=True)
        if "access_token" in req.form:
            _sent_twice()
    setattr(context, _G_TOKEN, access_token)
    return access_token


def _sent_twice() -> NoReturn:
    logger.debug("bearer authentication failed: invalid_request (token sent twice)")
    raise InvalidRequest("access token sent in the header and in the query or body")


def _authorize(scopes: tuple[str, ...], match: str, *, optional: bool) -> None:
    # Each use of a context-local proxy is a lookup of its own: resolve them once.
    state = _state(current_app._get_current_object())  # type: ignore[attr-defined]
    req: Request = request._get_current_object()  # type: ignore[attr-defined]
    if req.method == "OPTIONS" and state.exempt_options:
        return
    access_token = _authenticate(state, req, optional=optional)
    if scopes and access_token is not None and not access_token.has_scopes(*scopes, match=match):
        logger.debug(
            "bearer authorization failed: insufficient_scope (%s of %s, subject %r)",
            match,
            " ".join(scopes),
            access_token.subject,
        )
        raise InsufficientScope(scopes, match=match)


def _check_scopes(scopes: Iterable[str], match: str) -> tuple[str, ...]:
    check_match(match)
    checked = tuple(scopes)
    for scope in checked:
        if not isinstance(scope, str) or not _SCOPE_TOKEN.fullmatch(scope):
            raise ValueError(f"not an RFC 6749 scope token: {scope!r}")
    return checked


def _guarded(view: F, scopes: tuple[str, ...], match: str, optional: bool) -> F:
    is_async = inspect.iscoroutinefunction(view)

    @functools.wraps(view)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        _authorize(scopes, match, optional=optional)
        if is_async:
            # ensure_sync runs an ``async def`` view (Flask's own recipe for decorators).
            return current_app.ensure_sync(view)(*args, **kwargs)
        return view(*args, **kwargs)

    return cast(F, wrapper)


# -- the public decorators ------------------------------------------------------------------


@overload
def requires_auth(view: F, /) -> F: ...
@overload
def requires_auth(*, optional: bool = False) -> Callable[[F], F]: ...
def requires_auth(view: F | None = None, /, *, optional: bool = False) -> F | Callable[[F], F]:
    """Require a valid access token to call the view.

    Use bare (``@requires_auth``) or with options (``@requires_auth(optional=True)``).

    Args:
        view: the view function (sync or ``async def``).
        optional: let a request without a token through (:data:`current_token` is then
            falsy); a token that is present must still be valid.

    The view answers 401 with a bare challenge when no token is sent, 400 when the
    ``Authorization`` header is malformed or repeated, 401 ``invalid_token`` when the token
    is not acceptable and 503 when the issuer's keys cannot be had.

    >>> @app.get("/api/private")  # doctest: +SKIP
    ... @requires_auth
    ... def private():
    ...     return {"subject": current_token.subject}
    """

    def decorate(function: F) -> F:
        return _guarded(function, (), "all", optional)

    return decorate(view) if view is not None else decorate


def requires_scope(*scopes: str, match: Literal["all", "any"] = "all") -> Callable[[F], F]:
    """Require a valid access token that grants ``scopes`` (all of them, or any).

    Args:
        *scopes: the scopes required, e.g. ``"read:appointments"``.
        match: ``"all"`` (default) or ``"any"``.

    Raises:
        ValueError: at decoration time, for no scope, a name that is not an RFC 6749 scope
            token, or another ``match``.

    A token without them answers 403 ``insufficient_scope`` with the required scopes in
    the challenge's ``scope``; otherwise as :func:`requires_auth`.

    >>> @app.post("/api/appointments")  # doctest: +SKIP
    ... @requires_scope("create:appointments")
    ... def create_appointment(): ...
    """
    required = _check_scopes(scopes, match)
    if not required:
        raise ValueError("requires_scope needs at least one scope (or use requires_auth)")

    def decorate(function: F) -> F:
        return _guarded(function, required, match, False)

    return decorate


def protect(
    target: Blueprint | Flask,
    *scopes: str,
    match: Literal["all", "any"] = "all",
    optional: bool = False,
) -> None:
    """Require a valid token (and ``scopes``, if given) on every route of a blueprint or app.

    The check runs as a ``before_request`` hook of ``target``; decorators on its views add
    their own requirements on top, and the token is validated only once per request.

    Args:
        target: a :class:`flask.Blueprint` (its routes only) or a :class:`flask.Flask` app
            (every request, unmatched URLs included).
        *scopes: scopes every route requires, as :func:`requires_scope`.
        match: ``"all"`` or ``"any"``.
        optional: as :func:`requires_auth`; not allowed together with scopes.

    Raises:
        ValueError: invalid scopes or ``match``, or ``optional`` with scopes.

    >>> api = Blueprint("api", __name__, url_prefix="/api")  # doctest: +SKIP
    >>> protect(api, "read:appointments")  # doctest: +SKIP
    """
    required = _check_scopes(scopes, match)
    if optional and required:
        raise ValueError("optional authentication cannot require scopes")

    def guard() -> None:
        _authorize(required, match, optional=optional)

    target.before_request(guard)


# -- the current token ----------------------------------------------------------------------


def _current_token() -> AccessToken:
    token = g.get(_G_TOKEN, _UNSET) if has_app_context() else _UNSET
    if isinstance(token, AccessToken):
        return token
    if token is None:
        raise RuntimeError(
            "no access token was sent with this request (the view allows anonymous "
            "requests); test `if current_token:` before using it"
        )
    raise RuntimeError(
        "current_token is only available in a view protected by requires_auth, "
        "requires_scope or protect(), while it handles a request"
    )


#: The validated :class:`~apiguard.AccessToken` of the current request.
#:
#: Falsy outside a protected view and when an optional view got no token; any attribute
#: access then raises a RuntimeError that says why.
current_token: AccessToken = cast(AccessToken, LocalProxy(_current_token))
