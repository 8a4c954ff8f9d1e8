"""The tenant's services, one per aggregate, bundled as a :class:`Domain`.

=====================  =====================================================
``domain.apis``        APIs (resource servers) and scopes
``domain.clients``     clients, RFC 7591 / portal registration, authentication
``domain.client_grants``  machine-to-machine grants; no grant sideways
``domain.users``       users, sign-in, administrators, blocking, verification
``domain.consents``    remembered consent
``domain.revocations`` revoked refresh tokens and access tokens
``domain.keys``        signing keys (``keys.KeyRing``)
``domain.rbac``        roles and permissions (Auth0-style RBAC)
=====================  =====================================================

Every rule about the data lives in these services (input rules in ``rules.py``); the
HTTP routes, the dashboard, the portal and the CLI only translate to and from them.
"""

from __future__ import annotations

from typing import Any

from ..keys import KeyRing
from ..security import new_secret
from ..settings import Settings
from ..store import Store
from . import seed
from .apis import MANAGEMENT_SCOPES, ApiService
from .client_grants import ClientGrantService
from .clients import ClientService, Registration
from .consents import ConsentService, Revocations
from .rbac import RbacService
from .users import UserService


class Domain:
    """The services of one tenant on one store."""

    def __init__(self, store: Store, settings: Settings) -> None:
        self.store = store
        self.settings = settings
        self.keys = KeyRing(store, settings)
        self.apis = ApiService(store, settings)
        self.clients = ClientService(store, settings)
        self.client_grants = ClientGrantService(store, settings)
        self.users = UserService(store, settings, self.server_secret)
        self.consents = ConsentService(store, settings)
        self.revocations = Revocations(store, settings)
        self.rbac = RbacService(store, settings, self.apis, self.users)
        self._secret: str | None = None

    def now(self) -> int:
        """The current time in whole seconds (from the settings' clock)."""
        return int(self.settings.clock())

    def initialise(self) -> None:
        """First start: signing keys, the Management API, and the seed when the store is new."""
        seed.initialise(self)

    def export(self, *, include_keys: bool = False) -> dict[str, Any]:
        """The tenant as a seed document (see ``services.seed``)."""
        return seed.export(self, include_keys=include_keys)

    def load(self, document: Any) -> dict[str, int]:
        """Load a seed or export document; objects that already exist are left alone."""
        return seed.load(self, document)

    def server_secret(self) -> str:
        """This store's own random key for MACs (email links, anonymous CSRF tokens)."""
        if self._secret is None:
            with self.store.transaction():
                secret = self.store.meta.get("server_secret")
                if secret is None:
                    secret = new_secret(32)
                    self.store.meta.set("server_secret", secret)
            self._secret = secret
        return self._secret


__all__ = ["MANAGEMENT_SCOPES", "Domain", "Registration"]
