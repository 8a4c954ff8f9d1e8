"""Protect Django and Django REST framework APIs with OAuth 2.0 JWT access tokens.

Add the app, the middleware and one settings dict::

    INSTALLED_APPS = [..., "rest_framework", "apiguard.django.ApiguardConfig"]
    MIDDLEWARE = [..., "apiguard.django.BearerAuthMiddleware"]
    APIGUARD = {
        "ISSUER": "https://tenant.example/",
        "AUDIENCE": "https://organizer.example/api",
    }

``APIGUARD`` takes every keyword of :class:`~apiguard.Validator` in upper case
(``"JWKS_URI"``, ``"LEEWAY"``, ``"REQUIRED_CLAIMS"``, ...) and this layer's own settings:

- ``"REALM"``: the challenges' ``realm`` (default: the audience when there is one, else
  ``"api"``; None for none);
- ``"REQUIRED"``: the middleware refuses requests without a token (401) everywhere but
  the excluded paths (default False: they go on as anonymous);
- ``"EXCLUDE_PATHS"``: paths the middleware does not inspect at all: exact paths, or
  ``"/prefix/*"`` for a subtree (only clean paths match: SECURITY.md, "Exempt paths");
- ``"RESOURCE"``: the resource identifier (one of the audiences) or a
  :class:`~apiguard.metadata.ProtectedResource`: the middleware then answers
  ``GET /.well-known/oauth-protected-resource`` (RFC 9728; the resource's path inserted,
  and the bare path) and every challenge names it in ``resource_metadata``;
  ``scopes_supported`` defaults to the scopes the views declare;
- ``"USER"``: a callable (or its dotted path) ``user(token, request)`` that returns the
  ``request.user`` for a validated token, e.g. a model user looked up by ``sub``; default
  a :class:`TokenUser`;
- ``"VALIDATOR"`` / ``"ASYNC_VALIDATOR"``: ready validators instead of building them from
  the settings (tests: see :func:`use_issuer`).

The settings are checked when the app registry is ready: a wrong one stops ``manage.py
check`` and the server with ``ImproperlyConfigured`` naming it, and ``manage.py check
--deploy`` warns about settings that weaken the defaults.

The middleware (sync and async capable) validates the ``Authorization`` header by apiguard's
one request path, the rules of apiguard.flask, apiguard.asgi and apiguard.fastapi, and sets
``request.auth`` (the :class:`~apiguard.AccessToken`) and ``request.user``. The view
decorators :func:`requires_auth` and :func:`requires_scope` and the Django REST framework
classes :class:`BearerAuthentication`, :class:`HasScope` and :class:`HasAnyScope` add
requirements per view; refusals answer exactly as the other layers do (status, RFC 6750
challenge, JSON body), 503 with ``Retry-After`` when the issuer's keys cannot be had.

Websockets (Django Channels) are not covered by this layer; run Channels behind
:class:`apiguard.asgi.BearerAuthMiddleware` for them.
"""

from __future__ import annotations

import functools
import re
import threading
from collections.abc import Awaitable, Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Final, TypeVar, cast, overload

from asgiref.sync import iscoroutinefunction, markcoroutinefunction
from django.apps import AppConfig
from django.conf import settings
from django.core import checks
from django.core.exceptions import ImproperlyConfigured
from django.core.signals import setting_changed
from django.http import HttpRequest, HttpResponse
from django.utils.module_loading import import_string
from rest_framework import exceptions as drf_exceptions
from rest_framework.authentication import BaseAuthentication
from rest_framework.permissions import BasePermission
from rest_framework.request import Request as DRFRequest

from ._request import (
    FORWARDED_HEADERS,
    PathExemptions,
    RequestView,
    Requirement,
    Validate,
    guard,
    run,
    run_async,
)
from ._rules import Rule, has_permissions, has_roles, step_up
from .bearer import DEFAULT_REALM, challenge, pick_realm, render_error
from .claims import AccessToken, ClaimPath, Match
from .errors import (
    ApiguardError,
    BearerError,
    ConfigurationError,
    InsufficientScope,
    MissingToken,
    ServiceUnavailable,
)
from .metadata import (
    REQUIREMENT_ATTRIBUTE,
    ProtectedResource,
    ResourceMetadata,
    declared_scopes,
    protected_resource,
)
from .validator import AsyncValidator, Validator

__all__ = [
    "ApiguardConfig",
    "BearerAPIException",
    "BearerAuthMiddleware",
    "BearerAuthentication",
    "GuardState",
    "HasAnyScope",
    "HasScope",
    "Requires",
    "SettingsError",
    "TokenUser",
    "api_client",
    "exception_handler",
    "get_token",
    "guard_state",
    "requires",
    "requires_auth",
    "requires_permission",
    "requires_role",
    "requires_scope",
    "requires_step_up",
    "use_issuer",
    "use_state",
]

SETTING: Final = "APIGUARD"
V = TypeVar("V", bound=Callable[..., Any])

_OWN: Final = frozenset({"REALM", "REQUIRED", "EXCLUDE_PATHS", "USER", "RESOURCE"})
_READY: Final = frozenset({"VALIDATOR", "ASYNC_VALIDATOR"})
_KEY: Final = re.compile(r"[A-Z][A-Z0-9_]*")
# The request attribute that records what apiguard decided (request state, never global).
_DECISION: Final = "_apiguard_decision"


