"""The one request path: every rule that decides a request's bearer authentication, no I/O.

Flask, ASGI and FastAPI (and any layer added later) do not re-derive these rules: each
translates its framework's request into a :class:`RequestView`, runs :func:`guard` with
:func:`run` or :func:`run_async` (handing over its validator and a way to read the body),
and renders whatever apiguard raised with :func:`apiguard.bearer.render_error`. So the
layers answer the same status, challenge and body for the same request, and a rule fixed
here is fixed everywhere.

:func:`guard` is a generator in the sans-I/O style of the validator core: it yields a
:class:`Validate` when it needs a token validated and :data:`READ_FORM` when it needs the
form body, and returns the validated token (or None when the request is let through
without one). The order of the checks is the rule, and it is written once:

1. an exempt request (an excluded path, or an ``OPTIONS`` the framework answers itself)
   is not inspected at all;
2. the token is read from the ``Authorization`` header only (RFC 6750 §2.1): no header or
   another scheme is "no token"; a repeated header, an empty or ill-formed value, or a
   token also in the query string is ``invalid_request``. With DPoP on (a
   :class:`~apiguard.dpop.DPoPGate`), the ``DPoP`` scheme is read too;
3. the token is validated; with DPoP on, its binding must fit the scheme it came with and
   a ``DPoP`` token's proof is checked (RFC 9449 §4.3, §7), a cached token included;
4. a valid token also sent as a form-body ``access_token`` is ``invalid_request``
   (RFC 6750 §2: one method only); the body is read only for a valid token, so anonymous
   clients cannot make the server buffer theirs;
5. the route's :class:`Requirement` decides: no token is 401 unless optional, missing
   scopes are 403, then its rules beyond scopes in the order given (permissions, roles
   and claim rules 403, step-up 401 ``insufficient_user_authentication``).

The security reasoning behind each rule is in SECURITY.md at the repository root.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Collection, Generator, Iterable
from dataclasses import dataclass
from typing import Any, Final, NamedTuple
from urllib.parse import parse_qsl

from ._rules import Rule
from .bearer import extract_credentials, query_names_token
from .claims import AccessToken, Match, check_match, check_scope_names
from .dpop import DPoPGate
from .errors import (
    BearerError,
    ConfigurationError,
    InsufficientScope,
    InvalidRequest,
    MissingToken,
)

__all__ = [
    "READ_FORM",
    "Flow",
    "PathExemptions",
    "RequestView",
    "Requirement",
    "Validate",
    "confirm",
    "form_names_token",
    "guard",
    "is_preflight",
    "run",
    "run_async",
]

_FORM_TYPE: Final = "application/x-www-form-urlencoded"


class RequestView(NamedTuple):
    """What the rules need to know about a request, in neutral terms.

    A named tuple, built once per request by each layer: read-only, and a fraction of a
    frozen dataclass's cost to build (``_replace`` makes a changed copy).

    Attributes:
        method: the HTTP method, upper case (``"GET"``; ``"WEBSOCKET"`` for a websocket).
        path: the path the application routes on (percent-decoded, as frameworks give it).
        raw_path: the path exactly as the client sent it (still percent-encoded, without
            the query), or None when the server does not pass it on.
        authorization: every ``Authorization`` header value, in order (a repeat is kept).
        query: the raw query string.
        content_type: the ``Content-Type`` header, or None.
        origin: whether an ``Origin`` header was sent.
        preflight_method: whether an ``Access-Control-Request-Method`` header was sent.
        scheme: the URI scheme the server received the request on (``http``, ``https``,
            ``ws``, ``wss``); DPoP only, like the fields below.
        host: the ``Host`` header, or None.
        peer: the address of the immediate peer, or None.
        dpop: every ``DPoP`` header value, in order.
        forwarded: ``(name, value)`` of each ``Forwarded``, ``X-Forwarded-Proto`` and
            ``X-Forwarded-Host`` header (lower-case names), for trusted proxies.
    """

    method: str
    path: str
    raw_path: str | None = None
    authorization: tuple[str, ...] = ()
    query: str | bytes = ""
    content_type: str | None = None
    origin: bool = False
    preflight_method: bool = False
    scheme: str = "http"
    host: str | None = None
    peer: str | None = None
    dpop: tuple[str, ...] = ()
    forwarded: tuple[tuple[str, str], ...] = ()


#: The headers a layer copies into :attr:`RequestView.forwarded` (lower case).
FORWARDED_HEADERS: Final = frozenset({"forwarded", "x-forwarded-proto", "x-forwarded-host"})


def is_preflight(view: RequestView) -> bool:
    """Whether the request is a CORS preflight (``OPTIONS`` with the two CORS headers).

    A preflight never carries credentials (the Fetch standard strips them), but any client
    can send these headers: this says what the request claims to be, never that no view
    will answer it. Only a layer that knows the framework answers it itself may exempt it.
    """
    return view.method == "OPTIONS" and view.origin and view.preflight_method


# -- exempt paths ---------------------------------------------------------------------------

# Percent-escapes that can turn into a dot-segment, a separator or another escape once
# something downstream decodes (again): '.', '/', '\', '%' and NUL (SECURITY.md, "Exempt
# paths fail closed").
_DANGEROUS_ESCAPES: Final = ("%2e", "%2f", "%5c", "%25", "%00")


def _unsafe(path: str) -> bool:
    """Whether ``path`` could mean another path to a handler that normalises it.

    A dot-segment (``.``/``..``), an empty segment (``//``), a backslash, a control
    character or an escape of one of them may be resolved by a static-file handler or a
    path join after the exemption was decided, and reach a path that is not exempt
    (SECURITY.md, "Exempt paths fail closed").
    """
    if "\\" in path or any(ord(char) < 0x20 or ord(char) == 0x7F for char in path):
        return True
    if "%" in path and any(escape in path.lower() for escape in _DANGEROUS_ESCAPES):
        return True
    segments = path.split("/")
    # segments[0] is the empty text before the leading "/"; an empty last segment is a
    # trailing slash, which names a directory and is harmless.
    return any(segment in ("", ".", "..") for segment in segments[1:-1]) or segments[-1] in (
        ".",
        "..",
    )


class PathExemptions:
    """Paths that need no token: exact paths, or ``"/prefix/*"`` for a whole subtree.

    A request path matches only when it is clean: one that contains a dot-segment (decoded
    or percent-encoded, any case), an encoded slash or backslash, an empty segment or a
    control character never matches, so the route stays protected (fail closed), whatever
    a handler downstream would make of it. Matching is exact and case-sensitive.

    Args:
        paths: absolute paths; ``"/static/public/*"`` matches ``/static/public`` and
            everything below it.
        name: the setting's name, for the error message.

    Raises:
        ConfigurationError: ``paths`` is a single string, or an item is not an absolute
            clean path.

    >>> PathExemptions(["/health", "/static/public/*"]).match("/static/public/app.css")
    True
    >>> PathExemptions(["/static/public/*"]).match("/static/public/../private/key")
    False
    """

    __slots__ = ("_exact", "_prefixes")

    def __init__(self, paths: Collection[str], *, name: str = "exclude_paths") -> None:
        if isinstance(paths, str):
            raise ConfigurationError(f"{name}: give a collection of paths, not one string")
        exact: set[str] = set()
        prefixes: list[str] = []
        for path in paths:
            if not isinstance(path, str) or not path.startswith("/"):
                raise ConfigurationError(f"{name}: {path!r} is not an absolute path")
            pattern = path[:-1] if path.endswith("/*") else path
            if _unsafe(pattern) or "*" in pattern:
                raise ConfigurationError(f"{name}: {path!r} is not a clean path")
            if path.endswith("/*"):
                exact.add(pattern[:-1] or "/")
                prefixes.append(pattern)
            else:
                exact.add(path)
        self._exact = frozenset(exact)
        self._prefixes = tuple(prefixes)

    def __bool__(self) -> bool:
        return bool(self._exact)

    def match(self, path: str, raw_path: str | None = None) -> bool:
        """Whether a request for ``path`` (sent as ``raw_path``) needs no token.

        Args:
            path: the decoded path the application routes on.
            raw_path: the path as sent, still percent-encoded, when the server tells it.
        """
        if not (path in self._exact or (self._prefixes and path.startswith(self._prefixes))):
            return False
        if _unsafe(path):
            return False
        # The raw form shows what decoding hid: an encoded slash ("..%2f" decodes to a
        # clean-looking "/"), or an escape another layer will decode once more.
        return raw_path is None or not _unsafe(raw_path)

    def __repr__(self) -> str:
        listed = sorted(self._exact - {p[:-1] or "/" for p in self._prefixes})
        listed += sorted(p + "*" for p in self._prefixes)
        return f"PathExemptions({listed!r})"


# -- what a route requires ------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Requirement:
    """What a route asks of a request: a token (unless optional), scopes and rules.

    Build it with :meth:`declare`, where the route is declared, so that a bad scope name,
    ``match`` or rule fails at start-up. ``Requirement.declare()`` with no scopes asks for
    a valid token and nothing more, in every layer (``requires_scope()`` is
    ``requires_auth``).

    Attributes:
        scopes: the scopes required, in the order given (the challenge's ``scope``).
        match: ``"all"`` of them, or ``"any"`` one.
        optional: let a request without a token through (a token sent must still be
            valid); not allowed with scopes or rules.
        rules: the authorization rules beyond scopes (permissions, roles, claims, step-up;
            see :mod:`apiguard._rules`), checked after the scopes in the order given.
        check_revocation: also ask the issuer whether the token is still active (RFC 7662
            introspection, with the issuer's ``introspection`` settings and cache), for the
            routes where a revoked JWT must stop working before it expires.
    """

    scopes: tuple[str, ...] = ()
    match: Match = "all"
    optional: bool = False
    rules: tuple[Rule, ...] = ()
    check_revocation: bool = False

    @classmethod
    def declare(
        cls,
        scopes: Iterable[object] = (),
        match: object = "all",
        *,
        optional: bool = False,
        rules: Iterable[object] = (),
        check_revocation: bool = False,
    ) -> Requirement:
        """Check a route's requirement once, where it is declared.

        Raises:
            ConfigurationError: a scope is not an RFC 6749 scope token, ``match`` is not
                ``"all"`` or ``"any"``, a rule is not an :class:`~apiguard.Rule`, or
                ``optional`` is combined with scopes or rules, or a flag is not a boolean.
        """
        checked = check_scope_names(scopes)
        wanted = check_match(match)
        for name, flag in (("optional", optional), ("check_revocation", check_revocation)):
            if not isinstance(flag, bool):
                raise ConfigurationError(f"{name}: must be a boolean, not {flag!r}")
        checked_rules = check_rules(rules)
        if optional and (checked or checked_rules):
            raise ConfigurationError("optional authentication cannot require scopes or rules")
        return cls(checked, wanted, optional, checked_rules, check_revocation)

    def check(self, token: AccessToken | None, clock: Callable[[], float] | None = None) -> None:
        """Decide on the request's token (None: it sent none).

        Args:
            token: the validated token, or None.
            clock: the validator's clock, for rules that compare times (step-up's
                ``max_age``); default ``time.time``.

        Raises:
            MissingToken: no token, and the route is not optional (401, bare challenge).
            InsufficientScope: the token lacks the scopes (403).
            Forbidden: (a subclass) a rule refused the token (403).
            InsufficientUserAuthentication: a step-up rule is unmet (401).
            InvalidClaim: a claim a rule reads has the wrong type (401).
        """
        if token is None:
            if self.optional:
                return
            raise MissingToken("no bearer token on a protected route")
        if self.scopes and not token.has_scopes(*self.scopes, match=self.match):
            raise InsufficientScope(
                self.scopes,
                match=self.match,
                detail=f"requires {self.match} of: {' '.join(self.scopes)} "
                f"(subject {token.subject!r})",
            )
        if self.rules:
            now = (clock or time.time)()
            for rule in self.rules:
                rule.check(token, now)


def check_rules(rules: Iterable[object], *, name: str = "rules") -> tuple[Rule, ...]:
    """Check that every item is a :class:`~apiguard.Rule` (a layer's decorator arguments).

    Raises:
        ConfigurationError: an item is something else (a string, a bare function).
    """
    checked = tuple(rules)
    for rule in checked:
        if not isinstance(rule, Rule):
            raise ConfigurationError(
                f"{name}: {rule!r} is not an apiguard rule (build one with has_permissions, "
                "has_roles, claim_equals, claim_includes, claim_check or step_up)"
            )
    return checked  # type: ignore[return-value]  # every item was checked above


#: A valid token and nothing more.
ANY_TOKEN: Final = Requirement()
#: A token if one is sent (it must then be valid), else anonymous.
OPTIONAL: Final = Requirement(optional=True)


# -- the flow ---------------------------------------------------------------------------------


class Validate(NamedTuple):
    """Step of :func:`guard`: validate the credentials and send back the AccessToken.

    A validator's ``validate_credentials`` does it all: the token, and with DPoP on its
    binding, its proof and the replay check.

    Attributes:
        token: the token as sent.
        scheme: the scheme it came with, ``"Bearer"`` or ``"DPoP"``.
        view: the request, which a DPoP proof is checked against.
        check_revocation: also ask the issuer whether the token is still active (the
            route's :attr:`Requirement.check_revocation`).
    """

    token: str
    scheme: str = "Bearer"
    view: RequestView | None = None
    check_revocation: bool = False


class _ReadForm:
    __slots__ = ()

    def __repr__(self) -> str:
        return "READ_FORM"


#: Step of :func:`guard`: send back the form body (bytes) or its field names.
READ_FORM: Final = _ReadForm()

#: The generator :func:`guard` returns; drive it with :func:`run` or :func:`run_async`.
Flow = Generator[Validate | _ReadForm, Any, AccessToken | None]


def bearer_token(view: RequestView) -> str | None:
    """The bearer token of the request, or None when it sent none.

    Raises:
        InvalidRequest: the header is repeated, empty or ill-formed, or the token is also
            in the query string (RFC 6750 §2: one method only).
    """
    found = credentials(view)
    return None if found is None else found[1]


def credentials(view: RequestView, *, dpop: bool = False) -> tuple[str, str] | None:
    """The scheme and token of the request, or None when it sent none.

    Args:
        view: the request.
        dpop: read the ``DPoP`` scheme too (else it is "another scheme": no token).

    Raises:
        InvalidRequest: as for :func:`bearer_token`.
    """
    try:
        found = extract_credentials(view.authorization, dpop=dpop)
    except MissingToken:
        return None  # no header, or another scheme (Basic, DPoP...): no token
    if view.query and query_names_token(view.query):
        raise InvalidRequest("access token sent in the header and in the query")
    return found


def form_names_token(form: bytes | Iterable[str]) -> bool:
    """Whether a form body (raw bytes, or the field names a framework parsed) has a token."""
    if isinstance(form, bytes | bytearray):
        if b"access_token" not in form and b"%" not in form:
            return False
        text = bytes(form).decode("latin-1")
        return any(name == "access_token" for name, _ in parse_qsl(text, keep_blank_values=True))
    return any(name == "access_token" for name in form)


def _may_have_form_token(content_type: str | None) -> bool:
    # RFC 6750 §2.2: only an application/x-www-form-urlencoded body carries the parameter.
    if not content_type:
        return False
    return content_type.split(";", 1)[0].strip().lower() == _FORM_TYPE


def guard(
    view: RequestView,
    requirement: Requirement,
    *,
    exemptions: PathExemptions | None = None,
    exempt: bool = False,
    clock: Callable[[], float] | None = None,
    dpop: DPoPGate | None = None,
) -> Flow:
    """The whole decision for one request (see the module's rules).

    Args:
        view: the request.
        requirement: what the route asks for.
        exemptions: the paths that need no token.
        exempt: the layer knows the framework answers this request itself, running no
            application code (Flask's automatic ``OPTIONS`` answer).
        clock: the validator's clock, for the requirement's time rules.
        dpop: the validator's :class:`~apiguard.dpop.DPoPGate` (``validator.dpop``), or
            None when no issuer accepts DPoP.

    Returns (as the generator's value): the validated token, or None when the request
    goes on without one (exempt, or no token on an optional route).
    """
    if exempt or (exemptions and exemptions.match(view.path, view.raw_path)):
        return None
    # One generator for the whole request (no nested one to delegate to): this runs for
    # every request a layer sees.
    token: AccessToken | None = None
    try:
        # Read the credentials, validate them, and check the body for a second token.
        found = credentials(view, dpop=dpop is not None)
        if found is not None:
            scheme, raw = found
            token = yield Validate(raw, scheme, view, requirement.check_revocation)
            if view.content_type is not None and _may_have_form_token(view.content_type):
                form = yield READ_FORM
                if form_names_token(form):
                    raise InvalidRequest("access token sent in the header and in the form body")
        requirement.check(token, clock)
    except BearerError as exc:
        if dpop is not None and exc.dpop_algs is None:
            # Every answer of an API that accepts DPoP offers it (RFC 9449 §7.1); the gate
            # marked the errors it raised itself, with the token's own policy.
            dpop.mark(exc, None, _scheme_of(view))
        raise
    return token


def confirm(
    view: RequestView,
    requirement: Requirement,
    token: AccessToken | None,
    clock: Callable[[], float] | None = None,
) -> Flow:
    """The route's requirement on a token that the layer's middleware validated already.

    For a decorator behind the middleware: the requirement decides on the token and, if it
    checks revocation, the issuer is asked about the token (the JWT itself is a cache hit,
    and its introspection answer is cached too). The DPoP proof, checked and spent by the
    middleware, is not checked again: the step carries no request view.
    """
    requirement.check(token, clock)
    if token is not None and requirement.check_revocation:
        found = credentials(view, dpop=True)
        if found is not None:
            yield Validate(found[1], found[0], None, check_revocation=True)
    return token


def _scheme_of(view: RequestView) -> str | None:
    """The scheme the request named (for where an error's parameters go), or None."""
    if len(view.authorization) != 1:
        return None
    name = view.authorization[0].strip(" \t").partition(" ")[0].lower()
    return {"bearer": "Bearer", "dpop": "DPoP"}.get(name)


def run(
    flow: Flow,
    validate: Callable[[Validate], AccessToken],
    read_form: Callable[[], bytes | Iterable[str]],
) -> AccessToken | None:
    """Drive a :data:`Flow` with a synchronous validator; apiguard's errors propagate.

    A refusal of the validator is thrown into the flow, which may mark it for rendering.
    """
    try:
        step = next(flow)
        while True:
            try:
                answer = validate(step) if isinstance(step, Validate) else read_form()
            except BearerError as exc:
                step = flow.throw(exc)
            else:
                step = flow.send(answer)
    except StopIteration as done:
        result: AccessToken | None = done.value
        return result
    finally:
        flow.close()


async def run_async(
    flow: Flow,
    validate: Callable[[Validate], Awaitable[AccessToken]],
    read_form: Callable[[], Awaitable[bytes | Iterable[str]]],
) -> AccessToken | None:
    """Drive a :data:`Flow` with an asynchronous validator (see :func:`run`)."""
    try:
        step = next(flow)
        while True:
            try:
                answer = await validate(step) if isinstance(step, Validate) else await read_form()
            except BearerError as exc:
                step = flow.throw(exc)
            else:
                step = flow.send(answer)
    except StopIteration as done:
        result: AccessToken | None = done.value
        return result
    finally:
        flow.close()
