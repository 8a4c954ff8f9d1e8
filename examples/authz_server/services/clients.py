"""Clients: registration by an administrator, by RFC 7591 or the portal, and authentication."""

from __future__ import annotations

import re
import secrets
import string
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any
from urllib.parse import urlsplit

from .. import rules
from ..models import APP_TYPES, AUTH_METHODS, GRANT_TYPES, Client
from ..rules import Conflict, NotFound, RegistrationError, ValidationError
from ..security import hash_client_secret, is_slow_hash, new_secret, verify_secret
from ..settings import Settings, is_loopback_host
from ..store import Store
from ..store.connection import Duplicate

_CLIENT_ID_ALPHABET = string.ascii_letters + string.digits
_CLIENT_ID = re.compile(r"[A-Za-z0-9._\-]{3,64}")
_DEFAULT_GRANTS = {
    "spa": ["authorization_code", "refresh_token"],
    "native": ["authorization_code", "refresh_token"],
    "regular_web": ["authorization_code", "refresh_token", "client_credentials"],
    "non_interactive": ["client_credentials"],
}
_REGISTRABLE_GRANTS = {"authorization_code", "implicit", "refresh_token", "client_credentials"}
_URI_FIELDS = ("logo_uri", "client_uri", "policy_uri", "tos_uri")


@dataclass(frozen=True)
class Registration:
    """A client registered from RFC 7591 metadata, with its secret (shown once)."""

    client: Client
    secret: str | None
    response_types: tuple[str, ...]
    application_type: str


def _check_consistency(
    *,
    app_type: object,
    is_first_party: bool,
    auth_method: object,
    grant_types: Sequence[str],
    callbacks: Sequence[str],
) -> None:
    if app_type not in APP_TYPES:
        raise ValidationError(f"app_type must be one of {', '.join(APP_TYPES)}")
    if auth_method not in AUTH_METHODS:
        raise ValidationError(
            f"token_endpoint_auth_method must be one of {', '.join(AUTH_METHODS)}"
        )
    unknown = [g for g in grant_types if g not in GRANT_TYPES]
    if unknown:
        raise ValidationError(f"unsupported grant type(s): {', '.join(unknown)}")
    if auth_method == "none":
        for grant in ("client_credentials", "password"):
            if grant in grant_types:
                raise ValidationError(f"public clients cannot use the {grant} grant")
    if "password" in grant_types and not is_first_party:
        raise ValidationError("only first-party clients can use the password grant")
    if ("authorization_code" in grant_types or "implicit" in grant_types) and not callbacks:
        raise ValidationError("redirect-based grants need at least one callback URL")