class TokenUser:
    """The ``request.user`` of a validated token: authenticated, identified by its subject.

    It has the read-only surface of Django's ``AnonymousUser`` (``is_authenticated``,
    ``get_username()``, ``has_perm()``...), so templates and ``login_required`` work; it has
    no model row, no permissions and no groups. Map tokens to model users with the
    ``"USER"`` setting when the app needs them.

    Attributes:
        token: the validated :class:`~apiguard.AccessToken`.
    """

    id = None
    pk = None
    is_active = True
    is_staff = False
    is_superuser = False
    is_authenticated = True
    is_anonymous = False

    def __init__(self, token: AccessToken) -> None:
        self.token = token

    @property
    def username(self) -> str:
        """The token's subject (or client id when it has no ``sub``)."""
        return self.token.subject or self.token.client_id or ""

    def get_username(self) -> str:
        """The same as :attr:`username`."""
        return self.username

    def has_perm(self, perm: str, obj: object = None) -> bool:
        """Always False: Django permissions belong to model users (use scopes instead)."""
        return False

    def has_perms(self, perm_list: Iterable[str], obj: object = None) -> bool:
        """Always False, as :meth:`has_perm`."""
        return False

    def has_module_perms(self, module: str) -> bool:
        """Always False, as :meth:`has_perm`."""
        return False

    def __str__(self) -> str:
        return self.username

    def __repr__(self) -> str:
        return f"TokenUser(username={self.username!r})"


def _token_user(token: AccessToken, request: HttpRequest) -> Any:
    return TokenUser(token)


# -- settings -----------------------------------------------------------------------------------


@dataclass(eq=False)
class GuardState:
    """The layer's configuration, built once from ``settings.APIGUARD`` (see the module).

    Attributes:
        validator: the :class:`~apiguard.Validator` for sync requests and DRF views.
        async_validator: the :class:`~apiguard.AsyncValidator` for async requests.
        realm: the ``realm`` of the challenges, or None.
        required: whether the middleware refuses requests without a token.
        exemptions: the paths the middleware does not inspect, or None.
        user: builds ``request.user`` from a validated token.
        metadata: the protected-resource metadata (RFC 9728) served, or None.
    """

    validator: Validator
    async_validator: AsyncValidator
    realm: str | None
    required: bool
    exemptions: PathExemptions | None
    user: Callable[[AccessToken, HttpRequest], Any] = _token_user
    #: Settings that weaken a default, for ``check --deploy``.
    weakened: list[str] = field(default_factory=list)
    metadata: ResourceMetadata | None = None
    _document: tuple[bytes, dict[str, str]] | None = field(default=None, repr=False)

    @property
    def resource_metadata(self) -> str | None:
        """The ``resource_metadata`` of every challenge: the document's URL, or None."""
        return self.metadata.url if self.metadata is not None else None

    def close(self) -> None:
        """Close the validators' HTTP clients (those the state made)."""
        self.validator.close()


class SettingsError(ConfigurationError, ImproperlyConfigured):
    """A wrong ``APIGUARD`` setting: apiguard's ConfigurationError and Django's
    ImproperlyConfigured at once, so that either framework's handling applies."""

    reason = "configuration_error"


def _name(key: str) -> str:
    return f'{SETTING}["{key}"]'


def build_state(setting: object) -> GuardState:
    """Build the layer's state from the value of ``settings.APIGUARD``.

    Raises:
        SettingsError: (an ImproperlyConfigured and a ConfigurationError) a setting is
            missing, unknown or unsafe (the message names it as ``APIGUARD["KEY"]``).
    """
    if not isinstance(setting, Mapping):
        raise SettingsError(f"{SETTING}: must be a dict of settings")
    options: dict[str, Any] = {}
    for key, value in setting.items():
        if not isinstance(key, str) or not _KEY.fullmatch(key):
            raise SettingsError(f"{SETTING}: {key!r} is not an upper-case setting name")
        if key not in _OWN and key not in _READY:
            options[key.lower()] = value
    ready_sync = setting.get("VALIDATOR")
    ready_async = setting.get("ASYNC_VALIDATOR")
    try:
        if ready_sync is not None or ready_async is not None:
            if options:
                clashing = sorted(k.upper() for k in options)
                raise SettingsError(
                    f"{SETTING}: ready validators exclude the settings {clashing!r}"
                )
            if not isinstance(ready_sync, Validator):
                raise SettingsError(f"{_name('VALIDATOR')}: must be an apiguard.Validator")
            if not isinstance(ready_async, AsyncValidator):
                raise SettingsError(
                    f"{_name('ASYNC_VALIDATOR')}: must be an apiguard.AsyncValidator"
                )
            validator, async_validator = ready_sync, ready_async
        else:
            for required in ("ISSUER", "AUDIENCE"):
                if setting.get(required) in (None, ""):
                    raise SettingsError(f"{_name(required)}: required")
            validator = _make(Validator, options)
            async_validator = _make(AsyncValidator, options)
        realm = pick_realm(
            setting.get("REALM", DEFAULT_REALM), validator.audiences, name=_name("REALM")
        )
        exemptions = PathExemptions(setting.get("EXCLUDE_PATHS", ()), name=_name("EXCLUDE_PATHS"))
        resource: str | ProtectedResource | None = setting.get("RESOURCE")
        metadata = protected_resource(resource, validator, name=_name("RESOURCE"))
    except ConfigurationError as exc:
        raise SettingsError(str(exc)) from None
    required_setting = setting.get("REQUIRED", False)
    if not isinstance(required_setting, bool):
        raise SettingsError(f"{_name('REQUIRED')}: must be True or False")
    user: Any = setting.get("USER", _token_user)
    if isinstance(user, str):
        try:
            user = import_string(user)
        except ImportError as exc:
            raise SettingsError(f"{_name('USER')}: cannot import {user!r}") from exc
    if not callable(user):
        raise SettingsError(f"{_name('USER')}: must be a callable or its dotted path")
    return GuardState(
        validator,
        async_validator,
        realm,
        required_setting,
        exemptions or None,
        user,
        _weakened(setting),
        metadata,
    )


