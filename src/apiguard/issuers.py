"""Trusted issuers: what apiguard trusts about each, and where each one's keys come from.

An :class:`IssuerPolicy` is everything that holds for the tokens of one issuer: its exact
``iss``, the audiences, the algorithms, where the keys come from (discovery, a ``jwks_uri``,
a static JWKS, PEM public keys or an HS256 shared secret) and the claim rules. A validator
trusts a list of them, and optionally a *resolver* for the open-ended case (a SaaS API
whose customers each bring a tenant): a callable that gets the unverified ``iss`` and
returns the policy for it, or None to refuse it. :class:`TenantIssuers` is a ready-made
resolver for templated issuers such as Microsoft Entra ID's, with a tenant allow-list.

The issuer of a token is matched exactly (no normalisation of case, slashes or Unicode)
against the configured policies and then the resolver, *before* any key is fetched: a
forged ``iss`` never makes apiguard fetch anything. Each issuer has its own key source
(keys are never shared across issuers, SECURITY B5), created on first use and kept in a
bounded LRU so that a flood of tokens naming many issuers cannot grow memory or fetches
without bound.

No I/O here: :class:`IssuerRegistry` is part of the sans-I/O core.
"""

from __future__ import annotations

import json
import logging
import os
import re
import threading
from collections import OrderedDict
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import KW_ONLY, dataclass, field
from pathlib import Path
from typing import Any, Final, Literal, NamedTuple, Protocol, TypedDict, Unpack
from urllib.parse import urlsplit

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec, ed448, ed25519, rsa
from cryptography.hazmat.primitives.serialization import load_pem_public_key
from jwt.algorithms import ECAlgorithm, OKPAlgorithm, RSAAlgorithm

from ._settings import fail, number, setting, settings_of, strings
from .claims import DEFAULT_SCOPE_CLAIMS, AccessToken, ClaimPath, claim_paths
from .dpop import DPoPMode, DPoPPolicy
from .errors import (
    BearerError,
    ConfigurationError,
    IssuerResolutionFailed,
    ServiceUnavailable,
    UnknownSigningKey,
    UntrustedIssuer,
    WrongIssuer,
)
from .events import EventHook
from .introspection import Introspection
from .jwks import FetchRequest, KeySet, KeySource, is_safe_url
from .jws import (
    ASYMMETRIC_ALGORITHMS,
    HMAC_ALGORITHMS,
    SUPPORTED_ALGORITHMS,
    UnusableKey,
    VerificationKey,
)

__all__ = [
    "IssuerHealth",
    "IssuerPolicy",
    "IssuerResolver",
    "PolicySettings",
    "TenantIssuers",
]

logger = logging.getLogger("apiguard.issuers")

MAX_LEEWAY: Final = 300.0
#: RFC 9068 §2.2 makes these claims required in the strict (``at+jwt``) dialect.
_RFC9068_REQUIRED: Final = ("iss", "exp", "aud", "sub", "client_id", "iat", "jti")
_KEY_MATERIAL: Final = ("jwks_uri", "jwks", "public_keys", "shared_secret")
#: Control characters and whitespace never occur in an issuer identifier.
_BAD_ISSUER_CHARS: Final = re.compile(r"[\x00-\x20\x7f-\x9f]")


class PolicySettings(TypedDict, total=False):
    """The keyword settings of an :class:`IssuerPolicy` (all but ``issuer``), for typing.

    Declared for mypy and IDEs only: defaults and docs are on :class:`IssuerPolicy`, and a
    test keeps the two in step.
    """

    audience: str | Collection[str] | None
    audience_claim: Literal["aud", "client_id"]
    jwks_uri: str | None
    jwks: Mapping[str, Any] | str | os.PathLike[str] | None
    public_keys: str | bytes | Mapping[str, str | bytes] | None
    shared_secret: str | bytes | None
    algorithms: str | Collection[str] | None
    token_type: Literal["at+jwt"] | None
    leeway: float
    max_token_age: float | None
    required_claims: str | Collection[str]
    expected_claims: Mapping[str, str | Collection[str]] | None
    scope_claims: str | Sequence[str]
    role_claims: Iterable[str | Sequence[str] | ClaimPath]
    claims_validator: Callable[[AccessToken], object] | None
    token_mode: Literal["jwt", "introspection", "auto"]
    introspection: Introspection | None
    dpop: DPoPPolicy | DPoPMode | None


