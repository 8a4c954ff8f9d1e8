"""A strict compact-JWS layer over PyJWT's key and algorithm objects (no I/O).

This is the part of apiguard that touches bytes an attacker chose, so it is deliberately
narrow (RFC 7515 compact serialization only) and strict where Python's standard library is
lenient:

* exactly three segments, in the URL-safe base64 alphabet, without padding, with canonical
  trailing bits (``base64.urlsafe_b64decode`` accepts all of these and silently drops junk);
* header and claims are JSON objects, decoded strictly as UTF-8, without ``NaN``/``Infinity``,
  non-finite numbers, duplicate member names or deep nesting;
* ``alg`` comes from an allow-list and must fit the key: the key's type (and curve) fixes the
  family and the JWK's own ``alg``, when present, fixes the algorithm. The header never
  chooses the primitive (RFC 8725 §3.1);
* ``crit`` is refused (apiguard understands no extension), and so are ``b64: false`` (RFC 7797
  forbids it in JWTs), ``zip`` and nested JWTs; embedded keys (``jwk``, ``jku``, ``x5u``,
  ``x5c``) are never read.

PyJWT is used for what it is good at (building key objects from JWKs and the signature
primitives); its ``InvalidKeyError`` is translated here, the one place it can surface.
"""

from __future__ import annotations

import base64
import binascii
import json
import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Final

from cryptography.hazmat.primitives.asymmetric import ec, ed448, ed25519, rsa
from jwt.algorithms import (
    Algorithm,
    ECAlgorithm,
    HMACAlgorithm,
    OKPAlgorithm,
    RSAAlgorithm,
    RSAPSSAlgorithm,
)
from jwt.exceptions import InvalidKeyError

from .errors import (
    AlgorithmNotAllowed,
    InvalidSignature,
    MalformedToken,
    UnsupportedCriticalHeader,
    UnsupportedTokenType,
)

__all__ = [
    "ASYMMETRIC_ALGORITHMS",
    "HMAC_ALGORITHMS",
    "SUPPORTED_ALGORITHMS",
    "CompactJWS",
    "UnusableKey",
    "VerificationKey",
    "decode_compact",
    "decode_json_object",
]

RSA_ALGORITHMS: Final = frozenset({"RS256", "RS384", "RS512", "PS256", "PS384", "PS512"})
#: ECDSA algorithm -> the one curve it may be used with (RFC 7518 §3.4).
EC_CURVES: Final = {"ES256": "P-256", "ES384": "P-384", "ES512": "P-521"}
#: OKP curves usable with EdDSA (RFC 8037).
OKP_CURVES: Final = frozenset({"Ed25519", "Ed448"})
#: HMAC algorithm -> the shortest acceptable key in bytes (RFC 7518 §3.2: the hash size).
HMAC_ALGORITHMS: Final = {"HS256": 32, "HS384": 48, "HS512": 64}
ASYMMETRIC_ALGORITHMS: Final = RSA_ALGORITHMS | frozenset(EC_CURVES) | {"EdDSA"}
SUPPORTED_ALGORITHMS: Final = ASYMMETRIC_ALGORITHMS | frozenset(HMAC_ALGORITHMS)

_PRIMITIVES: Final[dict[str, Algorithm]] = {
    "RS256": RSAAlgorithm(RSAAlgorithm.SHA256),
    "RS384": RSAAlgorithm(RSAAlgorithm.SHA384),
    "RS512": RSAAlgorithm(RSAAlgorithm.SHA512),
    "PS256": RSAPSSAlgorithm(RSAPSSAlgorithm.SHA256),
    "PS384": RSAPSSAlgorithm(RSAPSSAlgorithm.SHA384),
    "PS512": RSAPSSAlgorithm(RSAPSSAlgorithm.SHA512),
    "ES256": ECAlgorithm(ECAlgorithm.SHA256),
    "ES384": ECAlgorithm(ECAlgorithm.SHA384),
    "ES512": ECAlgorithm(ECAlgorithm.SHA512),
    "EdDSA": OKPAlgorithm(),
    "HS256": HMACAlgorithm(HMACAlgorithm.SHA256),
    "HS384": HMACAlgorithm(HMACAlgorithm.SHA384),
    "HS512": HMACAlgorithm(HMACAlgorithm.SHA512),
}