def _make(kind: type[Any], options: dict[str, Any]) -> Any:
    try:
        return kind(**options)
    except TypeError as exc:
        # Validator's keyword-only signature names the unknown keyword in its message.
        found = re.search(r"argument '(\w+)'", str(exc))
        unknown = found.group(1).upper() if found else "?"
        raise SettingsError(f"{_name(unknown)}: not an apiguard setting") from None
    except ConfigurationError as exc:
        # The validator names the setting in lower case ("leeway: ..."): say it our way.
        name, _, why = str(exc).partition(": ")
        raise SettingsError(f"{_name(name.upper())}: {why or exc}") from None


def _weakened(setting: Mapping[str, Any]) -> list[str]:
    found: list[str] = []
    leeway = setting.get("LEEWAY")
    if isinstance(leeway, int | float) and leeway > 60:
        found.append(f"{_name('LEEWAY')} = {leeway} s accepts tokens long expired")
    if setting.get("COOLDOWN") == 0:
        found.append(f"{_name('COOLDOWN')} = 0 lets unknown key ids refetch the keys at will")
    stale = setting.get("MAX_STALE")
    if isinstance(stale, int | float) and stale > 7 * 86400:
        found.append(f"{_name('MAX_STALE')} = {stale} s serves withdrawn keys for long")
    claims = setting.get("SCOPE_CLAIMS")
    if isinstance(claims, Sequence) and not isinstance(claims, str) and "permissions" in claims:
        found.append(
            f"{_name('SCOPE_CLAIMS')} reads Auth0 permissions (the user's whole role) as "
            "scopes granted to the app"
        )
    issuer = setting.get("ISSUER")
    if isinstance(issuer, str) and issuer.startswith("http://"):
        found.append(f"{_name('ISSUER')} is plain http (a loopback development server)")
    return found


_state: GuardState | None = None
_state_lock = threading.Lock()
_override: list[GuardState] = []


def guard_state() -> GuardState:
    """The layer's state (built from ``settings.APIGUARD`` on first use).

    Raises:
        ImproperlyConfigured: as :func:`build_state`.
    """
    global _state
    if _override:
        return _override[-1]
    state = _state
    if state is None:
        with _state_lock:
            state = _state
            if state is None:
                state = _state = build_state(getattr(settings, SETTING, None))
    return state


def _forget_state(*, setting: str, **kwargs: Any) -> None:
    # override_settings(APIGUARD=...) in tests: the next request builds the new state.
    global _state
    if setting == SETTING:
        with _state_lock:
            _state = None


setting_changed.connect(_forget_state)


class ApiguardConfig(AppConfig):
    """The Django app (``"apiguard.django.ApiguardConfig"`` in ``INSTALLED_APPS``).

    It checks the settings at start-up and registers the system checks (and, with
    drf-spectacular installed, the schema extension).
    """

    name = "apiguard.django"
    label = "apiguard"
    verbose_name = "apiguard"
    default = True

    def ready(self) -> None:
        """Build the state now, so that a wrong setting stops the start."""
        guard_state()
        checks.register(_check_deploy, checks.Tags.security, deploy=True)
        checks.register(_check_views, checks.Tags.urls)
        _register_spectacular()


def _check_deploy(app_configs: Any = None, **kwargs: Any) -> list[checks.CheckMessage]:
    return [
        checks.Warning(
            text, hint="Keep apiguard's default unless you know why.", id="apiguard.W001"
        )
        for text in guard_state().weakened
    ]


def _check_views(app_configs: Any = None, **kwargs: Any) -> list[checks.CheckMessage]:
    """Every DRF view's ``required_scopes`` are checked before the first request."""
    from django.urls import get_resolver

    errors: list[checks.CheckMessage] = []
    for view in _views(get_resolver().url_patterns):
        scopes = getattr(view, "required_scopes", None)
        if scopes is None:
            continue
        try:
            _declared_scopes(scopes, "all")
        except ConfigurationError as exc:
            errors.append(checks.Error(f"{view.__qualname__}: {exc}", id="apiguard.E001"))
    return errors


def _views(patterns: Iterable[Any]) -> Iterator[Any]:
    for pattern in patterns:
        if hasattr(pattern, "url_patterns"):
            yield from _views(pattern.url_patterns)
            continue
        callback = getattr(pattern, "callback", None)
        view = getattr(callback, "cls", None) or getattr(callback, "view_class", None)
        if view is not None:
            yield view


# -- one request ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Decision:
    state: GuardState
    raw: str | None
    token: AccessToken | None
    revocation_checked: bool = False