@dataclass(frozen=True, slots=True)
class IssuerPolicy:
    """What apiguard trusts about one issuer; checked once, when it is built.

    Give at most one source of keys: ``jwks_uri``, ``jwks``, ``public_keys`` or
    ``shared_secret``; with none, keys are discovered from the issuer
    (``/.well-known/openid-configuration``, then RFC 8414).

    Raises:
        ConfigurationError: a setting is missing or unsafe; the message starts with its name.

    >>> IssuerPolicy("https://tenant.example/", audience="https://api.example")  # doctest: +SKIP
    >>> IssuerPolicy(
    ...     "https://cognito-idp.eu-west-1.amazonaws.com/eu-west-1_AbC",
    ...     audience="4hl2c3...",  # the app client id
    ...     audience_claim="client_id",
    ...     expected_claims={"token_use": "access"},
    ... )  # doctest: +SKIP

    Warning:
        ``leeway`` and ``max_token_age`` widen what is accepted; ``audience_claim="client_id"``
        is for issuers whose access tokens carry no ``aud`` (Amazon Cognito) and must come
        with ``expected_claims={"token_use": "access"}`` there, or ID tokens get through.
    """

    issuer: str = setting(
        doc="the exact ``iss`` of the issuer's tokens (Auth0's ends with ``/``)", kind="string"
    )
    _: KW_ONLY
    audience: str | Collection[str] | None = setting(
        None, doc="the API identifier(s); a token must name at least one", kind="strings"
    )
    audience_claim: Literal["aud", "client_id"] = setting(
        "aud",
        doc="the claim that must name an audience: ``aud``, or ``client_id`` for issuers "
        "whose access tokens carry no ``aud`` (Amazon Cognito)",
        kind="string",
    )
    jwks_uri: str | None = setting(
        None,
        doc="where the keys are, instead of discovery (https; http only for loopback hosts)",
        kind="string",
    )
    jwks: Mapping[str, Any] | str | os.PathLike[str] | None = setting(
        None,
        doc="a static JWK Set instead of fetched keys: a mapping, JSON text, or a file path",
        kind="string",
    )
    public_keys: str | bytes | Mapping[str, str | bytes] | None = setting(
        None,
        doc="static PEM public keys or certificates: one (any ``kid``) or a mapping kid -> PEM",
        kind="object",
    )
    shared_secret: str | bytes | None = setting(
        None,
        doc="the HS256 signing secret of the API (Auth0 HS256 APIs), at least as long as the hash",
        kind="string",
    )
    algorithms: str | Collection[str] | None = setting(
        None,
        doc="allowed ``alg`` values (default: every asymmetric one; HS256 with a shared secret)",
        kind="strings",
    )
    token_type: Literal["at+jwt"] | None = setting(
        None,
        doc="``at+jwt`` for RFC 9068 strict mode; None accepts ``typ`` absent, JWT or at+jwt",
        kind="string",
    )
    leeway: float = setting(
        30.0, doc="clock skew tolerated on exp, nbf and iat, in seconds (0 to 300)", kind="number"
    )
    max_token_age: float | None = setting(
        None, doc="refuse tokens whose ``iat`` is older than this, in seconds", kind="number"
    )
    required_claims: str | Collection[str] = setting(
        (), doc="claim names that must be present and not null", kind="strings"
    )
    expected_claims: Mapping[str, str | Collection[str]] | None = setting(
        None,
        doc="claims that must have one of the given string values, e.g. "
        '``{"token_use": "access"}``',
        kind="object",
    )
    scope_claims: str | Sequence[str] = setting(
        DEFAULT_SCOPE_CLAIMS,
        doc="the claims scopes are read from (space-separated strings or lists); add "
        "``permissions`` only if Auth0 RBAC permissions should count as granted scopes",
        kind="strings",
    )
    role_claims: Iterable[str | Sequence[str] | ClaimPath] = setting(
        (),
        doc="where AccessToken.roles is read from: claim paths such as realm_access.roles "
        "(Keycloak), roles (Entra ID) or '\"https://organizer.example/roles\"' (an Auth0 "
        "namespaced claim); each claim a string or a list of strings",
        kind="strings",
    )
    claims_validator: Callable[[AccessToken], object] | None = setting(
        None,
        doc="your own claim checks, called with the AccessToken after every standard check; "
        "raise InvalidClaim with your own description and reason to refuse (once per token: "
        "a cached token is not checked again)",
        kind="object",
    )
    token_mode: Literal["jwt", "introspection", "auto"] = setting(
        "jwt",
        doc="``jwt``: tokens are JWTs validated here; ``introspection``: every token is "
        "asked about at the issuer (RFC 7662); ``auto``: JWT-shaped tokens validated here, "
        "others (opaque) introspected",
        kind="string",
    )
    introspection: Introspection | None = setting(
        None,
        doc="how to introspect (client credentials, endpoint, cache): an "
        "apiguard.Introspection; required by the introspection and auto modes and by routes "
        "that check revocation",
        kind="object",
    )
    dpop: DPoPPolicy | DPoPMode | None = setting(
        None,
        doc="DPoP (RFC 9449) for this issuer's tokens: off, allowed, required or an "
        "apiguard.dpop.DPoPPolicy; None takes the validator's dpop",
        kind="string",
    )
    _compiled: Compiled = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_compiled", _compile(self))

    @property
    def compiled(self) -> Compiled:
        """The checked, normalised form the core works with."""
        return self._compiled


