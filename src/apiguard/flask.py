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
blueprints defined before the app exists (application factories). The rules are apiguard's
one request path (the same as in the ASGI and FastAPI layers); this module only translates
a Flask request for it. The validated token is kept in the request itself (its WSGI
environ, never :data:`flask.g`) and read through :data:`current_token`.

The validator's HTTP client lives as long as the app; Flask has no shutdown hook, so it is
closed by process exit. Call ``app.extensions["apiguard"].validator.close()`` to close it
earlier (in tests, say).
"""

from __future__ import annotations

import functools
import inspect
import logging
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final, TypeVar, Unpack, cast, overload

import httpx
from flask import Blueprint, Flask, Request, Response, current_app, has_request_context, request
from werkzeug.local import LocalProxy

from ._core import CONFIG_SETTINGS, POLICY_SETTINGS, Settings
from ._health import needs_prefetch, readiness
from ._request import (
    FORWARDED_HEADERS,
    PathExemptions,
    RequestView,
    Requirement,
    Validate,
    guard,
    run,
)
from ._rules import Rule, has_permissions, has_roles, step_up
from ._settings import SettingInfo, boolean, describe, fail, from_text, setting, settings_of
from .bearer import DEFAULT_REALM, pick_realm, render_error
from .claims import AccessToken, ClaimPath, Match
from .errors import ApiguardError, BearerError, ConfigurationError, ServiceUnavailable
from .issuers import IssuerPolicy
from .metadata import (
    REQUIREMENT_ATTRIBUTE,
    ProtectedResource,
    ResourceMetadata,
    declared_scopes,
    protected_resource,
)
from .validator import Validator

__all__ = [
    "ApiGuard",
    "GuardState",
    "current_token",
    "protect",
    "readiness_view",
    "requires",
    "requires_auth",
    "requires_permission",
    "requires_role",
    "requires_scope",
    "requires_step_up",
]

logger = logging.getLogger("apiguard.flask")

F = TypeVar("F", bound=Callable[..., Any])

#: Where the extension keeps its per-app state (a :class:`GuardState`).
EXTENSION_KEY: Final = "apiguard"
# Request state lives in the request's WSGI environ, never in flask.g (the app context,
# which Flask reuses across requests when one is pushed): the validated token of this
# request, and what validated it.
_TOKEN: Final = "apiguard.token"
_VALIDATED: Final = "apiguard.validated"
_UNSET: Any = object()
#: The endpoint name of the protected-resource metadata view ApiGuard registers.
METADATA_ENDPOINT: Final = "apiguard_protected_resource"
_CONFIG_PREFIX: Final = "APIGUARD_"


@dataclass(frozen=True, slots=True, kw_only=True)
class _LayerSettings:
    """The settings of this layer (beside the validator's), declared like theirs."""

    issuer: str | None = setting(
        None,
        doc="the issuer URL; several issuer URLs separated by spaces trust each of them",
        kind="string",
    )
    issuers: Iterable[str | IssuerPolicy] | None = setting(
        None, doc="several issuers: URLs and/or apiguard.IssuerPolicy objects", kind="object"
    )
    realm: str | None = setting(
        DEFAULT_REALM,
        doc="the realm of the WWW-Authenticate challenges (None for none; default: the "
        "audience when there is one, else 'api')",
        kind="string",
    )
    exempt_options: bool = setting(
        True, doc="let OPTIONS requests (CORS preflight) through unauthenticated", kind="boolean"
    )
    resource: str | ProtectedResource | None = setting(
        None,
        doc="the resource identifier (one of the audiences) or an "
        "apiguard.metadata.ProtectedResource: the app then serves its RFC 9728 metadata at "
        "/.well-known/oauth-protected-resource and every challenge names it in "
        "resource_metadata (scopes_supported defaults to the scopes the views declare)",
        kind="string",
    )


class GuardSettings(Settings, total=False):
    """The keyword settings of :class:`ApiGuard`, for typing (declared on the dataclasses)."""

    issuer: str | None
    issuers: Iterable[str | IssuerPolicy] | None
    realm: str | None
    exempt_options: bool
    resource: str | ProtectedResource | None


#: Every ``APIGUARD_*`` setting: this layer's, then the per-issuer and validator-wide ones.
_LAYER: Final = settings_of(_LayerSettings)
SETTINGS: Final[dict[str, SettingInfo]] = {**_LAYER, **POLICY_SETTINGS, **CONFIG_SETTINGS}
#: Settings that only make sense for a validator ApiGuard builds itself.
_VALIDATOR_SETTINGS: Final = SETTINGS.keys() - {"realm", "exempt_options", "resource"}


@dataclass(frozen=True, slots=True)
class GuardState:
    """What :meth:`ApiGuard.init_app` keeps in ``app.extensions["apiguard"]``.

    Attributes:
        validator: the app's validator (one per app, shared by all its threads).
        realm: the ``realm`` of the ``WWW-Authenticate`` challenges, or None for none.
        exempt_options: whether ``OPTIONS`` requests that Flask answers itself (no view
            declares ``OPTIONS``: CORS preflights) pass :func:`protect` unauthenticated.
        metadata: the protected-resource metadata (RFC 9728) served, or None.
    """

    validator: Validator
    realm: str | None
    exempt_options: bool
    metadata: ResourceMetadata | None = None

    @property
    def resource_metadata(self) -> str | None:
        """The ``resource_metadata`` of every challenge: the document's URL, or None."""
        return self.metadata.url if self.metadata is not None else None


class ApiGuard:
    """The Flask extension: one validator per app, and RFC 6750 error answers.

    Settings come from ``app.config`` as ``APIGUARD_<NAME>``, or as keywords by their
    lower-case name (which override ``app.config``). ``APIGUARD_ISSUER`` (one issuer URL,
    or several separated by spaces) and ``APIGUARD_AUDIENCE`` are the usual pair. Strings
    are accepted for every setting that can be written as text, so values can come
    straight from the environment: numbers are parsed, lists are split on whitespace,
    booleans read from true/false, 1/0, yes/no, on/off. An unknown ``APIGUARD_*`` key is an
    error, so that a misspelt setting is not silently ignored; an error names the setting
    as it was given (``APIGUARD_LEEWAY`` from the config, ``leeway`` as a keyword).

    Settings:

    {settings}

    Args:
        app: the app to set up now; or call :meth:`init_app` later (application factory).
        validator: a ready :class:`~apiguard.Validator` to use instead of building one from
            the settings (e.g. ``LocalIssuer.validator()`` in tests); the validator settings
            in ``app.config`` are then not read.
        http_client: the ``httpx.Client`` the built validator fetches keys with.
        **options: settings by their lower-case name (``issuer=...``, ``leeway=5``,
            ``realm="organizer"``, ``clock=...``).

    Raises:
        ConfigurationError: at :meth:`init_app`, when a setting is missing, unknown or
            unsafe (the message starts with its name). Never per request.

    ``APIGUARD_EXEMPT_OPTIONS`` lets :func:`protect` pass the ``OPTIONS`` requests that
    Flask answers itself (no view runs), so that CORS preflights work; a view that declares
    ``OPTIONS`` is checked like any other method, preflight or not.
    """

    def __init__(
        self,
        app: Flask | None = None,
        *,
        validator: Validator | None = None,
        http_client: httpx.Client | None = None,
        **options: Unpack[GuardSettings],
    ) -> None:
        unknown = sorted(set(options) - SETTINGS.keys())
        if unknown:
            raise TypeError(f"ApiGuard() got an unexpected keyword argument {unknown[0]!r}")
        if validator is not None:
            if not isinstance(validator, Validator):
                raise ConfigurationError("validator: must be an apiguard.Validator")
            clashing = sorted(set(options) & _VALIDATOR_SETTINGS)
            clashing += ["http_client"] if http_client is not None else []
            if clashing:
                raise ConfigurationError(
                    f"validator: a ready validator excludes the options {clashing!r}"
                )
        self._validator = validator
        self._http_client = http_client
        self._options: dict[str, Any] = dict(options)
        if app is not None:
            self.init_app(app)

    def init_app(self, app: Flask) -> None:
        """Build the app's validator, store it and register the error handlers.

        Raises:
            ConfigurationError: a setting is missing, unknown or unsafe.
        """
        settings, labels = _read_config(app.config)
        settings.update(self._options)
        labels.update({name: name for name in self._options})
        try:
            realm_setting = settings.pop("realm", DEFAULT_REALM)
            exempt_options = boolean("exempt_options", settings.pop("exempt_options", True))
            resource_setting = settings.pop("resource", None)
            if self._validator is not None:
                validator = self._validator
            else:
                validator = _build_validator(settings, self._http_client)
            realm = pick_realm(
                realm_setting, validator.audiences, name=labels.get("realm", "realm")
            )
            metadata = protected_resource(
                resource_setting, validator, name=labels.get("resource", "resource")
            )
        except ConfigurationError as exc:
            raise _relabel(exc, labels) from None
        app.extensions[EXTENSION_KEY] = GuardState(validator, realm, exempt_options, metadata)
        if metadata is not None:
            for path in metadata.paths:
                app.add_url_rule(path, METADATA_ENDPOINT, _metadata_view, methods=["GET"])
        # An application that registered its own handler first keeps it.
        handlers = app.error_handler_spec[None][None]
        for error in (BearerError, ServiceUnavailable):
            if error not in handlers:
                app.register_error_handler(error, _answer)

    @staticmethod
    def state(app: Flask | None = None) -> GuardState:
        """The :class:`GuardState` of ``app`` (default: the current app).

        Raises:
            RuntimeError: ApiGuard was not set up on the app.
        """
        return _state(app or current_app)


def _read_config(config: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, str]]:
    """The ``APIGUARD_*`` settings of ``config`` (text read by kind), and each one's key."""
    settings: dict[str, Any] = {}
    labels: dict[str, str] = {}
    for key, value in config.items():
        if not key.startswith(_CONFIG_PREFIX):
            continue
        name = key[len(_CONFIG_PREFIX) :].lower()
        info = SETTINGS.get(name)
        if info is None:
            raise ConfigurationError(f"{key}: not an apiguard setting", setting=key)
        if isinstance(value, str) and info.kind != "string":
            value = from_text(info, value, name=key)
        settings[name] = value
        labels[name] = key
    return settings, labels