_FORWARDED_KEYS: Final = tuple(
    (f"HTTP_{name.upper().replace('-', '_')}", name) for name in sorted(FORWARDED_HEADERS)
)


def request_view(request: HttpRequest, *, dpop: bool = False) -> RequestView:
    """The neutral view of a Django request (what the one request path reads).

    With ``dpop``, also what a DPoP proof is checked against: the scheme, ``Host``, the
    peer, the ``DPoP`` header and the forwarding headers (for trusted proxies).
    """
    meta = request.META
    raw_path: str | None = None
    scope = getattr(request, "scope", None)  # ASGIRequest keeps the ASGI scope
    if isinstance(scope, dict) and isinstance(scope.get("raw_path"), bytes):
        raw_path = scope["raw_path"].decode("latin-1")
    else:
        raw_uri = meta.get("RAW_URI") or meta.get("REQUEST_URI")
        if isinstance(raw_uri, str):
            raw_path = raw_uri
    authorization = meta.get("HTTP_AUTHORIZATION")
    if raw_path is not None:
        raw_path = raw_path.split("?", 1)[0]
        if not raw_path.startswith("/"):
            raw_path = None  # an absolute-form target: the decoded path tells it
    # The fields in order, positionally: half the cost of keywords, on every request.
    view = RequestView(
        request.method or "GET",  # method
        request.path_info,  # path
        raw_path,  # raw_path
        () if authorization is None else (authorization,),  # authorization
        meta.get("QUERY_STRING", ""),  # query
        meta.get("CONTENT_TYPE") or None,  # content_type
        "HTTP_ORIGIN" in meta,  # origin
        "HTTP_ACCESS_CONTROL_REQUEST_METHOD" in meta,  # preflight_method
    )
    if not dpop:
        return view
    # Servers join a repeated header into one value with commas, which the proof check
    # refuses as two proofs.
    proof = meta.get("HTTP_DPOP")
    return view._replace(
        raw_path=raw_path if raw_path is not None else request.path,
        scheme=request.scheme or "http",
        host=meta.get("HTTP_HOST"),
        peer=meta.get("REMOTE_ADDR"),
        dpop=() if proof is None else (proof,),
        forwarded=tuple((name, meta[key]) for key, name in _FORWARDED_KEYS if key in meta),
    )


def _record(
    request: HttpRequest, state: GuardState, view: RequestView, token: Any, revocation: bool
) -> None:
    raw = None
    if token is not None:
        raw = view.authorization[0].strip(" \t").partition(" ")[2].strip(" \t")
    setattr(request, _DECISION, _Decision(state, raw, token, revocation))
    request.auth = token  # type: ignore[attr-defined]
    if token is not None:
        request.user = state.user(token, request)


def _known(request: HttpRequest, state: GuardState) -> _Decision | None:
    decision = getattr(request, _DECISION, None)
    return decision if isinstance(decision, _Decision) and decision.state is state else None


def _decide(
    request: HttpRequest, state: GuardState, requirement: Requirement, *, middleware: bool = False
) -> AccessToken | None:
    validator = state.validator
    gate = validator.dpop
    # The full view (Host, peer...) for a DPoP proof, or for an issuer resolver.
    view = request_view(request, dpop=gate is not None or validator.wants_request)
    exemptions = state.exemptions if middleware else None
    if exemptions is not None and exemptions.match(view.path, view.raw_path):
        return None  # not inspected at all, and nothing recorded
    known = _known(request, state)
    revocation = known is not None and known.revocation_checked

    def validate(step: Validate) -> AccessToken:
        # One validation per request (a DPoP proof's jti is spent once), even when the
        # middleware, a decorator and DRF all ask; and the issuer asked about revocation
        # once, by the first of them whose route checks it.
        nonlocal revocation
        if known is not None and known.token is not None and known.raw == step.token:
            if step.check_revocation and not revocation:
                validator.check_revocation(step.token, known.token)
                revocation = True
            return known.token
        token = validator.validate_credentials(step)
        revocation = step.check_revocation
        return token

    flow = guard(view, requirement, dpop=gate, clock=validator.clock)
    token = run(flow, validate, lambda: request.body)
    _record(request, state, view, token, revocation)
    return token


async def _adecide(
    request: HttpRequest, state: GuardState, requirement: Requirement, *, middleware: bool = False
) -> AccessToken | None:
    validator = state.async_validator
    gate = validator.dpop
    # The full view (Host, peer...) for a DPoP proof, or for an issuer resolver.
    view = request_view(request, dpop=gate is not None or validator.wants_request)
    exemptions = state.exemptions if middleware else None
    if exemptions is not None and exemptions.match(view.path, view.raw_path):
        return None
    known = _known(request, state)
    revocation = known is not None and known.revocation_checked

    async def validate(step: Validate) -> AccessToken:
        nonlocal revocation
        if known is not None and known.token is not None and known.raw == step.token:
            if step.check_revocation and not revocation:
                await validator.check_revocation(step.token, known.token)
                revocation = True
            return known.token
        token = await validator.validate_credentials(step)
        revocation = step.check_revocation
        return token

    async def read_form() -> bytes:
        # Django's ASGI handler has the whole body spooled before the request exists.
        return request.body

    flow = guard(view, requirement, dpop=gate, clock=validator.clock)
    token = await run_async(flow, validate, read_form)
    _record(request, state, view, token, revocation)
    return token


