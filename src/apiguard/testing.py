"""Test your API with real tokens and no network: a local issuer served in-process.

:class:`LocalIssuer` generates signing keys, serves its discovery document and JWKS through
an ``httpx`` transport (or respx routes), mints tokens with any claim overridden or removed,
and rotates keys. It also mints opaque tokens and answers for them (and for its JWTs) at an
RFC 7662 introspection endpoint, where :meth:`LocalIssuer.revoke` takes effect at once.
The pytest plugin that ships with apiguard provides it as the ``local_issuer`` fixture.

For DPoP (RFC 9449), a :class:`DPoPKey` is a client's key: ``issuer.token(dpop_key=key)``
mints a token bound to it, ``key.proof(method, url, access_token=token)`` signs a proof,
``key.bad_proof(kind, ...)`` each kind of bad one, and :class:`DPoPAuth` makes an ``httpx``
client send the token and a fresh proof with every request.

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
import hashlib
import hmac
import http.server
import json
import secrets
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Generator, Iterator, Mapping
from typing import Any, ClassVar

import httpx
import jwt
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

from .introspection import Introspection
from .validator import AsyncIntrospector, AsyncValidator, Introspector, Validator

__all__ = [
    "REMOVE",
    "DPoPAuth",
    "DPoPKey",
    "KeyPool",
    "LocalIssuer",
    "SigningKey",
    "serve_issuer",
]

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


def _generate_key(kind: str) -> Any:
    if kind == "RSA":
        return rsa.generate_private_key(public_exponent=65537, key_size=2048)
    if kind == "Ed25519":
        return ed25519.Ed25519PrivateKey.generate()
    return ec.generate_private_key(_CURVES[kind])


class KeyPool:
    """Private keys generated once and lent to :class:`LocalIssuer` instances, for speed.

    RSA key generation costs tens of milliseconds; a test suite that makes an issuer per
    test can lend keys from one pool instead (the pytest plugin does, with a pool per
    session). Keys lent at the same time are always distinct, so two live issuers never
    share a key; a key comes back to the pool only when its issuer is done
    (:meth:`LocalIssuer.release_keys`, or the end of a ``with LocalIssuer(...)`` block) and
    may then be lent to a later issuer, under a new ``kid``.

    Passing a pool is the explicit choice to reuse keys across issuers over time: without
    one, every LocalIssuer generates keys of its own.

    >>> pool = KeyPool()
    >>> with LocalIssuer(key_pool=pool) as a, LocalIssuer(key_pool=pool) as b:
    ...     assert a.current_key.private_key is not b.current_key.private_key
    """

    def __init__(self) -> None:
        self._free: dict[str, list[Any]] = {}
        self._lock = threading.Lock()

    def lend(self, kind: str) -> Any:
        """A private key of ``kind`` (``RSA``, ``P-256``, ``Ed25519``...) no one else holds."""
        with self._lock:
            free = self._free.get(kind)
            if free:
                return free.pop()
        return _generate_key(kind)

    def give_back(self, kind: str, private_key: Any) -> None:
        """Return a key that its issuer no longer uses."""
        with self._lock:
            self._free.setdefault(kind, []).append(private_key)


class SigningKey:
    """One key of a :class:`LocalIssuer`: its ``kid``, algorithm and private key.

    The private key is made when it is first needed (a token signed, the JWKS served), so
    an issuer that never signs costs no key generation.
    """

    __slots__ = ("_lock", "_make", "_private_key", "algorithm", "kid")

    def __init__(
        self,
        kid: str,
        algorithm: str,
        private_key: Any = None,
        *,
        make: Callable[[], Any] | None = None,
    ) -> None:
        if private_key is None and make is None:
            raise ValueError("give a private key or a way to make one")
        self.kid = kid
        self.algorithm = algorithm
        self._private_key = private_key
        self._make = make
        self._lock = threading.Lock()

    @property
    def private_key(self) -> Any:
        """The private key (made now if this is its first use)."""
        if self._private_key is None:
            with self._lock:
                if self._private_key is None:
                    assert self._make is not None
                    self._private_key = self._make()
        return self._private_key

    @property
    def generated(self) -> bool:
        """Whether the private key exists yet."""
        return self._private_key is not None

    @property
    def public_jwk(self) -> dict[str, Any]:
        """The public JWK, with ``kid``, ``alg`` and ``use``."""
        algorithm = jwt.get_algorithm_by_name(self.algorithm)
        jwk: dict[str, Any] = json.loads(algorithm.to_jwk(self.private_key.public_key()))
        jwk.update(kid=self.kid, alg=self.algorithm, use="sig")
        return jwk

    def __repr__(self) -> str:
        return f"SigningKey(kid={self.kid!r}, algorithm={self.algorithm!r})"


class LocalIssuer:
    """An OAuth issuer for tests: keys, discovery, JWKS and tokens, all in-process.

    Args:
        issuer: the issuer URL (``iss``), ending in ``/`` as Auth0's do.
        audience: the default ``aud`` of minted tokens.
        algorithm: RS256, PS256, ES256, EdDSA, ... for the first key.
        clock: seconds since the epoch for ``iat``/``exp`` (default ``time.time``); give
            the validator the same clock.
        key_pool: a :class:`KeyPool` to borrow private keys from instead of generating
            them (faster in a large suite). Without one, the issuer's keys are its own.

    Every instance has its own keys and its own key ids (``key-<n>-<six random digits>``), so tokens
    of one issuer (an "attacker" in a test, say) never verify for another's validator.
    Keys are generated when first needed.

    Attributes:
        requests: how often each path was fetched (``Counter`` of paths).
        introspection_client: the ``(client_id, client_secret)`` the introspection endpoint
            accepts (``client_secret_basic`` or ``client_secret_post``).
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
        key_pool: KeyPool | None = None,
    ) -> None:
        if key_pool is not None and not isinstance(key_pool, KeyPool):
            raise TypeError("key_pool: must be an apiguard.testing.KeyPool")
        self.issuer = issuer
        self.audience = audience
        self.clock = clock or time.time
        self.keys: list[SigningKey] = []
        self.requests: Counter[str] = Counter()
        self.jwks_override: Any = None
        self.introspection_client = ("test-api", "test-api-secret")
        #: Opaque tokens by the SHA-256 of their value, with their claims.
        self._opaque: dict[str, dict[str, Any]] = {}
        self._revoked: set[str] = set()
        self._generated = 0
        self._pool = key_pool
        self._made: list[tuple[str, SigningKey]] = []
        # Key ids differ between instances too: a kid names one key of one issuer.
        self._tag = f"{secrets.randbelow(10**6):06d}"
        self.add_key(algorithm)

    # -- keys ------------------------------------------------------------------------------

    def add_key(self, algorithm: str = "RS256", *, kid: str | None = None) -> SigningKey:
        """Add a key to the JWKS (it signs only when passed as ``key=`` or made current)."""
        if algorithm not in _KEY_TYPES:
            raise ValueError(f"unsupported algorithm {algorithm!r}")
        self._generated += 1
        kind = _KEY_TYPES[algorithm]
        pool = self._pool
        make = functools.partial(pool.lend if pool is not None else _generate_key, kind)
        key = SigningKey(kid or f"key-{self._generated}-{self._tag}", algorithm, make=make)
        self._made.append((kind, key))
        self.keys.append(key)
        return key

    def release_keys(self) -> None:
        """Give borrowed keys back to the :class:`KeyPool`; the issuer is done after this."""
        made, self._made = self._made, []
        self.keys = []
        if self._pool is not None:
            for kind, key in made:
                if key.generated:
                    self._pool.give_back(kind, key.private_key)

    def __enter__(self) -> LocalIssuer:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.release_keys()

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
            "introspection_endpoint": self.introspection_endpoint,
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
        dpop_key: DPoPKey | None = None,
        **claims: Any,
    ) -> str:
        """Mint a signed access token.

        Args:
            key: the key to sign with (default the current key).
            header: extra or replaced header members (``REMOVE`` drops one, e.g. ``kid``).
            expires_in: seconds until ``exp``.
            dpop_key: bind the token to this client key (``cnf.jkt``, RFC 9449 §6).
            **claims: claims to add or replace (``REMOVE`` drops one), e.g.
                ``scope="read:a"``, ``aud="other"``, ``exp=REMOVE``.
        """
        if dpop_key is not None:
            claims.setdefault("cnf", {"jkt": dpop_key.thumbprint})
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

    # -- opaque tokens and introspection (RFC 7662) --------------------------------------

    @property
    def introspection_endpoint(self) -> str:
        """Where tokens are introspected."""
        return f"{self.issuer.rstrip('/')}/oauth/introspect"

    def opaque_token(self, *, expires_in: float = 300, **claims: Any) -> str:
        """Mint an opaque (reference) token; the introspection endpoint answers its claims.

        Takes the claims of :meth:`token` (``REMOVE`` drops one).
        """
        token = secrets.token_urlsafe(32)
        self._opaque[_digest(token)] = self.claims(expires_in=expires_in, **claims)
        return token

    def revoke(self, token: str) -> None:
        """Revoke an opaque token or a JWT: introspection answers ``active: false`` from now on."""
        digest = _digest(token)
        self._opaque.pop(digest, None)
        self._revoked.add(digest)

    def introspect(self, token: str) -> dict[str, Any]:
        """The RFC 7662 answer for ``token``: its claims while it is live, else inactive."""
        digest = _digest(token)
        claims = self._opaque.get(digest)
        if claims is None and digest not in self._revoked:
            claims = self._jwt_claims(token)
        if claims is None or claims.get("exp", 0) <= self.clock():
            return {"active": False}
        return {"active": True, "token_type": "Bearer", **claims}

    def _jwt_claims(self, token: str) -> dict[str, Any] | None:
        for key in self.keys:
            try:
                claims: dict[str, Any] = jwt.decode(
                    token,
                    key.private_key.public_key(),
                    algorithms=[key.algorithm],
                    options={"verify_aud": False, "verify_exp": False, "verify_iat": False},
                )
            except jwt.PyJWTError:
                continue
            return claims
        return None

    def _introspection_answer(self, request: httpx.Request) -> httpx.Response:
        form = dict(httpx.QueryParams(request.content.decode("latin-1")))
        client_id, secret = self.introspection_client
        basic = base64.b64encode(f"{client_id}:{secret}".encode()).decode()
        given = request.headers.get("authorization", "")
        posted = (form.get("client_id"), form.get("client_secret"))
        if not (hmac.compare_digest(given, f"Basic {basic}") or posted == (client_id, secret)):
            return httpx.Response(401, json={"error": "invalid_client"})
        token = form.get("token")
        if not token:
            return httpx.Response(400, json={"error": "invalid_request"})
        return httpx.Response(200, json=self.introspect(token))

    def introspector(self, **options: Any) -> Introspector:
        """An :class:`Introspector` for this issuer, as its introspection client."""
        client = httpx.Client(transport=self.transport())
        introspector = Introspector(http_client=client, **self._introspector_options(options))
        introspector._owns_client = True
        return introspector

    def async_introspector(self, **options: Any) -> AsyncIntrospector:
        """An :class:`AsyncIntrospector` for this issuer, as its introspection client."""
        client = httpx.AsyncClient(transport=self.transport())
        introspector = AsyncIntrospector(http_client=client, **self._introspector_options(options))
        introspector._owns_client = True
        return introspector

    def _introspector_options(self, options: dict[str, Any]) -> dict[str, Any]:
        options.setdefault("issuer", self.issuer)
        options.setdefault("audience", self.audience)
        options.setdefault("clock", self.clock)
        client_id, secret = self.introspection_client
        options.setdefault(
            "introspection", Introspection(client_id=client_id, client_secret=secret)
        )
        return options

    # -- serving -------------------------------------------------------------------------

    def handle(self, request: httpx.Request) -> httpx.Response:
        """Answer a request for discovery, the JWKS or introspection (404 otherwise)."""
        path = request.url.path
        self.requests[path] += 1
        base = httpx.URL(self.issuer)
        if request.url.host != base.host or request.url.port != base.port:
            return httpx.Response(404)
        if path == httpx.URL(self.introspection_endpoint).path:
            if request.method != "POST":
                return httpx.Response(405)
            return self._introspection_answer(request)
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
        issuer.release_keys()


