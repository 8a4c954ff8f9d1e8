"""Authorization rules beyond scopes, decided on a validated token without I/O.

A route's rules are objects built once, where the route is declared (so a bad argument
fails at start-up), and checked per request on the validated
:class:`~apiguard.AccessToken`. No framework here: every layer (Flask, ASGI, FastAPI) runs
the same :meth:`Rule.check` and renders what it raises with :mod:`apiguard.bearer`, so the
same token gets the same answer everywhere.

What a refusal answers:

==========================================  ======  =========================================
rule                                        status  ``WWW-Authenticate``
==========================================  ======  =========================================
:func:`has_permissions`                     403     ``error="insufficient_scope"``
:func:`has_roles`                           403     ``error="insufficient_scope"``
:func:`claim_equals`, :func:`claim_includes`,  403  ``error="insufficient_scope"``
:func:`claim_check`
:func:`step_up` (RFC 9470)                  401     ``error="insufficient_user_authentication"``,
                                                    ``acr_values``, ``max_age``
a claim of the wrong type                   401     ``error="invalid_token"``
==========================================  ======  =========================================

Descriptions are fixed text: a refusal never echoes a claim value (a claim rule may give
its own fixed text).
"""

from __future__ import annotations

import math
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Sequence
from typing import Any, Final

from .claims import MISSING, AccessToken, ClaimPath, check_match, read_strings
from .errors import (
    RFC6750_TEXT,
    ClaimRuleFailed,
    ConfigurationError,
    InsufficientUserAuthentication,
    InvalidClaim,
    MissingPermission,
    MissingRole,
)

__all__ = [
    "MULTI_FACTOR",
    "Rule",
    "claim_check",
    "claim_equals",
    "claim_includes",
    "has_permissions",
    "has_roles",
    "step_up",
]

#: The ``acr`` of a multi-factor sign-in as Auth0 (and the OpenID PAPE policies) name it.
MULTI_FACTOR: Final = "http://schemas.openid.net/pape/policies/2007/06/multi-factor"

#: How far in the future an ``auth_time`` may lie (clock skew), in seconds; beyond it the
#: claim is wrong, not fresh. The same bound as the validator's greatest leeway.
_AUTH_TIME_SKEW: Final = 300.0
_NUMERIC: Final = frozenset({int, float})


class Rule(ABC):
    """One authorization rule of a route: decides on a validated token, raises to refuse.

    Subclass it for a rule of your own; most needs are met by :func:`claim_check`.
    """

    __slots__ = ()

    @abstractmethod
    def check(self, token: AccessToken, now: float | None = None) -> None:
        """Let the request through, or raise.

        Args:
            token: the request's validated token.
            now: the current time in seconds since the epoch (the validator's clock);
                None reads ``time.time()``.

        Raises:
            Forbidden: (a subclass) the token does not allow the request (403).
            InsufficientUserAuthentication: the sign-in is too weak or too old (401).
            InvalidClaim: a claim the rule reads has the wrong type (401).
        """


def _names(kind: str, names: Iterable[object]) -> tuple[str, ...]:
    if isinstance(names, str):
        raise ConfigurationError(f"{kind}: give the names one by one, not one string")
    checked: list[str] = []
    for name in names:
        if not isinstance(name, str) or not name or name != name.strip():
            raise ConfigurationError(f"{kind}: not a name: {name!r}")
        checked.append(name)
    if not checked:
        raise ConfigurationError(f"{kind}: name at least one")
    return tuple(checked)


def _match(kind: str, match: object) -> str:
    try:
        return check_match(match)
    except ValueError as exc:
        raise ConfigurationError(f"{kind}: {exc}") from None


def _path(kind: str, path: object) -> ClaimPath:
    try:
        return ClaimPath(path)  # type: ignore[arg-type]
    except ConfigurationError as exc:
        raise ConfigurationError(f"{kind}: {exc}") from None


