"""The one exception tree of apiguard.

::

    ApiguardError
    ├── ConfigurationError (also ValueError)   raised at construction, never per request
    ├── ServiceUnavailable                     503, no challenge, Retry-After
    │   ├── KeySetUnavailable                  the issuer's signing keys
    │   ├── IssuerResolutionFailed             the issuer resolver failed (not refused)
    │   ├── IntrospectionFailed                the introspection endpoint (RFC 7662)
    │   └── ReplayStoreUnavailable             the DPoP replay store cannot be reached
    └── BearerError                            everything RFC 6750 and RFC 9449 answer
        ├── MissingToken                       401, bare challenge
        ├── InvalidRequest                     400, error="invalid_request"
        │   ├── MultipleDPoPProofs             more than one DPoP header
        │   └── MalformedRequestURI            Host (or a trusted forwarded header) unusable
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
        │   │   └── UntrustedIssuer            ``iss`` names no trusted issuer
        │   ├── WrongAudience
        │   ├── InvalidClaim
        │   ├── InactiveToken                  introspection answered ``active: false``
        │   ├── DPoPKeyMismatch                cnf.jkt is not the proof's key
        │   ├── DPoPBoundTokenAsBearer         a DPoP-bound token sent as Bearer
        │   ├── DPoPRequired                   a token sent as Bearer where DPoP is required
        │   └── TokenNotDPoPBound              a token without cnf.jkt sent as DPoP
        ├── InvalidDPoPProof                   401, error="invalid_dpop_proof" (RFC 9449)
        │   ├── MissingDPoPProof
        │   ├── MalformedDPoPProof
        │   ├── WrongDPoPProofType             header ``typ`` is not dpop+jwt
        │   ├── DPoPAlgorithmNotAllowed
        │   ├── InvalidDPoPKey                 header ``jwk``
        │   ├── InvalidDPoPSignature
        │   ├── DPoPMethodMismatch             ``htm``
        │   ├── DPoPURIMismatch                ``htu``
        │   ├── DPoPProofExpired               ``iat`` too old
        │   ├── DPoPProofNotYetValid           ``iat`` in the future
        │   ├── DPoPTokenHashMismatch          ``ath``
        │   └── DPoPProofReplayed              ``jti`` seen before
        ├── UseDPoPNonce                       401, error="use_dpop_nonce" + DPoP-Nonce
        ├── InsufficientUserAuthentication     401, error="insufficient_user_authentication"
        │                                      (RFC 9470 step-up: acr_values, max_age)
        └── Forbidden                          403, error="insufficient_scope"
            ├── InsufficientScope              scope="..." in the challenge
            ├── MissingPermission
            ├── MissingRole
            └── ClaimRuleFailed                a claim rule (equals, includes, predicate)

The HTTP data lives on the classes as constants (``status_code``, ``error``,
``description``, ``reason``), so every framework layer renders the same answer from
:mod:`apiguard.bearer`. ``description`` is fixed text in the RFC 6750 character set: it
never contains anything taken from the request (an application's own rule may give its
own fixed text and ``reason``, checked when the error is built). What went wrong in detail
(expected and received issuer, the kid, the clock delta) is in ``detail``, meant for logs
at debug level;
it never contains the token.

DPoP errors (RFC 9449) set ``scheme = "DPoP"``: their ``error`` belongs on the ``DPoP``
challenge, whichever scheme the request used.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import ClassVar, Final

__all__ = [
    "AlgorithmNotAllowed",
    "ApiguardError",
    "BearerError",
    "ClaimRuleFailed",
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
    "Forbidden",
    "InactiveToken",
    "InsufficientScope",
    "InsufficientUserAuthentication",
    "IntrospectionFailed",
    "InvalidClaim",
    "InvalidDPoPKey",
    "InvalidDPoPProof",
    "InvalidDPoPSignature",
    "InvalidRequest",
    "InvalidSignature",
    "InvalidToken",
    "IssuerResolutionFailed",
    "KeySetUnavailable",
    "MalformedDPoPProof",
    "MalformedRequestURI",
    "MalformedToken",
    "MissingDPoPProof",
    "MissingPermission",
    "MissingRole",
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
    "UntrustedIssuer",
    "UseDPoPNonce",
    "WrongAudience",
    "WrongDPoPProofType",
    "WrongIssuer",
    "WrongTokenType",
]


#: RFC 6750 §3: what ``error_description`` (and every quoted challenge value) may contain.
RFC6750_TEXT: Final = re.compile(r"[\x20\x21\x23-\x5B\x5D-\x7E]*")
# A reason is a name for logs and metrics: no spaces, nothing to quote.
_REASON: Final = re.compile(r"[a-z][a-z0-9_.:-]{0,63}")


class ApiguardError(Exception):
    """Base class of every error apiguard raises."""

    #: Stable machine-readable name of the failure, for logs and metrics. A class constant;
    #: an application's own rule may name its own (see :class:`InvalidClaim`).
    reason: str = "apiguard_error"

    def __init__(self, detail: str | None = None) -> None:
        self.detail = detail or self.__class__.__doc__ or self.reason
        super().__init__(self.detail)


class ConfigurationError(ApiguardError, ValueError):
    """A setting is missing or unsafe; raised at construction, never per request."""

    reason = "configuration_error"

    def __init__(self, detail: str | None = None, *, setting: str | None = None) -> None:
        super().__init__(detail)
        #: The name of the setting at fault (the message starts with it), or None.
        self.setting = setting


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


class IssuerResolutionFailed(ServiceUnavailable):
    """The issuer resolver raised: whether the issuer is trusted cannot be told right now.

    A resolver that *refuses* an issuer makes the token invalid (401); one that fails (its
    tenant database is down, say) is the server's fault, hence 503 like a JWKS outage.
    """

    reason = "issuer_resolution_failed"
    description = "The token issuer cannot be checked right now"


class ReplayStoreUnavailable(ServiceUnavailable):
    """The DPoP replay store cannot be reached (or is full), so no proof can be accepted.

    Accepting the proof unchecked could accept a replay (RFC 9449 §11.1), hence 503.
    """

    reason = "replay_store_unavailable"
    description = "The DPoP replay store is unavailable"

    def __init__(self, detail: str | None = None, *, retry_after: int = 5) -> None:
        super().__init__(detail, retry_after=retry_after)


class BearerError(ApiguardError):
    """A request failed RFC 6750 bearer-token authentication or authorization."""

    reason = "bearer_error"
    status_code: ClassVar[int] = 401
    #: RFC 6750 error code; ``None`` means a bare challenge.
    error: ClassVar[str | None] = None
    #: Fixed text for ``error_description``; a class constant, which an application's own
    #: rule may replace with its own fixed text (see :class:`InvalidClaim`).
    description: str = "Authentication required"

    def __init__(
        self,
        detail: str | None = None,
        *,
        description: str | None = None,
        reason: str | None = None,
    ) -> None:
        super().__init__(detail)
        self._own_text(description, reason)

    def _own_text(self, description: str | None, reason: str | None) -> None:
        """Take an application's fixed ``description`` and stable ``reason``, checked now.

        Checked where the error is built, so that a text that cannot go into a challenge
        fails in the application's own code, not later in the renderer.
        """
        if description is not None:
            if not isinstance(description, str) or not description:
                raise TypeError("description: must be a non-empty string")
            if not RFC6750_TEXT.fullmatch(description):
                raise ValueError(
                    "description: only printable ASCII without '\"' or '\\' (RFC 6750 §3)"
                )
            self.description = description
        if reason is not None:
            if not isinstance(reason, str) or not _REASON.fullmatch(reason):
                raise ValueError(
                    "reason: lower-case letters, digits, '_', '.', ':' or '-', at most 64"
                )
            self.reason = reason

    #: The challenge the ``error`` belongs on: None for the scheme of the request (or
    #: ``Bearer``), ``"DPoP"`` for the RFC 9449 errors.
    scheme: ClassVar[str | None] = None

    # Set on the instance by the one request path when the API accepts DPoP, so that every
    # layer renders the same RFC 9449 §7.1 challenges: the ``algs`` of the ``DPoP``
    # challenge, whether ``Bearer`` is still offered beside it, and the scheme the request
    # used. The defaults are a plain RFC 6750 answer.
    dpop_algs: str | None = None
    bearer_offered: bool = True
    request_scheme: str | None = None


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


class UntrustedIssuer(WrongIssuer):
    """The ``iss`` claim names no trusted issuer (matched exactly, before any fetch)."""

    reason = "untrusted_issuer"
    description = "The access token was issued by an untrusted issuer"


class WrongAudience(InvalidToken):
    """The ``aud`` claim names none of the configured audiences."""

    reason = "wrong_audience"
    description = "The access token is not meant for this API"


class InvalidClaim(InvalidToken):
    """A claim is missing, of the wrong type, or not acceptable.

    An application's ``claims_validator`` raises it with its own fixed text and reason:

    >>> raise InvalidClaim(
    ...     "tid not in the tenant list",
    ...     description="The tenant is not allowed",
    ...     reason="tenant_not_allowed",
    ... )  # doctest: +SKIP

    Args:
        detail: what went wrong, for logs (never sent to the client).
        description: fixed text for ``error_description`` instead of the class's (RFC 6750
            charset: printable ASCII without ``"`` or ``\\``). Never put claim values in it.
        reason: a stable name for logs and metrics instead of ``invalid_claim``.

    Raises:
        ValueError: ``description`` or ``reason`` has characters they may not have.
    """

    reason = "invalid_claim"
    description = "The access token has an invalid claim"


class InactiveToken(InvalidToken):
    """The issuer's introspection endpoint says the token is not active (RFC 7662 §2.2).

    Revoked, expired, unknown, or a token the issuer will not describe to this API.
    """

    reason = "inactive_token"
    description = "The access token is not active"


class MultipleDPoPProofs(InvalidRequest):
    """The request carried more than one ``DPoP`` header (RFC 9449 §4.3, check 1)."""

    reason = "dpop_proof_repeated"
    description = "The request carries more than one DPoP proof"
    scheme = "DPoP"


class MalformedRequestURI(InvalidRequest):
    """The request's ``Host`` (or a trusted forwarded header) does not make a URI.

    A DPoP proof is bound to the request URI, which apiguard builds from the scheme, the
    ``Host`` header and the path; a ``Host`` that smuggles a path, a query or a user
    (``api.example/admin?``) is refused before any URI is built from it.
    """

    reason = "request_uri_malformed"
    description = "The request URI is malformed"


class DPoPKeyMismatch(InvalidToken):
    """The token's ``cnf.jkt`` is not the thumbprint of the proof's key (RFC 9449 §7.1)."""

    reason = "dpop_key_mismatch"
    description = "Invalid DPoP key binding"
    scheme = "DPoP"


class DPoPRequired(InvalidToken):
    """A token was presented with the ``Bearer`` scheme where only DPoP is accepted."""

    reason = "dpop_required"
    description = "The access token must be sent with DPoP"
    scheme = "DPoP"


class DPoPBoundTokenAsBearer(InvalidToken):
    """A DPoP-bound token (``cnf.jkt``) was presented with the ``Bearer`` scheme.

    Accepting it would strip its binding: whoever stole it could use it (RFC 9449 §7.2).
    """

    reason = "dpop_bound_token_as_bearer"
    description = "The access token is bound to a DPoP key and must be sent with DPoP"
    scheme = "DPoP"


class TokenNotDPoPBound(InvalidToken):
    """A token without ``cnf.jkt`` was presented with the ``DPoP`` scheme."""

    reason = "dpop_token_not_bound"
    description = "The access token is not bound to a DPoP key"
    scheme = "DPoP"


class InvalidDPoPProof(BearerError):
    """The DPoP proof is not acceptable (RFC 9449 §4.3)."""

    reason = "invalid_dpop_proof"
    status_code = 401
    error = "invalid_dpop_proof"
    description = "The DPoP proof is invalid"
    scheme = "DPoP"


class MissingDPoPProof(InvalidDPoPProof):
    """A DPoP request (or a DPoP-bound token) came without a ``DPoP`` header."""

    reason = "dpop_proof_missing"
    description = "The request carries no DPoP proof"


class MalformedDPoPProof(InvalidDPoPProof):
    """The proof is not a compact JWS with JSON header and claims, or a claim is missing."""

    reason = "dpop_proof_malformed"
    description = "The DPoP proof is malformed"


class WrongDPoPProofType(InvalidDPoPProof):
    """The proof's header ``typ`` is not ``dpop+jwt``."""

    reason = "dpop_proof_wrong_type"
    description = "The DPoP proof is not of type dpop+jwt"


