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
    DPoPAlgorithmNotAllowed,
    DPoPBoundTokenAsBearer,
    DPoPKeyMismatch,
    DPoPMethodMismatch,
    DPoPProofExpired,
    DPoPProofNotYetValid,
    DPoPProofReplayed,
    DPoPRequired,
    DPoPTokenHashMismatch,
    DPoPURIMismatch,
    InactiveToken,
    InsufficientScope,
    IntrospectionFailed,
    InvalidClaim,
    InvalidDPoPKey,
    InvalidDPoPProof,
    InvalidDPoPSignature,
    InvalidRequest,
    InvalidSignature,
    InvalidToken,
    IssuerResolutionFailed,
    KeySetUnavailable,
    MalformedDPoPProof,
    MalformedRequestURI,
    MalformedToken,
    MissingDPoPProof,
    MissingToken,
    MultipleDPoPProofs,
    ReplayStoreUnavailable,
    ServiceUnavailable,
    TokenExpired,
    TokenNotDPoPBound,
    TokenNotYetValid,
    UnknownSigningKey,
    UnsupportedCriticalHeader,
    UnsupportedTokenType,
    UntrustedIssuer,
    UseDPoPNonce,
    WrongAudience,
    WrongDPoPProofType,
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
    "DPoPAlgorithmNotAllowed",
    "DPoPBoundTokenAsBearer",
    "DPoPKeyMismatch",
    "DPoPMethodMismatch",
    "DPoPProofExpired",
    "DPoPProofNotYetValid",
    "DPoPProofReplayed",
    "DPoPRequired",
    "DPoPTokenHashMismatch",
    "DPoPURIMismatch",
    "InactiveToken",
    "InsufficientScope",
    "Introspection",
    "IntrospectionFailed",
    "Introspector",
    "InvalidClaim",
    "InvalidDPoPKey",
    "InvalidDPoPProof",
    "InvalidDPoPSignature",
    "InvalidRequest",
    "InvalidSignature",
    "InvalidToken",
    "IssuerHealth",
    "IssuerPolicy",
    "IssuerResolutionFailed",
    "IssuerResolver",
    "KeySetUnavailable",
    "MalformedDPoPProof",
    "MalformedRequestURI",
    "MalformedToken",
    "MissingDPoPProof",
    "MissingToken",
    "MultipleDPoPProofs",
    "ReplayStoreUnavailable",
    "ServiceUnavailable",
    "TenantIssuers",
    "TokenExpired",
    "TokenNotDPoPBound",
    "TokenNotYetValid",
    "UnknownSigningKey",
    "UnsupportedCriticalHeader",
    "UnsupportedTokenType",
    "UntrustedIssuer",
    "UseDPoPNonce",
    "Validator",
    "WrongAudience",
    "WrongDPoPProofType",
    "WrongIssuer",
    "WrongTokenType",
    "__version__",
]
