"""Test your API with real tokens and no network: a local issuer served in-process.

:class:`LocalIssuer` generates signing keys, serves its discovery document and JWKS through
an ``httpx`` transport (or respx routes), mints tokens with any claim overridden or removed,
and rotates keys. The pytest plugin that ships with apiguard provides it as the
``local_issuer`` fixture.

>>> issuer = LocalIssuer(audience="https://api.example")
>>> validator = issuer.validator()
>>> token = issuer.token(scope="read:appointments")
>>> validator.validate(token).scopes
frozenset({'read:appointments'})
"""

from __future__ import annotations

import base64
import contextlib
import functools
import http.server
import json
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import httpx
import jwt
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

from .validator import AsyncValidator, Validator

__all__ = ["REMOVE", "LocalIssuer", "SigningKey", "serve_issuer"]

#: Pass as a claim or header value to leave that member out of the token.
REMOVE: Any = object()

_KEY_TYPES = {
    "RS256": "RSA",
    "RS384": "RSA",
    "RS512": "RSA",
    "PS256": "RSA",
    "PS384": "RSA",
    "PS512": "RSA",
    "ES256": "P-256",
    "ES384": "P-384",
    "ES512": "P-521",
    "EdDSA": "Ed25519",
}
_CURVES: dict[str, ec.EllipticCurve] = {
    "P-256": ec.SECP256R1(),
    "P-384": ec.SECP384R1(),
    "P-521": ec.SECP521R1(),
}


@functools.cache
def _private_key(kind: str, index: int) -> Any:
    # Key generation (RSA above all) is slow; tests reuse a small pool. ``index`` makes
    # rotation produce a genuinely different key.
    del index
    if kind == "RSA":
        return rsa.generate_private_key(public_exponent=65537, key_size=2048)
    if kind == "Ed25519":
        return ed25519.Ed25519PrivateKey.generate()
    return ec.generate_private_key(_CURVES[kind])


@dataclass(frozen=True)
class SigningKey:
    """One key of a :class:`LocalIssuer`: its ``kid``, algorithm and private key."""

    kid: str
    algorithm: str
    private_key: Any

    @property
    def public_jwk(self) -> dict[str, Any]:
        """The public JWK, with ``kid``, ``alg`` and ``use``."""
        algorithm = jwt.get_algorithm_by_name(self.algorithm)
        jwk: dict[str, Any] = json.loads(algorithm.to_jwk(self.private_key.public_key()))
        jwk.update(kid=self.kid, alg=self.algorithm, use="sig")
        return jwk