def _build_validator(settings: dict[str, Any], client: httpx.Client | None) -> Validator:
    issuer = settings.pop("issuer", None)
    if isinstance(issuer, str):
        # One issuer URL, or several separated by spaces (no issuer contains a space).
        urls = issuer.split()
        if len(urls) > 1 and settings.get("issuers") is None:
            settings["issuers"] = urls
            issuer = None
        else:
            issuer = urls[0] if urls else None
    if issuer is None and settings.get("issuers") is None and settings.get("resolver") is None:
        raise fail("issuer", "required (set it in app.config or pass issuer= to ApiGuard)")
    return Validator(issuer=issuer, http_client=client, **settings)


def _relabel(error: ConfigurationError, labels: Mapping[str, str]) -> ConfigurationError:
    """Name the setting in ``error`` as the user wrote it (``APIGUARD_LEEWAY``, ``leeway``)."""
    name = error.setting
    if name is None or name not in SETTINGS or not error.detail.startswith(name):
        return error  # no setting of ours, or already named as given
    label = labels.get(name, _CONFIG_PREFIX + name.upper())
    if label == name:
        return error
    return ConfigurationError(label + error.detail[len(name) :], setting=label)


def _state(app: Flask) -> GuardState:
    state = app.extensions.get(EXTENSION_KEY)
    if not isinstance(state, GuardState):
        raise RuntimeError(
            f"apiguard is not set up on app {app.name!r}: call ApiGuard(app) or "
            "guard.init_app(app) before serving requests"
        )
    return state


