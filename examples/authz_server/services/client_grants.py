"""Client grants (machine-to-machine access) and the rule that no scope grants sideways."""

from __future__ import annotations

from collections.abc import Sequence

from .. import rules
from ..models import ClientGrant, ResourceServer
from ..rules import Conflict, Forbidden, NotFound, ValidationError
from ..security import new_id
from ..settings import Settings
from ..store import Store
from ..store.connection import Duplicate


class ClientGrantService:
    """Authorize confidential clients for APIs, with a subset of each API's scopes."""

    def __init__(self, store: Store, settings: Settings) -> None:
        self._store = store
        self._settings = settings

    def all(
        self, *, client_id: str | None = None, audience: str | None = None
    ) -> list[ClientGrant]:
        """Client grants, optionally filtered by client and audience."""
        return self._store.client_grants.select(client_id=client_id, audience=audience)

    def find(self, client_id: str, audience: str) -> ClientGrant | None:
        """The grant of *client_id* for *audience*, or ``None``."""
        grants = self.all(client_id=client_id, audience=audience)
        return grants[0] if grants else None

    def get(self, grant_id: str) -> ClientGrant:
        """The client grant with this id; raises ``NotFound``."""
        grant = self._store.client_grants.find(grant_id)
        if grant is None:
            raise NotFound("The client grant does not exist")
        return grant

    @staticmethod
    def _checked_scopes(api: ResourceServer, scopes: object) -> tuple[str, ...]:
        values = rules.string_list(scopes, "scope")
        unknown = [s for s in values if s not in api.scope_values]
        if unknown:
            raise ValidationError(f"scope(s) not defined by the API: {' '.join(unknown)}")
        return tuple(values)

    def _api(self, audience: str) -> ResourceServer:
        api = self._store.apis.find(audience)
        if api is None:
            raise NotFound("The resource server does not exist")
        return api

    def create(self, client_id: str, audience: str, scopes: Sequence[str]) -> ClientGrant:
        """Authorize a client to get client-credentials tokens for an API with these scopes."""
        client = self._store.clients.find(client_id)
        if client is None:
            raise NotFound("The client does not exist")
        api = self._api(audience)
        if not client.is_confidential:
            raise ValidationError("public clients cannot be given client grants")
        grant = ClientGrant(
            new_id("cgr_", 8),
            client.client_id,
            api.identifier,
            self._checked_scopes(api, list(scopes)),
        )
        try:
            self._store.client_grants.insert(grant)
        except Duplicate:
            raise Conflict("A client grant for this client and audience already exists") from None
        return self.get(grant.id)

    def update(self, grant_id: str, scopes: Sequence[str]) -> ClientGrant:
        """Replace the scopes of a client grant."""
        grant = self.get(grant_id)
        values = self._checked_scopes(self._api(grant.audience), list(scopes))
        self._store.client_grants.set_scope(grant.id, values)
        return self.get(grant.id)

    def delete(self, grant_id: str) -> None:
        """Remove a client grant."""
        self._store.client_grants.delete(self.get(grant_id).id)

    # ------------------------------------------------- no grant sideways

    def management_scopes_of(self, client_id: str) -> frozenset[str]:
        """The Management API scopes a client has been granted."""
        grant = self.find(client_id, self._settings.management_audience)
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
        api = self._store.apis.find(audience) if isinstance(audience, str) else None
        if api is None or not api.is_system or not isinstance(scopes, list):
            return
        if {s for s in scopes if isinstance(s, str)} - held:
            raise Forbidden("A Management API grant cannot include scopes that you do not hold")