class DPoPAlgorithmNotAllowed(InvalidDPoPProof):
    """The proof's ``alg`` is not one of the allowed asymmetric algorithms."""

    reason = "dpop_algorithm_not_allowed"
    description = "The DPoP proof is signed with an algorithm that is not allowed"


class InvalidDPoPKey(InvalidDPoPProof):
    """The proof's ``jwk`` is missing, private, unusable, or does not fit ``alg``."""

    reason = "dpop_key_invalid"
    description = "The DPoP proof key is invalid"


class InvalidDPoPSignature(InvalidDPoPProof):
    """The proof's signature does not verify with the key in its own ``jwk`` header."""

    reason = "dpop_signature_invalid"
    description = "The DPoP proof signature is invalid"


class DPoPMethodMismatch(InvalidDPoPProof):
    """The proof's ``htm`` is not the request method."""

    reason = "dpop_method_mismatch"
    description = "The DPoP proof is for another HTTP method"


class DPoPURIMismatch(InvalidDPoPProof):
    """The proof's ``htu`` is not the request URI (without query and fragment)."""

    reason = "dpop_uri_mismatch"
    description = "The DPoP proof is for another URI"


class DPoPProofExpired(InvalidDPoPProof):
    """The proof's ``iat`` is older than the accepted window."""

    reason = "dpop_proof_expired"
    description = "The DPoP proof is too old"