@dataclass(frozen=True, slots=True, eq=False)
class Compiled:
    """An :class:`IssuerPolicy` as the core reads it: normalised once, read per token."""

    issuer: str
    audiences: frozenset[str]
    audience_claim: str
    #: None with discovery, or a static/shared-secret policy.
    jwks_uri: str | None
    #: Keys that never change (static JWKS, PEM keys, a shared secret), else None.
    static: StaticKeys | None
    algorithms: frozenset[str]
    leeway: float
    max_token_age: float | None
    required_claims: tuple[str, ...]
    expected_claims: tuple[tuple[str, frozenset[str]], ...]
    strict: bool
    scope_claims: tuple[str, ...]
    role_claims: tuple[ClaimPath, ...]
    claims_validator: Callable[[AccessToken], object] | None
    #: This issuer's own DPoP policy, or None to take the validator's.
    dpop: DPoPPolicy | None
    token_mode: str = "jwt"
    introspection: Introspection | None = None
    #: What identifies this issuer's key source: two policies alike share one.
    source_key: tuple[str, str | None, frozenset[str]] = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "source_key", (self.issuer, self.jwks_uri, self.algorithms))


def _compile(policy: IssuerPolicy) -> Compiled:
    given = [name for name in _KEY_MATERIAL if getattr(policy, name) is not None]
    if len(given) > 1:
        raise fail(given[1], f"cannot be combined with {given[0]}")
    source = given[0] if given else None
    issuer = _issuer(policy.issuer, discovered=source is None)
    if policy.audience is None:
        raise fail("audience", "required: the API identifier(s) tokens must name")
    audiences = frozenset(strings("audience", policy.audience))
    if policy.audience_claim not in ("aud", "client_id"):
        raise fail("audience_claim", "must be 'aud' or 'client_id'")
    algorithms = _algorithms(policy.algorithms, symmetric=source == "shared_secret")
    static: StaticKeys | None = None
    if source == "jwks_uri":
        _url("jwks_uri", policy.jwks_uri)
    elif source == "jwks":
        static = StaticKeys(_static_jwks(policy.jwks, algorithms), ignore_kid=False)
    elif source == "public_keys":
        keys, ignore_kid = _pem_keys(policy.public_keys, algorithms)
        static = StaticKeys(KeySet(keys), ignore_kid=ignore_kid)
    elif source == "shared_secret":
        static = StaticKeys(KeySet([_secret(policy.shared_secret, algorithms)]), ignore_kid=True)
    if policy.token_type not in (None, "at+jwt"):
        raise fail("token_type", "must be None or 'at+jwt'")
    strict = policy.token_type == "at+jwt"
    max_age = None
    if policy.max_token_age is not None:
        max_age = number("max_token_age", policy.max_token_age, low=1)
    required = strings("required_claims", policy.required_claims, allow_empty=True)
    return Compiled(
        issuer=issuer,
        audiences=audiences,
        audience_claim=policy.audience_claim,
        jwks_uri=policy.jwks_uri if source == "jwks_uri" else None,
        static=static,
        algorithms=algorithms,
        leeway=number("leeway", policy.leeway, low=0, high=MAX_LEEWAY),
        max_token_age=max_age,
        required_claims=tuple(dict.fromkeys(required + (_RFC9068_REQUIRED if strict else ()))),
        expected_claims=_expected(policy.expected_claims),
        strict=strict,
        scope_claims=strings("scope_claims", policy.scope_claims, allow_empty=True),
        role_claims=_role_claims(policy.role_claims),
        claims_validator=_callable("claims_validator", policy.claims_validator),
        token_mode=policy.token_mode,
        introspection=_introspection(policy),
        dpop=dpop_policy(policy.dpop),
    )