def _answer(error: ApiguardError, state: GuardState) -> HttpResponse:
    rendered = render_error(error, state.realm, state.resource_metadata)
    return HttpResponse(
        rendered.body,
        status=rendered.status_code,
        headers=rendered.headers,
        content_type=rendered.media_type,
    )


def get_token(request: HttpRequest | DRFRequest) -> AccessToken | None:
    """The validated token of a request, or None when it carries none (or none was checked).

    >>> token = get_token(request)  # doctest: +SKIP
    """
    django_request = request._request if isinstance(request, DRFRequest) else request
    decision = getattr(django_request, _DECISION, None)
    return decision.token if isinstance(decision, _Decision) else None


class BearerAuthMiddleware:
    """Validate the bearer token of every request (sync and async capable).

    Without a token a request goes on as anonymous (``request.auth`` None), or is refused
    with 401 when ``APIGUARD["REQUIRED"]`` is set; excluded paths are not inspected at all.
    A token is validated; on success ``request.auth`` is the
    :class:`~apiguard.AccessToken` and ``request.user`` the ``"USER"`` setting's user (a
    :class:`TokenUser` by default). A bad token is answered at once (400, 401 or 503 with
    the RFC 6750 challenge and JSON body). Every method is checked, ``OPTIONS`` included:
    answer CORS preflights in a middleware placed before this one. Place it after Django's
    ``AuthenticationMiddleware`` (if the project has one), which would set ``request.user``
    again.
    """

    sync_capable = True
    async_capable = True

    def __init__(self, get_response: Callable[[HttpRequest], Any]) -> None:
        self.get_response = get_response
        self._async = iscoroutinefunction(get_response)
        if self._async:
            markcoroutinefunction(self)

    def __call__(self, request: HttpRequest) -> Any:
        if self._async:
            return self._acall(request)
        state = guard_state()
        if state.metadata is not None and request.path_info in state.metadata.paths:
            return _metadata_answer(request, state)
        requirement = _REQUIRED if state.required else _OPTIONAL
        try:
            _decide(request, state, requirement, middleware=True)
        except (BearerError, ServiceUnavailable) as exc:
            return _answer(exc, state)
        return self.get_response(request)

    async def _acall(self, request: HttpRequest) -> Any:
        state = guard_state()
        if state.metadata is not None and request.path_info in state.metadata.paths:
            return _metadata_answer(request, state)
        requirement = _REQUIRED if state.required else _OPTIONAL
        try:
            await _adecide(request, state, requirement, middleware=True)
        except (BearerError, ServiceUnavailable) as exc:
            return _answer(exc, state)
        return await cast(Callable[[HttpRequest], Awaitable[Any]], self.get_response)(request)


def _metadata_answer(request: HttpRequest, state: GuardState) -> HttpResponse:
    # Public (RFC 9728 §3): matched on the exact path, never inspected for a token.
    if request.method not in ("GET", "HEAD"):
        return HttpResponse(status=405, headers={"Allow": "GET, HEAD"})
    if state._document is None:
        assert state.metadata is not None
        # The URLconf is complete once the app serves; gather its scopes once.
        state._document = state.metadata.with_route_scopes(_url_scopes()).render()
    body, headers = state._document
    return HttpResponse(
        b"" if request.method == "HEAD" else body,
        status=200,
        headers={k: v for k, v in headers.items() if k.lower() != "content-type"},
        content_type=headers.get("Content-Type", "application/json"),
    )


def _url_scopes() -> list[str]:
    """The scopes the URLconf's views declare: decorated functions and DRF permissions."""
    from django.urls import get_resolver

    callbacks: list[Any] = []
    scopes: list[str] = []
    for pattern in _patterns(get_resolver().url_patterns):
        callback = getattr(pattern, "callback", None)
        callbacks.append(callback)
        view = getattr(callback, "cls", None) or getattr(callback, "view_class", None)
        if view is not None:
            for method in sorted(getattr(view, "http_method_names", ())):
                if hasattr(view, method):
                    scopes.extend(_operation_scopes(view, method))
    return [*declared_scopes(callbacks), *scopes]


def _patterns(patterns: Iterable[Any]) -> Iterator[Any]:
    for pattern in patterns:
        if hasattr(pattern, "url_patterns"):
            yield from _patterns(pattern.url_patterns)
        else:
            yield pattern


_REQUIRED: Final = Requirement.declare()
_OPTIONAL: Final = Requirement.declare(optional=True)


# -- view decorators -------------------------------------------------------------------------


def _guarded(view: V, requirement: Requirement) -> V:
    if iscoroutinefunction(view):

        @functools.wraps(view)
        async def async_wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> Any:
            state = guard_state()
            try:
                await _adecide(request, state, requirement)
            except (BearerError, ServiceUnavailable) as exc:
                return _answer(exc, state)
            return await view(request, *args, **kwargs)

        setattr(async_wrapper, REQUIREMENT_ATTRIBUTE, requirement)
        return cast(V, async_wrapper)

    @functools.wraps(view)
    def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> Any:
        state = guard_state()
        try:
            _decide(request, state, requirement)
        except (BearerError, ServiceUnavailable) as exc:
            return _answer(exc, state)
        return view(request, *args, **kwargs)

    setattr(wrapper, REQUIREMENT_ATTRIBUTE, requirement)
    return cast(V, wrapper)


