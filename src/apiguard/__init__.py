"""apiguard: protect Python APIs with OAuth 2.0 JWT access tokens.

>>> from apiguard import Validator
>>> validator = Validator(issuer="https://tenant.example/", audience="https://api.example")
>>> token = validator.validate(bearer)  # doctest: +SKIP
>>> token.has_scopes("read:appointments")  # doctest: +SKIP
"""

from importlib.metadata import PackageNotFoundError, version

from ._core import CacheInfo
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
    IssuerResolutionFailed,
    KeySetUnavailable,
    MalformedToken,
    MissingToken,
    ServiceUnavailable,
    TokenExpired,
    TokenNotYetValid,
    UnknownSigningKey,
    UnsupportedCriticalHeader,
    UnsupportedTokenType,
    UntrustedIssuer,
    WrongAudience,
    WrongIssuer,
    WrongTokenType,
)
from .introspection import Introspection
from .issuers import IssuerHealth, IssuerPolicy, IssuerResolver, TenantIssuers
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
    "CacheInfo",
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
    "IssuerHealth",
    "IssuerPolicy",
    "IssuerResolutionFailed",
    "IssuerResolver",
    "KeySetUnavailable",
    "MalformedToken",
    "MissingToken",
    "ServiceUnavailable",
    "TenantIssuers",
    "TokenExpired",
    "TokenNotYetValid",
    "UnknownSigningKey",
    "UnsupportedCriticalHeader",
    "UnsupportedTokenType",
    "UntrustedIssuer",
    "Validator",
    "WrongAudience",
    "WrongIssuer",
    "WrongTokenType",
    "__version__",
]