def dpop_policy(value: Any) -> DPoPPolicy | None:
    """A ``dpop`` setting as a :class:`DPoPPolicy` (None stays None: "inherit")."""
    if value is None or isinstance(value, DPoPPolicy):
        return value
    if value not in ("off", "allowed", "required"):
        raise fail("dpop", f"must be 'off', 'allowed', 'required' or a DPoPPolicy, not {value!r}")
    return DPoPPolicy(mode=value)


def _role_claims(value: Any) -> tuple[ClaimPath, ...]:
    try:
        return claim_paths(value, name="role_claims")
    except ConfigurationError as exc:
        # Named like every other setting, so that a layer can say where it came from.
        raise fail("role_claims", str(exc).removeprefix("role_claims: ")) from None


def _callable(name: str, value: Any) -> Any:
    if value is not None and not callable(value):
        raise fail(name, "must be a callable taking the AccessToken")
    return value


def _introspection(policy: IssuerPolicy) -> Introspection | None:
    settings = policy.introspection
    if settings is not None and not isinstance(settings, Introspection):
        raise fail("introspection", "must be an apiguard.Introspection")
    if policy.token_mode not in ("jwt", "introspection", "auto"):
        raise fail("token_mode", "must be 'jwt', 'introspection' or 'auto'")
    if policy.token_mode != "jwt" and settings is None:
        raise fail("introspection", f"required with token_mode={policy.token_mode!r}")
    return settings


def _issuer(value: Any, *, discovered: bool) -> str:
    if not isinstance(value, str) or not value:
        raise fail("issuer", "must be a non-empty string")
    if _BAD_ISSUER_CHARS.search(value):
        raise fail("issuer", "must not contain whitespace or control characters")
    looks_like_url = "://" in value or value.startswith(("http:", "https:"))
    if discovered or looks_like_url:
        parts = urlsplit(value)
        if parts.scheme not in ("https", "http") or not parts.netloc:
            raise fail("issuer", f"must be an absolute http(s) URL, not {value!r}")
        if not is_safe_url(value):
            # RFC 8414 §2 issuers are https; a plain-http one is only a loopback development
            # server, whatever the keys come from.
            raise fail("issuer", "must be https (http only for loopback hosts)")
    # Otherwise a StringOrURI (RFC 7519 §4.1.1) such as a Google service account's email:
    # allowed only with keys that are not discovered from it.
    return value


def _url(name: str, value: Any) -> str:
    if not isinstance(value, str) or not value:
        raise fail(name, "must be a non-empty URL string")
    if not is_safe_url(value):
        raise fail(name, f"must be an https URL (http only for loopback hosts), not {value!r}")
    return value


def _algorithms(value: Any, *, symmetric: bool) -> frozenset[str]:
    # An explicitly empty allow-list is a mistake, never a request for the defaults.
    names = strings("algorithms", value) if value is not None else ()
    unknown = [name for name in names if name not in SUPPORTED_ALGORITHMS]
    if unknown:
        raise fail("algorithms", f"unsupported or unsafe: {unknown!r} ('none' never is)")
    if symmetric:
        algs = frozenset(names or ("HS256",))
        if not algs <= HMAC_ALGORITHMS.keys():
            raise fail("algorithms", "a shared secret verifies HS256/HS384/HS512 only")
        return algs
    algs = frozenset(names or ASYMMETRIC_ALGORITHMS)
    if algs & HMAC_ALGORITHMS.keys():
        # Never with public keys: the issuer's public key must not become an HMAC secret.
        raise fail("algorithms", "HS* needs shared_secret and is never used with public keys")
    return algs


def _secret(value: Any, algorithms: frozenset[str]) -> VerificationKey:
    if not isinstance(value, str | bytes):
        raise fail("shared_secret", "must be str or bytes")
    try:
        return VerificationKey.from_secret(value, algorithms=algorithms)
    except UnusableKey as exc:
        raise fail("shared_secret", str(exc)) from None