@overload
def requires_auth(view: V, /) -> V: ...
@overload
def requires_auth(
    *, optional: bool = False, check_revocation: bool = False
) -> Callable[[V], V]: ...
def requires_auth(
    view: V | None = None, /, *, optional: bool = False, check_revocation: bool = False
) -> V | Callable[[V], V]:
    """Require a valid access token to call a Django view (sync or ``async def``).

    Use bare (``@requires_auth``) or with options (``@requires_auth(optional=True)``); on a
    class-based view through ``method_decorator``. The token the middleware validated is
    used; without the middleware the decorator reads and validates the header itself.

    Args:
        view: the view function (sync or ``async def``).
        optional: let a request without a token through (``request.auth`` is then None);
            a token that is present must still be valid.
        check_revocation: also ask the issuer whether the token is still active (RFC 7662;
            the issuer's ``introspection`` settings), for views where a revoked JWT must
            stop working at once. An issuer without introspection settings answers 503.

    Raises:
        ConfigurationError: at decoration time, a flag is not a boolean.

    >>> @requires_auth  # doctest: +SKIP
    ... def private(request):
    ...     return JsonResponse({"subject": request.auth.subject})
    """
    requirement = Requirement.declare(optional=optional, check_revocation=check_revocation)

    def decorate(function: V) -> V:
        return _guarded(function, requirement)

    return decorate(view) if view is not None else decorate


def requires_scope(
    *scopes: str, match: Match = "all", check_revocation: bool = False
) -> Callable[[V], V]:
    """Require a valid access token granting ``scopes`` (all, or any with ``match="any"``).

    No scopes at all means a valid token and nothing more, as in every apiguard layer.
    ``check_revocation`` also asks the issuer whether the token is still active (see
    :func:`requires_auth`).

    Raises:
        ConfigurationError: at decoration time, for a name that is not an RFC 6749 scope
            token, or another ``match``.

    >>> @requires_scope("read:appointments")  # doctest: +SKIP
    ... def appointments(request): ...
    """
    requirement = Requirement.declare(scopes, match, check_revocation=check_revocation)

    def decorate(function: V) -> V:
        return _guarded(function, requirement)

    return decorate


def requires(*rules: Rule) -> Callable[[V], V]:
    """Require a valid access token that meets every one of ``rules`` (as in every layer).

    The rules are apiguard's: :func:`~apiguard.has_permissions`, :func:`~apiguard.has_roles`,
    :func:`~apiguard.claim_equals`, :func:`~apiguard.claim_includes`,
    :func:`~apiguard.claim_check` and :func:`~apiguard.step_up`, checked in order.

    Raises:
        ConfigurationError: at decoration time, an argument is not a rule.

    >>> @requires(claim_equals("tid", TENANT))  # doctest: +SKIP
    ... def tenant(request): ...
    """
    requirement = Requirement.declare(rules=rules)

    def decorate(function: V) -> V:
        return _guarded(function, requirement)

    return decorate


def requires_permission(*permissions: str, match: Match = "all") -> Callable[[V], V]:
    """Require Auth0 RBAC permissions (the token's ``permissions`` claim).

    ``permissions`` is everything the *user* may do; hold third-party clients to
    :func:`requires_scope` as well. Unmet: 403 ``insufficient_scope``.
    """
    return requires(has_permissions(*permissions, match=match))


def requires_role(
    *roles: str, match: Match = "all", claim: str | Sequence[str] | ClaimPath | None = None
) -> Callable[[V], V]:
    """Require roles of the token's subject (from ``claim``, default the ``ROLE_CLAIMS``).

    Unmet: 403 ``insufficient_scope`` ("The access token lacks a required role").
    """
    return requires(has_roles(*roles, match=match, claim=claim))


def requires_step_up(
    acr_values: Iterable[str] = (), max_age: int | None = None
) -> Callable[[V], V]:
    """Require a strong and recent enough sign-in (RFC 9470), see :func:`~apiguard.step_up`.

    Unmet: 401 ``insufficient_user_authentication`` with ``acr_values`` and ``max_age``.
    """
    return requires(step_up(acr_values, max_age))


# -- Django REST framework -------------------------------------------------------------------


class BearerAPIException(drf_exceptions.APIException):
    """A refusal rendered for DRF: apiguard's status, challenge and JSON body.

    DRF's exception handler answers it with the body and the ``WWW-Authenticate`` (or
    ``Retry-After``) header; :func:`exception_handler` adds ``Cache-Control: no-store`` as
    the other layers send.

    Attributes:
        error: the apiguard error behind it.
    """

    def __init__(
        self, error: ApiguardError, realm: str | None, resource_metadata: str | None = None
    ) -> None:
        rendered = render_error(error, realm, resource_metadata)
        super().__init__()
        self.error = error
        self.status_code = rendered.status_code
        self.detail = _body(error)
        self.auth_header = rendered.headers.get("WWW-Authenticate")
        if isinstance(error, ServiceUnavailable):
            self.wait = error.retry_after


def _body(error: ApiguardError) -> Any:
    import json

    return json.loads(render_error(error).body)


def exception_handler(exc: Exception, context: Mapping[str, Any]) -> Any:
    """DRF's exception handler, plus ``Cache-Control: no-store`` on apiguard's refusals.

    Set ``REST_FRAMEWORK = {"EXCEPTION_HANDLER": "apiguard.django.exception_handler"}``.
    """
    # Imported here: rest_framework.views reads DRF's settings, which name this module.
    from rest_framework.views import exception_handler as drf_exception_handler

    response = drf_exception_handler(exc, dict(context))
    if response is not None and isinstance(exc, BearerAPIException):
        response["Cache-Control"] = "no-store"
    return response