class _Permissions(Rule):
    __slots__ = ("match", "names")

    def __init__(self, names: tuple[str, ...], match: str) -> None:
        self.names = names
        self.match = match

    def check(self, token: AccessToken, now: float | None = None) -> None:
        if not token.has_permissions(*self.names, match=self.match):
            raise MissingPermission(f"requires {self.match} of the permissions {self.names!r}")

    def __repr__(self) -> str:
        return f"has_permissions({', '.join(map(repr, self.names))}, match={self.match!r})"


def has_permissions(*names: str, match: str = "all") -> Rule:
    """Require Auth0 RBAC permissions: the token's ``permissions`` must list the names.

    ``permissions`` lists everything the *user* may do at the API, whatever the client
    was granted; a third-party client should be held to ``scope`` as well.

    Args:
        *names: the permissions, compared exactly.
        match: ``"all"`` of them (default) or ``"any"`` one.

    Raises:
        ConfigurationError: no name, an empty one, or ``match`` is neither.

    >>> rule = has_permissions("delete:appointments")
    """
    kind = "has_permissions"
    return _Permissions(_names(kind, names), _match(kind, match))


class _Roles(Rule):
    __slots__ = ("claim", "match", "names")

    def __init__(self, names: tuple[str, ...], match: str, claim: ClaimPath | None) -> None:
        self.names = names
        self.match = match
        self.claim = claim

    def check(self, token: AccessToken, now: float | None = None) -> None:
        claim = self.claim
        roles = token.roles if claim is None else read_strings(token.claims, (claim,))
        wanted = self.names
        ok = roles.issuperset(wanted) if self.match == "all" else not roles.isdisjoint(wanted)
        if not ok:
            raise MissingRole(f"requires {self.match} of the roles {wanted!r}")

    def __repr__(self) -> str:
        claim = "" if self.claim is None else f", claim={str(self.claim)!r}"
        return f"has_roles({', '.join(map(repr, self.names))}, match={self.match!r}{claim})"


def has_roles(
    *names: str, match: str = "all", claim: str | Sequence[str] | ClaimPath | None = None
) -> Rule:
    """Require roles of the token's subject.

    The roles are :attr:`AccessToken.roles <apiguard.AccessToken.roles>` (read from the
    validator's ``role_claims``), or the claim at ``claim`` when given. A role claim is a
    string (one role) or a list of strings.

    Args:
        *names: the roles, compared exactly (a role name may contain spaces).
        match: ``"all"`` of them (default) or ``"any"`` one.
        claim: a :class:`~apiguard.ClaimPath` to read the roles from instead.

    Raises:
        ConfigurationError: no name, an empty one, a bad ``match`` or claim path.

    >>> rule = has_roles("organizer-admin", claim=("https://organizer.example/roles",))
    """
    kind = "has_roles"
    path = None if claim is None else _path(kind, claim)
    return _Roles(_names(kind, names), _match(kind, match), path)


def _same(actual: Any, expected: Any) -> bool:
    """JSON equality: ``true`` is not ``1``, and ``1`` is ``1.0``."""
    if isinstance(expected, bool) or expected is None:
        return actual is expected
    if isinstance(expected, str):
        return isinstance(actual, str) and actual == expected
    return type(actual) in _NUMERIC and actual == expected


class _ClaimEquals(Rule):
    __slots__ = ("path", "value")

    def __init__(self, path: ClaimPath, value: Any) -> None:
        self.path = path
        self.value = value

    def check(self, token: AccessToken, now: float | None = None) -> None:
        if not _same(self.path.read(token.claims), self.value):
            raise ClaimRuleFailed(f"{self.path} does not equal the required value")

    def __repr__(self) -> str:
        return f"claim_equals({str(self.path)!r}, {self.value!r})"


