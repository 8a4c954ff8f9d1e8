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
    InsufficientScope,
    InvalidClaim,
    InvalidRequest,
    InvalidSignature,
    InvalidToken,
    IssuerResolutionFailed,
    KeySetUnavailable,
    MalformedToken,
    MissingToken,
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
from .issuers import IssuerHealth, IssuerPolicy, IssuerResolver, TenantIssuers
from .validator import AsyncValidator, Validator

try:
    __version__ = version("apiguard")
except PackageNotFoundError:  # pragma: no cover - running from a source tree
    __version__ = "0.0.0"

__all__ = [
    "AccessToken",
    "AlgorithmNotAllowed",
    "ApiguardError",
    "AsyncValidator",
    "BearerError",
    "CacheInfo",
    "ConfigurationError",
    "InsufficientScope",
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