def _metadata_view() -> Response:
    # Public and the same for everyone; the scopes are gathered from the views on each
    # request (a walk of the app's view functions: cheap, and always current).
    app = current_app._get_current_object()  # type: ignore[attr-defined]
    metadata = _state(app).metadata
    assert metadata is not None  # the rule exists only with metadata
    body, headers = metadata.with_route_scopes(
        declared_scopes(app.view_functions.values())
    ).render()
    return Response(body, status=200, headers=headers)


def _answer(error: ApiguardError) -> Response:
    state = current_app.extensions.get(EXTENSION_KEY)
    if isinstance(state, GuardState):
        rendered = render_error(error, state.realm, state.resource_metadata)
    else:
        rendered = render_error(error)
    return Response(
        rendered.body,
        status=rendered.status_code,
        headers=rendered.headers,
        mimetype=rendered.media_type,
    )


# -- authentication of one request ----------------------------------------------------------


_FORWARDED_KEYS: Final = tuple(
    (f"HTTP_{name.upper().replace('-', '_')}", name) for name in sorted(FORWARDED_HEADERS)
)


def _view(req: Request, *, dpop: bool = False) -> RequestView:
    """The neutral view of a Flask request (what the one request path reads)."""
    environ = req.environ
    # A WSGI environ holds one Authorization value; werkzeug's server and gunicorn keep the
    # request target as sent in RAW_URI / REQUEST_URI, which shows escapes PATH_INFO hid.
    authorization = environ.get("HTTP_AUTHORIZATION")
    raw_uri = environ.get("RAW_URI") or environ.get("REQUEST_URI")
    raw_path = raw_uri.split("?", 1)[0] if isinstance(raw_uri, str) else None
    if raw_path is not None and not raw_path.startswith("/"):
        raw_path = None  # an absolute-form target: the server's PATH_INFO tells the path
    # The fields in order, positionally: half the cost of keywords, on every request.
    view = RequestView(
        req.method,  # method
        req.path,  # path
        raw_path,  # raw_path
        () if authorization is None else (authorization,),  # authorization
        environ.get("QUERY_STRING", ""),  # query
        environ.get("CONTENT_TYPE"),  # content_type
        "HTTP_ORIGIN" in environ,  # origin
        "HTTP_ACCESS_CONTROL_REQUEST_METHOD" in environ,  # preflight_method
    )
    if not dpop:
        return view
    # WSGI joins a repeated header into one value with commas, which the proof check
    # refuses as two proofs; the path falls back to SCRIPT_NAME + PATH_INFO as octets.
    proof = environ.get("HTTP_DPOP")
    path = raw_path
    if path is None:
        path = (environ.get("SCRIPT_NAME", "") + environ.get("PATH_INFO", "")) or "/"
    return view._replace(
        raw_path=path,
        scheme=environ.get("wsgi.url_scheme", "http"),
        host=environ.get("HTTP_HOST"),
        peer=environ.get("REMOTE_ADDR"),
        dpop=() if proof is None else (proof,),
        forwarded=tuple((name, environ[key]) for key, name in _FORWARDED_KEYS if key in environ),
    )


