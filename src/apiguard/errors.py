"""The one exception tree of apiguard.

::

    ApiguardError
    ├── ConfigurationError (also ValueError)   raised at construction, never per request
    ├── ServiceUnavailable                     503, no challenge, Retry-After
    │   ├── KeySetUnavailable                  the issuer's signing keys
    │   └── IntrospectionFailed                the introspection endpoint (RFC 7662)
    └── BearerError                            everything RFC 6750 answers
        ├── MissingToken                       401, bare challenge
        ├── InvalidRequest                     400, error="invalid_request"
        ├── InvalidToken                       401, error="invalid_token"
        │   ├── MalformedToken
        │   ├── UnsupportedTokenType           JWE, nested JWT, JSON serialization
        │   ├── AlgorithmNotAllowed
        │   ├── UnsupportedCriticalHeader
        │   ├── UnknownSigningKey
        │   ├── InvalidSignature
        │   ├── WrongTokenType                 header ``typ``
        │   ├── TokenExpired
        │   ├── TokenNotYetValid
        │   ├── WrongIssuer
        │   ├── WrongAudience
        │   ├── InvalidClaim
        │   └── InactiveToken                  introspection answered ``active: false``
        └── InsufficientScope                  403, error="insufficient_scope"

The HTTP data lives on the classes as constants (``status_code``, ``error``,
``description``, ``reason``), so every framework layer renders the same answer from
:mod:`apiguard.bearer`. ``description`` is fixed text in the RFC 6750 character set: it
never contains anything taken from the request. What went wrong in detail (expected and
received issuer, the kid, the clock delta) is in ``detail``, meant for logs at debug level;
it never contains the token.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import ClassVar

__all__ = [
    "AlgorithmNotAllowed",
    "ApiguardError",
    "BearerError",
    "ConfigurationError",
    "InactiveToken",
    "InsufficientScope",
    "IntrospectionFailed",
    "InvalidClaim",
    "InvalidRequest",
    "InvalidSignature",
    "InvalidToken",
    "KeySetUnavailable",
    "MalformedToken",
    "MissingToken",
    "ServiceUnavailable",
    "TokenExpired",
    "TokenNotYetValid",
    "UnknownSigningKey",
    "UnsupportedCriticalHeader",
    "UnsupportedTokenType",
    "WrongAudience",
    "WrongIssuer",
    "WrongTokenType",
]


class ApiguardError(Exception):
    """Base class of every error apiguard raises."""

    #: Stable machine-readable name of the failure, for logs and metrics.
    reason: ClassVar[str] = "apiguard_error"

    def __init__(self, detail: str | None = None) -> None:
        self.detail = detail or self.__class__.__doc__ or self.reason
        super().__init__(self.detail)


class ConfigurationError(ApiguardError, ValueError):
    """A setting is missing or unsafe; raised at construction, never per request."""

    reason = "configuration_error"


class ServiceUnavailable(ApiguardError):
    """Something apiguard needs to decide cannot be reached: the server's fault, not the client's.

    Answered 503 with ``Retry-After`` and no challenge, never 401: the token may well be
    good, and the client should try again rather than fetch another one.
    """

    reason = "service_unavailable"
    status_code: ClassVar[int] = 503
    error: ClassVar[str | None] = None
    description: ClassVar[str] = "A service needed to check the access token is unavailable"

    def __init__(self, detail: str | None = None, *, retry_after: int = 30) -> None:
        super().__init__(detail)
        #: Seconds after which a retry may succeed (the ``Retry-After`` header).
        self.retry_after = max(1, int(retry_after))


class KeySetUnavailable(ServiceUnavailable):
    """No signing key could be had: the JWKS is unreachable and nothing cached fits."""

    reason = "key_set_unavailable"
    description = "The signing keys of the token issuer are unavailable"


class IntrospectionFailed(ServiceUnavailable):
    """The introspection endpoint (RFC 7662) is unreachable or gave no usable answer.

    Timeouts, 5xx, a refused client authentication, bodies that are too large or not a
    JSON object with a boolean ``active``: none of them says anything about the token, so
    the request is answered 503, never accepted and never 401.
    """

    reason = "introspection_failed"
    description = "The token issuer could not be asked about the access token"


class BearerError(ApiguardError):
    """A request failed RFC 6750 bearer-token authentication or authorization."""

    reason = "bearer_error"
    status_code: ClassVar[int] = 401
    #: RFC 6750 error code; ``None`` means a bare challenge.
    error: ClassVar[str | None] = None
    description: ClassVar[str] = "Authentication required"


class MissingToken(BearerError):
    """The request carried no bearer token (no Authorization header, or another scheme)."""

    reason = "missing_token"
    status_code = 401
    error = None
    description = "Authentication required"


class InvalidRequest(BearerError):
    """The Authorization header is malformed, empty, or sent more than once."""

    reason = "invalid_request"
    status_code = 400
    error = "invalid_request"
    description = "The bearer token request is malformed"


class InvalidToken(BearerError):
    """The access token is not acceptable."""

    reason = "invalid_token"
    status_code = 401
    error = "invalid_token"
    description = "The access token is invalid"


class MalformedToken(InvalidToken):
    """The token is not a well-formed compact JWS with JSON header and claims."""

    reason = "malformed_token"
    description = "The access token is malformed"


class UnsupportedTokenType(InvalidToken):
    """The token is a JWE, a nested JWT or otherwise not a signed JWT."""

    reason = "unsupported_token_type"
    description = "The access token is not a signed JWT"


class AlgorithmNotAllowed(InvalidToken):
    """The token's ``alg`` is not allowed, or does not fit the key."""

    reason = "algorithm_not_allowed"
    description = "The access token is signed with an algorithm that is not allowed"


