"""Token introspection (RFC 7662), without HTTP: which token is live, and who may learn what.

An access token this server issued is *live* while it has not expired and was not revoked:
an opaque reference token is looked up by its hash, a JWT is verified with this server's
keys (or its API's HS256 secret) and checked against the revocation list.

A caller learns about a live token only if it is a client the token's API allows to
introspect (the API's ``introspection_clients``, set in the dashboard or the Management
API): an API's own back end may ask about the tokens meant for it, and nobody else learns
whether a token exists. Everyone else, and every token that is not live, gets the same
``{"active": false}`` (RFC 7662 §2.2 lets a server answer so when the caller may not know).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

import jwt

from .models import Client
from .security import token_digest
from .services import Domain
from .tokens import TokenMinter

INACTIVE: Final[Mapping[str, Any]] = {"active": False}
#: The members of an active answer, when the token has them (``cnf`` as well, for DPoP).
_MEMBERS: Final = ("scope", "client_id", "sub", "aud", "iss", "exp", "iat")


def live_claims(
    domain: Domain, minter: TokenMinter, token: str, *, allow_hs256: bool = True
) -> dict[str, Any] | None:
    """The claims of a live access token this server issued, or None.

    ``allow_hs256=False`` refuses HS256 JWTs, whose secret the API holds too (``/userinfo``
    must not trust what an API could have minted).
    """
    found = domain.revocations.reference(token_digest(token))
    if found is not None:
        return found.claims
    try:
        claims = minter.verify(token, audience=None, allow_hs256=allow_hs256)
    except jwt.PyJWTError:
        return None
    if domain.revocations.is_revoked(str(claims["jti"])):
        return None
    return claims


def audiences(claims: Mapping[str, Any]) -> list[str]:
    """The token's ``aud`` as a list."""
    aud = claims.get("aud")
    if isinstance(aud, str):
        return [aud]
    return [a for a in aud if isinstance(a, str)] if isinstance(aud, list) else []


def may_introspect(domain: Domain, caller: Client, claims: Mapping[str, Any]) -> bool:
    """Whether *caller* is allowed to learn about a token with these claims."""
    for audience in audiences(claims):
        api = domain.apis.find(audience)
        # find_api also takes an API's id: only its identifier names it as an audience.
        if (
            api is not None
            and api.identifier == audience
            and caller.client_id in api.introspection_clients
        ):
            return True
    return False


def introspect(domain: Domain, minter: TokenMinter, caller: Client, token: str) -> dict[str, Any]:
    """The RFC 7662 answer for *token*, as *caller* (an authenticated client) may see it."""
    claims = live_claims(domain, minter, token)
    if claims is None or not may_introspect(domain, caller, claims):
        return dict(INACTIVE)
    return active_answer(claims)


def active_answer(claims: Mapping[str, Any]) -> dict[str, Any]:
    """The answer for a live token: its members (RFC 7662 §2.2), ``cnf`` when bound."""
    answer: dict[str, Any] = {"active": True}
    for name in _MEMBERS:
        if name in claims:
            answer[name] = claims[name]
    if "client_id" not in answer and isinstance(claims.get("azp"), str):
        answer["client_id"] = claims["azp"]
    cnf = claims.get("cnf")
    if isinstance(cnf, dict):
        answer["cnf"] = cnf  # a sender-constrained (DPoP-bound) token: RFC 9449 §6.2
    answer["token_type"] = "DPoP" if isinstance(cnf, dict) and "jkt" in cnf else "Bearer"
    return answer