def _authorize(
    requirement: Requirement,
    *,
    exemptions: PathExemptions | None = None,
    from_hook: bool = False,
) -> None:
    # Each use of a context-local proxy is a lookup of its own: resolve them once.
    state = _state(current_app._get_current_object())  # type: ignore[attr-defined]
    req: Request = request._get_current_object()  # type: ignore[attr-defined]
    environ = req.environ
    validator = state.validator
    # Flask answers OPTIONS itself for a rule that does not declare it: no view runs, so
    # there is nothing to protect. A view that declares OPTIONS gets the same checks as
    # any other method (a decorator runs only when its view does).
    exempt = (
        from_hook
        and state.exempt_options
        and req.method == "OPTIONS"
        and req.url_rule is not None
        and bool(getattr(req.url_rule, "provide_automatic_options", False))
    )

    def validate(credentials: Validate) -> AccessToken:
        # The request's own environ is the only state: a pushed app context or a sub-request
        # never shares it. One validation per request, even with protect() and a decorator
        # (a DPoP proof is checked, and its jti spent, once; a revocation asked once).
        known = environ.get(_VALIDATED)
        if known is not None and known[0] is validator and known[1] == credentials.token:
            token: AccessToken = known[2]
            if credentials.check_revocation and not known[3]:
                validator.check_revocation(credentials.token, token)
                environ[_VALIDATED] = (*known[:3], True)
            return token
        token = validator.validate_credentials(credentials)
        environ[_VALIDATED] = (validator, credentials.token, token, credentials.check_revocation)
        return token

    def read_form() -> bytes:
        # Cached, so that the view can still read the body (and its form) afterwards.
        return req.get_data(cache=True)

    try:
        gate = validator.dpop
        flow = guard(
            # The full view (Host, peer...) for a DPoP proof, or for an issuer resolver.
            _view(req, dpop=gate is not None or validator.wants_request),
            requirement,
            exemptions=exemptions,
            exempt=exempt,
            dpop=gate,
            clock=validator.clock,
        )
        token = run(flow, validate, read_form)
    except BearerError as exc:
        logger.debug("bearer authentication failed: %s (%s)", exc.reason, exc.detail)
        raise
    environ[_TOKEN] = token