def claim_equals(
    path: str | Sequence[str] | ClaimPath, value: str | int | float | bool | None
) -> Rule:
    """Require a claim to have one value (compared as JSON: ``true`` is not ``1``).

    Args:
        path: where the claim is (a :class:`~apiguard.ClaimPath`, its text or segments).
        value: a string, a number, a boolean, or None for a present ``null``.

    Raises:
        ConfigurationError: a bad path, or a value that is not a JSON scalar.

    >>> rule = claim_equals("tid", "9188040d-6c67-4c5b-b112-36a304b66dad")
    """
    kind = "claim_equals"
    if not (value is None or isinstance(value, str | bool | int | float)) or (
        isinstance(value, float) and not math.isfinite(value)
    ):
        raise ConfigurationError(f"{kind}: the value must be a JSON scalar, not {value!r}")
    return _ClaimEquals(_path(kind, path), value)


class _ClaimIncludes(Rule):
    __slots__ = ("match", "path", "values")

    def __init__(self, path: ClaimPath, values: tuple[str, ...], match: str) -> None:
        self.path = path
        self.values = values
        self.match = match

    def check(self, token: AccessToken, now: float | None = None) -> None:
        value = self.path.read(token.claims)
        if value is MISSING:
            raise ClaimRuleFailed(f"{self.path} is missing")
        if isinstance(value, str):
            members = frozenset(value.split(" "))
        elif isinstance(value, list) and all(isinstance(item, str) for item in value):
            members = frozenset(value)
        else:
            raise InvalidClaim(f"{self.path} must be a string or a list of strings")
        wanted = self.values
        ok = members.issuperset(wanted) if self.match == "all" else not members.isdisjoint(wanted)
        if not ok:
            raise ClaimRuleFailed(f"{self.path} lacks {self.match} of the required values")

    def __repr__(self) -> str:
        values = ", ".join(map(repr, self.values))
        return f"claim_includes({str(self.path)!r}, {values}, match={self.match!r})"


def claim_includes(path: str | Sequence[str] | ClaimPath, *values: str, match: str = "all") -> Rule:
    """Require a claim that lists values to hold all (or any) of ``values``.

    The claim is a list of strings, or a string of space-separated values (as ``scope``
    is); a claim of another type makes the token invalid (401), a missing one refuses it.

    Args:
        path: where the claim is (a :class:`~apiguard.ClaimPath`, its text or segments).
        *values: the values, compared exactly.
        match: ``"all"`` of them (default) or ``"any"`` one.

    Raises:
        ConfigurationError: a bad path or ``match``, or no value.

    >>> rule = claim_includes("groups", "staff", "admins", match="any")
    """
    kind = "claim_includes"
    checked = _names(kind, values)
    return _ClaimIncludes(_path(kind, path), checked, _match(kind, match))


class _ClaimCheck(Rule):
    __slots__ = ("description", "predicate", "reason")

    def __init__(
        self, predicate: Callable[[AccessToken], bool], description: str | None, reason: str | None
    ) -> None:
        self.predicate = predicate
        self.description = description
        self.reason = reason

    def check(self, token: AccessToken, now: float | None = None) -> None:
        if self.predicate(token) is not True:
            raise ClaimRuleFailed(
                f"the predicate {_name(self.predicate)} refused the token",
                description=self.description,
                reason=self.reason,
            )

    def __repr__(self) -> str:
        return f"claim_check({_name(self.predicate)})"


def _name(function: Callable[..., Any]) -> str:
    return getattr(function, "__qualname__", None) or repr(function)


def claim_check(
    predicate: Callable[[AccessToken], bool],
    *,
    description: str | None = None,
    reason: str | None = None,
) -> Rule:
    """Require a predicate over the token to return True.

    Anything but ``True`` refuses the request (403). The predicate should read claims with
    ``token.claims.get(...)`` and check their types: an exception it raises is not
    translated (apiguard's own errors, such as :class:`~apiguard.InvalidClaim`, are
    answered as usual).

    Args:
        predicate: called with the validated :class:`~apiguard.AccessToken`.
        description: the refusal's fixed ``error_description`` (RFC 6750 charset); never
            put claim values in it.
        reason: a stable name for logs and metrics (default ``claim_rule_failed``).

    Raises:
        ConfigurationError: ``predicate`` is not callable, or the text is not allowed.

    >>> rule = claim_check(
    ...     lambda token: token.claims.get("email_verified") is True,
    ...     description="A verified email address is required",
    ...     reason="email_not_verified",
    ... )
    """
    kind = "claim_check"
    if not callable(predicate):
        raise ConfigurationError(f"{kind}: the predicate must be callable")
    try:
        ClaimRuleFailed(description=description, reason=reason)
    except (TypeError, ValueError) as exc:
        raise ConfigurationError(f"{kind}: {exc}") from None
    return _ClaimCheck(predicate, description, reason)


