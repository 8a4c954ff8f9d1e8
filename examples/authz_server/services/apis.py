"""APIs (resource servers) and their scopes."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from .. import rules
from ..models import ACCESS_TOKEN_FORMATS, TOKEN_DIALECTS, ResourceServer, Scope
from ..rules import Conflict, NotFound, ValidationError
from ..security import new_id, new_secret
from ..settings import Settings
from ..store import Store
from ..store.connection import Duplicate

# Scopes the Management API understands (Auth0 names).
MANAGEMENT_SCOPES: dict[str, str] = {
    f"{verb}:{thing}": f"{verb.capitalize()} {thing.replace('_', ' ')}"
    for thing in ("resource_servers", "clients", "client_grants", "users")
    for verb in ("read", "create", "update", "delete")
} | {
    "read:roles": "Read roles and their permissions",
    "create:roles": "Create roles",
    "update:roles": "Change roles and their permissions",
    "delete:roles": "Delete roles",
    "read:grants": "Read user grants",
    "delete:grants": "Delete user grants",
    "read:signing_keys": "Read signing keys",
    "create:signing_keys": "Rotate signing keys",
    "update:signing_keys": "Revoke signing keys",
}
_IMMUTABLE = ("identifier", "signing_alg", "id", "is_system", "signing_secret")


class ApiService:
    """Register, change and remove APIs; the Management API itself is a system API."""

    def __init__(self, store: Store, settings: Settings) -> None:
        self._store = store
        self._settings = settings

    def _now(self) -> int:
        return int(self._settings.clock())

    def all(self, *, include_system: bool = True) -> list[ResourceServer]:
        """Every API, oldest first."""
        return [a for a in self._store.apis.all() if include_system or not a.is_system]

    def find(self, id_or_identifier: str) -> ResourceServer | None:
        """The API with this id or identifier, or ``None``."""
        return self._store.apis.find(id_or_identifier)

    def get(self, id_or_identifier: str) -> ResourceServer:
        """The API with this id or identifier; raises ``NotFound``."""
        api = self.find(id_or_identifier)
        if api is None:
            raise NotFound("The resource server does not exist")
        return api

    def ensure_management_api(self) -> ResourceServer:
        """Create (or re-point after an issuer change) the system Management API."""
        audience = self._settings.management_audience
        scopes = tuple(Scope(k, v) for k, v in MANAGEMENT_SCOPES.items())
        with self._store.transaction():
            system = self._store.apis.system()
            if system is None:
                self._store.apis.insert(
                    ResourceServer(
                        id=new_id(),
                        name="Management API",
                        identifier=audience,
                        signing_alg="RS256",
                        signing_secret=None,
                        token_lifetime=86400,
                        allow_offline_access=False,
                        skip_consent_for_verifiable_first_party_clients=False,
                        token_dialect="access_token",
                        scopes=scopes,
                        is_system=True,
                        created_at=self._now(),
                    )
                )
            else:
                self._store.apis.repoint_system(system.id, audience, scopes)
        return self.get(audience)

    def create(
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
        access_token_format: str = "jwt",
        introspection_clients: object = (),
        proof_of_possession: object = None,
        enforce_policies: object = False,
    ) -> ResourceServer:
        """Register an API. HS256 APIs get their own random 256-bit signing secret.

        ``access_token_format="opaque"`` issues reference tokens that the API checks at the
        introspection endpoint as one of its ``introspection_clients``.
        """
        name = rules.display_name(name)
        identifier = rules.api_identifier(identifier)
        if signing_alg not in ("RS256", "HS256"):
            raise ValidationError("signing_alg must be RS256 or HS256")
        if token_dialect not in TOKEN_DIALECTS:
            raise ValidationError(f"token_dialect must be one of {', '.join(TOKEN_DIALECTS)}")
        if not isinstance(scopes, (list, tuple)):
            raise ValidationError("scopes must be a list")
        if signing_alg == "HS256":
            signing_secret = signing_secret or new_secret(32)
            if len(signing_secret.encode()) < 32:
                raise ValidationError("an HS256 signing secret must have at least 256 bits")
        else:
            signing_secret = None
        api = ResourceServer(
            id=api_id or new_id(),
            name=name,
            identifier=identifier,
            signing_alg=signing_alg,
            signing_secret=signing_secret,
            token_lifetime=rules.token_lifetime(token_lifetime),
            allow_offline_access=rules.boolean(allow_offline_access, "allow_offline_access"),
            skip_consent_for_verifiable_first_party_clients=rules.boolean(
                skip_consent_for_verifiable_first_party_clients,
                "skip_consent_for_verifiable_first_party_clients",
            ),
            token_dialect=token_dialect,
            scopes=rules.scopes(scopes),
            is_system=False,
            created_at=self._now(),
            access_token_format=self._token_format(access_token_format),
            introspection_clients=self._introspection_clients(introspection_clients),
            dpop_required=rules.proof_of_possession(proof_of_possession),
            enforce_policies=rules.boolean(enforce_policies, "enforce_policies"),
        )
        try:
            self._store.apis.insert(api)
        except Duplicate:
            raise Conflict("A resource server with the same identifier already exists") from None
        return self.get(api.id)

    def update(self, id_or_identifier: str, changes: Mapping[str, object]) -> ResourceServer:
        """Change an API's settings; ``identifier`` and ``signing_alg`` are immutable."""
        api = self.get(id_or_identifier)
        if api.is_system:
            raise ValidationError("The Management API cannot be modified")
        for immutable in _IMMUTABLE:
            if immutable in changes:
                raise ValidationError(f"{immutable} cannot be changed")
        checked: dict[str, object] = {}
        for key, value in changes.items():
            if key == "name":
                checked[key] = rules.display_name(value)
            elif key == "token_lifetime":
                checked[key] = rules.token_lifetime(value)
            elif key in (
                "allow_offline_access",
                "skip_consent_for_verifiable_first_party_clients",
                "enforce_policies",
            ):
                checked[key] = rules.boolean(value, key)
            elif key == "token_dialect":
                if value not in TOKEN_DIALECTS:
                    raise ValidationError("unknown token_dialect")
                checked[key] = value
            elif key == "scopes":
                if not isinstance(value, list):
                    raise ValidationError("scopes must be a list")
                checked[key] = rules.scopes(value)
            elif key == "access_token_format":
                checked[key] = self._token_format(value)
            elif key == "introspection_clients":
                checked[key] = self._introspection_clients(value)
            elif key == "proof_of_possession":
                checked["dpop_required"] = rules.proof_of_possession(value)
            else:
                raise ValidationError(f"unknown property {key!r}")
        self._store.apis.update(api.id, checked)
        return self.get(api.id)

    @staticmethod
    def _token_format(value: object) -> str:
        if value not in ACCESS_TOKEN_FORMATS:
            raise ValidationError("access_token_format must be jwt or opaque")
        return str(value)

    def _introspection_clients(self, value: object) -> tuple[str, ...]:
        """Client ids that may introspect an API's tokens: existing confidential clients."""
        if isinstance(value, str) or not isinstance(value, list | tuple):
            raise ValidationError("introspection_clients must be a list of client ids")
        ids: list[str] = []
        for client_id in value:
            client = self._store.clients.find(client_id) if isinstance(client_id, str) else None
            if client is None:
                raise ValidationError("introspection_clients must name existing clients")
            if not client.is_confidential:
                # Introspection needs client authentication (RFC 7662 §2.1).
                raise ValidationError("introspection clients must be confidential clients")
            if client_id not in ids:
                ids.append(client_id)
        if len(ids) > 20:
            raise ValidationError("at most 20 introspection clients")
        return tuple(ids)

    def add_scope(self, id_or_identifier: str, value: str, description: str = "") -> ResourceServer:
        """Add (or re-describe) one scope of an API."""
        api = self.get(id_or_identifier)
        scopes: list[object] = [
            {"value": s.value, "description": s.description} for s in api.scopes if s.value != value
        ]
        scopes.append({"value": value, "description": description})
        return self.update(api.id, {"scopes": scopes})

    def remove_scope(self, id_or_identifier: str, value: str) -> ResourceServer:
        """Remove one scope of an API (client grants keep only the remaining scopes)."""
        api = self.get(id_or_identifier)
        remaining: list[object] = [
            {"value": s.value, "description": s.description} for s in api.scopes if s.value != value
        ]
        with self._store.transaction():
            updated = self.update(api.id, {"scopes": remaining})
            for grant in self._store.client_grants.select(audience=api.identifier):
                if value in grant.scope:
                    kept = tuple(s for s in grant.scope if s != value)
                    self._store.client_grants.set_scope(grant.id, kept)
        return updated

    def delete(self, id_or_identifier: str) -> None:
        """Delete an API with its client grants, user grants and refresh tokens."""
        api = self.get(id_or_identifier)
        if api.is_system:
            raise ValidationError("The Management API cannot be deleted")
        with self._store.transaction():
            self._store.consents.delete_for_audience(api.identifier)
            self._store.tokens.revoke_refresh(self._now(), audience=api.identifier)
            self._store.apis.delete(api.id)
