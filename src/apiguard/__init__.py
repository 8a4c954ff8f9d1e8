"""apiguard: protect Python APIs with OAuth 2.0 JWT access tokens.

>>> from apiguard import Validator
>>> validator = Validator(issuer="https://tenant.example/", audience="https://api.example")
>>> token = validator.validate(bearer)  # doctest: +SKIP
>>> token.has_scopes("read:appointments")  # doctest: +SKIP
"""

from importlib.metadata import PackageNotFoundError, version

from .claims import AccessToken
from .errors import (
    AlgorithmNotAllowed,
    ApiguardError,
    BearerError,
    ConfigurationError,
    InactiveToken,
    InsufficientScope,
    IntrospectionFailed,
    InvalidClaim,
    InvalidRequest,
    InvalidSignature,
    InvalidToken,
    KeySetUnavailable,
    MalformedToken,
    MissingToken,
    ServiceUnavailable,
    TokenExpired,
    TokenNotYetValid,
    UnknownSigningKey,
    UnsupportedCriticalHeader,
    UnsupportedTokenType,
    WrongAudience,
    WrongIssuer,
    WrongTokenType,
)
from .introspection import Introspection
from .validator import AsyncIntrospector, AsyncValidator, Introspector, Validator

try:
    __version__ = version("apiguard")
except PackageNotFoundError:  # pragma: no cover - running from a source tree
    __version__ = "0.0.0"

__all__ = [
    "AccessToken",
    "AlgorithmNotAllowed",
    "ApiguardError",
    "AsyncIntrospector",
    "AsyncValidator",
    "BearerError",
    "ConfigurationError",
    "InactiveToken",
    "InsufficientScope",
    "Introspection",
    "IntrospectionFailed",
    "Introspector",
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
    "Validator",
    "WrongAudience",
    "WrongIssuer",
    "WrongTokenType",
    "__version__",
]