def _guarded(view: F, requirement: Requirement) -> F:
    is_async = inspect.iscoroutinefunction(view)

    @functools.wraps(view)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        _authorize(requirement)
        if is_async:
            # ensure_sync runs an ``async def`` view (Flask's own recipe for decorators).
            return current_app.ensure_sync(view)(*args, **kwargs)
        return view(*args, **kwargs)

    setattr(wrapper, REQUIREMENT_ATTRIBUTE, requirement)
    return cast(F, wrapper)


# -- the public decorators ------------------------------------------------------------------


@overload
def requires_auth(view: F, /) -> F: ...
@overload
def requires_auth(
    *, optional: bool = False, check_revocation: bool = False
) -> Callable[[F], F]: ...
def requires_auth(
    view: F | None = None, /, *, optional: bool = False, check_revocation: bool = False
) -> F | Callable[[F], F]:
    """Require a valid access token to call the view.

    Use bare (``@requires_auth``) or with options (``@requires_auth(optional=True)``).

    Args:
        view: the view function (sync or ``async def``).
        optional: let a request without a token through (:data:`current_token` is then
            falsy); a token that is present must still be valid.
        check_revocation: also ask the issuer whether the token is still active (RFC 7662;
            the issuer's ``introspection`` settings), for routes where a revoked JWT must
            stop working at once.

    Raises:
        ConfigurationError: at decoration time, a flag is not a boolean.

    The view answers 401 with a bare challenge when no token is sent, 400 when the
    ``Authorization`` header is malformed or repeated or the token is also in the query
    or form body, 401 ``invalid_token`` when the token is not acceptable and 503 when the
    issuer's keys cannot be had. Every method is checked, ``OPTIONS`` included when the
    view declares it (Flask's automatic ``OPTIONS`` answer runs no view).

    >>> @app.get("/api/private")  # doctest: +SKIP
    ... @requires_auth
    ... def private():
    ...     return {"subject": current_token.subject}
    """
    requirement = Requirement.declare(optional=optional, check_revocation=check_revocation)

    def decorate(function: F) -> F:
        return _guarded(function, requirement)

    return decorate(view) if view is not None else decorate