class ClientService:
    """Create, change, authenticate and delete clients."""

    def __init__(self, store: Store, settings: Settings) -> None:
        self._store = store
        self._settings = settings

    def _now(self) -> int:
        return int(self._settings.clock())

    def all(self) -> list[Client]:
        """Every client, oldest first."""
        return self._store.clients.all()

    def find(self, client_id: str) -> Client | None:
        """The client with this id, or ``None``."""
        return self._store.clients.find(client_id)

    def get(self, client_id: str) -> Client:
        """The client with this id; raises ``NotFound``."""
        client = self.find(client_id)
        if client is None:
            raise NotFound("The client does not exist")
        return client

    def create(
        self,
        *,
        name: str,
        app_type: str = "regular_web",
        is_first_party: bool = True,
        callbacks: Sequence[str] = (),
        grant_types: Sequence[str] | None = None,
        token_endpoint_auth_method: str | None = None,
        description: str = "",
        client_id: str | None = None,
        client_secret: str | None = None,
        client_secret_hash: str | None = None,
        is_dynamic: bool = False,
        uris: Mapping[str, str] | None = None,
    ) -> tuple[Client, str | None]:
        """Register a client; return it with its secret (shown once; ``None`` for public ones).

        ``client_id``/``client_secret``/``client_secret_hash`` are for seed files and imports;
        everything else gets a generated id and a 384-bit secret.
        """
        name = rules.client_name(name)
        if not isinstance(description, str) or len(description) > 1000:
            raise ValidationError("description must be a string of at most 1000 characters")
        rules.boolean(is_first_party, "is_first_party")
        if not isinstance(app_type, str) or app_type not in APP_TYPES:
            raise ValidationError(f"app_type must be one of {', '.join(APP_TYPES)}")
        if token_endpoint_auth_method is None:
            public = app_type in ("spa", "native")
            token_endpoint_auth_method = "none" if public else "client_secret_post"
        if grant_types is None:
            grant_types = _DEFAULT_GRANTS[app_type]
            if token_endpoint_auth_method == "none":
                grant_types = [g for g in grant_types if g != "client_credentials"]
        grants = rules.string_list(grant_types, "grant_types")
        checked = [rules.callback_url(c) for c in rules.string_list(callbacks, "callbacks")]
        _check_consistency(
            app_type=app_type,
            is_first_party=is_first_party,
            auth_method=token_endpoint_auth_method,
            grant_types=grants,
            callbacks=checked,
        )
        if client_id is not None and not _CLIENT_ID.fullmatch(client_id):
            raise ValidationError("client_id must be 3-64 letters, digits, '.', '_' or '-'")
        client_id = client_id or "".join(secrets.choice(_CLIENT_ID_ALPHABET) for _ in range(32))
        secret: str | None = None
        secret_hash: str | None = None
        if token_endpoint_auth_method != "none":
            if client_secret_hash:
                secret_hash = client_secret_hash
            else:
                secret = client_secret or new_secret(48)
                secret_hash = hash_client_secret(secret)
        shown = dict(uris or {})
        client = Client(
            client_id=client_id,
            name=name,
            description=description,
            app_type=app_type,
            is_first_party=is_first_party,
            token_endpoint_auth_method=token_endpoint_auth_method,
            callbacks=tuple(checked),
            grant_types=tuple(grants),
            secret_hash=secret_hash,
            secret_expires_at=0,
            is_dynamic=is_dynamic,
            logo_uri=shown.get("logo_uri"),
            client_uri=shown.get("client_uri"),
            policy_uri=shown.get("policy_uri"),
            tos_uri=shown.get("tos_uri"),
            created_at=self._now(),
        )
        try:
            self._store.clients.insert(client)
        except Duplicate:
            raise Conflict("A client with the same client_id already exists") from None
        return self.get(client_id), secret

    def update(self, client_id: str, changes: Mapping[str, object]) -> Client:
        """Change a client's settings (name, description, callbacks, grant types, ...)."""
        client = self.get(client_id)
        merged: dict[str, Any] = {
            "name": client.name,
            "description": client.description,
            "app_type": client.app_type,
            "is_first_party": client.is_first_party,
            "callbacks": list(client.callbacks),
            "grant_types": list(client.grant_types),
            "token_endpoint_auth_method": client.token_endpoint_auth_method,
        }
        for key, value in changes.items():
            if key not in merged:
                raise ValidationError(f"property {key!r} cannot be changed")
            merged[key] = value
        name = rules.client_name(merged["name"])
        if not isinstance(merged["description"], str):
            raise ValidationError("description must be a string")
        first_party = rules.boolean(merged["is_first_party"], "is_first_party")
        callbacks = [
            rules.callback_url(c) for c in rules.string_list(merged["callbacks"], "callbacks")
        ]
        grants = rules.string_list(merged["grant_types"], "grant_types")
        method = merged["token_endpoint_auth_method"]
        if not isinstance(method, str):
            raise ValidationError("token_endpoint_auth_method must be a string")
        if (method == "none") != (client.token_endpoint_auth_method == "none"):
            raise ValidationError("a client cannot switch between public and confidential")
        if client.is_dynamic and first_party:
            raise ValidationError("dynamically registered clients are always third-party")
        _check_consistency(
            app_type=merged["app_type"],
            is_first_party=first_party,
            auth_method=method,
            grant_types=grants,
            callbacks=callbacks,
        )
        self._store.clients.update(
            replace(
                client,
                name=name,
                description=merged["description"],
                app_type=merged["app_type"],
                is_first_party=first_party,
                callbacks=tuple(callbacks),
                grant_types=tuple(grants),
                token_endpoint_auth_method=method,
            )
        )
        return self.get(client.client_id)

    def rotate_secret(self, client_id: str) -> tuple[Client, str]:
        """Give a confidential client a new generated secret (shown once)."""
        client = self.get(client_id)
        if not client.is_confidential:
            raise ValidationError("public clients have no secret")
        secret = new_secret(48)
        self._store.clients.set_secret_hash(client.client_id, hash_client_secret(secret))
        return self.get(client.client_id), secret

    def delete(self, client_id: str) -> None:
        """Delete a client, its grants and its refresh tokens (and its introspection rights)."""
        client = self.get(client_id)
        with self._store.transaction():
            for api in self._store.apis.all():
                if client.client_id in api.introspection_clients:
                    remaining = tuple(c for c in api.introspection_clients if c != client_id)
                    self._store.apis.update(api.id, {"introspection_clients": remaining})
            self._store.tokens.revoke_refresh(self._now(), client_id=client.client_id)
            self._store.clients.delete(client.client_id)

    def authenticate(self, client_id: str, secret: str) -> Client | None:
        """The client if *secret* is its current, unexpired secret (constant-time check)."""
        return self.verify(self.find(client_id), secret)

    def verify(self, client: Client | None, secret: str) -> Client | None:
        """*client* if *secret* is its current, unexpired secret (``None`` costs the same)."""
        stored = client.secret_hash if client is not None else None
        ok = verify_secret(secret, stored)
        if client is None or not ok:
            return None
        if client.secret_expires_at and client.secret_expires_at <= self._now():
            return None
        if is_slow_hash(stored):
            # A store from an earlier version keeps seeded secrets as scrypt hashes: now that
            # the secret is known to be right, store its fast hash instead (unless the
            # secret was rotated meanwhile).
            self._store.clients.set_secret_hash(
                client.client_id, hash_client_secret(secret), replacing=stored
            )
        return client

    # ------------------------------------------------------------ self-service

    def register(self, metadata: Mapping[str, object], *, dynamic: bool = True) -> Registration:
        """Register a third-party client from RFC 7591 metadata.

        Shared by ``POST /oidc/register`` and the developer portal. The server assigns the
        ``client_id`` and secret (a supplied ``client_id`` is ignored). Raises
        ``RegistrationError`` with ``invalid_redirect_uri`` or ``invalid_client_metadata``.
        """

        def bad(description: str) -> RegistrationError:
            return RegistrationError("invalid_client_metadata", description)

        try:
            name = rules.display_name(
                metadata.get("client_name", "Unnamed application"), "client_name"
            )
        except ValidationError as exc:
            raise bad(exc.message) from None
        redirect_uris = metadata.get("redirect_uris", [])
        if not isinstance(redirect_uris, list) or not all(
            isinstance(u, str) for u in redirect_uris
        ):
            raise RegistrationError("invalid_redirect_uri", "redirect_uris must be a list of URLs")
        redirect_uris = [rules.callback_url(u) for u in dict.fromkeys(redirect_uris)]
        grant_types = metadata.get("grant_types", ["authorization_code"])
        response_types = metadata.get("response_types", ["code"])
        method = metadata.get("token_endpoint_auth_method", "client_secret_basic")
        application_type = metadata.get("application_type", "web")
        if not isinstance(grant_types, list) or not all(isinstance(g, str) for g in grant_types):
            raise bad("grant_types must be a list of strings")
        if not isinstance(response_types, list) or not all(
            isinstance(r, str) for r in response_types
        ):
            raise bad("response_types must be a list of strings")
        if not isinstance(method, str) or method not in AUTH_METHODS:
            raise bad("unsupported token_endpoint_auth_method")
        if application_type not in ("web", "native"):
            raise bad("application_type must be web or native")
        if any(g not in _REGISTRABLE_GRANTS for g in grant_types):
            raise bad("unsupported grant type (the password grant is for first-party clients)")
        wants_code = "code" in response_types
        wants_token = any(r in ("token", "id_token token") for r in response_types)
        if any(r not in ("code", "token", "id_token token") for r in response_types):
            raise bad("unsupported response type")
        if wants_code != ("authorization_code" in grant_types):
            raise bad("response_types 'code' and grant_types 'authorization_code' must match")
        if wants_token != ("implicit" in grant_types):
            raise bad("response_types 'token' and grant_types 'implicit' must match")
        if dynamic and wants_token:
            # Anyone can self-register; an implicit client with a look-alike name and host
            # is a phishing kit (tokens straight into the fragment of the attacker's page).
            raise bad(
                "the implicit grant is not available to self-registered clients; "
                "an administrator can enable it for the client"
            )
        if method == "none" and "client_credentials" in grant_types:
            raise bad("public clients cannot use the client_credentials grant")
        if (wants_code or wants_token) and not redirect_uris:
            raise RegistrationError("invalid_redirect_uri", "redirect_uris are required")
        uris = self._display_uris(metadata, {urlsplit(u).hostname for u in redirect_uris}, bad)
        if application_type == "native":
            app_type = "native"
        elif method == "none":
            app_type = "spa"
        else:
            app_type = "regular_web"
        try:
            client, secret = self.create(
                name=name,
                app_type=app_type,
                is_first_party=not dynamic and bool(metadata.get("is_first_party", False)),
                callbacks=redirect_uris,
                grant_types=list(dict.fromkeys(grant_types)),
                token_endpoint_auth_method=method,
                is_dynamic=dynamic,
                uris=uris,
            )
        except ValidationError as exc:
            raise bad(exc.message) from None
        return Registration(
            client, secret, tuple(dict.fromkeys(response_types)), str(application_type)
        )

    @staticmethod
    def _display_uris(
        metadata: Mapping[str, object], hosts: set[str | None], bad: Any
    ) -> dict[str, str]:
        """Logo, home page, policy and terms: https URLs on a redirect URI's host (RFC 7591 §5)."""
        uris: dict[str, str] = {}
        for key in _URI_FIELDS:
            value = metadata.get(key)
            if value is None:
                continue
            if not isinstance(value, str) or len(value) > 2000:
                raise bad(f"{key} must be a URL")
            try:
                parts = urlsplit(value)
            except ValueError:
                raise bad(f"{key} must be a URL") from None
            secure = parts.scheme == "https" or (
                parts.scheme == "http" and is_loopback_host(parts.hostname)
            )
            if not secure or parts.hostname not in hosts:
                raise bad(f"{key} must be an https URL on the host of a redirect URI")
            uris[key] = value
        return uris

    # ------------------------------------------------------ portal ownership

    def record_owner(self, client_id: str, owner_id: str) -> None:
        """Remember that *owner_id* registered *client_id* through the portal."""
        self._store.clients.record_owner(client_id, owner_id, self._now())

    def owned_by(self, owner_id: str) -> list[Client]:
        """One developer's portal applications, oldest first."""
        found = (self.find(i) for i in self._store.clients.owned_by(owner_id))
        return [c for c in found if c is not None]

    def owner_of(self, client_id: str) -> str | None:
        """The user id of the developer who registered *client_id* on the portal, if any."""
        return self._store.clients.owner_of(client_id)