MIN_RSA_BITS: Final = 2048
#: Larger moduli only cost CPU per verification (a denial-of-service lever), RFC 7518 does
#: not need them and no issuer we know uses them.
MAX_RSA_BITS: Final = 8192
MAX_JSON_DEPTH: Final = 32

#: Secrets that show up in tutorials and are cracked in seconds (RFC 8725 §3.5).
WEAK_SECRETS: Final = frozenset(
    {
        b"secret",
        b"your-256-bit-secret",
        b"your-384-bit-secret",
        b"your-512-bit-secret",
        b"changeme",
        b"password",
        b"secretkey",
        b"supersecret",
    }
)

_PRIVATE_MEMBERS: Final = ("d", "p", "q", "dp", "dq", "qi", "oth")
_B64_ALPHABET: Final = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
# Characters that may end a segment of length 2 or 3 (mod 4) without stray low bits.
_CANONICAL_LAST: Final = {
    2: frozenset(c for i, c in enumerate(_B64_ALPHABET) if i & 0x0F == 0),
    3: frozenset(c for i, c in enumerate(_B64_ALPHABET) if i & 0x03 == 0),
}
_COMPACT: Final = re.compile(r"[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*\.[A-Za-z0-9_-]*")
_SEGMENT: Final = re.compile(r"[A-Za-z0-9_-]*")
_TYP_OR_CTY: Final = ("typ", "cty")


class UnusableKey(ValueError):
    """A JWK (or secret) cannot be used to verify signatures; the message says why."""


class _Malformed(ValueError):
    pass


# --- base64url and JSON -------------------------------------------------------------------


def b64url_decode(segment: str) -> bytes:
    """Decode canonical, unpadded base64url (RFC 7515 §2), or raise ValueError."""
    rest = len(segment) % 4
    if rest == 1:
        raise _Malformed("impossible base64url length")
    if rest and segment[-1] not in _CANONICAL_LAST[rest]:
        raise _Malformed("non-canonical base64url")
    # The alphabet was checked by the caller (one regex over the whole token) or is checked
    # here for JWK members; binascii then only needs the padding back.
    return base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))


def _strict_b64url(value: Any, what: str) -> bytes:
    if not isinstance(value, str) or not _SEGMENT.fullmatch(value):
        raise UnusableKey(f"{what} is not base64url text")
    try:
        return b64url_decode(value)
    except (ValueError, binascii.Error) as exc:
        raise UnusableKey(f"{what} is not canonical base64url") from exc