class _IssuerRequestHandler(http.server.BaseHTTPRequestHandler):
    """Answers through :meth:`LocalIssuer.handle`, the same code as the transport."""

    def do_GET(self) -> None:
        self._answer("GET", b"")

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        self._answer("POST", self.rfile.read(min(length, 1 << 20)))

    def _answer(self, method: str, body: bytes) -> None:
        issuer: LocalIssuer = self.server.issuer  # type: ignore[attr-defined]
        headers = {k: v for k, v in self.headers.items() if k.lower() == "authorization"}
        request = httpx.Request(
            method, issuer.issuer.rstrip("/") + self.path, headers=headers, content=body
        )
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


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _b64(data: bytes) -> bytes:
    return base64.urlsafe_b64encode(data).rstrip(b"=")


# --- DPoP -------------------------------------------------------------------------------------

#: The members of a public JWK that name the key (RFC 7638), per key type.
_PUBLIC_MEMBERS = {
    "RSA": ("kty", "n", "e"),
    "EC": ("kty", "crv", "x", "y"),
    "OKP": ("kty", "crv", "x"),
}


class DPoPKey:
    """A DPoP client key (RFC 9449): signs proofs for a method and URL, good or bad.

    Args:
        algorithm: ES256 (the default, as most clients use), ES384, ES512, EdDSA, RS256,
            PS256, ... A new key is generated for each instance.
        clock: seconds since the epoch for ``iat`` (default ``time.time``); give the
            validator the same clock.

    >>> key = DPoPKey()
    >>> token = issuer.token(dpop_key=key)  # doctest: +SKIP
    >>> headers = {"Authorization": f"DPoP {token}",
    ...            "DPoP": key.proof("GET", "https://api.test/x", access_token=token)}
    ...  # doctest: +SKIP
    """

    #: Each kind of bad proof :meth:`bad_proof` makes, and the ``reason`` of the error a
    #: verifier answers it with. ``ath``/``no_ath`` need an ``access_token``.
    BAD_PROOFS: ClassVar[Mapping[str, str]] = {
        "not_a_jwt": "dpop_proof_malformed",
        "jwe": "dpop_proof_malformed",
        "typ_jwt": "dpop_proof_wrong_type",
        "no_typ": "dpop_proof_wrong_type",
        "alg_none": "dpop_algorithm_not_allowed",
        "alg_hs256": "dpop_algorithm_not_allowed",
        "no_jwk": "dpop_key_invalid",
        "private_jwk": "dpop_key_invalid",
        "symmetric_jwk": "dpop_key_invalid",
        "jwk_type_mismatch": "dpop_key_invalid",
        "crit": "dpop_proof_malformed",
        "other_key_signed": "dpop_signature_invalid",
        "no_jti": "dpop_proof_malformed",
        "no_htm": "dpop_proof_malformed",
        "no_htu": "dpop_proof_malformed",
        "no_iat": "dpop_proof_malformed",
        "iat_string": "dpop_proof_malformed",
        "iat_bool": "dpop_proof_malformed",
        "htm": "dpop_method_mismatch",
        "htm_lower_case": "dpop_method_mismatch",
        "htu_other_path": "dpop_uri_mismatch",
        "htu_other_host": "dpop_uri_mismatch",
        "htu_other_scheme": "dpop_uri_mismatch",
        "htu_relative": "dpop_uri_mismatch",
        "iat_old": "dpop_proof_expired",
        "iat_future": "dpop_proof_not_yet_valid",
        "ath": "dpop_ath_mismatch",
        "no_ath": "dpop_ath_mismatch",
        "duplicate_claim": "dpop_proof_malformed",
    }

    def __init__(self, algorithm: str = "ES256", *, clock: Callable[[], float] | None = None):
        if algorithm not in _KEY_TYPES:
            raise ValueError(f"unsupported algorithm {algorithm!r}")
        self.algorithm = algorithm
        self.private_key = _generate_key(_KEY_TYPES[algorithm])
        self.clock = clock or time.time
        jwk = json.loads(jwt.get_algorithm_by_name(algorithm).to_jwk(self.private_key.public_key()))
        #: The public JWK sent in every proof: the members that name the key, nothing more.
        self.public_jwk: dict[str, Any] = {name: jwk[name] for name in _PUBLIC_MEMBERS[jwk["kty"]]}

    @functools.cached_property
    def thumbprint(self) -> str:
        """The RFC 7638 thumbprint: the ``jkt`` a token bound to this key carries."""
        members = {name: self.public_jwk[name] for name in sorted(self.public_jwk)}
        canonical = json.dumps(members, separators=(",", ":"))
        return _b64(hashlib.sha256(canonical.encode()).digest()).decode()

    def proof(
        self,
        method: str,
        url: str | httpx.URL,
        *,
        access_token: str | None = None,
        nonce: str | None = None,
        header: Mapping[str, Any] | None = None,
        sign_with: DPoPKey | None = None,
        **claims: Any,
    ) -> str:
        """Sign a proof for a request (its query and fragment are left out of ``htu``).

        Args:
            method: the request method (``htm``).
            url: the request URL (``htu`` is it without query and fragment).
            access_token: the token sent with the request (``ath`` is its hash).
            nonce: the server's ``DPoP-Nonce``.
            header: header members to add or replace (``REMOVE`` drops one).
            sign_with: sign with another key's private key (the header keeps this key's
                ``jwk``): a proof whose signature does not verify.
            **claims: claims to add or replace (``REMOVE`` drops one), e.g. ``iat=0``.
        """
        target = httpx.URL(str(url)).copy_with(query=None, fragment=None)
        body: dict[str, Any] = {
            "jti": uuid.uuid4().hex,
            "htm": method,
            "htu": str(target),
            "iat": int(self.clock()),
        }
        if access_token is not None:
            body["ath"] = _b64(hashlib.sha256(access_token.encode("ascii")).digest()).decode()
        if nonce is not None:
            body["nonce"] = nonce
        body.update(claims)
        members: dict[str, Any] = {"typ": "dpop+jwt", "alg": self.algorithm, "jwk": self.public_jwk}
        members.update(header or {})
        return self._sign(
            {k: v for k, v in members.items() if v is not REMOVE},
            json.dumps({k: v for k, v in body.items() if v is not REMOVE}).encode(),
            signer=sign_with or self,
        )

    def _sign(self, header: Mapping[str, Any], payload: bytes, *, signer: DPoPKey) -> str:
        signing_input = _b64(json.dumps(header).encode()) + b"." + _b64(payload)
        algorithm = jwt.get_algorithm_by_name(signer.algorithm)
        signature = algorithm.sign(signing_input, signer.private_key)
        return (signing_input + b"." + _b64(signature)).decode("ascii")

    def bad_proof(
        self,
        kind: str,
        method: str,
        url: str | httpx.URL,
        *,
        access_token: str | None = None,
        nonce: str | None = None,
    ) -> str:
        """A proof for the request that breaks exactly one rule (see :attr:`BAD_PROOFS`).

        Raises:
            ValueError: an unknown ``kind``.
        """
        if kind not in self.BAD_PROOFS:
            raise ValueError(f"unknown kind of bad proof {kind!r}")
        good: dict[str, Any] = {"access_token": access_token, "nonce": nonce}
        url = httpx.URL(str(url))
        now = int(self.clock())
        if kind == "not_a_jwt":
            return "not-a-jwt"
        if kind == "jwe":
            return "eyJhbGciOiJSU0EtT0FFUCJ9.a.b.c.d"
        if kind in ("alg_none", "alg_hs256"):
            header: dict[str, Any] = {"typ": "dpop+jwt", "jwk": self.public_jwk}
            header["alg"] = "none" if kind == "alg_none" else "HS256"
            claims = {"jti": "x", "htm": method, "htu": str(url), "iat": now}
            payload = _b64(json.dumps(claims).encode())
            return (_b64(json.dumps(header).encode()) + b"." + payload + b".").decode() + (
                "" if kind == "alg_none" else "c2lnbmF0dXJl"
            )
        if kind == "duplicate_claim":
            payload = (
                f'{{"jti":"a","jti":"b","htm":"{method}","htu":"{url.copy_with(query=None)}",'
                f'"iat":{now}}}'
            ).encode()
            members = {"typ": "dpop+jwt", "alg": self.algorithm, "jwk": self.public_jwk}
            return self._sign(members, payload, signer=self)
        headers: dict[str, dict[str, Any]] = {
            "typ_jwt": {"typ": "JWT"},
            "no_typ": {"typ": REMOVE},
            "no_jwk": {"jwk": REMOVE},
            "private_jwk": {"jwk": self._private_jwk()},
            "symmetric_jwk": {"jwk": {"kty": "oct", "k": _b64(b"k" * 32).decode()}},
            "jwk_type_mismatch": {"jwk": self._other_type_jwk()},
            "crit": {"crit": ["exp"], "exp": now},
        }
        if kind in headers:
            return self.proof(method, url, header=headers[kind], **good)
        if kind == "other_key_signed":
            return self.proof(method, url, sign_with=DPoPKey(self.algorithm), **good)
        other = url.copy_with(path=url.path.rstrip("/") + "/other")
        changed: dict[str, dict[str, Any]] = {
            "no_jti": {"jti": REMOVE},
            "no_htm": {"htm": REMOVE},
            "no_htu": {"htu": REMOVE},
            "no_iat": {"iat": REMOVE},
            "iat_string": {"iat": str(now)},
            "iat_bool": {"iat": True},
            "htm": {"htm": "DELETE" if method != "DELETE" else "GET"},
            "htm_lower_case": {"htm": method.lower()},
            "htu_other_path": {"htu": str(other.copy_with(query=None))},
            "htu_other_host": {"htu": str(url.copy_with(host="elsewhere.test", query=None))},
            "htu_other_scheme": {
                "htu": str(
                    url.copy_with(scheme="http" if url.scheme == "https" else "https", query=None)
                )
            },
            "htu_relative": {"htu": url.path},
            "iat_old": {"iat": now - 3600},
            "iat_future": {"iat": now + 3600},
            "ath": {"ath": _b64(hashlib.sha256(b"another token").digest()).decode()},
            "no_ath": {"ath": REMOVE},
        }
        return self.proof(method, url, **good, **changed[kind])

    def _private_jwk(self) -> dict[str, Any]:
        algorithm = jwt.get_algorithm_by_name(self.algorithm)
        jwk: dict[str, Any] = json.loads(algorithm.to_jwk(self.private_key))
        jwk.pop("key_ops", None)
        return jwk

    def _other_type_jwk(self) -> dict[str, Any]:
        # A public key of another type than ``alg`` asks for: the header's alg must not
        # decide how a key is used (RFC 8725 §3.1).
        other = "EdDSA" if _KEY_TYPES[self.algorithm] != "Ed25519" else "ES256"
        return DPoPKey(other).public_jwk

    def __repr__(self) -> str:
        return f"DPoPKey(algorithm={self.algorithm!r}, jkt={self.thumbprint!r})"


