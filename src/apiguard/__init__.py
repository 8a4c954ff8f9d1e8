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
    UseDPoPNonce,
    WrongAudience,
    WrongDPoPProofType,
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
    "KeySetUnavailable",
    "MalformedDPoPProof",
    "MalformedRequestURI",
    "MalformedToken",
    "MissingDPoPProof",
    "MissingToken",
    "MultipleDPoPProofs",
    "ReplayStoreUnavailable",
    "ServiceUnavailable",
    "TokenExpired",
    "TokenNotDPoPBound",
    "TokenNotYetValid",
    "UnknownSigningKey",
    "UnsupportedCriticalHeader",
    "UnsupportedTokenType",
    "UseDPoPNonce",
    "Validator",
    "WrongAudience",
    "WrongDPoPProofType",
    "WrongIssuer",
    "WrongTokenType",
    "__version__",
]
