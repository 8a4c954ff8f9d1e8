"""Remembered consent (Auth0 "user grants") and token revocation."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from ..models import ReferenceToken, UserGrant
from ..rules import NotFound
from ..security import new_id
from ..settings import Settings
from ..store import Store


class ConsentService:
    """What each user let each client do on each API."""

    def __init__(self, store: Store, settings: Settings) -> None:
        self._store = store
        self._settings = settings

    def _now(self) -> int:
        return int(self._settings.clock())

    def all(
        self,
        *,
        user_id: str | None = None,
        client_id: str | None = None,
        audience: str | None = None,
    ) -> list[UserGrant]:
        """Remembered consents, optionally filtered."""
        return self._store.consents.select(user_id=user_id, client_id=client_id, audience=audience)

    def consented_scopes(self, user_id: str, client_id: str, audience: str) -> frozenset[str]:
        """The scopes the user has already let this client use for this audience."""
        grants = self.all(user_id=user_id, client_id=client_id, audience=audience)
        return frozenset(grants[0].scope) if grants else frozenset()

    def remember(
        self, user_id: str, client_id: str, audience: str, scopes: Iterable[str]
    ) -> UserGrant:
        """Record (or widen) the user's consent for this client and audience."""
        with self._store.transaction():
            merged = sorted(self.consented_scopes(user_id, client_id, audience) | set(scopes))
            grant = UserGrant(new_id("ugr_", 8), user_id, client_id, audience, tuple(merged))
            self._store.consents.upsert(grant, self._now())
            return self.all(user_id=user_id, client_id=client_id, audience=audience)[0]

    def revoke(self, grant_id: str) -> None:
        """Withdraw a remembered consent; refresh tokens issued under it stop working."""
        grant = self._store.consents.find(grant_id)
        if grant is None:
            raise NotFound("The grant does not exist")
        with self._store.transaction():
            self._store.consents.delete(grant.id)
            self._store.tokens.revoke_refresh(
                self._now(),
                user_id=grant.user_id,
                client_id=grant.client_id,
                audience=grant.audience,
            )


class Revocations:
    """Revoked refresh-token families and access tokens, and the live opaque ones."""

    def __init__(self, store: Store, settings: Settings) -> None:
        self._store = store
        self._settings = settings

    def _now(self) -> int:
        return int(self._settings.clock())

    def refresh_tokens(
        self,
        *,
        user_id: str | None = None,
        client_id: str | None = None,
        audience: str | None = None,
        family_id: str | None = None,
    ) -> int:
        """Revoke every refresh token matching all the given filters; return how many."""
        return self._store.tokens.revoke_refresh(
            self._now(),
            user_id=user_id,
            client_id=client_id,
            audience=audience,
            family_id=family_id,
        )

    def access_token(self, jti: str, expires_at: int) -> None:
        """Remember that the access token *jti* was revoked, until it would have expired."""
        self._store.tokens.revoke_jti(jti, expires_at, self._now())

    def is_revoked(self, jti: str) -> bool:
        """Whether the access token *jti* was revoked at ``/oauth/revoke``."""
        return self._store.tokens.is_revoked(jti)

    # -------------------------------------------- opaque access (reference) tokens

    def store_reference(self, token_hash: str, claims: Mapping[str, Any]) -> None:
        """Remember an opaque access token's claims under its hash (never the token)."""
        self._store.tokens.add_reference(
            ReferenceToken(token_hash, str(claims["azp"]), dict(claims), int(claims["exp"])),
            self._now(),
        )

    def reference(self, token_hash: str) -> ReferenceToken | None:
        """The live opaque access token with this hash, or ``None``."""
        return self._store.tokens.find_reference(token_hash, self._now())

    def revoke_reference(self, token_hash: str) -> None:
        """Forget an opaque access token: from now on it is inactive."""
        self._store.tokens.drop_reference(token_hash)
