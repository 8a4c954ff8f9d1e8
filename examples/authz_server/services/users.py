"""Users: accounts, sign-in, administrator status, blocking and email verification."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping

from .. import rules
from ..models import User
from ..rules import Conflict, Forbidden, NotFound, ValidationError
from ..security import (
    b64url,
    b64url_decode,
    dummy_password_hash,
    hash_password,
    new_id,
    sign_value,
    unsign_value,
    verify_secret,
)
from ..settings import Settings
from ..store import Store
from ..store.connection import Duplicate

VERIFICATION_TTL = 86400


class UserService:
    """Create, authenticate, change and delete users."""

    def __init__(self, store: Store, settings: Settings, secret: Callable[[], str]) -> None:
        self._store = store
        self._settings = settings
        self._secret = secret

    def _now(self) -> int:
        return int(self._settings.clock())

    def all(self) -> list[User]:
        """Every user, oldest first."""
        return self._store.users.all()

    def find(self, user_id: str) -> User | None:
        """The user with this id, or ``None``."""
        return self._store.users.find(user_id)

    def get(self, user_id: str) -> User:
        """The user with this id; raises ``NotFound``."""
        user = self.find(user_id)
        if user is None:
            raise NotFound("The user does not exist")
        return user

    def find_by_email(self, email: str) -> User | None:
        """The user with this email (case-insensitive), or ``None``."""
        return self._store.users.find_by_email(email)

    def create(
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
        email = rules.email_address(email)
        if password_hash is None:
            password_hash = hash_password(rules.password(password))
        now = self._now()
        user = User(
            user_id=user_id or f"auth0|{new_id(nbytes=12)}",
            email=email,
            name=rules.display_name(name or email, "name"),
            password_hash=password_hash,
            is_admin=rules.boolean(is_admin, "is_admin"),
            created_at=now,
            updated_at=now,
            email_verified=rules.boolean(email_verified, "email_verified"),
        )
        try:
            self._store.users.insert(user)
        except Duplicate:
            raise Conflict("The user already exists") from None
        return self.get(user.user_id)

    def authenticate(self, email: str, password: str) -> User | None:
        """The user if the email and password match and the user is not blocked.

        An unknown email is checked against a dummy scrypt hash, so it costs the same
        scrypt work as a known one and the timing does not tell which accounts exist.
        """
        user = self.find_by_email(email)
        ok = verify_secret(password, user.password_hash if user else dummy_password_hash())
        if user is None or not ok or user.blocked:
            return None
        return user

    def update(self, user_id: str, changes: Mapping[str, object]) -> User:
        """Change a user's name, email, password, ``email_verified`` or ``blocked`` flag.

        A new password or a block ends the user's sessions and revokes their refresh
        tokens. A new email is unverified unless ``email_verified`` comes with it.
        Administrator status cannot be changed here, and administrators cannot be
        changed at all (their password would open the dashboard, which grants every
        scope): both are for the command line (:meth:`set_admin`). Raises ``Forbidden``.
        """
        user = self.get(user_id)
        if "is_admin" in changes or "app_metadata" in changes:
            raise Forbidden("Administrator status can only be changed from the command line")
        if user.is_admin:
            raise Forbidden("Administrator accounts can only be changed from the command line")
        columns: dict[str, object] = {}
        signs_out = False
        for key, value in changes.items():
            if key == "name":
                columns["name"] = rules.display_name(value)
            elif key == "email":
                email = rules.email_address(value)
                columns["email"] = email
                columns["email_verified"] = (
                    email.lower() == user.email.lower() and user.email_verified
                )
            elif key == "email_verified":
                continue  # applied after the email, which resets it
            elif key == "blocked":
                columns["blocked"] = rules.boolean(value, "blocked")
                signs_out = signs_out or bool(columns["blocked"])
            elif key == "password":
                columns["password_hash"] = hash_password(rules.password(value))
                signs_out = True
            else:
                raise ValidationError(f"property {key!r} cannot be changed")
        if "email_verified" in changes:
            columns["email_verified"] = rules.boolean(changes["email_verified"], "email_verified")
        columns["updated_at"] = self._now()
        with self._store.transaction():
            try:
                self._store.users.set(user.user_id, **columns)
            except Duplicate:
                raise Conflict("The email is already in use") from None
            if signs_out:
                self._sign_out_everywhere(user.user_id)
        return self.get(user.user_id)

    def _sign_out_everywhere(self, user_id: str) -> None:
        self._store.tokens.revoke_refresh(self._now(), user_id=user_id)
        self._store.sessions.end_all_of(user_id)

    def set_admin(self, user_id: str, is_admin: bool) -> User:
        """Make a user an administrator of the dashboard, or no longer one (CLI only)."""
        user = self.get(user_id)
        self._store.users.set(
            user.user_id, is_admin=rules.boolean(is_admin, "is_admin"), updated_at=self._now()
        )
        return self.get(user.user_id)

    def delete(self, user_id: str) -> None:
        """Delete a user with their consent records, sessions and refresh tokens."""
        user = self.get(user_id)
        with self._store.transaction():
            self._store.tokens.revoke_refresh(self._now(), user_id=user.user_id)
            self._store.users.delete(user.user_id)

    # ------------------------------------------------------ email verification

    def email_verification_token(self, user: User) -> str:
        """A token proving receipt of mail at the user's current address (valid one day)."""
        expires = self._now() + VERIFICATION_TTL
        payload = b64url(json.dumps([user.user_id, user.email.lower(), expires]).encode())
        return sign_value(self._secret(), "verify-email", payload)

    def verify_email(self, token: str) -> User | None:
        """Mark the address verified when *token* is valid for the user's current address."""
        payload = unsign_value(self._secret(), "verify-email", token)
        if payload is None:
            return None
        try:
            user_id, email, expires = json.loads(b64url_decode(payload))
        except (ValueError, TypeError):
            return None
        user = self.find(str(user_id))
        if user is None or user.email.lower() != email or int(expires) <= self._now():
            return None
        self._store.users.set(user.user_id, email_verified=True, updated_at=self._now())
        return self.get(user.user_id)
