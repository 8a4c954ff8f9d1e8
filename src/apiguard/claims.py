"""The validated access token as a value object, and scope parsing.

No I/O and no framework here: :class:`AccessToken` is what every layer hands to user code.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, Final, Literal

from .errors import ConfigurationError, InvalidClaim

__all__ = [
    "DEFAULT_SCOPE_CLAIMS",
    "MISSING",
    "AccessToken",
    "ClaimPath",
    "Match",
    "check_scope_names",
    "claim_paths",
    "parse_scopes",
    "read_strings",
]

#: Where scopes are read from: OAuth ``scope`` (RFC 8693/9068) and ``scp`` (Azure AD, Okta).
#:
#: Not Auth0's RBAC ``permissions``: it lists everything the *user* may do, while ``scope``
#: is what the *application* was granted (what it asked for, the user consented to and the
#: user may do). Reading ``permissions`` as scopes hands a third-party app the user's whole
#: role. It is :attr:`AccessToken.permissions`, its own set, and is read as scopes only
#: when ``scope_claims`` names it (SECURITY.md, "Scopes").
DEFAULT_SCOPE_CLAIMS: tuple[str, ...] = ("scope", "scp")
_PERMISSIONS: Final = ("permissions",)

#: How several required scopes combine: every one of them, or at least one.
Match = Literal["all", "any"]

# RFC 6749 §3.3: scope-token = 1*( %x21 / %x23-5B / %x5D-7E ): no space, '"' or '\'.
_SCOPE_TOKEN: Final = re.compile(r"[\x21\x23-\x5B\x5D-\x7E]+")


_NO_SCOPES: frozenset[str] = frozenset()
_EMPTY: frozenset[str] = frozenset({""})


def parse_scopes(
    claims: Mapping[str, Any], scope_claims: Sequence[str] = DEFAULT_SCOPE_CLAIMS
) -> frozenset[str]:
    """Collect the scopes a token grants from the given claims.

    Args:
        claims: the token's claims set.
        scope_claims: claim names to read, each a space-separated string or a list of
            strings.

    Raises:
        InvalidClaim: a scope claim has another type (a number, a list with a non-string).

    >>> sorted(parse_scopes({"scope": "read:a write:a", "permissions": ["read:b"]}))
    ['read:a', 'write:a']
    """
    scopes = _NO_SCOPES
    for name in scope_claims:
        value = claims.get(name)
        if value is None:
            continue
        if isinstance(value, str):
            # RFC 6749 §3.3: only a space separates scopes. Anything else is part of one.
            items: Iterable[str] = value.split(" ")
        elif isinstance(value, list) and all(isinstance(item, str) for item in value):
            items = value
        else:
            raise InvalidClaim(f"claim {name!r} must be a string or a list of strings")
        # A token usually has one scope claim: its set is the answer, built once.
        scopes = scopes.union(items) if scopes else frozenset(items)
    # Doubled, leading or trailing spaces (or an empty string) grant no empty scope.
    return scopes - _EMPTY if "" in scopes else scopes


def check_match(match: object) -> Match:
    """Return ``match`` if it is ``"all"`` or ``"any"``.

    Raises:
        ConfigurationError: (also a ValueError) for anything else.
    """
    if match == "all":
        return "all"
    if match == "any":
        return "any"
    raise ConfigurationError(f"match: must be 'all' or 'any', not {match!r}")


def check_scope_names(scopes: Iterable[object], *, name: str = "scopes") -> tuple[str, ...]:
    """Check scope names once, where a route declares them, with the RFC 6749 rule.

    Every layer calls this when a decorator or dependency is declared, so that a name
    that could never be granted (or rendered in a ``WWW-Authenticate`` challenge) fails
    at start-up instead of answering 500 per request.

    Args:
        scopes: the scope names, e.g. ``("read:appointments",)``.
        name: what to call them in the error message.

    Raises:
        ConfigurationError: a name is not a string or not an RFC 6749 ``scope-token``
            (empty, or with a space, ``"``, ``\\`` or a non-ASCII character).

    >>> check_scope_names(["read:a", "write:a"])
    ('read:a', 'write:a')
    """
    if isinstance(scopes, str):
        raise ConfigurationError(f"{name}: give scope names one by one, not one string")
    checked: list[str] = []
    for scope in scopes:
        if not isinstance(scope, str) or not _SCOPE_TOKEN.fullmatch(scope):
            raise ConfigurationError(f"{name}: not an RFC 6749 scope token: {scope!r}")
        checked.append(scope)
    return tuple(checked)


@dataclass(frozen=True, slots=True, eq=False)
class AccessToken:
    """A validated access token.

    Attributes:
        claims: the whole claims set, read-only.
        header: the JOSE header, read-only.
        scopes: every scope granted, from ``scope`` and ``scp`` (and any other claim the
            validator's ``scope_claims`` names).
        permissions: Auth0's RBAC ``permissions`` claim as its own set (empty without
            one): what the *user* may do, which is not what the application was granted.
            It is part of :attr:`scopes` only when ``scope_claims`` names it.
        roles: the roles read from the validator's ``role_claims`` (empty when none are
            configured).
        subject: ``sub`` (a user id, or ``<client_id>@clients`` for a machine), or None.
        issuer: ``iss``.
        audience: ``aud`` as a tuple (a single string becomes a one-element tuple).
        client_id: ``client_id`` (RFC 9068) or, failing that, ``azp`` (Auth0), or None.
        expires_at: ``exp`` in seconds since the epoch.
        issued_at: ``iat`` in seconds since the epoch, or None.
        token_id: ``jti``, or None.
        jkt: the DPoP key thumbprint it is bound to (``cnf.jkt``, RFC 9449 §6), or None.
        scheme: ``"DPoP"`` for a DPoP-bound token, else ``"Bearer"``: the only scheme it
            is accepted with.
    """

    # Only what needs work is stored; the rest is read from the claims on access, which
    # keeps building one (once per validated token) cheap.
    claims: Mapping[str, Any]
    header: Mapping[str, Any]
    scopes: frozenset[str]
    permissions: frozenset[str] = _NO_SCOPES
    roles: frozenset[str] = _NO_SCOPES

    @classmethod
    def from_claims(
        cls,
        header: Mapping[str, Any],
        claims: dict[str, Any],
        scope_claims: Sequence[str] = DEFAULT_SCOPE_CLAIMS,
        role_claims: Sequence[ClaimPath] = (),
    ) -> AccessToken:
        """Build the value object from claims that the validator has already checked.

        Raises:
            InvalidClaim: a scope, ``permissions`` or role claim has the wrong type.
        """
        if not isinstance(header, MappingProxyType):
            header = MappingProxyType(header)  # decoded headers come read-only already
        # Each set costs nothing when its claims are absent or not configured.
        permissions = _permissions(claims["permissions"]) if "permissions" in claims else _NO_SCOPES
        roles = read_strings(claims, role_claims) if role_claims else _NO_SCOPES
        # Built once per validated token: filling the slots directly costs half of what a
        # frozen dataclass's __init__ does (it goes through object.__setattr__ by name).
        token = _new(cls)
        _set_claims(token, MappingProxyType(claims))
        _set_header(token, header)
        _set_scopes(token, parse_scopes(claims, scope_claims))
        _set_permissions(token, permissions)
        _set_roles(token, roles)
        return token

    @property
    def subject(self) -> str | None:
        """``sub``, or None."""
        return self.claims.get("sub")

    @property
    def issuer(self) -> str:
        """``iss``."""
        issuer: str = self.claims["iss"]
        return issuer

    @property
    def audience(self) -> tuple[str, ...]:
        """``aud`` as a tuple."""
        aud = self.claims.get("aud")
        return (aud,) if isinstance(aud, str) else tuple(aud or ())

    @property
    def client_id(self) -> str | None:
        """``client_id``, else ``azp``, else None."""
        claims = self.claims
        client_id = claims.get("client_id")
        if not isinstance(client_id, str):
            # A null (or absent) client_id must not hide azp.
            client_id = claims.get("azp")
        return client_id if isinstance(client_id, str) else None

    @property
    def expires_at(self) -> float:
        """``exp``."""
        expires_at: float = self.claims["exp"]
        return expires_at

    @property
    def issued_at(self) -> float | None:
        """``iat``, or None."""
        return self.claims.get("iat")

    @property
    def token_id(self) -> str | None:
        """``jti``, or None."""
        return self.claims.get("jti")

    @property
    def jkt(self) -> str | None:
        """``cnf.jkt``, the thumbprint of the DPoP key the token is bound to, or None."""
        cnf = self.claims.get("cnf")
        jkt = cnf.get("jkt") if isinstance(cnf, dict) else None  # decoded JSON: a dict
        return jkt if isinstance(jkt, str) else None

    @property
    def scheme(self) -> str:
        """``"DPoP"`` for a DPoP-bound token, else ``"Bearer"``."""
        return "Bearer" if self.jkt is None else "DPoP"

    def has_scopes(self, *scopes: str, match: Match = "all") -> bool:
        """Tell whether the token grants all (or, with ``match="any"``, any) of ``scopes``.

        Scopes are compared exactly: ``read`` is not ``Read`` nor ``read:all``.

        >>> token.has_scopes("read:appointments", "create:appointments")  # doctest: +SKIP
        """
        if check_match(match) == "all":
            return self.scopes.issuperset(scopes)
        return not self.scopes.isdisjoint(scopes)

    def has_permissions(self, *permissions: str, match: str = "all") -> bool:
        """Tell whether the token lists all (or any) of ``permissions`` (compared exactly)."""
        if check_match(match) == "all":
            return self.permissions.issuperset(permissions)
        return not self.permissions.isdisjoint(permissions)

    def has_roles(self, *roles: str, match: str = "all") -> bool:
        """Tell whether the token's roles hold all (or any) of ``roles`` (compared exactly)."""
        if check_match(match) == "all":
            return self.roles.issuperset(roles)
        return not self.roles.isdisjoint(roles)

    def __repr__(self) -> str:
        # Never the raw token; the claims that identify it are enough to debug with.
        return (
            f"AccessToken(subject={self.subject!r}, client_id={self.client_id!r}, "
            f"audience={self.audience!r}, scopes={sorted(self.scopes)!r}, "
            f"expires_at={self.expires_at!r})"
        )