class BearerAuthentication(BaseAuthentication):
    """DRF authentication by bearer token: ``request.auth`` is the AccessToken.

    It uses the middleware's result when the middleware ran, and otherwise reads and
    validates the header itself by the one request path (an excluded path is not inspected,
    as by the middleware: a scope permission there refuses). Without a token it returns None
    (DRF then tries the next class or stays anonymous); a bad token is refused at once
    with apiguard's answer. ``authenticate_header`` gives DRF the bare ``Bearer`` challenge,
    so a permission refusal for an anonymous request is a 401, not a 403.
    """

    def authenticate(self, request: DRFRequest) -> tuple[Any, AccessToken] | None:
        """The (user, token) of the request, or None when it sent no token."""
        django_request = request._request
        state = guard_state()
        try:
            # The layer's excluded paths are not inspected here either (as the middleware).
            token = _decide(django_request, state, _OPTIONAL, middleware=True)
        except (BearerError, ServiceUnavailable) as exc:
            raise BearerAPIException(exc, state.realm, state.resource_metadata) from None
        if token is None:
            return None
        return django_request.user, token

    def authenticate_header(self, request: DRFRequest) -> str:
        """The challenge of a 401 for a request without credentials."""
        state = guard_state()
        return challenge(MissingToken(), state.realm, state.resource_metadata)


def _declared_scopes(
    scopes: object, match: Match, check_revocation: bool = False
) -> dict[str, Requirement] | Requirement:
    if isinstance(scopes, Mapping):
        per_method: dict[str, Requirement] = {}
        for method, names in scopes.items():
            if not isinstance(method, str) or not method.isupper():
                raise ConfigurationError(f"required_scopes: {method!r} is not an HTTP method")
            per_method[method] = Requirement.declare(
                _names(names), match, check_revocation=check_revocation
            )
        return per_method
    return Requirement.declare(_names(scopes), match, check_revocation=check_revocation)


def _names(names: object) -> Iterable[object]:
    if isinstance(names, str) or not isinstance(names, Iterable):
        raise ConfigurationError(f"required_scopes: give a list of scope names, not {names!r}")
    return names


class _ScopePermission(BasePermission):
    match: Match = "all"

    def __init__(self, *scopes: str, check_revocation: bool = False) -> None:
        # Checked here, where the view is defined, even when the scopes come from the view.
        Requirement.declare(check_revocation=check_revocation)
        self._check_revocation = check_revocation
        self._requirement: dict[str, Requirement] | Requirement | None = (
            Requirement.declare(scopes, self.match, check_revocation=check_revocation)
            if scopes
            else None
        )

    def __call__(self) -> _ScopePermission:
        # DRF instantiates each entry of permission_classes: an instance with its scopes
        # (declared and checked where the view is defined) stands for itself.
        return self

    def _requirement_for(self, request: DRFRequest, view: Any) -> Requirement:
        requirement = self._requirement
        if requirement is None:
            scopes = getattr(view, "required_scopes", ())
            requirement = _cached(view, scopes, self.match, self._check_revocation)
        if isinstance(requirement, Requirement):
            return requirement
        method = request.method or "GET"
        if method == "HEAD" and "HEAD" not in requirement:
            method = "GET"
        found = requirement.get(method) or requirement.get("*")
        # A method the mapping does not name is refused (fail closed).
        return found if found is not None else _NOTHING_GRANTED

    def has_permission(self, request: DRFRequest, view: Any) -> bool:
        """Check the request's token against the scopes, raising apiguard's answer."""
        method = (request.method or "GET").lower()
        if method not in getattr(view, "http_method_names", ()) or not hasattr(view, method):
            # No handler will run: DRF answers 405, as the other layers' routers do.
            return True
        state = guard_state()
        try:
            # The one request path again: the token the middleware or BearerAuthentication
            # validated is reused, and a refusal is rendered as every layer renders it.
            _decide(request._request, state, self._requirement_for(request, view))
        except (BearerError, ServiceUnavailable) as exc:
            raise BearerAPIException(exc, state.realm, state.resource_metadata) from None
        return True


class _NothingGranted(Requirement):
    def check(self, token: AccessToken | None, clock: Callable[[], float] | None = None) -> None:
        Requirement.check(self, token, clock)
        raise InsufficientScope((), detail="no scopes are declared for this method")


_NOTHING_GRANTED: Final = _NothingGranted()


# A view class's required_scopes, checked once (and by ``manage.py check`` before that).
_requirements: dict[tuple[type, str, bool], dict[str, Requirement] | Requirement] = {}


def _cached(
    view: object, scopes: object, match: Match, check_revocation: bool = False
) -> dict[str, Requirement] | Requirement:
    # One entry per view class (a view instance counts as its class).
    key = (view if isinstance(view, type) else type(view), match, check_revocation)
    known = _requirements.get(key)
    if known is None:
        known = _requirements[key] = _declared_scopes(scopes, match, check_revocation)
    return known


