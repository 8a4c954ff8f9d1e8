"""apiguard: protect Python APIs with OAuth 2.0 JWT access tokens.

>>> from apiguard import Validator
>>> validator = Validator(issuer="https://tenant.example/", audience="https://api.example")
>>> token = validator.validate(bearer)  # doctest: +SKIP
>>> token.has_scopes("read:appointments")  # doctest: +SKIP
"""

from importlib.metadata import PackageNotFoundError, version

from ._rules import (
    MULTI_FACTOR,
    Rule,
    claim_check,
    claim_equals,
    claim_includes,
    has_permissions,
    has_roles,
    step_up,
)
from .claims import AccessToken, ClaimPath
from .errors import (
    AlgorithmNotAllowed,
    ApiguardError,
    BearerError,
    ClaimRuleFailed,
    ConfigurationError,
    Forbidden,
    InactiveToken,
    InsufficientScope,
    InsufficientUserAuthentication,
    IntrospectionFailed,
    InvalidClaim,
    InvalidRequest,
    InvalidSignature,
    InvalidToken,
    KeySetUnavailable,
    MalformedToken,
    MissingPermission,
    MissingRole,
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
    "MULTI_FACTOR",
    "AccessToken",
    "AlgorithmNotAllowed",
    "ApiguardError",
    "AsyncIntrospector",
    "AsyncValidator",
    "BearerError",
    "ClaimPath",
    "ClaimRuleFailed",
    "ConfigurationError",
    "Forbidden",
    "InactiveToken",
    "InsufficientScope",
    "InsufficientUserAuthentication",
    "Introspection",
    "IntrospectionFailed",
    "Introspector",
    "InvalidClaim",
    "InvalidRequest",
    "InvalidSignature",
    "InvalidToken",
    "KeySetUnavailable",
    "MalformedToken",
    "MissingPermission",
    "MissingRole",
    "MissingToken",
    "Rule",
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
    "claim_check",
    "claim_equals",
    "claim_includes",
    "has_permissions",
    "has_roles",
    "step_up",
]
