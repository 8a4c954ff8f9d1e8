"""Validator speed per algorithm: apiguard vs raw ``cryptography`` verify vs the peers.

The peers are what a user would pick instead, each given the key up front and checking the
same claims (signature, ``iss``, ``aud``, ``exp``): PyJWT's ``decode`` (and its
``PyJWKClient``, with the JWKS preloaded), joserfc's ``jwt.decode`` with a claims registry,
and Authlib's ``authlib.jose``.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import secrets
import time
from collections.abc import Callable
from typing import Any

import jwt
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding
from jwt.utils import raw_to_der_signature

from apiguard import Validator
from apiguard.testing import LocalIssuer

from ._util import Row, interleaved, per_call

AUDIENCE = "https://bench.example/api"


def _split(token: str) -> tuple[bytes, bytes]:
    signing_input, _, signature = token.rpartition(".")
    return signing_input.encode(), base64.urlsafe_b64decode(signature + "=" * (-len(signature) % 4))


def _raw_verifier(alg: str, key: Any) -> Callable[[bytes, bytes], None]:
    """The bare primitive a JWS verification cannot avoid, for the same inputs."""
    if alg == "HS256":
        return lambda msg, sig: hmac.compare_digest(  # type: ignore[return-value]
            hmac.new(key, msg, hashlib.sha256).digest(), sig
        )
    public = key.public_key()
    if alg == "RS256":
        return lambda msg, sig: public.verify(sig, msg, padding.PKCS1v15(), hashes.SHA256())
    if alg == "PS256":
        pss = padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=32)
        return lambda msg, sig: public.verify(sig, msg, pss, hashes.SHA256())
    if alg == "ES256":
        # JWS carries R||S; cryptography takes DER, so the conversion is part of the primitive.
        return lambda msg, sig: public.verify(
            raw_to_der_signature(sig, public.curve), msg, ec.ECDSA(hashes.SHA256())
        )
    return lambda msg, sig: public.verify(sig, msg)  # EdDSA


class _PreloadedJWKClient(jwt.PyJWKClient):
    """PyJWKClient with its fetch answered from memory (its cache logic unchanged)."""

    def __init__(self, jwks: dict[str, Any]) -> None:
        super().__init__("https://bench.example/.well-known/jwks.json")
        self._jwks = jwks

    def fetch_data(self) -> Any:
        return self._jwks


def _joserfc(alg: str, key: Any, issuer: str) -> Callable[[str], object]:
    """joserfc: import the key once, then decode and check the claims per token."""
    from joserfc import jwt as jose_jwt
    from joserfc.jwk import import_key

    imported = import_key(key, "oct" if alg == "HS256" else None)  # type: ignore[arg-type]
    registry = jose_jwt.JWTClaimsRegistry(
        iss={"essential": True, "value": issuer},
        aud={"essential": True, "value": AUDIENCE},
        exp={"essential": True},
    )

    def decode(token: str) -> object:
        decoded = jose_jwt.decode(token, imported, algorithms=[alg])
        registry.validate(decoded.claims)
        return decoded

    return decode


def _authlib(alg: str, key: Any, issuer: str) -> Callable[[str], object]:
    """Authlib's jose: import the key once, then decode and validate the claims per token."""
    from authlib.jose import JsonWebKey, JsonWebToken

    imported = key if alg == "HS256" else JsonWebKey.import_key(key)
    decoder = JsonWebToken([alg])
    options = {
        "iss": {"essential": True, "value": issuer},
        "aud": {"essential": True, "value": AUDIENCE},
        "exp": {"essential": True},
    }

    def decode(token: str) -> object:
        claims = decoder.decode(token, imported, claims_options=options)
        claims.validate()
        return claims

    return decode


def run(calls: int = 2000) -> list[Row]:
    """Measure every algorithm; return the rows of the table."""
    rows: list[Row] = []
    for alg in ("RS256", "PS256", "ES256", "EdDSA", "HS256"):
        rows.extend(_measure(alg, calls))
    return rows