class LocalIssuer:
    """An OAuth issuer for tests: keys, discovery, JWKS and tokens, all in-process.

    Args:
        issuer: the issuer URL (``iss``), ending in ``/`` as Auth0's do.
        audience: the default ``aud`` of minted tokens.
        algorithm: RS256, PS256, ES256, EdDSA, ... for the first key.
        clock: seconds since the epoch for ``iat``/``exp`` (default ``time.time``); give
            the validator the same clock.

    Attributes:
        requests: how often each path was fetched (``Counter`` of paths).
        jwks_override: set to a dict or bytes (or an ``httpx.Response``) to serve that at
            the JWKS URL instead of the real key set, e.g. to simulate an outage.
    """

    def __init__(
        self,
        issuer: str = "https://issuer.test/",
        *,
        audience: str = "https://api.test",
        algorithm: str = "RS256",
        clock: Callable[[], float] | None = None,
    ) -> None:
        self.issuer = issuer
        self.audience = audience
        self.clock = clock or time.time
        self.keys: list[SigningKey] = []
        self.requests: Counter[str] = Counter()
        self.jwks_override: Any = None
        self._generated = 0
        self.add_key(algorithm)

    # -- keys ------------------------------------------------------------------------------

    def add_key(self, algorithm: str = "RS256", *, kid: str | None = None) -> SigningKey:
        """Add a key to the JWKS (it signs only when passed as ``key=`` or made current)."""
        if algorithm not in _KEY_TYPES:
            raise ValueError(f"unsupported algorithm {algorithm!r}")
        self._generated += 1
        private = _private_key(_KEY_TYPES[algorithm], self._generated)
        key = SigningKey(kid or f"key-{self._generated}", algorithm, private)
        self.keys.append(key)
        return key

    @property
    def current_key(self) -> SigningKey:
        """The key that signs tokens by default (the first one)."""
        return self.keys[0]

    def rotate(self, algorithm: str | None = None, *, keep_previous: bool = True) -> SigningKey:
        """Make a new key current; keep the previous one published unless told not to."""
        new = self.add_key(algorithm or self.current_key.algorithm)
        self.keys.remove(new)
        if not keep_previous:
            self.keys.pop(0)
        self.keys.insert(0, new)
        return new

    @property
    def jwks(self) -> dict[str, Any]:
        """The public JWK Set."""
        return {"keys": [key.public_jwk for key in self.keys]}

    @property
    def jwks_uri(self) -> str:
        """Where the JWKS is served."""
        return f"{self.issuer.rstrip('/')}/.well-known/jwks.json"

    @property
    def discovery(self) -> dict[str, Any]:
        """The OpenID Connect discovery document."""
        return {
            "issuer": self.issuer,
            "jwks_uri": self.jwks_uri,
            "token_endpoint": f"{self.issuer.rstrip('/')}/oauth/token",
            "id_token_signing_alg_values_supported": sorted({k.algorithm for k in self.keys}),
        }

    # -- tokens ----------------------------------------------------------------------------

    def claims(self, *, expires_in: float = 300, **claims: Any) -> dict[str, Any]:
        """The claims :meth:`token` would sign (``REMOVE`` drops one)."""
        now = int(self.clock())
        base: dict[str, Any] = {
            "iss": self.issuer,
            "sub": "auth0|user-1",
            "aud": self.audience,
            "iat": now,
            "exp": now + expires_in,
            "jti": uuid.uuid4().hex,
            "azp": "test-client",
        }
        base.update(claims)
        return {name: value for name, value in base.items() if value is not REMOVE}

    def token(
        self,
        *,
        key: SigningKey | None = None,
        header: Mapping[str, Any] | None = None,
        expires_in: float = 300,
        **claims: Any,
    ) -> str:
        """Mint a signed access token.

        Args:
            key: the key to sign with (default the current key).
            header: extra or replaced header members (``REMOVE`` drops one, e.g. ``kid``).
            expires_in: seconds until ``exp``.
            **claims: claims to add or replace (``REMOVE`` drops one), e.g.
                ``scope="read:a"``, ``aud="other"``, ``exp=REMOVE``.
        """
        key = key or self.current_key
        members: dict[str, Any] = {"alg": key.algorithm, "typ": "JWT", "kid": key.kid}
        members.update(header or {})
        members = {name: value for name, value in members.items() if value is not REMOVE}
        body = self.claims(expires_in=expires_in, **claims)
        return self.sign_raw(json.dumps(members).encode(), json.dumps(body).encode(), key=key)

    def sign_raw(self, header: bytes, payload: bytes, *, key: SigningKey | None = None) -> str:
        """Sign exact header and payload bytes (no defaults added), for malformed tokens."""
        key = key or self.current_key
        signing_input = _b64(header) + b"." + _b64(payload)
        signature = jwt.get_algorithm_by_name(key.algorithm).sign(signing_input, key.private_key)
        return (signing_input + b"." + _b64(signature)).decode("ascii")

    # -- serving -------------------------------------------------------------------------

    def handle(self, request: httpx.Request) -> httpx.Response:
        """Answer a request for the discovery document or the JWKS (404 otherwise)."""
        path = request.url.path
        self.requests[path] += 1
        base = httpx.URL(self.issuer)
        if request.url.host != base.host or request.url.port != base.port:
            return httpx.Response(404)
        if path.endswith("/.well-known/openid-configuration"):
            return httpx.Response(200, json=self.discovery)
        if path == httpx.URL(self.jwks_uri).path:
            override = self.jwks_override
            if isinstance(override, httpx.Response):
                return override
            if isinstance(override, bytes):
                return httpx.Response(200, content=override)
            return httpx.Response(200, json=override if override is not None else self.jwks)
        return httpx.Response(404)

    def transport(self) -> httpx.MockTransport:
        """An httpx transport (sync and async) serving this issuer."""
        return httpx.MockTransport(self.handle)

    def mock(self, router: Any) -> None:
        """Route this issuer's URLs in a respx router (``respx_mock`` fixture or ``respx.mock``)."""
        router.route(host=httpx.URL(self.issuer).host).mock(side_effect=self.handle)

    def validator(self, **options: Any) -> Validator:
        """A :class:`Validator` for this issuer that fetches through :meth:`transport`."""
        options.setdefault("issuer", self.issuer)
        options.setdefault("audience", self.audience)
        options.setdefault("clock", self.clock)
        client = httpx.Client(transport=self.transport())
        validator = Validator(http_client=client, **options)
        # The kit made this client for the validator alone: closing the validator closes it.
        validator._owns_client = True
        return validator

    def async_validator(self, **options: Any) -> AsyncValidator:
        """An :class:`AsyncValidator` for this issuer that fetches through :meth:`transport`."""
        options.setdefault("issuer", self.issuer)
        options.setdefault("audience", self.audience)
        options.setdefault("clock", self.clock)
        client = httpx.AsyncClient(transport=self.transport())
        validator = AsyncValidator(http_client=client, **options)
        validator._owns_client = True
        return validator


@contextlib.contextmanager
def serve_issuer(**options: Any) -> Iterator[LocalIssuer]:
    """Serve a :class:`LocalIssuer` over a real socket on 127.0.0.1, for out-of-process tests.

    The issuer URL is ``http://127.0.0.1:<free port>/`` (plain http is accepted by the
    validator for loopback hosts only); discovery and the JWKS are answered from a thread
    until the ``with`` block ends. ``options`` go to :class:`LocalIssuer` (not ``issuer``).

    >>> with serve_issuer(audience="https://api.example") as issuer:  # doctest: +SKIP
    ...     start_my_api(APIGUARD_ISSUER=issuer.issuer)
    """
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _IssuerRequestHandler)
    port = server.server_address[1]
    issuer = LocalIssuer(f"http://127.0.0.1:{port}/", **options)
    server.issuer = issuer  # type: ignore[attr-defined]
    thread = threading.Thread(target=server.serve_forever, name="local-issuer", daemon=True)
    thread.start()
    try:
        yield issuer
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


class _IssuerRequestHandler(http.server.BaseHTTPRequestHandler):
    """Answers GETs through :meth:`LocalIssuer.handle`, the same code as the transport."""

    def do_GET(self) -> None:
        issuer: LocalIssuer = self.server.issuer  # type: ignore[attr-defined]
        request = httpx.Request("GET", issuer.issuer.rstrip("/") + self.path)
        response = issuer.handle(request)
        body = response.read()
        self.send_response(response.status_code)
        # Headers an override sets (Cache-Control, ETag...) reach the client as given.
        for name, value in response.headers.items():
            if name not in ("content-type", "content-length", "transfer-encoding"):
                self.send_header(name, value)
        self.send_header("Content-Type", response.headers.get("content-type", "application/json"))
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        pass  # tests read the issuer's request counter instead of a log


def _b64(data: bytes) -> bytes:
    return base64.urlsafe_b64encode(data).rstrip(b"=")