def requires_scope(
    *scopes: str, match: Match = "all", check_revocation: bool = False
) -> Callable[[F], F]:
    """Require a valid access token that grants ``scopes`` (all of them, or any).

    Args:
        *scopes: the scopes required, e.g. ``"read:appointments"``. None at all means a
            valid token and nothing more, as :func:`requires_auth` (the same in every
            apiguard layer).
        match: ``"all"`` (default) or ``"any"``.
        check_revocation: also ask the issuer whether the token is still active (see
            :func:`requires_auth`).

    Raises:
        ConfigurationError: (a ValueError) at decoration time, for a name that is not an
            RFC 6749 scope token, or another ``match``.

    A token without them answers 403 ``insufficient_scope`` with the required scopes in
    the challenge's ``scope``; otherwise as :func:`requires_auth`.

    >>> @app.post("/api/appointments")  # doctest: +SKIP
    ... @requires_scope("create:appointments")
    ... def create_appointment(): ...
    """
    requirement = Requirement.declare(scopes, match, check_revocation=check_revocation)

    def decorate(function: F) -> F:
        return _guarded(function, requirement)

    return decorate


def requires(*rules: Rule) -> Callable[[F], F]:
    """Require a valid access token that meets every one of ``rules``.

    The rules are apiguard's, the same in every layer: :func:`~apiguard.has_permissions`,
    :func:`~apiguard.has_roles`, :func:`~apiguard.claim_equals`,
    :func:`~apiguard.claim_includes`, :func:`~apiguard.claim_check` and
    :func:`~apiguard.step_up`. They are checked in the order given, after the token.

    Raises:
        ConfigurationError: at decoration time, an argument is not a rule.

    A refusal answers 403 ``insufficient_scope`` with the rule's fixed description (never
    a claim value), or 401 ``insufficient_user_authentication`` for step-up; otherwise as
    :func:`requires_auth`.

    >>> @app.get("/api/tenant")  # doctest: +SKIP
    ... @requires(claim_equals("tid", TENANT), claim_includes("groups", "staff"))
    ... def tenant(): ...
    """
    requirement = Requirement.declare(rules=rules)

    def decorate(function: F) -> F:
        return _guarded(function, requirement)

    return decorate


def requires_permission(*permissions: str, match: Match = "all") -> Callable[[F], F]:
    """Require Auth0 RBAC permissions (the token's ``permissions`` claim).

    Args:
        *permissions: the permissions, e.g. ``"delete:appointments"``.
        match: ``"all"`` (default) or ``"any"``.

    Raises:
        ConfigurationError: at decoration time, no permission or a bad ``match``.

    A token without them answers 403 ``insufficient_scope`` ("The access token lacks a
    required permission"). ``permissions`` is everything the *user* may do; hold
    third-party clients to :func:`requires_scope` as well.

    >>> @app.delete("/api/appointments/<id>")  # doctest: +SKIP
    ... @requires_permission("delete:appointments")
    ... def delete_appointment(id): ...
    """
    return requires(has_permissions(*permissions, match=match))


def requires_role(
    *roles: str, match: Match = "all", claim: str | Sequence[str] | ClaimPath | None = None
) -> Callable[[F], F]:
    """Require roles of the token's subject.

    Args:
        *roles: the role names.
        match: ``"all"`` (default) or ``"any"``.
        claim: where the roles are, as a :class:`~apiguard.ClaimPath` (e.g.
            ``("https://organizer.example/roles",)``); default: the token's
            :attr:`~apiguard.AccessToken.roles`, read from ``APIGUARD_ROLE_CLAIMS``.

    Raises:
        ConfigurationError: at decoration time, no role, a bad ``match`` or claim path.

    A token without them answers 403 ``insufficient_scope`` ("The access token lacks a
    required role").

    >>> ROLES = ("https://organizer.example/roles",)
    >>> @requires_role("organizer-admin", claim=ROLES)  # doctest: +SKIP
    ... def admin(): ...
    """
    return requires(has_roles(*roles, match=match, claim=claim))


def requires_step_up(
    acr_values: Iterable[str] = (), max_age: int | None = None
) -> Callable[[F], F]:
    """Require a strong and recent enough sign-in (RFC 9470), see :func:`~apiguard.step_up`.

    Unmet, the view answers 401 ``insufficient_user_authentication`` with ``acr_values``
    and ``max_age`` in the challenge, so the client can ask the user to sign in again.

    >>> @requires_step_up(acr_values=[MULTI_FACTOR], max_age=600)  # doctest: +SKIP
    ... def security(): ...
    """
    return requires(step_up(acr_values, max_age))


