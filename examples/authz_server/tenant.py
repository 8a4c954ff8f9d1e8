"""The tenant's domain services: APIs, clients, grants, users, consent, export and import.

These are plain Python functions on a :class:`Tenant`; the HTTP endpoints, the Management
API, the CLI (and the dashboard and developer portal) all call them, so every rule lives in
one place. Invalid input raises a :class:`TenantError` subclass carrying an HTTP status.
"""

from __future__ import annotations

import json
import logging
import re
import secrets
import sqlite3
import string
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from .keys import KeyRing
from .models import (
    APP_TYPES,
    AUTH_METHODS,
    GRANT_TYPES,
    OIDC_SCOPES,
    TOKEN_DIALECTS,
    Client,
    ClientGrant,
    ResourceServer,
    Scope,
    User,
    UserGrant,
)
from .security import (
    b64url,
    b64url_decode,
    dummy_password_hash,
    hash_client_secret,
    hash_password,
    is_slow_hash,
    new_id,
    new_secret,
    sign_value,
    unsign_value,
    verify_secret,
)
from .settings import Settings, is_loopback_host
from .store import Store

log = logging.getLogger("examples.authz_server")

# Scopes the Management API understands (Auth0 names).
MANAGEMENT_SCOPES: dict[str, str] = {
    f"{verb}:{thing}": f"{verb.capitalize()} {thing.replace('_', ' ')}"
    for thing in ("resource_servers", "clients", "client_grants", "users")
    for verb in ("read", "create", "update", "delete")
} | {
    "read:grants": "Read user grants",
    "delete:grants": "Delete user grants",
    "read:signing_keys": "Read signing keys",
    "create:signing_keys": "Rotate signing keys",
    "update:signing_keys": "Revoke signing keys",
}

_SCOPE_TOKEN = re.compile(r"[\x21\x23-\x5b\x5d-\x7e]{1,200}")
_IDENTIFIER = re.compile(r"[\x21-\x7e]{1,600}")
_EMAIL = re.compile(r"[^@\s]{1,64}@[^@\s]{1,190}")
_FORBIDDEN_SCHEMES = {"javascript", "data", "file", "vbscript", "about", "blob", "filesystem"}
_CLIENT_ID_ALPHABET = string.ascii_letters + string.digits
MIN_PASSWORD_LENGTH = 8


class TenantError(Exception):
    """A request the tenant refuses; ``status`` is the HTTP status it maps to."""

    status = 400
    error_code = "invalid_body"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class ValidationError(TenantError):
    """Malformed or inconsistent input."""


class NotFound(TenantError):
    """The object does not exist."""

    status = 404
    error_code = "inexistent_object"


class Forbidden(TenantError):
    """The caller may not do this, whatever its input (it would grant what it lacks)."""

    status = 403
    error_code = "insufficient_scope"


class Conflict(TenantError):
    """The object already exists."""

    status = 409
    error_code = "conflict"


class RegistrationError(TenantError):
    """RFC 7591 §3.2.2 error (``invalid_redirect_uri`` or ``invalid_client_metadata``)."""

    def __init__(self, error: str, description: str) -> None:
        super().__init__(description)
        self.error = error


# ---------------------------------------------------------------------------- validation


def validate_name(value: object, what: str = "name") -> str:
    """A display name: 1 to 200 printable characters."""
    if not isinstance(value, str) or not value.strip() or len(value) > 200:
        raise ValidationError(f"{what} must be a non-empty string of at most 200 characters")
    if any(ord(c) < 32 or ord(c) == 127 for c in value):
        raise ValidationError(f"{what} must not contain control characters")
    return value.strip()


def validate_scope_value(value: object) -> str:
    """A scope token as RFC 6749 §3.3 defines it (no spaces, quotes or backslashes)."""
    if not isinstance(value, str) or not _SCOPE_TOKEN.fullmatch(value):
        raise ValidationError("a scope must be 1-200 printable characters without spaces")
    return value


def validate_identifier(value: object) -> str:
    """An API identifier (audience): printable ASCII without spaces, at most 600 characters."""
    if not isinstance(value, str) or not _IDENTIFIER.fullmatch(value):
        raise ValidationError("identifier must be 1-600 printable characters without spaces")
    return value


def validate_redirect_uri(uri: object) -> str:
    """Check a callback URL for registration (RFC 6749 §3.1.2, RFC 8252, RFC 9700 §2.6).

    Absolute, no fragment, no wildcard, no credentials; https, or http on a loopback host,
    or a private-use scheme containing a dot (native apps). Raises ``RegistrationError``.
    """
    if not isinstance(uri, str) or not uri or len(uri) > 2000:
        raise RegistrationError("invalid_redirect_uri", "redirect URIs must be non-empty strings")
    if any(c.isspace() or ord(c) < 32 or ord(c) == 127 for c in uri) or "*" in uri:
        raise RegistrationError("invalid_redirect_uri", "redirect URIs must be exact URLs")
    if "#" in uri:
        raise RegistrationError("invalid_redirect_uri", "redirect URIs must not have a fragment")
    try:
        parts = urlsplit(uri)
        host = parts.hostname
        parts.port  # noqa: B018 - raises ValueError on a malformed port
    except ValueError:
        raise RegistrationError("invalid_redirect_uri", "malformed redirect URI") from None
    scheme = parts.scheme.lower()
    if not scheme or scheme in _FORBIDDEN_SCHEMES:
        raise RegistrationError("invalid_redirect_uri", "redirect URIs must be absolute URLs")
    if parts.username is not None or parts.password is not None:
        raise RegistrationError("invalid_redirect_uri", "redirect URIs must not carry credentials")
    if scheme == "https":
        if not host:
            raise RegistrationError("invalid_redirect_uri", "https redirect URIs need a host")
    elif scheme == "http":
        if not is_loopback_host(host):
            raise RegistrationError(
                "invalid_redirect_uri", "http redirect URIs are only allowed for loopback hosts"
            )
    elif "." not in scheme:
        raise RegistrationError(
            "invalid_redirect_uri", "custom schemes must be reverse domain names (RFC 8252)"
        )
    return uri