class DPoPProofNotYetValid(InvalidDPoPProof):
    """The proof's ``iat`` lies in the future beyond the leeway."""

    reason = "dpop_proof_not_yet_valid"
    description = "The DPoP proof is issued in the future"


class DPoPTokenHashMismatch(InvalidDPoPProof):
    """The proof's ``ath`` is missing or is not the hash of the presented access token."""

    reason = "dpop_ath_mismatch"
    description = "The DPoP proof is for another access token"


class DPoPProofReplayed(InvalidDPoPProof):
    """The proof's ``jti`` was already used within its window (RFC 9449 §11.1)."""

    reason = "dpop_proof_replayed"
    description = "The DPoP proof was already used"


class UseDPoPNonce(BearerError):
    """The proof lacks the server's current nonce (RFC 9449 §9): retry with ``DPoP-Nonce``."""

    reason = "use_dpop_nonce"
    status_code = 401
    error = "use_dpop_nonce"
    description = "Resource server requires nonce in DPoP proof"
    scheme = "DPoP"

    def __init__(self, nonce: str, detail: str | None = None) -> None:
        super().__init__(detail)
        #: The nonce to send in the ``DPoP-Nonce`` header of the answer.
        self.nonce = nonce


class InsufficientUserAuthentication(BearerError):
    """The token is valid but the user's sign-in is too weak or too old (RFC 9470).

    The challenge carries what a new sign-in must reach (``acr_values``, ``max_age``), so the
    client can send the user back to the authorization server with them.

    Args:
        acr_values: the authentication context classes the resource accepts (any one).
        max_age: the greatest age of the sign-in the resource accepts, in seconds, or None.
        detail: what went wrong, for logs.
    """

    reason = "insufficient_user_authentication"
    status_code = 401
    error = "insufficient_user_authentication"
    description = "A different authentication level is required"

    def __init__(
        self,
        acr_values: Iterable[str] = (),
        max_age: int | None = None,
        *,
        too_old: bool = False,
        detail: str | None = None,
    ) -> None:
        #: The accepted ``acr`` values, in the order given (the challenge's ``acr_values``).
        self.acr_values: tuple[str, ...] = tuple(acr_values)
        #: The greatest sign-in age accepted, in seconds (the challenge's ``max_age``).
        self.max_age = max_age
        super().__init__(detail)
        if too_old:
            # RFC 9470 §3 words the two cases differently; the text stays fixed either way.
            self.description = "More recent authentication is required"
            self.reason = "authentication_too_old"


