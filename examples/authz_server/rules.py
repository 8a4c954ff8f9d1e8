"""Every input rule of the tenant, written once: errors and the validation rule table.

The dashboard, the Management API, the CLI and the developer portal all reach the data
through the services, and the services check every value with the functions below, so
the four entry points accept and refuse exactly the same things. :data:`RULES` names the
rules the entry points share (a test table drives all four with it).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from urllib.parse import urlsplit

from .models import Scope
from .settings import is_loopback_host

_SCOPE_TOKEN = re.compile(r"[\x21\x23-\x5b\x5d-\x7e]{1,200}")
_URI = re.compile(r"[A-Za-z][A-Za-z0-9+.\-]*:[\x21-\x7e]{1,590}")
_EMAIL = re.compile(r"[^@\s]{1,64}@[^@\s]{1,190}")
_FORBIDDEN_SCHEMES = {"javascript", "data", "file", "vbscript", "about", "blob", "filesystem"}
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


# ------------------------------------------------------------------------ the rules


def display_name(value: object, what: str = "name") -> str:
    """A display name (an API's, a client's, a user's): 1 to 200 printable characters."""
    if not isinstance(value, str) or not value.strip() or len(value) > 200:
        raise ValidationError(f"{what} must be a non-empty string of at most 200 characters")
    if any(ord(c) < 32 or ord(c) == 127 for c in value):
        raise ValidationError(f"{what} must not contain control characters")
    return value.strip()


def scope_name(value: object) -> str:
    """A scope token as RFC 6749 §3.3 defines it (no spaces, quotes or backslashes)."""
    if not isinstance(value, str) or not _SCOPE_TOKEN.fullmatch(value):
        raise ValidationError("a scope must be 1-200 printable characters without spaces")
    return value


def api_identifier(value: object) -> str:
    """An API identifier (the audience): a URI without spaces, at most 600 characters.

    Auth0 asks for a URI too (``https://api.example.com/``, ``urn:example:api``); it cannot
    be changed later, since every token carries it.
    """
    if not isinstance(value, str) or not _URI.fullmatch(value):
        raise ValidationError(
            "The identifier must be a URI without spaces, such as https://api.example.com/ "
            "(it becomes the audience of the tokens and cannot be changed later)."
        )
    return value


def callback_url(uri: object) -> str:
    """A callback URL for registration (RFC 6749 §3.1.2, RFC 8252, RFC 9700 §2.6).

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


def email_address(value: object) -> str:
    """An email address (loosely: one ``@``, no spaces)."""
    if not isinstance(value, str) or not _EMAIL.fullmatch(value):
        raise ValidationError("email must be an email address")
    return value


def password(value: object) -> str:
    """A password a person chose: 8 to 1024 characters."""
    if not isinstance(value, str) or not MIN_PASSWORD_LENGTH <= len(value) <= 1024:
        raise ValidationError(
            f"password must be a string of at least {MIN_PASSWORD_LENGTH} characters"
        )
    return value


def client_name(value: object) -> str:
    """An application's name."""
    return display_name(value, "name")


RULES: dict[str, Callable[[object], str]] = {
    "api_identifier": api_identifier,
    "scope_name": scope_name,
    "callback_url": callback_url,
    "client_name": client_name,
}


# ----------------------------------------------------------- composite values


def string_list(value: object, what: str) -> list[str]:
    """A list of strings, duplicates dropped (order kept)."""
    if not isinstance(value, (list, tuple)) or not all(isinstance(v, str) for v in value):
        raise ValidationError(f"{what} must be a list of strings")
    return list(dict.fromkeys(value))


def boolean(value: object, what: str) -> bool:
    """A JSON boolean (not 0/1, not "true")."""
    if not isinstance(value, bool):
        raise ValidationError(f"{what} must be a boolean")
    return value


def token_lifetime(value: object) -> int:
    """An access-token lifetime in seconds: one minute to 30 days."""
    if isinstance(value, bool) or not isinstance(value, int) or not 60 <= value <= 2_592_000:
        raise ValidationError("token_lifetime must be an integer from 60 to 2592000 seconds")
    return value


def scopes(raw: Iterable[object]) -> tuple[Scope, ...]:
    """Validate a list of ``{"value", "description"}`` objects (or bare scope strings)."""
    out: dict[str, Scope] = {}
    for item in raw:
        if isinstance(item, str):
            item = {"value": item, "description": ""}
        if not isinstance(item, Mapping):
            raise ValidationError("scopes must be objects with a value and a description")
        value = scope_name(item.get("value"))
        description = item.get("description", "")
        if not isinstance(description, str) or len(description) > 500:
            raise ValidationError("a scope description must be a string (at most 500 characters)")
        out[value] = Scope(value, description)
    return tuple(out.values())


def scope_list(raw: str | None) -> list[str]:
    """Split a space-delimited scope string, keeping order and dropping duplicates."""
    return list(dict.fromkeys((raw or "").split()))


def proof_of_possession(value: object) -> bool:
    """Auth0's ``proof_of_possession``: None, or ``{"mechanism": "dpop", "required": bool}``.

    Returns whether the API requires DPoP-bound tokens.
    """
    if value is None:
        return False
    if (
        not isinstance(value, dict)
        or set(value) - {"mechanism", "required"}
        or value.get("mechanism") != "dpop"
        or not isinstance(value.get("required", False), bool)
    ):
        raise ValidationError(
            'proof_of_possession must be null or {"mechanism": "dpop", "required": true|false}'
        )
    return bool(value.get("required", False))


def dpop_jkt(value: str | None) -> str | None:
    """``dpop_jkt`` (RFC 9449 §10): a SHA-256 thumbprint, 43 base64url characters."""
    if value is None:
        return None
    if len(value) != 43 or not all(c.isascii() and (c.isalnum() or c in "-_") for c in value):
        raise ValidationError("Malformed dpop_jkt")
    return value
