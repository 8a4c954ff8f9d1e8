"""Wire formats at the edge: Auth0 Management API shapes and the RFC 7591 response.

The routes, the CLI and the seed documents turn models into JSON with these functions;
nothing below the edge knows a wire format.
"""

from __future__ import annotations

from typing import Any

from cryptography.hazmat.primitives import serialization

from .keys import SigningKey
from .models import Client, ClientGrant, Permission, ResourceServer, Role, Scope, User, UserGrant
from .services.clients import Registration


def scope_json(scope: Scope) -> dict[str, str]:
    """Auth0's ``{"value", "description"}`` shape."""
    return {"value": scope.value, "description": scope.description}


def api_json(api: ResourceServer, *, include_secret: bool = False) -> dict[str, Any]:
    """A resource server (the HS256 secret only when asked for)."""
    data: dict[str, Any] = {
        "id": api.id,
        "name": api.name,
        "identifier": api.identifier,
        "signing_alg": api.signing_alg,
        "token_lifetime": api.token_lifetime,
        "allow_offline_access": api.allow_offline_access,
        "skip_consent_for_verifiable_first_party_clients": (
            api.skip_consent_for_verifiable_first_party_clients
        ),
        "token_dialect": api.token_dialect,
        "enforce_policies": api.enforce_policies,
        "scopes": [scope_json(s) for s in api.scopes],
        "is_system": api.is_system,
        "access_token_format": api.access_token_format,
        "introspection_clients": list(api.introspection_clients),
        # Auth0's resource-server field; None when tokens need no proof of possession.
        "proof_of_possession": (
            {"mechanism": "dpop", "required": True} if api.dpop_required else None
        ),
    }
    if include_secret and api.signing_secret is not None:
        data["signing_secret"] = api.signing_secret
    return data


def role_json(role: Role) -> dict[str, Any]:
    """Auth0's role: ``{"id", "name", "description"}``."""
    return {"id": role.id, "name": role.name, "description": role.description}


def permission_json(permission: Permission, api_name: str) -> dict[str, Any]:
    """Auth0's permission of a role (``GET /roles/{id}/permissions``)."""
    return {
        "resource_server_identifier": permission.audience,
        "permission_name": permission.name,
        "resource_server_name": api_name,
        "description": permission.description,
    }


def user_permission_json(permission: Permission, api_name: str) -> dict[str, Any]:
    """Auth0's permission of a user, with its ``sources`` (direct, or which roles)."""
    sources: list[dict[str, str]] = []
    if permission.direct:
        sources.append({"source_id": "", "source_name": "", "source_type": "DIRECT"})
    sources += [
        {"source_id": role_id, "source_name": name, "source_type": "ROLE"}
        for role_id, name in permission.roles
    ]
    return permission_json(permission, api_name) | {"sources": sources}


def client_json(client: Client) -> dict[str, Any]:
    """A client (never the secret or its hash)."""
    return {
        "client_id": client.client_id,
        "name": client.name,
        "description": client.description,
        "app_type": client.app_type,
        "is_first_party": client.is_first_party,
        "token_endpoint_auth_method": client.token_endpoint_auth_method,
        "callbacks": list(client.callbacks),
        "grant_types": list(client.grant_types),
        "oidc_conformant": True,
        "is_dynamically_registered": client.is_dynamic,
    } | client.uris


def client_grant_json(grant: ClientGrant) -> dict[str, Any]:
    """Auth0's client-grant shape."""
    return {
        "id": grant.id,
        "client_id": grant.client_id,
        "audience": grant.audience,
        "scope": list(grant.scope),
    }


def user_json(user: User) -> dict[str, Any]:
    """Auth0's user shape (never the password hash)."""
    return {
        "user_id": user.user_id,
        "email": user.email,
        "email_verified": user.email_verified,
        "blocked": user.blocked,
        "name": user.name,
        "identities": [
            {
                "provider": "auth0",
                "connection": "Username-Password-Authentication",
                "user_id": user.user_id.split("|", 1)[-1],
                "isSocial": False,
            }
        ],
        "app_metadata": {"is_admin": user.is_admin},
        "created_at": user.created_at,
        "updated_at": user.updated_at,
    }


def user_grant_json(grant: UserGrant) -> dict[str, Any]:
    """Auth0's ``/api/v2/grants`` shape (note the ``clientID`` spelling)."""
    return {
        "id": grant.id,
        "clientID": grant.client_id,
        "user_id": grant.user_id,
        "audience": grant.audience,
        "scope": list(grant.scope),
    }


def signing_key_json(key: SigningKey) -> dict[str, Any]:
    """Auth0's ``/api/v2/keys/signing`` shape (public material only)."""
    pem = key.private_key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return {
        "kid": key.kid,
        "current": key.status == "current",
        "next": key.status == "next",
        "previous": key.status == "previous",
        "revoked": key.status == "revoked",
        "current_since": key.current_since,
        "revoked_at": key.revoked_at,
        "public_key": pem.decode("ascii"),
    }


def registration_json(registration: Registration) -> dict[str, Any]:
    """The RFC 7591 §3.2.1 client information response (the secret is in it, once)."""
    client = registration.client
    response: dict[str, Any] = {
        "client_id": client.client_id,
        "client_id_issued_at": client.created_at,
        "client_name": client.name,
        "redirect_uris": list(client.callbacks),
        "grant_types": list(client.grant_types),
        "response_types": list(registration.response_types),
        "token_endpoint_auth_method": client.token_endpoint_auth_method,
        "application_type": registration.application_type,
    } | client.uris
    if registration.secret is not None:
        response["client_secret"] = registration.secret
        response["client_secret_expires_at"] = 0
    return response