class UnsupportedCriticalHeader(InvalidToken):
    """The token lists a ``crit`` header extension that apiguard does not understand."""

    reason = "unsupported_critical_header"
    description = "The access token uses an unsupported critical header"


class UnknownSigningKey(InvalidToken):
    """No key of the issuer matches the token's ``kid`` (or the choice is ambiguous)."""

    reason = "unknown_signing_key"
    description = "The access token is signed with an unknown key"


class InvalidSignature(InvalidToken):
    """The signature does not verify."""

    reason = "invalid_signature"
    description = "The access token signature is invalid"


class WrongTokenType(InvalidToken):
    """The header ``typ`` (or the token's shape) says this is not an access token."""

    reason = "wrong_token_type"
    description = "The token is not an access token"


class TokenExpired(InvalidToken):
    """The token has expired (``exp``, or ``iat`` beyond ``max_token_age``)."""

    reason = "token_expired"
    description = "The access token expired"


class TokenNotYetValid(InvalidToken):
    """The token's ``nbf`` or ``iat`` lies in the future."""

    reason = "token_not_yet_valid"
    description = "The access token is not valid yet"


class WrongIssuer(InvalidToken):
    """The ``iss`` claim is not the configured issuer."""

    reason = "wrong_issuer"
    description = "The access token was issued by an untrusted issuer"


class WrongAudience(InvalidToken):
    """The ``aud`` claim names none of the configured audiences."""

    reason = "wrong_audience"
    description = "The access token is not meant for this API"


class InvalidClaim(InvalidToken):
    """A claim is missing, of the wrong type, or not acceptable."""

    reason = "invalid_claim"
    description = "The access token has an invalid claim"


class InactiveToken(InvalidToken):
    """The issuer's introspection endpoint says the token is not active (RFC 7662 §2.2).

    Revoked, expired, unknown, or a token the issuer will not describe to this API.
    """

    reason = "inactive_token"
    description = "The access token is not active"


class InsufficientScope(BearerError):
    """The token is valid but lacks scopes the resource requires."""

    reason = "insufficient_scope"
    status_code = 403
    error = "insufficient_scope"
    description = "The access token lacks a required scope"

    def __init__(
        self, required: Iterable[str], *, match: str = "all", detail: str | None = None
    ) -> None:
        #: The scopes the resource asked for, in the order given (the challenge's ``scope``).
        self.required: tuple[str, ...] = tuple(required)
        self.match = match
        super().__init__(detail or f"requires {match} of: {' '.join(self.required)}")
