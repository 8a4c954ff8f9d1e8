"""The tenant's objects as immutable values, with Auth0's field names where Auth0 has them."""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass
from typing import Any

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


@dataclass(frozen=True)
class Scope:
    """One permission an API defines."""

    value: str
    description: str

    def to_json(self) -> dict[str, str]:
        """Auth0's ``{"value", "description"}`` shape."""
        return {"value": self.value, "description": self.description}


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

    @classmethod
    def from_row(cls, row: sqlite3.Row) -> ResourceServer:
        """Build from a ``resource_servers`` row."""
        return cls(
            id=row["id"],
            name=row["name"],
            identifier=row["identifier"],
            signing_alg=row["signing_alg"],
            signing_secret=row["signing_secret"],
            token_lifetime=row["token_lifetime"],
            allow_offline_access=bool(row["allow_offline_access"]),
            skip_consent_for_verifiable_first_party_clients=bool(row["skip_consent"]),
            token_dialect=row["token_dialect"],
            scopes=tuple(Scope(s["value"], s["description"]) for s in json.loads(row["scopes"])),
            is_system=bool(row["is_system"]),
            created_at=row["created_at"],
        )

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

    def to_json(self, *, include_secret: bool = False) -> dict[str, Any]:
        """The Management API representation (the HS256 secret only when asked for)."""
        data: dict[str, Any] = {
            "id": self.id,
            "name": self.name,
            "identifier": self.identifier,
            "signing_alg": self.signing_alg,
            "token_lifetime": self.token_lifetime,
            "allow_offline_access": self.allow_offline_access,
            "skip_consent_for_verifiable_first_party_clients": (
                self.skip_consent_for_verifiable_first_party_clients
            ),
            "token_dialect": self.token_dialect,
            "scopes": [s.to_json() for s in self.scopes],
            "is_system": self.is_system,
        }
        if include_secret and self.signing_secret is not None:
            data["signing_secret"] = self.signing_secret
        return data


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

    @classmethod
    def from_row(cls, row: sqlite3.Row) -> Client:
        """Build from a ``clients`` row."""
        return cls(
            client_id=row["client_id"],
            name=row["name"],
            description=row["description"],
            app_type=row["app_type"],
            is_first_party=bool(row["is_first_party"]),
            token_endpoint_auth_method=row["token_endpoint_auth_method"],
            callbacks=tuple(json.loads(row["callbacks"])),
            grant_types=tuple(json.loads(row["grant_types"])),
            secret_hash=row["secret_hash"],
            secret_expires_at=row["secret_expires_at"],
            is_dynamic=bool(row["is_dynamic"]),
            logo_uri=row["logo_uri"],
            client_uri=row["client_uri"],
            policy_uri=row["policy_uri"],
            tos_uri=row["tos_uri"],
            created_at=row["created_at"],
        )

    @property
    def is_confidential(self) -> bool:
        """Confidential clients authenticate at the token endpoint; public ones cannot."""
        return self.token_endpoint_auth_method != "none"

    def to_json(self) -> dict[str, Any]:
        """The Management API representation (never the secret or its hash)."""
        data: dict[str, Any] = {
            "client_id": self.client_id,
            "name": self.name,
            "description": self.description,
            "app_type": self.app_type,
            "is_first_party": self.is_first_party,
            "token_endpoint_auth_method": self.token_endpoint_auth_method,
            "callbacks": list(self.callbacks),
            "grant_types": list(self.grant_types),
            "oidc_conformant": True,
            "is_dynamically_registered": self.is_dynamic,
        }
        for key in ("logo_uri", "client_uri", "policy_uri", "tos_uri"):
            if getattr(self, key):
                data[key] = getattr(self, key)
        return data


@dataclass(frozen=True)
class ClientGrant:
    """Permission for a client to get client-credentials tokens for an API, with some scopes."""

    id: str
    client_id: str
    audience: str
    scope: tuple[str, ...]

    @classmethod
    def from_row(cls, row: sqlite3.Row) -> ClientGrant:
        """Build from a ``client_grants`` row."""
        return cls(row["id"], row["client_id"], row["audience"], tuple(json.loads(row["scope"])))

    def to_json(self) -> dict[str, Any]:
        """Auth0's client-grant shape."""
        return {
            "id": self.id,
            "client_id": self.client_id,
            "audience": self.audience,
            "scope": list(self.scope),
        }


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

    @classmethod
    def from_row(cls, row: sqlite3.Row) -> User:
        """Build from a ``users`` row."""
        return cls(
            user_id=row["user_id"],
            email=row["email"],
            name=row["name"],
            password_hash=row["password_hash"],
            is_admin=bool(row["is_admin"]),
            created_at=row["created_at"],
            updated_at=row["updated_at"],
            email_verified=bool(row["email_verified"]),
            blocked=bool(row["blocked"]),
        )

    def to_json(self) -> dict[str, Any]:
        """Auth0's user shape (never the password hash)."""
        return {
            "user_id": self.user_id,
            "email": self.email,
            "email_verified": self.email_verified,
            "blocked": self.blocked,
            "name": self.name,
            "identities": [
                {
                    "provider": "auth0",
                    "connection": "Username-Password-Authentication",
                    "user_id": self.user_id.split("|", 1)[-1],
                    "isSocial": False,
                }
            ],
            "app_metadata": {"is_admin": self.is_admin},
            "created_at": self.created_at,
            "updated_at": self.updated_at,
        }


@dataclass(frozen=True)
class UserGrant:
    """Remembered consent: a user let a client act on an API with these scopes."""

    id: str
    user_id: str
    client_id: str
    audience: str
    scope: tuple[str, ...]

    @classmethod
    def from_row(cls, row: sqlite3.Row) -> UserGrant:
        """Build from a ``user_grants`` row."""
        return cls(
            row["id"],
            row["user_id"],
            row["client_id"],
            row["audience"],
            tuple(json.loads(row["scope"])),
        )

    def to_json(self) -> dict[str, Any]:
        """Auth0's ``/api/v2/grants`` shape (note the ``clientID`` spelling)."""
        return {
            "id": self.id,
            "clientID": self.client_id,
            "user_id": self.user_id,
            "audience": self.audience,
            "scope": list(self.scope),
        }
