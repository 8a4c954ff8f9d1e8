"""Runtime settings of the local authorization server, read from the environment."""

from __future__ import annotations

import ipaddress
import os
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from cryptography.hazmat.primitives.asymmetric import rsa

DEFAULT_SEED = Path(__file__).with_name("seed.json")
DEFAULT_PORT = 9000
DEFAULT_DB = "authz_server.sqlite3"


def generate_rsa_key() -> rsa.RSAPrivateKey:
    """Generate a fresh 2048-bit RSA signing key."""
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def is_loopback_host(host: str | None) -> bool:
    """Tell whether *host* (as found in a URL) names the local machine."""
    if not host:
        return False
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


@dataclass(frozen=True, kw_only=True)
class RateLimit:
    """At most *limit* events per *window* seconds for one key."""

    limit: int
    window: float = 60.0


@dataclass(frozen=True, kw_only=True)
class Settings:
    """Everything the server needs to know at start-up.

    ``issuer`` must end with ``/`` and use https unless its host is a loopback address.
    Durations are in seconds. Requests are served only for the issuer's host and the
    loopback names; ``allowed_hosts`` adds others (a public URL in front of the server),
    and ``"*"`` turns the check off.

    Warning:
        ``allowed_hosts=("*",)`` re-opens the server to DNS rebinding: any web page the
        user visits can then read its pages. Name the hosts instead.
    """

    issuer: str = f"http://127.0.0.1:{DEFAULT_PORT}/"
    db_path: str = DEFAULT_DB
    seed_path: Path | None = DEFAULT_SEED
    host: str = "127.0.0.1"
    port: int = DEFAULT_PORT

    code_ttl: int = 60
    interaction_ttl: int = 600
    session_ttl: int = 8 * 3600
    id_token_ttl: int = 36000
    implicit_token_ttl: int = 7200
    refresh_token_absolute_ttl: int = 30 * 24 * 3600
    refresh_token_idle_ttl: int = 15 * 24 * 3600

    login_rate: RateLimit = RateLimit(limit=10)
    token_failure_rate: RateLimit = RateLimit(limit=20)
    registration_rate: RateLimit = RateLimit(limit=10)
    rate_limiter_max_keys: int = 10_000
    max_interactions: int = 10_000
    allowed_hosts: tuple[str, ...] = ()

    max_body_bytes: int = 64 * 1024
    #: The namespaced custom claim that lists a user's role names (Auth0's convention for
    #: custom claims: a URL the tenant owns).
    roles_claim: str = "https://organizer.example/roles"
    #: How long a one-time code for a second factor stays valid, in seconds.
    one_time_code_ttl: int = 300
    #: With a secret (32 bytes or more), token requests with a DPoP proof must carry a
    #: server nonce (RFC 9449 §8); ``AUTHZ_DPOP_NONCE_SECRET``.
    dpop_nonce_secret: str | None = None
    clock: Callable[[], float] = field(default=time.time, compare=False)
    key_factory: Callable[[], rsa.RSAPrivateKey] = field(default=generate_rsa_key, compare=False)

    def __post_init__(self) -> None:
        parts = urlsplit(self.issuer)
        if not self.issuer.endswith("/"):
            raise ValueError("the issuer must end with '/'")
        if parts.query or parts.fragment or parts.username or parts.password:
            raise ValueError("the issuer must not carry a query, fragment or credentials")
        if parts.scheme == "http" and not is_loopback_host(parts.hostname):
            raise ValueError("a plain-http issuer is only allowed on a loopback host")
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError("the issuer must be an absolute http(s) URL")

    @property
    def secure_cookies(self) -> bool:
        """Whether cookies get the ``Secure`` attribute (https issuers)."""
        return self.issuer.startswith("https://")

    @property
    def management_audience(self) -> str:
        """The audience of the Management API, ``{issuer}api/v2/`` as at Auth0."""
        return f"{self.issuer}api/v2/"

    def url(self, path: str) -> str:
        """An absolute URL on this server for *path* (without its leading slash)."""
        return self.issuer + path.lstrip("/")

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        """Build settings from ``PORT``, ``AUTHZ_DB``, ``AUTHZ_ISSUER``, ``AUTHZ_SEED``,
        ``AUTHZ_ALLOWED_HOSTS`` (host names separated by spaces or commas) and
        ``AUTHZ_DPOP_NONCE_SECRET``."""
        env = os.environ if environ is None else environ
        try:
            port = int(env.get("PORT", str(DEFAULT_PORT)))
        except ValueError:
            raise ValueError("PORT must be an integer") from None
        issuer = env.get("AUTHZ_ISSUER") or f"http://127.0.0.1:{port}/"
        seed = env.get("AUTHZ_SEED")
        return cls(
            issuer=issuer,
            port=port,
            db_path=env.get("AUTHZ_DB") or DEFAULT_DB,
            seed_path=Path(seed) if seed else DEFAULT_SEED,
            allowed_hosts=tuple(env.get("AUTHZ_ALLOWED_HOSTS", "").replace(",", " ").split()),
            dpop_nonce_secret=env.get("AUTHZ_DPOP_NONCE_SECRET") or None,
        )
