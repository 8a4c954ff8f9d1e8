"""The tenant's objects as immutable values, with Auth0's field names where Auth0 has them.

The store's repositories build them from rows; the services decide with them; the routes
turn them into wire formats (``routes/wire.py``). None of them knows SQL or HTTP.
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass, field
from typing import Any

from .security import b64url

# OIDC scopes every client may ask for, with the text the consent page shows.
OIDC_SCOPES: dict[str, str] = {
    "openid": "Sign you in",
    "profile": "Read your name",
    "email": "Read your email address",
    "offline_access": "Stay signed in (refresh tokens)",
}

APP_TYPES = ("spa", "native", "regular_web", "non_interactive")
AUTH_METHODS = ("none", "client_secret_post", "client_secret_basic")
GRANT_TYPES = (
    "authorization_code",
    "implicit",
    "refresh_token",
    "client_credentials",
    "password",
)
TOKEN_DIALECTS = ("access_token", "access_token_authz", "rfc9068_profile", "rfc9068_profile_authz")
#: ``jwt``: self-contained signed tokens; ``opaque``: random reference tokens stored hashed,
#: which APIs check at the introspection endpoint (RFC 7662) and which revoke at once.
ACCESS_TOKEN_FORMATS = ("jwt", "opaque")


#: ``acr`` of a sign-in with a password only, and with a second factor (the OpenID PAPE
#: policy URIs; Auth0 uses the multi-factor one).
ACR_PASSWORD = "http://schemas.openid.net/pape/policies/2007/06/none"
ACR_MFA = "http://schemas.openid.net/pape/policies/2007/06/multi-factor"


@dataclass(frozen=True)
class SignIn:
    """How and when the user signed in: OIDC ``auth_time``, ``acr`` and ``amr``."""

    auth_time: int
    acr: str = ACR_PASSWORD
    amr: tuple[str, ...] = ("pwd",)

    @classmethod
    def stored(cls, auth_time: int, acr: str | None, amr: str | None) -> SignIn:
        """From stored columns (rows written before version 4: a password sign-in)."""
        return cls(auth_time, acr or ACR_PASSWORD, tuple(amr.split()) if amr else ("pwd",))

    def claims(self) -> dict[str, Any]:
        """The claims for access and ID tokens."""
        return {"auth_time": self.auth_time, "acr": self.acr, "amr": list(self.amr)}

    def fields(self) -> dict[str, Any]:
        """The fields of a code or refresh token that remember this sign-in."""
        return {"auth_time": self.auth_time, "acr": self.acr, "amr": self.amr}


@dataclass(frozen=True)
class Role:
    """A named set of permissions (Auth0 ``role``)."""

    id: str
    name: str
    description: str


@dataclass(frozen=True)
class Permission:
    """One scope of one API, and (for a user's) where it comes from."""

    audience: str
    name: str
    description: str = ""
    #: The roles that grant it, as ``(id, name)``; empty for one assigned only directly.
    roles: tuple[tuple[str, str], ...] = ()
    direct: bool = True


@dataclass(frozen=True)
class Scope:
    """One permission an API defines."""

    value: str
    description: str


@dataclass(frozen=True)
class ResourceServer:
    """An API: the audience of access tokens (Auth0 "resource server")."""

    id: str
    name: str
    identifier: str
    signing_alg: str
    signing_secret: str | None
    token_lifetime: int
    allow_offline_access: bool
    skip_consent_for_verifiable_first_party_clients: bool
    token_dialect: str
    scopes: tuple[Scope, ...]
    is_system: bool
    created_at: int
    access_token_format: str = "jwt"
    #: Auth0's "Enable RBAC": a user's token carries only scopes the user is permitted.
    enforce_policies: bool = False
    #: Clients (the API's own back ends) allowed to introspect tokens issued for this API.
    introspection_clients: tuple[str, ...] = ()
    #: Tokens for this API are DPoP-bound only (Auth0's ``proof_of_possession.required``).
    dpop_required: bool = False

    @property
    def scope_values(self) -> frozenset[str]:
        """The names of the API's scopes."""
        return frozenset(s.value for s in self.scopes)

    def describe(self, scope: str) -> str:
        """The description of *scope* (or the scope itself when it has none)."""
        for s in self.scopes:
            if s.value == scope:
                return s.description or s.value
        return OIDC_SCOPES.get(scope, scope)


@dataclass(frozen=True)
class Client:
    """An application (OAuth client)."""

    client_id: str
    name: str
    description: str
    app_type: str
    is_first_party: bool
    token_endpoint_auth_method: str
    callbacks: tuple[str, ...]
    grant_types: tuple[str, ...]
    secret_hash: str | None
    secret_expires_at: int
    is_dynamic: bool
    logo_uri: str | None
    client_uri: str | None
    policy_uri: str | None
    tos_uri: str | None
    created_at: int

    @property
    def is_confidential(self) -> bool:
        """Confidential clients authenticate at the token endpoint; public ones cannot."""
        return self.token_endpoint_auth_method != "none"

    @property
    def uris(self) -> dict[str, str]:
        """The RFC 7591 display URIs the client registered (logo, home page, policy, terms)."""
        found = {
            "logo_uri": self.logo_uri,
            "client_uri": self.client_uri,
            "policy_uri": self.policy_uri,
            "tos_uri": self.tos_uri,
        }
        return {k: v for k, v in found.items() if v}


@dataclass(frozen=True)
class ClientGrant:
    """Permission for a client to get client-credentials tokens for an API, with some scopes."""

    id: str
    client_id: str
    audience: str
    scope: tuple[str, ...]


@dataclass(frozen=True)
class User:
    """A (development) user who can sign in."""

    user_id: str
    email: str
    name: str
    password_hash: str
    is_admin: bool
    created_at: int
    updated_at: int
    email_verified: bool = False
    blocked: bool = False


@dataclass(frozen=True)
class UserGrant:
    """Remembered consent: a user let a client act on an API with these scopes."""

    id: str
    user_id: str
    client_id: str
    audience: str
    scope: tuple[str, ...]


@dataclass(frozen=True)
class AuthorizationCode:
    """A single-use code, stored under the digest of its value, with what it is bound to."""

    code_hash: str
    family_id: str
    client_id: str
    user_id: str
    redirect_uri: str
    redirect_uri_sent: bool
    code_challenge: str | None
    audience: str | None
    scopes: tuple[str, ...]
    nonce: str | None
    auth_time: int
    expires_at: int
    used_at: int | None = None
    acr: str = ACR_PASSWORD
    amr: tuple[str, ...] = ("pwd",)

    @property
    def sign_in(self) -> SignIn:
        """The sign-in the code was issued for."""
        return SignIn(self.auth_time, self.acr, self.amr)

    #: The DPoP key it is bound to (``dpop_jkt`` at /authorize, RFC 9449 §10).
    dpop_jkt: str | None = None


@dataclass(frozen=True)
class RefreshToken:
    """One refresh token of a rotation family, stored under the digest of its value."""

    token_hash: str
    family_id: str
    client_id: str
    user_id: str
    audience: str
    scopes: tuple[str, ...]
    auth_time: int
    created_at: int
    family_expires_at: int
    rotated_at: int | None = None
    revoked_at: int | None = None
    acr: str = ACR_PASSWORD
    amr: tuple[str, ...] = ("pwd",)

    @property
    def sign_in(self) -> SignIn:
        """The sign-in the token family started with."""
        return SignIn(self.auth_time, self.acr, self.amr)

    #: A public client's refresh token is bound to its DPoP key (RFC 9449 §5).
    dpop_jkt: str | None = None

    def expired(self, now: int, idle_ttl: int) -> bool:
        """Past the family's absolute lifetime, or unused for longer than *idle_ttl*."""
        return self.family_expires_at <= now or self.created_at + idle_ttl <= now


@dataclass(frozen=True)
class Session:
    """A browser session kept server-side; the cookie holds only a random id."""

    sid_hash: str
    user_id: str | None
    csrf_secret: str
    auth_time: int | None
    expires_at: int
    acr: str = ACR_PASSWORD
    amr: tuple[str, ...] = ("pwd",)

    @property
    def sign_in(self) -> SignIn | None:
        """How and when the user signed in, or None before sign-in."""
        if self.auth_time is None:
            return None
        return SignIn(self.auth_time, self.acr, self.amr)

    def csrf_token(self, purpose: str) -> str:
        """A CSRF token bound to this session and to *purpose* (a form or an interaction)."""
        mac = hmac.new(self.csrf_secret.encode(), purpose.encode(), "sha256").digest()
        return b64url(mac)

    def check_csrf(self, purpose: str, token: object) -> bool:
        """Constant-time check of a submitted CSRF token.

        ``hmac.compare_digest`` raises ``TypeError`` on non-ASCII text, so such a token
        (never one this server issued) is refused before the comparison.
        """
        return (
            isinstance(token, str)
            and token.isascii()
            and hmac.compare_digest(self.csrf_token(purpose), token)
        )


@dataclass(frozen=True)
class Interaction:
    """A validated authorization request parked for the login and consent pages."""

    id: str
    sid_hash: str
    params: dict[str, Any] = field(hash=False)
    created_at: int
    expires_at: int


@dataclass(frozen=True)
class ReferenceToken:
    """An opaque access token: its claims, stored under the digest of its value."""

    token_hash: str
    client_id: str
    claims: dict[str, Any] = field(hash=False)
    expires_at: int


@dataclass(frozen=True)
class StoredKey:
    """A signing key as the store keeps it (PEM text); ``keys.KeyRing`` loads it."""

    kid: str
    private_pem: str
    status: str
    created_at: int
    current_since: int | None
    revoked_at: int | None