def _static_jwks(value: Any, algorithms: frozenset[str]) -> KeySet:
    if isinstance(value, Mapping):
        document: Any = value
    elif isinstance(value, str):
        if not value.lstrip().startswith("{"):
            raise fail("jwks", "text must be a JSON object; give a pathlib.Path for a file")
        document = _json("jwks", value)
    elif isinstance(value, os.PathLike):
        try:
            text = Path(value).read_text(encoding="utf-8")
        except (OSError, UnicodeError) as exc:
            why = exc.__class__.__name__
            raise fail("jwks", f"cannot read {os.fspath(value)!r}: {why}") from None
        document = _json("jwks", text)
    else:
        raise fail("jwks", "must be a mapping, JSON text or a file path")
    members = document.get("keys") if isinstance(document, Mapping) else None
    if not isinstance(members, list) or not members:
        raise fail("jwks", 'must be a JWK Set: an object with a non-empty "keys" array')
    # A key configured by hand that cannot be used is a mistake to report, not to skip
    # (SECURITY A10: statically configured weak keys are a configuration error).
    for index, member in enumerate(members):
        try:
            VerificationKey.from_jwk(member, algorithms=algorithms)
        except UnusableKey as exc:
            raise fail("jwks", f"key {index}: {exc}") from None
    keys = KeySet.from_jwks(document, algorithms=algorithms)
    if keys.ambiguous_kids:
        raise fail("jwks", f"several keys share the kid {sorted(keys.ambiguous_kids)[0]!r}")
    return keys


def _json(name: str, text: str) -> Any:
    try:
        return json.loads(text)
    except (ValueError, RecursionError):
        raise fail(name, "is not valid JSON") from None


def _pem_keys(value: Any, algorithms: frozenset[str]) -> tuple[list[VerificationKey], bool]:
    if isinstance(value, str | bytes):
        return [_pem_key(None, value, algorithms)], True
    if isinstance(value, Mapping) and value:
        return [_pem_key(kid, pem, algorithms) for kid, pem in value.items()], False
    raise fail("public_keys", "must be PEM text, or a non-empty mapping of kid to PEM text")


def _pem_key(kid: Any, pem: Any, algorithms: frozenset[str]) -> VerificationKey:
    if kid is not None and (not isinstance(kid, str) or not kid):
        raise fail("public_keys", "each kid must be a non-empty string")
    if not isinstance(pem, str | bytes):
        raise fail("public_keys", "each key must be PEM text (str or bytes)")
    data = pem.encode("ascii", "replace") if isinstance(pem, str) else pem
    try:
        if b"-----BEGIN CERTIFICATE-----" in data:
            public: Any = x509.load_pem_x509_certificate(data).public_key()
        else:
            public = load_pem_public_key(data)
    except ValueError:
        raise fail("public_keys", "not a PEM public key or certificate") from None
    # Through the JWK form, so that a PEM key meets exactly the policy of a fetched one
    # (RSA sizes, curves, ROCA).
    if isinstance(public, rsa.RSAPublicKey):
        jwk = RSAAlgorithm.to_jwk(public, as_dict=True)
    elif isinstance(public, ec.EllipticCurvePublicKey):
        jwk = ECAlgorithm.to_jwk(public, as_dict=True)
    elif isinstance(public, ed25519.Ed25519PublicKey | ed448.Ed448PublicKey):
        jwk = OKPAlgorithm.to_jwk(public, as_dict=True)
    else:
        raise fail("public_keys", f"unsupported key type {type(public).__name__}")
    if kid is not None:
        jwk["kid"] = kid
    try:
        return VerificationKey.from_jwk(jwk, algorithms=algorithms)
    except UnusableKey as exc:
        raise fail("public_keys", str(exc)) from None


def _expected(value: Any) -> tuple[tuple[str, frozenset[str]], ...]:
    if value is None:
        return ()
    if not isinstance(value, Mapping):
        raise fail("expected_claims", "must be a mapping of claim name to value(s)")
    expected = []
    for name, values in value.items():
        if not isinstance(name, str) or not name:
            raise fail("expected_claims", "claim names must be non-empty strings")
        expected.append((name, frozenset(strings("expected_claims", values))))
    return tuple(expected)


# -- keys of one issuer -------------------------------------------------------------------------


class StaticKeys:
    """Keys configured locally: always fresh, never fetched."""

    __slots__ = ("ignore_kid", "keys")

    def __init__(self, keys: KeySet, *, ignore_kid: bool) -> None:
        self.keys = keys
        #: One key given without a kid (a PEM key, a shared secret) serves whatever the
        #: token's ``kid`` says.
        self.ignore_kid = ignore_kid

    def lookup(self, kid: str | None, alg: str) -> VerificationKey:
        """The key for a token's ``kid`` and ``alg``.

        Raises:
            UnknownSigningKey, AlgorithmNotAllowed: no key fits.
        """
        key = self.keys.select(None if self.ignore_kid else kid, alg)
        if key is None:
            raise UnknownSigningKey(f"no configured key for kid {str(kid)[:64]!r}")
        return key