class DPoPAuth(httpx.Auth):
    """httpx authentication with DPoP: the token (if any) and a fresh proof per request.

    With a token, requests carry ``Authorization: DPoP <token>`` and a proof with its
    ``ath``; without one (a token request), only the proof. A ``DPoP-Nonce`` from the
    server is remembered and put in later proofs; a 400 or 401 that brings a new nonce
    is retried once with it (RFC 9449 §8-9).

    >>> client = httpx.Client(auth=DPoPAuth(key, token))  # doctest: +SKIP
    >>> client.get("https://api.test/api/private")  # doctest: +SKIP
    """

    def __init__(self, key: DPoPKey, token: str | None = None) -> None:
        self.key = key
        self.token = token
        #: The last nonce the server sent, or None.
        self.nonce: str | None = None

    def _sign(self, request: httpx.Request) -> None:
        if self.token is not None:
            request.headers["Authorization"] = f"DPoP {self.token}"
        request.headers["DPoP"] = self.key.proof(
            request.method, request.url, access_token=self.token, nonce=self.nonce
        )

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        """Sign the request; retry once with a nonce the server asks for."""
        sent_nonce = self.nonce
        self._sign(request)
        response = yield request
        nonce = response.headers.get("DPoP-Nonce")
        if nonce:
            self.nonce = nonce
        if response.status_code in (400, 401) and nonce and nonce != sent_nonce:
            self._sign(request)
            yield request