# The slots' own setters, for from_claims (the dataclass stays frozen for everyone else).
def _slot_setter(name: str) -> Callable[[AccessToken, Any], None]:
    setter: Callable[[AccessToken, Any], None] = vars(AccessToken)[name].__set__
    return setter


_new: Final = object.__new__
_set_claims: Final = _slot_setter("claims")
_set_header: Final = _slot_setter("header")
_set_scopes: Final = _slot_setter("scopes")
_set_permissions: Final = _slot_setter("permissions")
_set_roles: Final = _slot_setter("roles")


# -- claim paths ----------------------------------------------------------------------------

# An unquoted segment: anything but the separator, quotes, '/', whitespace and controls. '/'
# is refused so that an unquoted URL claim name fails loudly instead of never matching.
_BARE_SEGMENT: Final = re.compile(r'[^."\\/\s\x00-\x1f\x7f]+')
_QUOTED_SEGMENT: Final = re.compile(r'"((?:[^"\\]|\\["\\])+)"')
_NEEDS_QUOTES: Final = re.compile(r'[."\\/\s\x00-\x1f\x7f]')


class _Missing:
    __slots__ = ()

    def __repr__(self) -> str:
        return "MISSING"

    def __bool__(self) -> bool:
        return False


#: What :meth:`ClaimPath.read` returns for a claim that is not there.
MISSING: Final[Any] = _Missing()