class IssuerHealth(NamedTuple):
    """Whether one issuer's keys can serve, for a readiness probe.

    Attributes:
        state: ``fresh`` (keys within their freshness lifetime, or static), ``stale``
            (serving the last good keys past it, the issuer being unreachable or not
            refreshed yet) or ``missing`` (no usable key: tokens get 503).
        keys: how many usable keys are cached.
        error: the last fetch failure, or None.
    """

    state: Literal["fresh", "stale", "missing"]
    keys: int
    error: str | None


class IssuerResolver(Protocol):
    """Returns the policy for an issuer a token names, or None to refuse it.

    Called with the token's unverified ``iss`` (a string, matched against nothing yet) and,
    when a framework layer validates, the request as the one request path sees it (the
    same read-only view in every layer: ``method``, ``path``, ``host``, ``scheme``...),
    else None. It must return a policy whose ``issuer`` is exactly
    ``iss``, or None; raise :class:`~apiguard.InvalidToken` to refuse with a reason of its
    own. Any other exception is a failure of the server (503, logged), never a 500.

    It runs on the request path (in async apps on the event loop): keep it fast and
    non-blocking, e.g. look the tenant up in a dict loaded at start-up.
    """

    def __call__(self, issuer: str, request: Any, /) -> IssuerPolicy | None: ...


class TenantIssuers:
    """A resolver for templated issuers, such as Microsoft Entra ID's, with a tenant allow-list.

    Every allowed tenant gets its policy when the resolver is built, so resolving is one
    exact dictionary lookup of the token's ``iss``.

    Args:
        template: the issuer with ``{tenant}`` where the tenant goes, e.g.
            ``"https://login.microsoftonline.com/{tenant}/v2.0"``.
        tenants: the allowed tenant identifiers (nothing else is ever trusted).
        jwks_uri_template: the JWKS URL, with ``{tenant}`` if it depends on the tenant;
            None to discover the keys from each issuer.
        tenant_claim: a claim that must equal the tenant too (Entra's ``tid``), or None.
        **settings: the other :class:`IssuerPolicy` settings of every tenant
            (``audience`` at least).

    Raises:
        ConfigurationError: no ``{tenant}`` in the template, no tenant, a tenant that is
            not a plain identifier, or a bad policy setting.

    >>> tenants = ["8eaef023-2b34-4da1-9baa-8bc8c9d6a490"]
    >>> resolver = TenantIssuers.entra(tenants, audience="api://organizer")
    >>> Validator(resolver=resolver)  # doctest: +SKIP
    """

    #: Tenant identifiers are plain names (Entra: GUIDs): nothing that could change the
    #: meaning of the URL around them.
    _TENANT: Final = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")

    def __init__(
        self,
        template: str,
        tenants: Iterable[str],
        *,
        jwks_uri_template: str | None = None,
        tenant_claim: str | None = None,
        **settings: Unpack[PolicySettings],
    ) -> None:
        if not isinstance(template, str) or template.count("{tenant}") != 1:
            raise fail("template", "must contain '{tenant}' exactly once")
        allowed = strings("tenants", tenants)
        for tenant in allowed:
            if not self._TENANT.fullmatch(tenant):
                raise fail("tenants", f"{tenant[:64]!r} is not a tenant identifier")
        if "jwks_uri" in settings:
            raise fail("jwks_uri", "give jwks_uri_template (with {tenant} if it varies)")
        template_uri = jwks_uri_template
        self._policies: dict[str, IssuerPolicy] = {}
        for tenant in allowed:
            expected = dict(settings.get("expected_claims") or {})
            if tenant_claim is not None:
                expected[tenant_claim] = tenant
            issuer = template.replace("{tenant}", tenant)
            own: PolicySettings = {**settings, "expected_claims": expected or None}
            if template_uri is not None:
                own["jwks_uri"] = template_uri.replace("{tenant}", tenant)
            self._policies[issuer] = IssuerPolicy(issuer, **own)

    @classmethod
    def entra(
        cls,
        tenants: Iterable[str],
        *,
        version: Literal["1.0", "2.0"] = "2.0",
        authority: str = "https://login.microsoftonline.com",
        **settings: Unpack[PolicySettings],
    ) -> TenantIssuers:
        """Microsoft Entra ID tenants: the v2.0 issuer (or the v1.0 one) of each, and ``tid``.

        Args:
            tenants: the allowed tenant ids (GUIDs).
            version: ``"2.0"`` for ``https://login.microsoftonline.com/{tid}/v2.0``,
                ``"1.0"`` for ``https://sts.windows.net/{tid}/`` (the app registration's
                ``accessTokenAcceptedVersion`` decides which one the tokens carry).
            authority: the cloud's login host (another national cloud, say).
            **settings: the :class:`IssuerPolicy` settings (``audience``: the application
                ID URI and/or the client id).
        """
        jwks_uri: str | None
        if version == "2.0":
            template = f"{authority.rstrip('/')}/{{tenant}}/v2.0"
            jwks_uri = f"{authority.rstrip('/')}/{{tenant}}/discovery/v2.0/keys"
        elif version == "1.0":
            template = "https://sts.windows.net/{tenant}/"
            jwks_uri = f"{authority.rstrip('/')}/{{tenant}}/discovery/keys"
        else:
            raise fail("version", "must be '1.0' or '2.0'")
        if any(settings.get(name) is not None for name in _KEY_MATERIAL):
            jwks_uri = None  # keys given locally (air-gapped, tests) take the place of Entra's
        return cls(template, tenants, jwks_uri_template=jwks_uri, tenant_claim="tid", **settings)

    @property
    def issuers(self) -> tuple[str, ...]:
        """Every issuer this resolver trusts."""
        return tuple(self._policies)

    def __call__(self, issuer: str, request: Any = None, /) -> IssuerPolicy | None:
        """The policy of an allowed tenant's issuer, or None."""
        return self._policies.get(issuer)

    def __repr__(self) -> str:
        return f"TenantIssuers({len(self._policies)} issuers)"