def protect(
    target: Blueprint | Flask,
    *scopes: str,
    match: Match = "all",
    optional: bool = False,
    exclude_paths: Collection[str] = (),
) -> None:
    """Require a valid token (and ``scopes``, if given) on every route of a blueprint or app.

    The check runs as a ``before_request`` hook of ``target``; decorators on its views add
    their own requirements on top, and the token is validated only once per request.
    ``OPTIONS`` requests that Flask answers itself (a rule that does not declare
    ``OPTIONS``) pass without a token while ``APIGUARD_EXEMPT_OPTIONS`` is on, so that CORS
    preflights work; a view that declares ``OPTIONS`` is checked like any other method.

    Args:
        target: a :class:`flask.Blueprint` (its routes only) or a :class:`flask.Flask` app
            (every request, unmatched URLs included).
        *scopes: scopes every route requires, as :func:`requires_scope`.
        match: ``"all"`` or ``"any"``.
        optional: as :func:`requires_auth`; not allowed together with scopes.
        exclude_paths: paths that need no token and are not inspected at all: exact
            paths, or ``"/prefix/*"`` for a whole subtree. A path with a dot-segment,
            an encoded slash or an empty segment never matches (it stays protected).

    Raises:
        ConfigurationError: (a ValueError) invalid scopes, ``match`` or paths, or
            ``optional`` with scopes.

    >>> api = Blueprint("api", __name__, url_prefix="/api")  # doctest: +SKIP
    >>> protect(api, "read:appointments")  # doctest: +SKIP

    Warning:
        Excluded paths are open to anyone, and a view decorated with
        :func:`requires_auth` or :func:`requires_scope` under one still asks for a token.
    """
    requirement = Requirement.declare(scopes, match, optional=optional)
    exemptions = PathExemptions(exclude_paths) or None

    def guard_request() -> None:
        # The metadata document is public (RFC 9728 §3): the endpoint Flask routed to, not
        # a path prefix, so no spelling of another path reaches it.
        if request.endpoint == METADATA_ENDPOINT:
            return
        _authorize(requirement, exemptions=exemptions, from_hook=True)

    target.before_request(guard_request)


# -- the current token ----------------------------------------------------------------------


def _current_token() -> AccessToken:
    token = request.environ.get(_TOKEN, _UNSET) if has_request_context() else _UNSET
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
#: It lives in the request (its WSGI environ), never in ``flask.g`` or the app context, so
#: no other request can see it. Falsy outside a protected view and when an optional view
#: got no token; any attribute access then raises a RuntimeError that says why.
current_token: AccessToken = cast(AccessToken, LocalProxy(_current_token))


ApiGuard.__doc__ = (ApiGuard.__doc__ or "").format(
    settings=describe(SETTINGS, prefix=_CONFIG_PREFIX)
)


def readiness_view() -> Response:
    """A readiness probe for the app's validator: 200 when every issuer's keys can serve.

    Register it on a path of its own (it needs no token): ``app.add_url_rule("/ready",
    view_func=readiness_view)``. When some issuer has no keys yet, it fetches them first
    (at most once per cooldown), so the first probes also warm the app up. The answer is
    JSON: ``{"status": "ready" | "unavailable", "issuers": {issuer: {"state", "keys"}}}``,
    503 while some issuer's keys are missing; fetch errors go to the log, not the answer.

    >>> app.add_url_rule("/ready", view_func=readiness_view)  # doctest: +SKIP
    """
    validator = _state(current_app).validator
    health = validator.health()
    if needs_prefetch(health):
        health = validator.prefetch()
    answer = readiness(health)
    return Response(answer.body, answer.status_code, answer.headers, mimetype=answer.media_type)