def _pairs(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result = dict(pairs)
    if len(result) != len(pairs):
        # RFC 7515 §4 and RFC 7519 §4 allow rejecting duplicates; other parsers take the
        # first one, so taking the last would let two parsers disagree on the claims.
        raise _Malformed("duplicate member name")
    return result


def _finite(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise _Malformed("non-finite number")
    return value


def _no_constants(name: str) -> Any:
    raise _Malformed(f"{name} is not JSON")


_DECODER: Final = json.JSONDecoder(
    object_pairs_hook=_pairs, parse_float=_finite, parse_constant=_no_constants
)


def _check_deep(value: Any, depth: int) -> None:
    if depth > MAX_JSON_DEPTH:
        raise _Malformed("JSON nested too deeply")
    if isinstance(value, dict):
        for item in value.values():
            _check_deep(item, depth + 1)
    elif isinstance(value, list):
        for item in value:
            _check_deep(item, depth + 1)
    elif isinstance(value, str):
        # A JSON escape such as \ud800 yields a lone surrogate that is not Unicode text.
        value.encode("utf-8")


def decode_json_object(data: bytes) -> dict[str, Any]:
    """Decode a JOSE header or JWT claims set strictly.

    Raises:
        MalformedToken: not UTF-8, not a JSON object, duplicate names, NaN/Infinity,
            non-finite or oversized numbers, lone surrogates, or nesting deeper than 32.
    """
    try:
        text = data.decode("utf-8")
        value = _DECODER.decode(text)
        # The walk is only needed for nesting or escapes; both are rare in real tokens, and
        # the counts are cheap C loops, so ordinary tokens skip it.
        if "\\u" in text or text.count("[") + text.count("{") > MAX_JSON_DEPTH:
            _check_deep(value, 0)
    except (ValueError, RecursionError) as exc:  # JSONDecodeError and UnicodeError included
        raise MalformedToken(f"bad JSON: {exc.__class__.__name__}") from None
    if not isinstance(value, dict):
        raise MalformedToken("not a JSON object")
    return value


# --- compact serialization ------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class CompactJWS:
    """A compact JWS split and decoded, with its header already checked for structure."""

    header: dict[str, Any]
    payload: bytes
    signature: bytes
    signing_input: bytes

    @property
    def alg(self) -> str:
        """The header's ``alg`` (a string, checked by :func:`decode_compact`)."""
        alg: str = self.header["alg"]
        return alg

    @property
    def kid(self) -> str | None:
        """The header's ``kid``, or None."""
        kid: str | None = self.header.get("kid")
        return kid


def decode_compact(
    token: str, *, max_size: int = 16384, algorithms: Iterable[str] = SUPPORTED_ALGORITHMS
) -> CompactJWS:
    """Split and decode a compact JWS without verifying it.

    Args:
        token: the compact serialization, ``header.payload.signature``.
        max_size: longest acceptable token in characters, checked before any decoding.
        algorithms: the allow-list for the header's ``alg``.

    Raises:
        MalformedToken: wrong shape, encoding or JSON; ``alg`` or ``kid`` missing or not a
            string; ``b64``, ``zip`` present.
        UnsupportedTokenType: a JWE (five segments) or a nested JWT (``cty: JWT``).
        AlgorithmNotAllowed: ``alg`` is not in ``algorithms`` (``none`` never is).
        UnsupportedCriticalHeader: the header has ``crit``.
    """
    if not isinstance(token, str):
        raise MalformedToken("token is not text")
    if len(token) > max_size:
        raise MalformedToken(f"token longer than {max_size} characters")
    dots = token.count(".")
    if dots != 2:
        # Decided by shape alone: a JWE is never decrypted or decompressed on this path.
        if dots == 4:
            raise UnsupportedTokenType("five segments: a JWE, not a JWS")
        raise MalformedToken(f"{dots + 1} segments, not 3")
    if not _COMPACT.fullmatch(token):
        raise MalformedToken("characters outside the base64url alphabet, or an empty header")
    head, payload, signature = token.split(".")
    try:
        header_bytes = b64url_decode(head)
        payload_bytes = b64url_decode(payload)
        signature_bytes = b64url_decode(signature)
    except (ValueError, binascii.Error):
        raise MalformedToken("bad base64url") from None
    header = decode_json_object(header_bytes)
    _check_header(header, algorithms)
    return CompactJWS(
        header=header,
        payload=payload_bytes,
        signature=signature_bytes,
        signing_input=token[: len(head) + 1 + len(payload)].encode("ascii"),
    )


def _check_header(header: dict[str, Any], algorithms: Iterable[str]) -> None:
    alg = header.get("alg")
    if not isinstance(alg, str):
        raise MalformedToken("alg missing or not a string")
    # An allow-list compared case-sensitively: "none", "None", "RS256 " never pass.
    if alg not in algorithms or alg not in _PRIMITIVES:
        raise AlgorithmNotAllowed(f"alg {alg[:20]!r} is not allowed")
    if "crit" in header:
        raise UnsupportedCriticalHeader("crit header present")
    if "b64" in header:
        raise MalformedToken("b64 header (RFC 7797) is not allowed in a JWT")
    if "zip" in header:
        raise MalformedToken("zip header is not allowed in a JWS")
    kid = header.get("kid")
    if kid is not None and not isinstance(kid, str):
        raise MalformedToken("kid is not a string")
    for name in _TYP_OR_CTY:
        value = header.get(name)
        if value is not None and not isinstance(value, str):
            raise MalformedToken(f"{name} is not a string")
    cty = header.get("cty")
    if cty is not None and cty.lower() in ("jwt", "application/jwt"):
        raise UnsupportedTokenType("nested JWT")


# --- keys -------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, eq=False)
class VerificationKey:
    """A public key (or shared secret) bound to the algorithms it may verify.

    Built once per key set; :meth:`verify` is the only thing done per token.
    """

    kid: str | None
    kty: str
    algorithms: frozenset[str]
    key: Any
    #: A canonical text of the public members: equal keys across JWKS refreshes share it.
    fingerprint: str

    def verify(self, jws: CompactJWS) -> None:
        """Check the signature of ``jws`` with this key.

        Raises:
            AlgorithmNotAllowed: the header's ``alg`` is not one this key may verify.
            InvalidSignature: the signature does not verify.
        """
        alg = jws.alg
        if alg not in self.algorithms:
            raise AlgorithmNotAllowed(f"alg {alg} does not fit key {self.kid!r} ({self.kty})")
        try:
            ok = _PRIMITIVES[alg].verify(jws.signing_input, self.key, jws.signature)
        except (ValueError, TypeError):
            ok = False
        if not ok:
            raise InvalidSignature(f"signature does not verify with key {self.kid!r}")

    @classmethod
    def from_jwk(
        cls,
        jwk: Any,
        *,
        algorithms: Iterable[str] = ASYMMETRIC_ALGORITHMS,
        symmetric: bool = False,
    ) -> VerificationKey:
        """Build a verification key from a JWK, applying the key policy.

        Args:
            jwk: the JWK as a mapping.
            algorithms: the allow-list; the key may verify only algorithms in it.
            symmetric: accept ``oct`` keys (a locally configured secret). Never for a
                JWKS fetched from an issuer.

        Raises:
            UnusableKey: not a signing key, private material, an unregistered ``alg``, an
                ``alg`` that does not fit ``kty``/``crv``, RSA outside 2048-8192 bits or
                with a bad exponent, an off-curve EC point, a short HMAC secret, ...
        """
        if not isinstance(jwk, Mapping):
            raise UnusableKey("JWK is not an object")
        allowed = frozenset(algorithms)
        kty = jwk.get("kty")
        kid = jwk.get("kid")
        alg = jwk.get("alg")
        if kid is not None and not isinstance(kid, str):
            raise UnusableKey("kid is not a string")
        if alg is not None and not isinstance(alg, str):
            raise UnusableKey("alg is not a string")
        _check_use(jwk)
        if kty == "oct":
            if not symmetric:
                raise UnusableKey("symmetric (oct) key in a public key set")
            secret = _strict_b64url(jwk.get("k"), "k")
            if alg is None:
                # Without an alg, the key may verify each allowed HS* it is long enough for.
                fits = [a for a, size in HMAC_ALGORITHMS.items() if len(secret) >= size]
                candidates = allowed.intersection(fits)
            else:
                candidates = (
                    frozenset({alg}) & allowed if alg in HMAC_ALGORITHMS else frozenset({alg})
                )
            if not candidates:
                raise UnusableKey("no allowed HMAC algorithm fits this key")
            return cls.from_secret(secret, algorithms=candidates, kid=kid)
        present = [name for name in _PRIVATE_MEMBERS if name in jwk]
        if present:
            raise UnusableKey("private key material in a public key set")
        if kty == "RSA":
            return cls._rsa(jwk, kid, alg, allowed)
        if kty == "EC":
            return cls._ec(jwk, kid, alg, allowed)
        if kty == "OKP":
            return cls._okp(jwk, kid, alg, allowed)
        raise UnusableKey(f"unsupported kty {str(kty)[:10]!r}")

    @classmethod
    def from_secret(
        cls,
        secret: str | bytes,
        *,
        algorithms: Iterable[str] = ("HS256",),
        kid: str | None = None,
    ) -> VerificationKey:
        """Build an HMAC key from a shared secret (Auth0's HS256 APIs).

        Raises:
            UnusableKey: an algorithm that is not HS*, a secret shorter than the hash
                (RFC 7518 §3.2), or a well-known weak secret.
        """
        raw = secret.encode("utf-8") if isinstance(secret, str) else bytes(secret)
        algs = frozenset(algorithms)
        if not algs or not algs <= HMAC_ALGORITHMS.keys():
            raise UnusableKey("a shared secret can only verify HS256, HS384 or HS512")
        if raw.lower() in WEAK_SECRETS:
            raise UnusableKey("the shared secret is a well-known weak value")
        shortest = max(HMAC_ALGORITHMS[alg] for alg in algs)
        if len(raw) < shortest:
            raise UnusableKey(f"the shared secret must be at least {shortest} bytes")
        return cls(kid=kid, kty="oct", algorithms=algs, key=raw, fingerprint="oct")

    @classmethod
    def _rsa(
        cls, jwk: Mapping[str, Any], kid: str | None, alg: str | None, allowed: frozenset[str]
    ) -> VerificationKey:
        candidates = _bind(alg, RSA_ALGORITHMS, allowed)
        _strict_b64url(jwk.get("n"), "n")
        e = _strict_b64url(jwk.get("e"), "e")
        public = {"kty": "RSA", "n": jwk["n"], "e": jwk["e"]}
        key = _pyjwt_key(RSAAlgorithm.from_jwk, public)
        assert isinstance(key, rsa.RSAPublicKey)
        bits = key.key_size
        if not MIN_RSA_BITS <= bits <= MAX_RSA_BITS:
            raise UnusableKey(f"RSA modulus of {bits} bits (2048 to 8192 accepted)")
        exponent = int.from_bytes(e, "big")
        if exponent < 3 or exponent % 2 == 0:
            raise UnusableKey("RSA public exponent must be odd and at least 3")
        return cls(kid, "RSA", candidates, key, _fingerprint(public))

    @classmethod
    def _ec(
        cls, jwk: Mapping[str, Any], kid: str | None, alg: str | None, allowed: frozenset[str]
    ) -> VerificationKey:
        crv = jwk.get("crv")
        # The curve fixes the one ECDSA algorithm (RFC 7518 §3.4); a JWK alg must agree.
        fitting = frozenset(a for a, curve in EC_CURVES.items() if curve == crv)
        if not fitting:
            raise UnusableKey(f"unsupported EC curve {str(crv)[:12]!r}")
        candidates = _bind(alg, fitting, allowed)
        _strict_b64url(jwk.get("x"), "x")
        _strict_b64url(jwk.get("y"), "y")
        public = {"kty": "EC", "crv": crv, "x": jwk["x"], "y": jwk["y"]}
        key = _pyjwt_key(ECAlgorithm.from_jwk, public)
        assert isinstance(key, ec.EllipticCurvePublicKey)
        return cls(kid, "EC", candidates, key, _fingerprint(public))

    @classmethod
    def _okp(
        cls, jwk: Mapping[str, Any], kid: str | None, alg: str | None, allowed: frozenset[str]
    ) -> VerificationKey:
        crv = jwk.get("crv")
        if crv not in OKP_CURVES:
            raise UnusableKey(f"unsupported OKP curve {str(crv)[:12]!r}")
        candidates = _bind(alg, frozenset({"EdDSA"}), allowed)
        _strict_b64url(jwk.get("x"), "x")
        public = {"kty": "OKP", "crv": crv, "x": jwk["x"]}
        key = _pyjwt_key(OKPAlgorithm.from_jwk, public)
        assert isinstance(key, ed25519.Ed25519PublicKey | ed448.Ed448PublicKey)
        return cls(kid, "OKP", candidates, key, _fingerprint(public))


def _check_use(jwk: Mapping[str, Any]) -> None:
    use = jwk.get("use")
    if use is not None and use != "sig":
        raise UnusableKey("use is not 'sig'")
    ops = jwk.get("key_ops")
    if ops is not None:
        if (
            not isinstance(ops, list)
            or not all(isinstance(op, str) for op in ops)
            or len(set(ops)) != len(ops)
        ):
            raise UnusableKey("key_ops is not a list of unique strings")
        if "verify" not in ops:
            raise UnusableKey("key_ops does not allow 'verify'")


def _bind(alg: str | None, family: frozenset[str], allowed: frozenset[str]) -> frozenset[str]:
    """The algorithms a key may verify: its JWK ``alg`` if it has one, else its family."""
    if alg is not None:
        if alg not in family:
            raise UnusableKey(f"alg {alg[:12]!r} does not fit this key")
        candidates = frozenset({alg})
    else:
        candidates = family
    candidates &= allowed
    if not candidates:
        raise UnusableKey("none of the key's algorithms is allowed")
    return candidates


def _pyjwt_key(build: Any, jwk: dict[str, Any]) -> Any:
    try:
        return build(jwk)
    except (InvalidKeyError, ValueError, TypeError) as exc:
        # Off-curve points, wrong coordinate lengths, bad numbers: PyJWT and cryptography
        # say why in their message, which names no secret.
        raise UnusableKey(f"invalid key: {exc}") from None


def _fingerprint(public: dict[str, Any]) -> str:
    return json.dumps(public, sort_keys=True, separators=(",", ":"))