class HasScope(_ScopePermission):
    """DRF permission: the token must grant all of the scopes.

    Either give the scopes (``permission_classes = [HasScope("read:appointments")]``,
    checked where the view is defined), or list the class and set ``required_scopes`` on
    the view: a list of scopes, or one list per method
    (``{"GET": ["read:appointments"], "POST": ["create:appointments"]}``; ``HEAD`` falls
    back to ``GET``, ``"*"`` names the default, and a method not named is refused).
    ``manage.py check`` checks every view's ``required_scopes``. Without a token the
    answer is 401 with the bare challenge, without the scopes 403 ``insufficient_scope``.
    ``HasScope(..., check_revocation=True)`` also asks the issuer whether the token is
    still active (see :func:`requires_auth`).

    >>> class Appointments(APIView):  # doctest: +SKIP
    ...     authentication_classes = [BearerAuthentication]
    ...     permission_classes = [HasScope]
    ...     required_scopes = {"GET": ["read:appointments"], "POST": ["create:appointments"]}
    """

    match = "all"


class HasAnyScope(_ScopePermission):
    """DRF permission: the token must grant at least one of the scopes (as :class:`HasScope`)."""

    match = "any"


_spectacular_registered = False


class Requires(BasePermission):
    """DRF permission: the token must meet every one of ``rules`` (see :func:`requires`).

    ``permission_classes = [Requires(has_roles("organizer-admin", claim=ROLES))]``; the
    rules are checked where the view is defined. Combine with :class:`HasScope` for scopes.
    ``check_revocation=True`` also asks the issuer whether the token is still active.
    """

    def __init__(self, *rules: Rule, check_revocation: bool = False) -> None:
        self._requirement = Requirement.declare(rules=rules, check_revocation=check_revocation)

    def __call__(self) -> Requires:
        return self

    def has_permission(self, request: DRFRequest, view: Any) -> bool:
        """Check the request's token against the rules, raising apiguard's answer."""
        method = (request.method or "GET").lower()
        if method not in getattr(view, "http_method_names", ()) or not hasattr(view, method):
            return True  # no handler will run: DRF answers 405
        state = guard_state()
        try:
            _decide(request._request, state, self._requirement)
        except (BearerError, ServiceUnavailable) as exc:
            raise BearerAPIException(exc, state.realm, state.resource_metadata) from None
        return True


def _register_spectacular() -> None:
    """Document the bearer scheme and each operation's scopes in drf-spectacular's schema."""
    try:
        from drf_spectacular.extensions import OpenApiAuthenticationExtension
    except ImportError:
        return

    global _spectacular_registered
    if _spectacular_registered:
        return
    _spectacular_registered = True

    # drf-spectacular's base class is untyped; defining the subclass registers it.
    class BearerScheme(OpenApiAuthenticationExtension):  # type: ignore[no-untyped-call]
        target_class = BearerAuthentication
        name = "bearerAuth"

        def get_security_definition(self, auto_schema: Any) -> dict[str, str]:
            return {
                "type": "http",
                "scheme": "bearer",
                "bearerFormat": "JWT",
                "description": "An OAuth 2.0 access token (JWT)",
            }

        def get_security_requirement(self, auto_schema: Any) -> dict[str, list[str]]:
            return {self.name: list(_operation_scopes(auto_schema.view, auto_schema.method))}

    del BearerScheme


def _operation_scopes(view: Any, method: str) -> tuple[str, ...]:
    for permission in getattr(view, "permission_classes", ()):
        if isinstance(permission, _ScopePermission):
            requirement = permission._requirement
        elif isinstance(permission, type) and issubclass(permission, _ScopePermission):
            scopes = getattr(view, "required_scopes", ())
            requirement = _cached(view, scopes, permission.match)
        else:
            continue
        if requirement is None:
            continue
        if isinstance(requirement, Requirement):
            return requirement.scopes
        found = requirement.get(method.upper()) or requirement.get("*")
        return found.scopes if found is not None else ()
    return ()


# -- testing -----------------------------------------------------------------------------------


@contextmanager
def use_state(state: GuardState) -> Iterator[GuardState]:
    """Make ``state`` the layer's state for the ``with`` block (tests; nests)."""
    _override.append(state)
    try:
        yield state
    finally:
        _override.remove(state)


@contextmanager
def use_issuer(issuer: Any, **options: Any) -> Iterator[GuardState]:
    """Protect the Django app with a :class:`~apiguard.testing.LocalIssuer` for a while.

    The middleware, the decorators and the DRF classes then validate with
    ``issuer.validator()`` and ``issuer.async_validator()`` (no network). Other settings of
    the layer go as keywords (``required=True``, ``exclude_paths=[...]``, ``realm=...``).

    >>> with use_issuer(local_issuer):  # doctest: +SKIP
    ...     response = api_client(local_issuer, scope="read:tasks").get("/api/tasks")
    """
    state = build_state(
        {
            "VALIDATOR": issuer.validator(),
            "ASYNC_VALIDATOR": issuer.async_validator(),
            **{key.upper(): value for key, value in options.items()},
        }
    )
    try:
        with use_state(state):
            yield state
    finally:
        state.close()


def api_client(issuer: Any, **claims: Any) -> Any:
    """A DRF ``APIClient`` that sends a token of ``issuer`` with ``claims`` on every request.

    >>> client = api_client(local_issuer, scope="read:appointments")  # doctest: +SKIP
    >>> client.get("/api/appointments").status_code  # doctest: +SKIP
    200
    """
    from rest_framework.test import APIClient

    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {issuer.token(**claims)}")
    return client
