"""The tenant as a document: first start (keys, Management API, seed), export and import.

The document is the seed file's format: Auth0-shaped objects, hashes instead of secrets
and passwords (plaintext ``client_secret``/``password`` entries of a seed are hashed on the
way in), and, when asked for, the signing keys.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .. import wire
from ..models import StoredKey
from ..rules import ValidationError

if TYPE_CHECKING:
    from . import Domain

log = logging.getLogger("examples.authz_server")
MANAGEMENT_PLACEHOLDER = "{management_api}"


def initialise(domain: Domain) -> None:
    """First start: signing keys, the Management API, and the seed when the store is new."""
    domain.keys.ensure()
    domain.apis.ensure_management_api()
    if domain.store.meta.get("seeded") is None:
        if domain.settings.seed_path is not None:
            document = json.loads(Path(domain.settings.seed_path).read_text("utf-8"))
            load(domain, document)
        domain.store.meta.set("seeded", "1")
    for client in domain.clients.all():
        risky = [g for g in client.grant_types if g in ("password", "implicit")]
        if risky:
            log.warning(
                "client %r has development-only grant(s) enabled: %s",
                client.name,
                ", ".join(risky),
            )


def export(domain: Domain, *, include_keys: bool = False) -> dict[str, Any]:
    """The tenant as a seed document (hashes, never plaintext secrets or passwords)."""
    data: dict[str, Any] = {
        "resource_servers": [
            wire.api_json(a, include_secret=True) for a in domain.apis.all(include_system=False)
        ],
        "clients": [],
        "client_grants": [],
        "users": [],
    }
    for client in domain.clients.all():
        entry = wire.client_json(client)
        if client.secret_hash:
            entry["client_secret_hash"] = client.secret_hash
        data["clients"].append(entry)
    management = domain.settings.management_audience
    for grant in domain.client_grants.all():
        entry = wire.client_grant_json(grant)
        del entry["id"]
        if grant.audience == management:
            entry["audience"] = MANAGEMENT_PLACEHOLDER
        data["client_grants"].append(entry)
    for user in domain.users.all():
        data["users"].append(
            {
                "user_id": user.user_id,
                "email": user.email,
                "name": user.name,
                "is_admin": user.is_admin,
                "email_verified": user.email_verified,
                "blocked": user.blocked,
                "password_hash": user.password_hash,
            }
        )
    data["roles"] = domain.rbac.export()
    if include_keys:
        data["signing_keys"] = [
            {
                "kid": k.kid,
                "private_pem": k.private_pem,
                "status": k.status,
                "created_at": k.created_at,
                "current_since": k.current_since,
                "revoked_at": k.revoked_at,
            }
            for k in domain.keys.stored()
        ]
    return data


def load(domain: Domain, data: Mapping[str, Any]) -> dict[str, int]:
    """Load a seed or export document; objects that already exist are left alone.

    Returns how many objects of each kind were added.
    """
    added = {"resource_servers": 0, "clients": 0, "client_grants": 0, "users": 0}
    introspectors: dict[str, object] = {}
    if not isinstance(data, Mapping):
        raise ValidationError("a tenant document must be a JSON object")
    with domain.store.transaction():
        for api in data.get("resource_servers", []):
            if domain.apis.find(api["identifier"]) is not None:
                continue
            domain.apis.create(
                api_id=api.get("id"),
                name=api["name"],
                identifier=api["identifier"],
                signing_alg=api.get("signing_alg", "RS256"),
                signing_secret=api.get("signing_secret"),
                token_lifetime=api.get("token_lifetime", 86400),
                allow_offline_access=api.get("allow_offline_access", False),
                skip_consent_for_verifiable_first_party_clients=api.get(
                    "skip_consent_for_verifiable_first_party_clients", True
                ),
                token_dialect=api.get("token_dialect", "access_token"),
                scopes=api.get("scopes", []),
                access_token_format=api.get("access_token_format", "jwt"),
                enforce_policies=api.get("enforce_policies", False),
            )
            if api.get("introspection_clients"):
                introspectors[api["identifier"]] = api["introspection_clients"]
            added["resource_servers"] += 1
        for client in data.get("clients", []):
            if domain.clients.find(client["client_id"]) is not None:
                continue
            domain.clients.create(
                client_id=client["client_id"],
                name=client["name"],
                description=client.get("description", ""),
                app_type=client.get("app_type", "regular_web"),
                is_first_party=client.get("is_first_party", True),
                callbacks=client.get("callbacks", []),
                grant_types=client.get("grant_types"),
                token_endpoint_auth_method=client.get("token_endpoint_auth_method"),
                client_secret=client.get("client_secret"),
                client_secret_hash=client.get("client_secret_hash"),
                is_dynamic=client.get("is_dynamically_registered", False),
                uris={
                    k: client[k]
                    for k in ("logo_uri", "client_uri", "policy_uri", "tos_uri")
                    if client.get(k)
                },
            )
            added["clients"] += 1
        for identifier, clients in introspectors.items():
            # The clients an API names exist only now that the clients are loaded.
            domain.apis.update(identifier, {"introspection_clients": clients})
        for user in data.get("users", []):
            if domain.users.find_by_email(user["email"]) is not None:
                continue
            created = domain.users.create(
                user_id=user.get("user_id"),
                email=user["email"],
                name=user.get("name"),
                is_admin=user.get("is_admin", False),
                email_verified=user.get("email_verified", False),
                password=user.get("password"),
                password_hash=user.get("password_hash"),
            )
            if user.get("blocked"):
                domain.store.users.set(created.user_id, blocked=True)
            added["users"] += 1
        for grant in data.get("client_grants", []):
            audience = grant["audience"].replace(
                MANAGEMENT_PLACEHOLDER, domain.settings.management_audience
            )
            if domain.client_grants.find(grant["client_id"], audience) is not None:
                continue
            domain.client_grants.create(grant["client_id"], audience, grant.get("scope", []))
            added["client_grants"] += 1
        roles = data.get("roles", [])
        if not isinstance(roles, list):
            raise ValidationError("roles must be a list")
        added["roles"] = domain.rbac.load(roles)
        keys = data.get("signing_keys", [])
        if keys:
            domain.keys.replace_all(
                [
                    StoredKey(
                        k["kid"],
                        k["private_pem"],
                        k["status"],
                        k["created_at"],
                        k.get("current_since"),
                        k.get("revoked_at"),
                    )
                    for k in keys
                ]
            )
    return added