class ClaimPath:
    """Where a claim is in a token: a top-level name or a path into nested objects.

    A path is written as segments joined by ``.``; a segment that itself contains a dot, a
    ``/`` or a space (a URL, such as Auth0's namespaced custom claims) is written in double
    quotes, inside which ``\\"`` and ``\\\\`` stand for ``"`` and ``\\``. A tuple (or list)
    of segments is taken literally and needs no quoting.

    ======================================  ==============================================
    ``"roles"``                             Entra ID app roles, a top-level claim
    ``"realm_access.roles"``                Keycloak realm roles
    ``"resource_access.my-client.roles"``   Keycloak client roles
    ``'"https://organizer.example/roles"'`` an Auth0 namespaced claim
    ``("https://organizer.example/roles",)`` the same, as segments
    ``'resource_access."my.client".roles'`` a client id with a dot in it
    ======================================  ==============================================

    Args:
        path: the path text, or its segments.

    Raises:
        ConfigurationError: the path is empty, has an empty segment, an unclosed quote, or
            an unquoted ``/`` (write ``'"https://..."'``).

    >>> ClaimPath("realm_access.roles").segments
    ('realm_access', 'roles')
    >>> ClaimPath('"https://organizer.example/roles"').segments
    ('https://organizer.example/roles',)
    """

    __slots__ = ("_head", "_rest", "_text", "segments")

    segments: tuple[str, ...]

    def __init__(self, path: str | Sequence[str] | ClaimPath) -> None:
        if isinstance(path, ClaimPath):
            segments = path.segments
        elif isinstance(path, str):
            segments = _parse_path(path)
        elif isinstance(path, tuple | list) and path:
            if not all(isinstance(item, str) and item for item in path):
                raise ConfigurationError(
                    f"claim path: segments must be non-empty strings: {path!r}"
                )
            segments = tuple(path)
        else:
            raise ConfigurationError(f"claim path: a string or a tuple of segments, not {path!r}")
        self.segments = segments
        # Most paths have one segment: reading them is one dict lookup.
        self._head = segments[0]
        self._rest = segments[1:]
        self._text = ".".join(_quote_segment(segment) for segment in segments)

    def read(self, claims: Mapping[str, Any]) -> Any:
        """The value at this path, or :data:`MISSING` when it is not there.

        Raises:
            InvalidClaim: a claim on the way is there but not a JSON object.

        >>> ClaimPath("realm_access.roles").read({"realm_access": {"roles": ["admin"]}})
        ['admin']
        """
        value: Any = claims.get(self._head, MISSING)
        if not self._rest:
            return value
        for depth, segment in enumerate(self._rest, 1):
            if value is MISSING:
                return MISSING
            if type(value) is not dict:
                # Never a TypeError: a string or list on the way is a malformed token.
                raise InvalidClaim(f"{_join(self.segments[:depth])} is not a JSON object")
            value = value.get(segment, MISSING)
        return value

    def __str__(self) -> str:
        return self._text

    def __repr__(self) -> str:
        return f"ClaimPath({self._text!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, ClaimPath) and other.segments == self.segments

    def __hash__(self) -> int:
        return hash(self.segments)