# -- the registry -------------------------------------------------------------------------------


Source = KeySource | StaticKeys


class IssuerRegistry:
    """Maps a token's ``iss`` to its policy and key source; no I/O.

    Configured policies are looked up exactly in a dict; the resolver, if any, is asked
    for anything else. Fetched key sources are created on first use and kept in an LRU of
    at most ``max_sources``; an evicted source is retired, so that verified tokens cached
    with its keys validate afresh.
    """

    def __init__(
        self,
        policies: Sequence[IssuerPolicy],
        resolver: IssuerResolver | None,
        *,
        source_settings: Mapping[str, float],
        max_sources: int,
        lock_factory: Callable[[], Any],
        on_event: EventHook | None = None,
    ) -> None:
        self.policies: dict[str, Compiled] = {p.issuer: p.compiled for p in policies}
        self._on_event = on_event
        self.resolver = resolver
        self._settings = dict(source_settings)
        self._max = max_sources
        self._lock_factory = lock_factory
        self._sources: OrderedDict[tuple[str, str | None, frozenset[str]], KeySource] = (
            OrderedDict()
        )
        self._lock = threading.Lock()
        #: The one policy when there is no other and no resolver: it serves tokens whose
        #: ``iss`` cannot be read, so that their signature is still checked first.
        self.only = next(iter(self.policies.values())) if len(policies) == 1 else None
        if resolver is not None:
            self.only = None
        introspecting = [c for c in self.policies.values() if c.token_mode != "jwt"]
        if len(introspecting) > 1:
            # An opaque token names no issuer: which one to ask would be a guess.
            raise fail(
                "token_mode",
                "at most one issuer may introspect opaque tokens (introspection or auto)",
            )
        #: The issuer opaque tokens are introspected at (token_mode introspection or auto).
        self.opaque = introspecting[0] if introspecting else None
        algorithms = set().union(*(c.algorithms for c in self.policies.values()))
        #: What a token's header ``alg`` may be before its issuer is known.
        self.algorithms = frozenset(SUPPORTED_ALGORITHMS if resolver else algorithms)

    def policy(self, iss: Any, request: Any = None) -> Compiled:
        """The policy of the issuer a token names.

        Raises:
            WrongIssuer: ``iss`` is missing or not a string.
            UntrustedIssuer: no configured policy and no resolver trusts it.
            IssuerResolutionFailed: the resolver raised (503).
        """
        if type(iss) is not str:
            if self.only is not None:
                return self.only  # the claim checks refuse it, after the signature
            raise WrongIssuer("iss is missing or not a string")
        found = self.policies.get(iss)
        if found is not None:
            return found
        if self.resolver is not None:
            return self._resolve(iss, request)
        raise UntrustedIssuer(f"iss {iss[:128]!r} is not a trusted issuer")

    def _resolve(self, iss: str, request: Any) -> Compiled:
        try:
            resolved = self.resolver(iss, request)  # type: ignore[misc]
        except (BearerError, ServiceUnavailable):
            raise  # the resolver's own refusal (401) or outage (503), with its reason
        except Exception as exc:
            logger.exception("issuer resolver failed for iss %r", iss[:128])
            raise IssuerResolutionFailed(
                f"issuer resolver raised {exc.__class__.__name__}", retry_after=5
            ) from None
        if resolved is None:
            raise UntrustedIssuer(f"iss {iss[:128]!r} refused by the resolver")
        if not isinstance(resolved, IssuerPolicy):
            logger.error("issuer resolver returned %s, not an IssuerPolicy", type(resolved))
            raise IssuerResolutionFailed("issuer resolver returned no IssuerPolicy")
        if resolved.compiled.dpop is not None:
            # The request path knows the DPoP policies of configured issuers only.
            logger.error("issuer resolver returned a policy with its own dpop: refused")
            raise IssuerResolutionFailed("a resolved IssuerPolicy must not set dpop")
        if resolved.issuer != iss:
            logger.warning(
                "issuer resolver returned the policy of %r for iss %r: refused",
                resolved.issuer[:128],
                iss[:128],
            )
            raise UntrustedIssuer("the resolver's policy is for another issuer")
        return resolved.compiled

    def source(self, policy: Compiled) -> Source:
        """The key source of ``policy``'s issuer, created on first use."""
        static = policy.static
        if static is not None:
            return static
        if self.resolver is None:
            # Configured issuers only: a source, once made, stays (nothing is evicted).
            found = self._sources.get(policy.source_key)
            if found is not None:
                return found
        return self.remote(policy)

    def remote(self, policy: Compiled) -> KeySource:
        """The fetched key source of ``policy``'s issuer, created on first use."""
        key = policy.source_key
        sources = self._sources
        found = sources.get(key)
        if found is not None:
            if self.resolver is not None:
                # Without a resolver only configured issuers have sources, never more than
                # the maximum: nothing is evicted, so the order needs no upkeep.
                try:  # noqa: SIM105 - as in the token cache: cheaper than contextlib.suppress
                    sources.move_to_end(key)
                except KeyError:  # evicted by another thread meanwhile: still usable once
                    pass
            return found
        with self._lock:
            found = sources.get(key)
            if found is None:
                found = KeySource(
                    issuer=policy.issuer,
                    jwks_uri=policy.jwks_uri,
                    algorithms=policy.algorithms,
                    **self._settings,
                )
                found.lock = self._lock_factory()
                found.on_event = self._on_event
                sources[key] = found
                while len(sources) > self._max:
                    _, evicted = sources.popitem(last=False)
                    evicted.retire()
                    logger.info("key source of %r evicted (max_key_sources)", evicted.issuer)
            return found

    def warm_up(self, now: float) -> list[tuple[KeySource, FetchRequest]]:
        """The fetches that would give every configured issuer fresh keys now."""
        wanted = []
        for policy in self.policies.values():
            if policy.static is None:
                source = self.remote(policy)
                request = source.refresh_request(now)
                if request is not None:
                    wanted.append((source, request))
        return wanted

    def health(self, now: float) -> dict[str, IssuerHealth]:
        """Per issuer (configured, then resolved ones with a live key source): its keys' state."""
        report: dict[str, IssuerHealth] = {}
        for issuer, policy in self.policies.items():
            if policy.static is not None:
                report[issuer] = IssuerHealth("fresh", len(policy.static.keys), None)
                continue
            source = self._sources.get(policy.source_key)
            report[issuer] = (
                _health(source, now) if source is not None else IssuerHealth("missing", 0, None)
            )
        for source in list(self._sources.values()):
            report.setdefault(source.issuer, _health(source, now))
        return report

    def __len__(self) -> int:
        return len(self._sources)


def policy_names() -> frozenset[str]:
    """The names of the per-issuer settings (all but ``issuer``)."""
    return frozenset(settings_of(IssuerPolicy)) - {"issuer"}


def _health(source: KeySource, now: float) -> IssuerHealth:
    keys = source.keys
    if keys is None or not source.is_usable(now):
        return IssuerHealth("missing", 0, source.last_error)
    state: Literal["fresh", "stale"] = "fresh" if source.is_fresh(now) else "stale"
    return IssuerHealth(state, len(keys), source.last_error)