def _measure(alg: str, calls: int) -> list[Row]:
    rows: list[Row] = []
    make_async: Callable[..., Any] | None = None
    jwks_client: _PreloadedJWKClient | None = None
    if alg == "HS256":
        secret = secrets.token_bytes(32)
        issuer_url = "https://issuer.bench/"
        claims = LocalIssuer(issuer_url, audience=AUDIENCE).claims
        tokens = [jwt.encode(claims(scope="read:a"), secret, "HS256") for _ in range(calls)]
        validator = Validator(issuer=issuer_url, audience=AUDIENCE, shared_secret=secret)
        key: Any = secret
        verify_key: Any = secret
        peer_key: Any = secret
    else:
        issuer = LocalIssuer("https://issuer.bench/", audience=AUDIENCE, algorithm=alg)
        tokens = [issuer.token(scope="read:a") for _ in range(calls)]
        validator = issuer.validator()
        make_async = issuer.async_validator
        key = issuer.current_key.private_key
        verify_key = key.public_key()
        peer_key = issuer.current_key.public_jwk
        jwks_client = _PreloadedJWKClient(issuer.jwks)
    validator.validate(tokens[0])  # keys fetched and parsed once, as in a warm service
    parts = [_split(t) for t in tokens]
    raw = _raw_verifier(alg, key)
    loops: dict[str, Callable[[], object]] = {
        "raw": lambda: [raw(m, s) for m, s in parts],
        # Every run starts from an empty verified-token cache: each call is a miss.
        "cold": _misses(validator, tokens),
        "pyjwt": lambda: [
            jwt.decode(t, verify_key, algorithms=[alg], audience=AUDIENCE) for t in tokens
        ],
    }
    for peer, make in (("joserfc", _joserfc), ("authlib", _authlib)):
        decode = make(alg, peer_key, "https://issuer.bench/")
        decode(tokens[0])  # fails loudly if the peer is set up wrong
        loops[peer] = lambda decode=decode: [decode(t) for t in tokens]
    if jwks_client is not None:
        client = jwks_client

        def pyjwk() -> None:
            for t in tokens:
                signing_key = client.get_signing_key_from_jwt(t)
                jwt.decode(t, signing_key.key, algorithms=[alg], audience=AUDIENCE)

        loops["pyjwk"] = pyjwk
    times = interleaved(loops, calls)
    t_raw, t_cold, t_pyjwt = times["raw"], times["cold"], times["pyjwt"]
    rows.append(Row("validator", f"{alg} raw cryptography verify", t_raw * 1e6, "us"))
    target = {"RS256": 0.75, "ES256": 0.92, "EdDSA": 0.85}.get(alg)
    ratio = t_raw / t_cold
    rows.append(
        Row(
            "validator",
            f"{alg} apiguard validate (sync, unique tokens)",
            t_cold * 1e6,
            "us",
            f"{ratio:.2f}x raw",
            f">= {target}x raw" if target else "",
            ratio >= target if target else None,
        )
    )
    if make_async is not None:
        t_async = _async_per_call(make_async, tokens)
        rows.append(
            Row(
                "validator",
                f"{alg} apiguard validate (async)",
                t_async * 1e6,
                "us",
                f"{t_raw / t_async:.2f}x raw",
            )
        )
    rows.append(
        Row(
            "validator",
            f"{alg} PyJWT decode, preloaded key",
            t_pyjwt * 1e6,
            "us",
            f"apiguard {t_pyjwt / t_cold:.2f}x faster",
        )
    )
    peers = {"PyJWT decode": t_pyjwt}
    for peer, label in (("joserfc", "joserfc jwt.decode + claims"), ("authlib", "Authlib jose")):
        peers[label] = times[peer]
        rows.append(
            Row(
                "validator",
                f"{alg} {label}, preloaded key",
                times[peer] * 1e6,
                "us",
                f"apiguard {times[peer] / t_cold:.2f}x faster",
            )
        )
    fastest = min(peers, key=peers.__getitem__)
    if alg in ("RS256", "ES256"):
        speedup = peers[fastest] / t_cold
        rows.append(
            Row(
                "validator",
                f"{alg} apiguard vs the fastest peer ({fastest})",
                speedup,
                "x",
                f"{speedup:.2f}x",
                ">= 1.5x",
                speedup >= 1.5,
            )
        )
    if "pyjwk" in times:
        t_jwk = times["pyjwk"]
        speedup = t_jwk / t_cold
        rows.append(
            Row(
                "validator",
                f"{alg} PyJWT PyJWKClient + decode",
                t_jwk * 1e6,
                "us",
                f"apiguard {speedup:.2f}x faster",
                ">= 3x" if alg == "RS256" else "",
                speedup >= 3 if alg == "RS256" else None,
            )
        )
    if alg == "RS256":
        hit = per_call(lambda: [validator.validate(tokens[0]) for _ in range(calls)], calls)
        rows.append(
            Row(
                "validator",
                "RS256 repeated token (verified-token cache hit)",
                hit * 1e6,
                "us",
                f"{t_raw / hit:.1f}x raw",
                ">= 50x raw",
                t_raw / hit >= 50,
            )
        )
    validator.close()
    return rows


def _misses(validator: Validator, tokens: list[str]) -> Callable[[], None]:
    def run() -> None:
        validator.cache_clear()  # every token is a miss
        for t in tokens:
            validator.validate(t)

    return run


def _async_per_call(make: Callable[..., Any], tokens: list[str]) -> float:
    async def main() -> float:
        async with make() as validator:
            await validator.validate(tokens[0])

            async def loop() -> None:
                validator.cache_clear()
                for t in tokens:
                    await validator.validate(t)

            best = float("inf")
            for _ in range(7):
                start = time.process_time()
                await loop()
                best = min(best, time.process_time() - start)
            return best / len(tokens)

    return asyncio.run(main())