def _string_list(value: object, what: str) -> list[str]:
    if not isinstance(value, (list, tuple)) or not all(isinstance(v, str) for v in value):
        raise ValidationError(f"{what} must be a list of strings")
    return list(dict.fromkeys(value))


def _bool(value: object, what: str) -> bool:
    if not isinstance(value, bool):
        raise ValidationError(f"{what} must be a boolean")
    return value


def _lifetime(value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 60 <= value <= 2_592_000:
        raise ValidationError("token_lifetime must be an integer from 60 to 2592000 seconds")
    return value


def parse_scopes(raw: Iterable[object]) -> tuple[Scope, ...]:
    """Validate a list of ``{"value", "description"}`` objects (or bare scope strings)."""
    out: dict[str, Scope] = {}
    for item in raw:
        if isinstance(item, str):
            item = {"value": item, "description": ""}
        if not isinstance(item, Mapping):
            raise ValidationError("scopes must be objects with a value and a description")
        value = validate_scope_value(item.get("value"))
        description = item.get("description", "")
        if not isinstance(description, str) or len(description) > 500:
            raise ValidationError("a scope description must be a string (at most 500 characters)")
        out[value] = Scope(value, description)
    return tuple(out.values())


class Tenant:
    """One tenant's configuration in a :class:`Store`."""

    def __init__(self, store: Store, settings: Settings) -> None:
        self.store = store
        self.settings = settings
        self.keys = KeyRing(store, settings)

    def now(self) -> int:
        """The current time in whole seconds (from the settings' clock)."""
        return int(self.settings.clock())

    # --------------------------------------------------------------------- setup

    def initialise(self) -> None:
        """First start: signing keys, the Management API, and the seed when the store is new."""
        self.keys.ensure()
        self.ensure_management_api()
        if self.store.get_meta("seeded") is None:
            if self.settings.seed_path is not None:
                self.import_tenant(json.loads(Path(self.settings.seed_path).read_text("utf-8")))
            self.store.set_meta("seeded", "1")
        self.warn_dev_only_features()

    def warn_dev_only_features(self) -> None:
        """Log a warning for every client that has the password or implicit grant enabled."""
        for client in self.list_clients():
            risky = [g for g in client.grant_types if g in ("password", "implicit")]
            if risky:
                log.warning(
                    "client %r has development-only grant(s) enabled: %s",
                    client.name,
                    ", ".join(risky),
                )

    def ensure_management_api(self) -> ResourceServer:
        """Create (or re-point after an issuer change) the system Management API."""
        audience = self.settings.management_audience
        scopes = json.dumps([Scope(k, v).to_json() for k, v in MANAGEMENT_SCOPES.items()])
        with self.store.transaction():
            row = self.store.one("SELECT * FROM resource_servers WHERE is_system = 1")
            if row is None:
                self.store.execute(
                    "INSERT INTO resource_servers (id, name, identifier, signing_alg, "
                    "token_lifetime, allow_offline_access, skip_consent, token_dialect, scopes, "
                    "is_system, created_at) VALUES (?, ?, ?, 'RS256', 86400, 0, 0, "
                    "'access_token', ?, 1, ?)",
                    (new_id(), "Management API", audience, scopes, self.now()),
                )
            else:
                self.store.execute(
                    "UPDATE resource_servers SET identifier = ?, scopes = ? WHERE id = ?",
                    (audience, scopes, row["id"]),
                )
        return self.get_api(audience)

    # ---------------------------------------------------------------------- APIs

    def list_apis(self, *, include_system: bool = True) -> list[ResourceServer]:
        """Every API, oldest first."""
        rows = self.store.all("SELECT * FROM resource_servers ORDER BY created_at, rowid")
        apis = [ResourceServer.from_row(r) for r in rows]
        return [a for a in apis if include_system or not a.is_system]

    def find_api(self, id_or_identifier: str) -> ResourceServer | None:
        """The API with this id or identifier, or ``None``."""
        row = self.store.one(
            "SELECT * FROM resource_servers WHERE id = ? OR identifier = ?",
            (id_or_identifier, id_or_identifier),
        )
        return None if row is None else ResourceServer.from_row(row)

    def get_api(self, id_or_identifier: str) -> ResourceServer:
        """The API with this id or identifier; raises ``NotFound``."""
        api = self.find_api(id_or_identifier)
        if api is None:
            raise NotFound("The resource server does not exist")
        return api

    def create_api(
        self,
        *,
        name: str,
        identifier: str,
        signing_alg: str = "RS256",
        token_lifetime: int = 86400,
        allow_offline_access: bool = False,
        skip_consent_for_verifiable_first_party_clients: bool = True,
        token_dialect: str = "access_token",
        scopes: Iterable[object] = (),
        signing_secret: str | None = None,
        api_id: str | None = None,
    ) -> ResourceServer:
        """Register an API. HS256 APIs get their own random 256-bit signing secret."""
        name = validate_name(name)
        identifier = validate_identifier(identifier)
        if signing_alg not in ("RS256", "HS256"):
            raise ValidationError("signing_alg must be RS256 or HS256")
        if token_dialect not in TOKEN_DIALECTS:
            raise ValidationError(f"token_dialect must be one of {', '.join(TOKEN_DIALECTS)}")
        lifetime = _lifetime(token_lifetime)
        offline = _bool(allow_offline_access, "allow_offline_access")
        skip = _bool(
            skip_consent_for_verifiable_first_party_clients,
            "skip_consent_for_verifiable_first_party_clients",
        )
        if not isinstance(scopes, (list, tuple)):
            raise ValidationError("scopes must be a list")
        parsed_scopes = parse_scopes(scopes)
        if signing_alg == "HS256":
            signing_secret = signing_secret or new_secret(32)
            if len(signing_secret.encode()) < 32:
                raise ValidationError("an HS256 signing secret must have at least 256 bits")
        else:
            signing_secret = None
        api_id = api_id or new_id()
        try:
            self.store.execute(
                "INSERT INTO resource_servers (id, name, identifier, signing_alg, signing_secret, "
                "token_lifetime, allow_offline_access, skip_consent, token_dialect, scopes, "
                "is_system, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 0, ?)",
                (
                    api_id,
                    name,
                    identifier,
                    signing_alg,
                    signing_secret,
                    lifetime,
                    offline,
                    skip,
                    token_dialect,
                    json.dumps([s.to_json() for s in parsed_scopes]),
                    self.now(),
                ),
            )
        except sqlite3.IntegrityError:
            raise Conflict("A resource server with the same identifier already exists") from None
        return self.get_api(api_id)

    def update_api(self, id_or_identifier: str, changes: Mapping[str, object]) -> ResourceServer:
        """Change an API's settings; ``identifier`` and ``signing_alg`` are immutable."""
        api = self.get_api(id_or_identifier)
        if api.is_system:
            raise ValidationError("The Management API cannot be modified")
        for immutable in ("identifier", "signing_alg", "id", "is_system", "signing_secret"):
            if immutable in changes:
                raise ValidationError(f"{immutable} cannot be changed")
        columns: dict[str, object] = {}
        for key, value in changes.items():
            if key == "name":
                columns["name"] = validate_name(value)
            elif key == "token_lifetime":
                columns["token_lifetime"] = _lifetime(value)
            elif key == "allow_offline_access":
                columns["allow_offline_access"] = _bool(value, key)
            elif key == "skip_consent_for_verifiable_first_party_clients":
                columns["skip_consent"] = _bool(value, key)
            elif key == "token_dialect":
                if value not in TOKEN_DIALECTS:
                    raise ValidationError("unknown token_dialect")
                columns["token_dialect"] = value
            elif key == "scopes":
                if not isinstance(value, list):
                    raise ValidationError("scopes must be a list")
                columns["scopes"] = json.dumps([s.to_json() for s in parse_scopes(value)])
            else:
                raise ValidationError(f"unknown property {key!r}")
        if columns:
            assignments = ", ".join(f"{column} = ?" for column in columns)
            self.store.execute(
                f"UPDATE resource_servers SET {assignments} WHERE id = ?",  # noqa: S608 - fixed names
                (*columns.values(), api.id),
            )
        return self.get_api(api.id)

    def add_scope(self, id_or_identifier: str, value: str, description: str = "") -> ResourceServer:
        """Add (or re-describe) one scope of an API."""
        api = self.get_api(id_or_identifier)
        scopes = [s.to_json() for s in api.scopes if s.value != value]
        scopes.append({"value": value, "description": description})
        return self.update_api(api.id, {"scopes": scopes})

    def remove_scope(self, id_or_identifier: str, value: str) -> ResourceServer:
        """Remove one scope of an API (client grants keep only the remaining scopes)."""
        api = self.get_api(id_or_identifier)
        scopes = [s.to_json() for s in api.scopes if s.value != value]
        with self.store.transaction():
            updated = self.update_api(api.id, {"scopes": scopes})
            for grant in self.list_client_grants(audience=api.identifier):
                if value in grant.scope:
                    self.update_client_grant(grant.id, [s for s in grant.scope if s != value])
        return updated

    def delete_api(self, id_or_identifier: str) -> None:
        """Delete an API with its client grants, user grants and refresh tokens."""
        api = self.get_api(id_or_identifier)
        if api.is_system:
            raise ValidationError("The Management API cannot be deleted")
        with self.store.transaction():
            self.store.execute("DELETE FROM user_grants WHERE audience = ?", (api.identifier,))
            self.store.execute(
                "UPDATE refresh_tokens SET revoked_at = ? "
                "WHERE audience = ? AND revoked_at IS NULL",
                (self.now(), api.identifier),
            )
            self.store.execute("DELETE FROM resource_servers WHERE id = ?", (api.id,))

    # ------------------------------------------------------------------- clients

    def list_clients(self) -> list[Client]:
        """Every client, oldest first."""
        rows = self.store.all("SELECT * FROM clients ORDER BY created_at, rowid")
        return [Client.from_row(r) for r in rows]

    def find_client(self, client_id: str) -> Client | None:
        """The client with this id, or ``None``."""
        row = self.store.one("SELECT * FROM clients WHERE client_id = ?", (client_id,))
        return None if row is None else Client.from_row(row)

    def get_client(self, client_id: str) -> Client:
        """The client with this id; raises ``NotFound``."""
        client = self.find_client(client_id)
        if client is None:
            raise NotFound("The client does not exist")
        return client

    @staticmethod
    def _check_client_consistency(
        *,
        app_type: str,
        is_first_party: bool,
        auth_method: str,
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

    def _client_id_for(self, requested: str | None) -> str:
        if requested is not None:
            if not re.fullmatch(r"[A-Za-z0-9._\-]{3,64}", requested):
                raise ValidationError("client_id must be 3-64 letters, digits, '.', '_' or '-'")
            return requested
        return "".join(secrets.choice(_CLIENT_ID_ALPHABET) for _ in range(32))

    def create_client(
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
        name = validate_name(name)
        if not isinstance(description, str) or len(description) > 1000:
            raise ValidationError("description must be a string of at most 1000 characters")
        if not isinstance(is_first_party, bool):
            raise ValidationError("is_first_party must be a boolean")
        if not isinstance(app_type, str) or app_type not in APP_TYPES:
            raise ValidationError(f"app_type must be one of {', '.join(APP_TYPES)}")
        if token_endpoint_auth_method is None:
            token_endpoint_auth_method = (
                "none" if app_type in ("spa", "native") else "client_secret_post"
            )
        if grant_types is None:
            grant_types = {
                "spa": ["authorization_code", "refresh_token"],
                "native": ["authorization_code", "refresh_token"],
                "regular_web": ["authorization_code", "refresh_token", "client_credentials"],
                "non_interactive": ["client_credentials"],
            }.get(app_type, [])
            if token_endpoint_auth_method == "none":
                grant_types = [g for g in grant_types if g != "client_credentials"]
        grants = _string_list(grant_types, "grant_types")
        checked_callbacks = [validate_redirect_uri(c) for c in _string_list(callbacks, "callbacks")]
        self._check_client_consistency(
            app_type=app_type,
            is_first_party=is_first_party,
            auth_method=token_endpoint_auth_method,
            grant_types=grants,
            callbacks=checked_callbacks,
        )
        client_id = self._client_id_for(client_id)
        secret: str | None = None
        secret_hash: str | None = None
        if token_endpoint_auth_method != "none":
            if client_secret_hash:
                secret_hash = client_secret_hash
            elif client_secret:
                secret, secret_hash = client_secret, hash_client_secret(client_secret)
            else:
                secret = new_secret(48)
                secret_hash = hash_client_secret(secret)
        uris = dict(uris or {})
        try:
            self.store.execute(
                "INSERT INTO clients (client_id, name, description, app_type, is_first_party, "
                "token_endpoint_auth_method, callbacks, grant_types, secret_hash, is_dynamic, "
                "logo_uri, client_uri, policy_uri, tos_uri, created_at) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    client_id,
                    name,
                    description,
                    app_type,
                    is_first_party,
                    token_endpoint_auth_method,
                    json.dumps(checked_callbacks),
                    json.dumps(grants),
                    secret_hash,
                    is_dynamic,
                    uris.get("logo_uri"),
                    uris.get("client_uri"),
                    uris.get("policy_uri"),
                    uris.get("tos_uri"),
                    self.now(),
                ),
            )
        except sqlite3.IntegrityError:
            raise Conflict("A client with the same client_id already exists") from None
        return self.get_client(client_id), secret

    def update_client(self, client_id: str, changes: Mapping[str, object]) -> Client:
        """Change a client's settings (name, description, callbacks, grant types, ...)."""
        client = self.get_client(client_id)
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
        name = validate_name(merged["name"])
        if not isinstance(merged["description"], str):
            raise ValidationError("description must be a string")
        if not isinstance(merged["is_first_party"], bool):
            raise ValidationError("is_first_party must be a boolean")
        callbacks = [
            validate_redirect_uri(c) for c in _string_list(merged["callbacks"], "callbacks")
        ]
        grants = _string_list(merged["grant_types"], "grant_types")
        method = merged["token_endpoint_auth_method"]
        if not isinstance(method, str):
            raise ValidationError("token_endpoint_auth_method must be a string")
        if (method == "none") != (client.token_endpoint_auth_method == "none"):
            raise ValidationError("a client cannot switch between public and confidential")
        if client.is_dynamic and merged["is_first_party"]:
            raise ValidationError("dynamically registered clients are always third-party")
        self._check_client_consistency(
            app_type=merged["app_type"],
            is_first_party=merged["is_first_party"],
            auth_method=method,
            grant_types=grants,
            callbacks=callbacks,
        )
        self.store.execute(
            "UPDATE clients SET name = ?, description = ?, app_type = ?, is_first_party = ?, "
            "callbacks = ?, grant_types = ?, token_endpoint_auth_method = ? WHERE client_id = ?",
            (
                name,
                merged["description"],
                merged["app_type"],
                merged["is_first_party"],
                json.dumps(callbacks),
                json.dumps(grants),
                method,
                client.client_id,
            ),
        )
        return self.get_client(client.client_id)

    def rotate_client_secret(self, client_id: str) -> tuple[Client, str]:
        """Give a confidential client a new generated secret (shown once)."""
        client = self.get_client(client_id)
        if not client.is_confidential:
            raise ValidationError("public clients have no secret")
        secret = new_secret(48)
        self.store.execute(
            "UPDATE clients SET secret_hash = ?, secret_expires_at = 0 WHERE client_id = ?",
            (hash_client_secret(secret), client.client_id),
        )
        return self.get_client(client.client_id), secret

    def delete_client(self, client_id: str) -> None:
        """Delete a client, its grants and its refresh tokens."""
        client = self.get_client(client_id)
        with self.store.transaction():
            self.store.execute(
                "UPDATE refresh_tokens SET revoked_at = ? "
                "WHERE client_id = ? AND revoked_at IS NULL",
                (self.now(), client.client_id),
            )
            self.store.execute("DELETE FROM clients WHERE client_id = ?", (client.client_id,))

    def authenticate_client(self, client_id: str, secret: str) -> Client | None:
        """The client if *secret* is its current, unexpired secret (constant-time check)."""
        client = self.find_client(client_id)
        stored = client.secret_hash if client is not None else None
        ok = verify_secret(secret, stored)
        if client is None or not ok:
            return None
        if client.secret_expires_at and client.secret_expires_at <= self.now():
            return None
        if is_slow_hash(stored):
            # A store from an earlier version keeps seeded secrets as scrypt hashes: now that
            # the secret is known to be right, store its fast hash instead (unless the
            # secret was rotated meanwhile).
            self.store.execute(
                "UPDATE clients SET secret_hash = ? WHERE client_id = ? AND secret_hash = ?",
                (hash_client_secret(secret), client.client_id, stored),
            )
        return client

    def register_client(
        self, metadata: Mapping[str, object], *, dynamic: bool = True
    ) -> dict[str, Any]:
        """Register a third-party client from RFC 7591 metadata; return the RFC 7591 response.

        Shared by ``POST /oidc/register`` and the developer portal. The server assigns the
        ``client_id`` and secret (a supplied ``client_id`` is ignored). Raises
        ``RegistrationError`` with ``invalid_redirect_uri`` or ``invalid_client_metadata``.
        """

        def bad(description: str) -> RegistrationError:
            return RegistrationError("invalid_client_metadata", description)

        name = metadata.get("client_name", "Unnamed application")
        try:
            name = validate_name(name, "client_name")
        except ValidationError as exc:
            raise bad(exc.message) from None
        redirect_uris = metadata.get("redirect_uris", [])
        if not isinstance(redirect_uris, list) or not all(
            isinstance(u, str) for u in redirect_uris
        ):
            raise RegistrationError("invalid_redirect_uri", "redirect_uris must be a list of URLs")
        redirect_uris = [validate_redirect_uri(u) for u in dict.fromkeys(redirect_uris)]
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
        if method not in AUTH_METHODS or not isinstance(method, str):
            raise bad("unsupported token_endpoint_auth_method")
        if application_type not in ("web", "native"):
            raise bad("application_type must be web or native")
        allowed = {"authorization_code", "implicit", "refresh_token", "client_credentials"}
        if any(g not in allowed for g in grant_types):
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
        hosts = {urlsplit(u).hostname for u in redirect_uris}
        uris: dict[str, str] = {}
        for key in ("logo_uri", "client_uri", "policy_uri", "tos_uri"):
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
        if application_type == "native":
            app_type = "native"
        elif method == "none":
            app_type = "spa"
        else:
            app_type = "regular_web"
        try:
            client, secret = self.create_client(
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
        response: dict[str, Any] = {
            "client_id": client.client_id,
            "client_id_issued_at": client.created_at,
            "client_name": client.name,
            "redirect_uris": list(client.callbacks),
            "grant_types": list(client.grant_types),
            "response_types": list(dict.fromkeys(response_types)),
            "token_endpoint_auth_method": client.token_endpoint_auth_method,
            "application_type": application_type,
        } | uris
        if secret is not None:
            response["client_secret"] = secret
            response["client_secret_expires_at"] = 0
        return response

    # ------------------------------------------------------------- client grants

    def list_client_grants(
        self, *, client_id: str | None = None, audience: str | None = None
    ) -> list[ClientGrant]:
        """Client grants, optionally filtered by client and audience."""
        rows = self.store.all(
            "SELECT * FROM client_grants WHERE (? IS NULL OR client_id = ?) "
            "AND (? IS NULL OR audience = ?) ORDER BY rowid",
            (client_id, client_id, audience, audience),
        )
        return [ClientGrant.from_row(r) for r in rows]

    def find_client_grant(self, client_id: str, audience: str) -> ClientGrant | None:
        """The grant of *client_id* for *audience*, or ``None``."""
        grants = self.list_client_grants(client_id=client_id, audience=audience)
        return grants[0] if grants else None

    def _check_grant_scopes(self, api: ResourceServer, scopes: object) -> list[str]:
        values = _string_list(scopes, "scope")
        unknown = [s for s in values if s not in api.scope_values]
        if unknown:
            raise ValidationError(f"scope(s) not defined by the API: {' '.join(unknown)}")
        return values

    def create_client_grant(
        self, client_id: str, audience: str, scopes: Sequence[str]
    ) -> ClientGrant:
        """Authorize a client to get client-credentials tokens for an API with these scopes."""
        client = self.get_client(client_id)
        api = self.get_api(audience)
        if not client.is_confidential:
            raise ValidationError("public clients cannot be given client grants")
        values = self._check_grant_scopes(api, list(scopes))
        grant_id = new_id("cgr_", 8)
        try:
            self.store.execute(
                "INSERT INTO client_grants (id, client_id, audience, scope) VALUES (?, ?, ?, ?)",
                (grant_id, client.client_id, api.identifier, json.dumps(values)),
            )
        except sqlite3.IntegrityError:
            raise Conflict("A client grant for this client and audience already exists") from None
        return self.get_client_grant(grant_id)

    def get_client_grant(self, grant_id: str) -> ClientGrant:
        """The client grant with this id; raises ``NotFound``."""
        row = self.store.one("SELECT * FROM client_grants WHERE id = ?", (grant_id,))
        if row is None:
            raise NotFound("The client grant does not exist")
        return ClientGrant.from_row(row)

    def update_client_grant(self, grant_id: str, scopes: Sequence[str]) -> ClientGrant:
        """Replace the scopes of a client grant."""
        grant = self.get_client_grant(grant_id)
        values = self._check_grant_scopes(self.get_api(grant.audience), list(scopes))
        self.store.execute(
            "UPDATE client_grants SET scope = ? WHERE id = ?", (json.dumps(values), grant.id)
        )
        return self.get_client_grant(grant.id)

    def delete_client_grant(self, grant_id: str) -> None:
        """Remove a client grant."""
        grant = self.get_client_grant(grant_id)
        self.store.execute("DELETE FROM client_grants WHERE id = ?", (grant.id,))

    # ------------------------------------------------- no grant sideways (Management API)

    def management_scopes_of(self, client_id: str) -> frozenset[str]:
        """The Management API scopes a client has been granted."""
        grant = self.find_client_grant(client_id, self.settings.management_audience)
        return frozenset(grant.scope) if grant else frozenset()

    def check_may_control(self, held: frozenset[str], client_id: str) -> None:
        """Refuse to let a caller holding *held* change (or learn the secret of) a client
        that holds Management API scopes the caller lacks. Raises ``Forbidden``."""
        if self.management_scopes_of(client_id) - held:
            raise Forbidden("The client holds Management API scopes that you do not hold")

    def check_may_grant(self, held: frozenset[str], audience: object, scopes: object) -> None:
        """Refuse a Management API client grant wider than the caller's own scopes.

        Without this, ``create:client_grants`` (or ``update:client_grants``) would give a
        client one controls every Management API scope. Raises ``Forbidden``.
        """
        api = self.find_api(audience) if isinstance(audience, str) else None
        if api is None or not api.is_system or not isinstance(scopes, list):
            return
        if {s for s in scopes if isinstance(s, str)} - held:
            raise Forbidden("A Management API grant cannot include scopes that you do not hold")

    # ------------------------------------------------------ revoked access tokens

    def revoke_access_token(self, jti: str, expires_at: int) -> None:
        """Remember that the access token *jti* was revoked, until it would have expired."""
        now = self.now()
        with self.store.transaction():
            self.store.execute("DELETE FROM revoked_tokens WHERE expires_at <= ?", (now,))
            self.store.execute(
                "INSERT OR IGNORE INTO revoked_tokens (jti, expires_at) VALUES (?, ?)",
                (jti, expires_at),
            )

    def is_token_revoked(self, jti: str) -> bool:
        """Whether the access token *jti* was revoked at ``/oauth/revoke``."""
        return self.store.one("SELECT 1 FROM revoked_tokens WHERE jti = ?", (jti,)) is not None

    # --------------------------------------------------------------------- users

    def list_users(self) -> list[User]:
        """Every user, oldest first."""
        rows = self.store.all("SELECT * FROM users ORDER BY created_at, rowid")
        return [User.from_row(r) for r in rows]

    def find_user(self, user_id: str) -> User | None:
        """The user with this id, or ``None``."""
        row = self.store.one("SELECT * FROM users WHERE user_id = ?", (user_id,))
        return None if row is None else User.from_row(row)

    def get_user(self, user_id: str) -> User:
        """The user with this id; raises ``NotFound``."""
        user = self.find_user(user_id)
        if user is None:
            raise NotFound("The user does not exist")
        return user

    def find_user_by_email(self, email: str) -> User | None:
        """The user with this email (case-insensitive), or ``None``."""
        row = self.store.one("SELECT * FROM users WHERE email = ?", (email,))
        return None if row is None else User.from_row(row)

    @staticmethod
    def _check_password(password: object) -> str:
        if not isinstance(password, str) or not MIN_PASSWORD_LENGTH <= len(password) <= 1024:
            raise ValidationError(
                f"password must be a string of at least {MIN_PASSWORD_LENGTH} characters"
            )
        return password

    def create_user(
        self,
        *,
        email: str,
        password: str | None = None,
        name: str | None = None,
        is_admin: bool = False,
        email_verified: bool = False,
        user_id: str | None = None,
        password_hash: str | None = None,
    ) -> User:
        """Add a user; the password is stored as a salted scrypt hash.

        ``email_verified`` says that someone proved they receive mail at the address; it is
        what ID tokens and ``/userinfo`` assert, so it defaults to ``False``. ``is_admin``
        is for the command line and seed files only (see :meth:`set_admin`).
        """
        if not isinstance(email, str) or not _EMAIL.fullmatch(email):
            raise ValidationError("email must be an email address")
        if password_hash is None:
            password_hash = hash_password(self._check_password(password))
        name = validate_name(name or email, "name")
        is_admin = _bool(is_admin, "is_admin")
        email_verified = _bool(email_verified, "email_verified")
        user_id = user_id or f"auth0|{new_id(nbytes=12)}"
        now = self.now()
        try:
            self.store.execute(
                "INSERT INTO users (user_id, email, name, password_hash, is_admin, "
                "email_verified, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (user_id, email, name, password_hash, is_admin, email_verified, now, now),
            )
        except sqlite3.IntegrityError:
            raise Conflict("The user already exists") from None
        return self.get_user(user_id)

    def authenticate_user(self, email: str, password: str) -> User | None:
        """The user if the email and password match and the user is not blocked.

        An unknown email is checked against a dummy scrypt hash, so it costs the same
        scrypt work as a known one and the timing does not tell which accounts exist.
        """
        user = self.find_user_by_email(email)
        ok = verify_secret(password, user.password_hash if user else dummy_password_hash())
        if user is None or not ok or user.blocked:
            return None
        return user

    def update_user(self, user_id: str, changes: Mapping[str, object]) -> User:
        """Change a user's name, email, password, ``email_verified`` or ``blocked`` flag.

        A new password or a block ends the user's sessions and revokes their refresh
        tokens. A new email is unverified unless ``email_verified`` comes with it.
        Administrator status cannot be changed here, and administrators cannot be
        changed at all (their password would open the dashboard, which grants every
        scope): both are for the command line (:meth:`set_admin`). Raises ``Forbidden``.
        """
        user = self.get_user(user_id)
        for key in ("is_admin", "app_metadata"):
            if key in changes:
                raise Forbidden("Administrator status can only be changed from the command line")
        if user.is_admin:
            raise Forbidden("Administrator accounts can only be changed from the command line")
        with self.store.transaction():
            for key, value in changes.items():
                if key == "name":
                    self.store.execute(
                        "UPDATE users SET name = ? WHERE user_id = ?",
                        (validate_name(value), user.user_id),
                    )
                elif key == "email":
                    if not isinstance(value, str) or not _EMAIL.fullmatch(value):
                        raise ValidationError("email must be an email address")
                    try:
                        self.store.execute(
                            "UPDATE users SET email = ?, email_verified = ? WHERE user_id = ?",
                            (
                                value,
                                value.lower() == user.email.lower() and user.email_verified,
                                user.user_id,
                            ),
                        )
                    except sqlite3.IntegrityError:
                        raise Conflict("The email is already in use") from None
                elif key == "email_verified":
                    continue  # applied after the email, which resets it
                elif key == "blocked":
                    blocked = _bool(value, "blocked")
                    self.store.execute(
                        "UPDATE users SET blocked = ? WHERE user_id = ?", (blocked, user.user_id)
                    )
                    if blocked:
                        self._end_sign_ins(user.user_id)
                elif key == "password":
                    self.store.execute(
                        "UPDATE users SET password_hash = ? WHERE user_id = ?",
                        (hash_password(self._check_password(value)), user.user_id),
                    )
                    self._end_sign_ins(user.user_id)
                else:
                    raise ValidationError(f"property {key!r} cannot be changed")
            if "email_verified" in changes:
                self.store.execute(
                    "UPDATE users SET email_verified = ? WHERE user_id = ?",
                    (_bool(changes["email_verified"], "email_verified"), user.user_id),
                )
            self.store.execute(
                "UPDATE users SET updated_at = ? WHERE user_id = ?", (self.now(), user.user_id)
            )
        return self.get_user(user.user_id)

    def _end_sign_ins(self, user_id: str) -> None:
        """Sign the user out everywhere: refresh tokens revoked, sessions ended."""
        self.revoke_refresh_tokens(user_id=user_id)
        self.store.execute("DELETE FROM sessions WHERE user_id = ?", (user_id,))

    def set_admin(self, user_id: str, is_admin: bool) -> User:
        """Make a user an administrator of the dashboard, or no longer one (CLI only)."""
        user = self.get_user(user_id)
        self.store.execute(
            "UPDATE users SET is_admin = ?, updated_at = ? WHERE user_id = ?",
            (_bool(is_admin, "is_admin"), self.now(), user.user_id),
        )
        return self.get_user(user.user_id)

    # ------------------------------------------------------ email verification

    def server_secret(self) -> str:
        """This store's own random key for MACs (email links, anonymous CSRF tokens)."""
        secret = self.store.get_meta("server_secret")
        if secret is None:
            with self.store.transaction():
                secret = self.store.get_meta("server_secret")
                if secret is None:
                    secret = new_secret(32)
                    self.store.set_meta("server_secret", secret)
        return secret

    def email_verification_token(self, user: User) -> str:
        """A token proving receipt of mail at the user's current address (valid one day)."""
        payload = b64url(
            json.dumps([user.user_id, user.email.lower(), self.now() + 86400]).encode()
        )
        return sign_value(self.server_secret(), "verify-email", payload)

    def verify_email(self, token: str) -> User | None:
        """Mark the address verified when *token* is valid for the user's current address."""
        payload = unsign_value(self.server_secret(), "verify-email", token)
        if payload is None:
            return None
        try:
            user_id, email, expires = json.loads(b64url_decode(payload))
        except (ValueError, TypeError):
            return None
        user = self.find_user(str(user_id))
        if user is None or user.email.lower() != email or int(expires) <= self.now():
            return None
        self.store.execute(
            "UPDATE users SET email_verified = 1, updated_at = ? WHERE user_id = ?",
            (self.now(), user.user_id),
        )
        return self.get_user(user.user_id)

    def delete_user(self, user_id: str) -> None:
        """Delete a user with their consent records, sessions and refresh tokens."""
        user = self.get_user(user_id)
        with self.store.transaction():
            self.revoke_refresh_tokens(user_id=user.user_id)
            self.store.execute("DELETE FROM users WHERE user_id = ?", (user.user_id,))

    # ---------------------------------------------------- user grants (consent)

    def list_user_grants(
        self,
        *,
        user_id: str | None = None,
        client_id: str | None = None,
        audience: str | None = None,
    ) -> list[UserGrant]:
        """Remembered consents, optionally filtered."""
        rows = self.store.all(
            "SELECT * FROM user_grants WHERE (? IS NULL OR user_id = ?) "
            "AND (? IS NULL OR client_id = ?) AND (? IS NULL OR audience = ?) ORDER BY rowid",
            (user_id, user_id, client_id, client_id, audience, audience),
        )
        return [UserGrant.from_row(r) for r in rows]

    def consented_scopes(self, user_id: str, client_id: str, audience: str) -> frozenset[str]:
        """The scopes the user has already let this client use for this audience."""
        grants = self.list_user_grants(user_id=user_id, client_id=client_id, audience=audience)
        return frozenset(grants[0].scope) if grants else frozenset()

    def remember_consent(
        self, user_id: str, client_id: str, audience: str, scopes: Iterable[str]
    ) -> UserGrant:
        """Record (or widen) the user's consent for this client and audience."""
        with self.store.transaction():
            known = self.consented_scopes(user_id, client_id, audience)
            merged = sorted(known | set(scopes))
            self.store.execute(
                "INSERT INTO user_grants (id, user_id, client_id, audience, scope, created_at) "
                "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (user_id, client_id, audience) "
                "DO UPDATE SET scope = excluded.scope",
                (new_id("ugr_", 8), user_id, client_id, audience, json.dumps(merged), self.now()),
            )
            return self.list_user_grants(user_id=user_id, client_id=client_id, audience=audience)[0]

    def revoke_user_grant(self, grant_id: str) -> None:
        """Withdraw a remembered consent; refresh tokens issued under it stop working."""
        row = self.store.one("SELECT * FROM user_grants WHERE id = ?", (grant_id,))
        if row is None:
            raise NotFound("The grant does not exist")
        grant = UserGrant.from_row(row)
        with self.store.transaction():
            self.store.execute("DELETE FROM user_grants WHERE id = ?", (grant.id,))
            self.revoke_refresh_tokens(
                user_id=grant.user_id, client_id=grant.client_id, audience=grant.audience
            )

    def revoke_refresh_tokens(
        self,
        *,
        user_id: str | None = None,
        client_id: str | None = None,
        audience: str | None = None,
        family_id: str | None = None,
    ) -> int:
        """Revoke every refresh token matching all the given filters; return how many."""
        if not any((user_id, client_id, audience, family_id)):
            raise ValueError("at least one filter is required")
        return self.store.execute(
            "UPDATE refresh_tokens SET revoked_at = ? WHERE revoked_at IS NULL "
            "AND (? IS NULL OR user_id = ?) AND (? IS NULL OR client_id = ?) "
            "AND (? IS NULL OR audience = ?) AND (? IS NULL OR family_id = ?)",
            (
                self.now(),
                user_id,
                user_id,
                client_id,
                client_id,
                audience,
                audience,
                family_id,
                family_id,
            ),
        )

    # ------------------------------------------------------- export and import

    def export_tenant(self, *, include_keys: bool = False) -> dict[str, Any]:
        """The tenant as a seed document (hashes, never plaintext secrets or passwords)."""
        data: dict[str, Any] = {
            "resource_servers": [
                a.to_json(include_secret=True) for a in self.list_apis(include_system=False)
            ],
            "clients": [],
            "client_grants": [],
            "users": [],
        }
        for client in self.list_clients():
            entry = client.to_json()
            if client.secret_hash:
                entry["client_secret_hash"] = client.secret_hash
            data["clients"].append(entry)
        management = self.settings.management_audience
        for grant in self.list_client_grants():
            entry = grant.to_json()
            del entry["id"]
            if grant.audience == management:
                entry["audience"] = "{management_api}"
            data["client_grants"].append(entry)
        for user in self.list_users():
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
        if include_keys:
            rows = self.store.all("SELECT * FROM signing_keys ORDER BY created_at, rowid")
            data["signing_keys"] = [dict(r) for r in rows]
        return data

    def import_tenant(self, data: Mapping[str, Any]) -> dict[str, int]:
        """Load a seed or export document; objects that already exist are left alone.

        Plaintext ``client_secret``/``password`` entries (seed files) are hashed on the way in.
        Returns how many objects of each kind were added.
        """
        added = {"resource_servers": 0, "clients": 0, "client_grants": 0, "users": 0}
        if not isinstance(data, Mapping):
            raise ValidationError("a tenant document must be a JSON object")
        with self.store.transaction():
            for api in data.get("resource_servers", []):
                if self.find_api(api["identifier"]) is not None:
                    continue
                self.create_api(
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
                )
                added["resource_servers"] += 1
            for client in data.get("clients", []):
                if self.find_client(client["client_id"]) is not None:
                    continue
                self.create_client(
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
            for user in data.get("users", []):
                if self.find_user_by_email(user["email"]) is not None:
                    continue
                self.create_user(
                    user_id=user.get("user_id"),
                    email=user["email"],
                    name=user.get("name"),
                    is_admin=user.get("is_admin", False),
                    email_verified=user.get("email_verified", False),
                    password=user.get("password"),
                    password_hash=user.get("password_hash"),
                )
                if user.get("blocked"):
                    self.store.execute(
                        "UPDATE users SET blocked = 1 WHERE email = ?", (user["email"],)
                    )
                added["users"] += 1
            for grant in data.get("client_grants", []):
                audience = grant["audience"].replace(
                    "{management_api}", self.settings.management_audience
                )
                if self.find_client_grant(grant["client_id"], audience) is not None:
                    continue
                self.create_client_grant(grant["client_id"], audience, grant.get("scope", []))
                added["client_grants"] += 1
            imported_keys = data.get("signing_keys", [])
            if imported_keys:
                # Imported keys replace the local ones, so both sides sign and publish the same.
                self.store.execute(
                    "UPDATE signing_keys SET status = 'revoked', revoked_at = ? "
                    "WHERE status != 'revoked'",
                    (self.now(),),
                )
            for key in imported_keys:
                self.store.execute(
                    "INSERT OR REPLACE INTO signing_keys (kid, private_pem, status, created_at, "
                    "current_since, revoked_at) VALUES (?, ?, ?, ?, ?, ?)",
                    (
                        key["kid"],
                        key["private_pem"],
                        key["status"],
                        key["created_at"],
                        key.get("current_since"),
                        key.get("revoked_at"),
                    ),
                )
        return added


def scope_list(raw: str | None) -> list[str]:
    """Split a space-delimited scope string, keeping order and dropping duplicates."""
    return list(dict.fromkeys((raw or "").split()))


__all__ = [
    "MANAGEMENT_SCOPES",
    "OIDC_SCOPES",
    "Conflict",
    "Forbidden",
    "NotFound",
    "RegistrationError",
    "Tenant",
    "TenantError",
    "ValidationError",
    "parse_scopes",
    "scope_list",
    "validate_redirect_uri",
]