class Forbidden(BearerError):
    """The token is valid but does not allow this request (403).

    RFC 6750 has one error code for it, ``insufficient_scope``; the subclasses say why in
    ``reason``, and only :class:`InsufficientScope` names scopes in the challenge.
    """

    reason = "forbidden"
    status_code = 403
    error = "insufficient_scope"
    description = "The access token does not allow this request"


class MissingPermission(Forbidden):
    """The token lacks a permission the resource requires (Auth0 RBAC ``permissions``)."""

    reason = "missing_permission"
    description = "The access token lacks a required permission"


class MissingRole(Forbidden):
    """The token's subject lacks a role the resource requires."""

    reason = "missing_role"
    description = "The access token lacks a required role"


class ClaimRuleFailed(Forbidden):
    """A claim rule of the resource (equals, includes, predicate) refused the token.

    Args:
        detail: what went wrong, for logs (never sent to the client).
        description: the rule's own fixed text for ``error_description`` (RFC 6750
            charset); never claim values.
        reason: the rule's own stable name instead of ``claim_rule_failed``.
    """

    reason = "claim_rule_failed"
    description = "The access token does not meet a requirement of this resource"


class InsufficientScope(Forbidden):
    """The token is valid but lacks scopes the resource requires."""

    reason = "insufficient_scope"
    description = "The access token lacks a required scope"

    def __init__(
        self, required: Iterable[str], *, match: str = "all", detail: str | None = None
    ) -> None:
        #: The scopes the resource asked for, in the order given (the challenge's ``scope``).
        self.required: tuple[str, ...] = tuple(required)
        self.match = match
        super().__init__(detail or f"requires {match} of: {' '.join(self.required)}")
