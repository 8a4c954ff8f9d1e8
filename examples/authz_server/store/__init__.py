"""The store package: the whole schema and every SQL statement of the server.

``Store(path)`` opens (and migrates) one SQLite database and carries one repository per
table family, each returning models:

=================  ==========================================================
``store.meta``     the small key-value table (seeded flag, the store's own key)
``store.apis``     resource servers and their scopes
``store.clients``  clients, and which developer registered a portal client
``store.client_grants``  machine-to-machine grants (client x API x scopes)
``store.users``    users
``store.consents`` remembered user consent (Auth0 "user grants")
``store.tokens``   authorization codes, refresh tokens, revoked access-token ids
``store.sessions`` browser sessions and parked authorization requests
``store.keys``     signing keys
``store.roles``    roles, their permissions and members, users' own permissions (RBAC)
=================  ==========================================================
"""

from __future__ import annotations

from .apis import ApiRepository
from .clients import ClientGrantRepository, ClientRepository
from .connection import Connection
from .roles import RoleRepository
from .schema import SCHEMA_VERSION
from .sessions import SessionRepository
from .tokens import TokenRepository
from .users import ConsentRepository, KeyRepository, MetaRepository, UserRepository


class Store(Connection):
    """One SQLite database (a file path, or ``:memory:``) with its repositories."""

    def __init__(self, path: str = ":memory:") -> None:
        super().__init__(path)
        self.meta = MetaRepository(self)
        self.apis = ApiRepository(self)
        self.clients = ClientRepository(self)
        self.client_grants = ClientGrantRepository(self)
        self.users = UserRepository(self)
        self.consents = ConsentRepository(self)
        self.tokens = TokenRepository(self)
        self.sessions = SessionRepository(self)
        self.keys = KeyRepository(self)
        self.roles = RoleRepository(self)


__all__ = ["SCHEMA_VERSION", "Store"]