def _quote_segment(segment: str) -> str:
    if not _NEEDS_QUOTES.search(segment):
        return segment
    return '"' + segment.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _join(segments: Sequence[str]) -> str:
    return ".".join(_quote_segment(segment) for segment in segments)


def _parse_path(text: str) -> tuple[str, ...]:
    segments: list[str] = []
    position = 0
    while True:
        quoted = _QUOTED_SEGMENT.match(text, position)
        if quoted is not None:
            segments.append(re.sub(r"\\([\"\\])", r"\1", quoted.group(1)))
        else:
            bare = _BARE_SEGMENT.match(text, position)
            if bare is None:
                raise ConfigurationError(_path_problem(text, position))
            segments.append(bare.group())
            quoted = bare
        position = quoted.end()
        if position == len(text):
            return tuple(segments)
        if text[position] != ".":
            raise ConfigurationError(_path_problem(text, position))
        position += 1


def _path_problem(text: str, position: int) -> str:
    if "/" in text and '"' not in text:
        return (
            f"claim path {text!r}: a claim name with '.' or '/' (a URL) is written in double "
            f"quotes, e.g. '\"{text}\"', or given as a tuple of segments"
        )
    if position >= len(text) or text[position] == ".":
        return f"claim path {text!r}: empty segment at character {position}"
    return f"claim path {text!r}: unexpected character at {position} (quote the segment)"


def claim_paths(
    paths: Iterable[str | Sequence[str] | ClaimPath], *, name: str
) -> tuple[ClaimPath, ...]:
    """Parse a setting that lists claim paths, once, at configuration time.

    Args:
        paths: the paths (a single path text is one path, not a list of characters).
        name: the setting's name, for the error message.

    Raises:
        ConfigurationError: a path is not well formed (the message names the setting).
    """
    if isinstance(paths, str | ClaimPath):
        paths = (paths,)
    try:
        items = tuple(paths)
    except TypeError:
        raise ConfigurationError(f"{name}: must be claim paths, not {paths!r}") from None
    try:
        return tuple(dict.fromkeys(ClaimPath(path) for path in items))
    except ConfigurationError as exc:
        raise ConfigurationError(f"{name}: {exc}") from None


def read_strings(claims: Mapping[str, Any], paths: Sequence[ClaimPath]) -> frozenset[str]:
    """The union of the string sets at ``paths`` (roles, groups): each a string or a list.

    A string is one member, never split: role and group names may contain spaces. A
    missing claim adds nothing.

    Raises:
        InvalidClaim: a claim is there with another type (a number, null, an object, a list
            holding a non-string), or a claim on the way is not an object.

    >>> sorted(read_strings({"realm_access": {"roles": ["a", "b"]}}, claim_paths(
    ...     ["realm_access.roles"], name="role_claims")))
    ['a', 'b']
    """
    found = _NO_SCOPES
    for path in paths:
        value = path.read(claims)
        if value is MISSING:
            continue
        items = frozenset((value,)) if type(value) is str else _strings(value, path)
        found = found | items if found else items
    return found


def _permissions(value: Any) -> frozenset[str]:
    """Auth0's ``permissions``: a list of strings (or, like ``scope``, one spaced string)."""
    if type(value) is str:
        return frozenset(value.split(" ")) - _EMPTY
    return _strings(value, "permissions")


def _strings(value: Any, name: object) -> frozenset[str]:
    """A JSON list of strings as a set; InvalidClaim for anything else."""
    if type(value) is list:
        try:
            # One C-level pass that fails on any member that is not a str (a number, null,
            # a list or an object): cheaper than testing each member in Python.
            "".join(value)
        except TypeError:
            pass
        else:
            return frozenset(value)
    raise InvalidClaim(
        f"{name} must be a list of strings"
        if name == "permissions"
        else f"{name} must be a string or a list of strings"
    )