class _StepUp(Rule):
    __slots__ = ("acr_values", "max_age")

    def __init__(self, acr_values: tuple[str, ...], max_age: int | None) -> None:
        self.acr_values = acr_values
        self.max_age = max_age

    def check(self, token: AccessToken, now: float | None = None) -> None:
        claims = token.claims
        acr_values = self.acr_values
        max_age = self.max_age
        if acr_values:
            acr = claims.get("acr")
            if acr is not None and not isinstance(acr, str):
                raise InvalidClaim("acr is not a string")
            if acr not in acr_values:
                raise InsufficientUserAuthentication(
                    acr_values, max_age, detail=f"acr {str(acr)[:64]!r} is not accepted"
                )
        if max_age is not None:
            auth_time = claims.get("auth_time")
            if auth_time is None:
                # RFC 9470 §3: without auth_time nobody can tell how recent the sign-in is.
                raise InsufficientUserAuthentication(
                    acr_values, max_age, too_old=True, detail="no auth_time"
                )
            if type(auth_time) not in _NUMERIC:
                raise InvalidClaim("auth_time is not a NumericDate")
            if now is None:
                now = time.time()
            if auth_time > now + _AUTH_TIME_SKEW:
                raise InvalidClaim("auth_time lies in the future")
            if now - auth_time > max_age:
                raise InsufficientUserAuthentication(
                    acr_values,
                    max_age,
                    too_old=True,
                    detail=f"signed in {now - auth_time:.0f} s ago, max age {max_age} s",
                )

    def __repr__(self) -> str:
        return f"step_up(acr_values={self.acr_values!r}, max_age={self.max_age!r})"


def step_up(acr_values: Iterable[str] = (), max_age: int | None = None) -> Rule:
    """Require a strong enough and recent enough sign-in (RFC 9470 step-up).

    Unmet, the request gets 401 ``insufficient_user_authentication`` with ``acr_values``
    and ``max_age`` in the challenge, so the client can send the user to sign in again
    (OIDC's ``acr_values`` and ``max_age`` authorization parameters).

    Args:
        acr_values: the ``acr`` values accepted (any one of them), e.g. :data:`MULTI_FACTOR`.
        max_age: the greatest age of the sign-in, in seconds, read from ``auth_time``; a
            token without ``auth_time`` does not meet it.

    Raises:
        ConfigurationError: neither is given, an ``acr`` value cannot go into a challenge
            (empty, a space, ``"`` or ``\\``, non-ASCII), or ``max_age`` is not an integer
            of seconds (0 or more).

    >>> rule = step_up(acr_values=[MULTI_FACTOR], max_age=600)
    """
    kind = "step_up"
    if isinstance(acr_values, str):
        acr_values = (acr_values,)
    values = tuple(acr_values)
    for value in values:
        if not isinstance(value, str) or not value or " " in value:
            raise ConfigurationError(f"{kind}: not an acr value: {value!r}")
        if not RFC6750_TEXT.fullmatch(value):
            raise ConfigurationError(f"{kind}: {value!r} cannot go into a challenge")
    if max_age is not None and (
        isinstance(max_age, bool) or not isinstance(max_age, int) or max_age < 0
    ):
        raise ConfigurationError(f"{kind}: max_age must be whole seconds (0 or more)")
    if not values and max_age is None:
        raise ConfigurationError(f"{kind}: give acr_values, max_age or both")
    return _StepUp(values, max_age)
