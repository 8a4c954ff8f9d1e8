"""The validated access token as a value object, and scope parsing.

No I/O and no framework here: :class:`AccessToken` is what every layer hands to user code.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, Final, Literal

from .errors import ConfigurationError, InvalidClaim

__all__ = ["DEFAULT_SCOPE_CLAIMS", "AccessToken", "Match", "check_scope_names", "parse_scopes"]

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

    @classmethod
    def from_claims(
        cls,
        header: Mapping[str, Any],
        claims: dict[str, Any],
        scope_claims: Sequence[str] = DEFAULT_SCOPE_CLAIMS,
    ) -> AccessToken:
        """Build the value object from claims that the validator has already checked."""
        if not isinstance(header, MappingProxyType):
            header = MappingProxyType(header)  # decoded headers come read-only already
        scopes = parse_scopes(claims, scope_claims)
        permissions = parse_scopes(claims, _PERMISSIONS) if "permissions" in claims else _NO_SCOPES
        return cls(MappingProxyType(claims), header, scopes, permissions)

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

    def __repr__(self) -> str:
        # Never the raw token; the claims that identify it are enough to debug with.
        return (
            f"AccessToken(subject={self.subject!r}, client_id={self.client_id!r}, "
            f"audience={self.audience!r}, scopes={sorted(self.scopes)!r}, "
            f"expires_at={self.expires_at!r})"
        )
