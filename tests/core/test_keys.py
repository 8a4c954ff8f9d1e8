"""Key policy (VerificationKey), key sets (KeySet) and the sans-I/O cache (KeySource)."""

from __future__ import annotations

import json
import logging
from typing import Any

import pytest

from apiguard import (
    AlgorithmNotAllowed,
    InvalidSignature,
    KeySetUnavailable,
    MalformedToken,
    UnknownSigningKey,
)
from apiguard.jwks import FetchRequest, KeySet, KeySource, Response, is_safe_url
from apiguard.jws import (
    CompactJWS,
    UnusableKey,
    VerificationKey,
    decode_compact,
    decode_json_object,
    has_roca_fingerprint,
)
from apiguard.testing import LocalIssuer

from .conftest import FakeClock, b64, dumps

EC_JWK = {
    "kty": "EC",
    "crv": "P-256",
    "x": "04N0xi21hshyvBp7I167sbE_bXqyqkAPfefdklMO7wY",
    "y": "UI8exy-C06a7DUnjIdENkxeFtHM4-l_41LqEw9nVgmw",
}
OKP_JWK = {"kty": "OKP", "crv": "Ed25519", "x": "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"}


@pytest.fixture
def rsa_jwk(issuer: LocalIssuer) -> dict[str, Any]:
    jwk = dict(issuer.current_key.public_jwk)
    for name in ("kid", "alg", "use"):
        jwk.pop(name)
    return jwk


BAD_JWKS = [
    pytest.param("not a mapping", "not an object", id="not-object"),
    pytest.param({**EC_JWK, "kid": 5}, "kid", id="kid-number"),
    pytest.param({**EC_JWK, "alg": ["ES256"]}, "alg is not a string", id="alg-list"),
    pytest.param({**EC_JWK, "alg": "ES384"}, "does not fit", id="alg-other-curve"),
    pytest.param({**EC_JWK, "alg": "ES521"}, "does not fit", id="alg-unregistered"),
    pytest.param({**EC_JWK, "use": "enc"}, "use", id="use-enc"),
    pytest.param({**EC_JWK, "key_ops": ["encrypt"]}, "verify", id="key_ops-encrypt"),
    pytest.param({**EC_JWK, "key_ops": "verify"}, "unique strings", id="key_ops-string"),
    pytest.param({**EC_JWK, "key_ops": ["verify", 1]}, "unique strings", id="key_ops-number"),
    pytest.param({**EC_JWK, "key_ops": ["verify"] * 2}, "unique strings", id="key_ops-dup"),
    pytest.param({**EC_JWK, "d": "AAAA"}, "private", id="private-d"),
    pytest.param({**EC_JWK, "crv": "secp256k1"}, "curve", id="secp256k1"),
    pytest.param({**EC_JWK, "crv": "P-384"}, "invalid key", id="P-384-short-coordinates"),
    pytest.param({**EC_JWK, "y": EC_JWK["y"][:-2] + "nw"}, "invalid key", id="off-curve"),
    pytest.param({**EC_JWK, "x": "AAAA"}, "invalid key", id="short-x"),
    pytest.param({**EC_JWK, "x": 5}, "x is not base64url", id="x-number"),
    pytest.param({**EC_JWK, "x": EC_JWK["x"] + "="}, "x is not base64url", id="x-padded"),
    pytest.param({**EC_JWK, "x": EC_JWK["x"][:-1] + "x"}, "canonical", id="x-noncanonical"),
    pytest.param({**OKP_JWK, "crv": "X25519"}, "OKP curve", id="X25519"),
    pytest.param({**OKP_JWK, "x": "AAAA"}, "invalid key", id="okp-short"),
    pytest.param({"kty": "EC2"}, "kty", id="unknown-kty"),
    pytest.param({}, "kty", id="no-kty"),
    pytest.param({"kty": "oct", "k": "A" * 43}, "oct", id="oct-in-public-set"),
]


@pytest.mark.parametrize(("jwk", "why"), BAD_JWKS)
def test_bad_jwk_refused(jwk: Any, why: str) -> None:
    """A7/B7/B8/B9: unusable JWKs are refused as UnusableKey, saying why."""
    with pytest.raises(UnusableKey, match=why):
        VerificationKey.from_jwk(jwk)


@pytest.mark.parametrize(
    ("change", "why"),
    [
        pytest.param({"e": "Aw"}, None, id="e-3-ok"),
        pytest.param({"e": "AQ"}, "invalid key|exponent", id="e-1"),
        pytest.param({"e": "BA"}, "invalid key|exponent", id="e-even"),
        pytest.param({"n": "AQAB"}, "bits|invalid key", id="tiny-modulus"),
        pytest.param({"n": None}, "n is not base64url", id="n-missing"),
        pytest.param({"alg": "ES256"}, "does not fit", id="alg-ES256"),
        pytest.param({"alg": "PS512"}, None, id="alg-PS512-ok"),
    ],
)
def test_rsa_key_policy(change: dict[str, Any], why: str | None, rsa_jwk: dict[str, Any]) -> None:
    """A10: RSA keys need 2048-8192 bits, an odd exponent >= 3 and a fitting alg."""
    jwk = {**rsa_jwk, **change}
    if why is None:
        assert VerificationKey.from_jwk(jwk).kty == "RSA"
    else:
        with pytest.raises(UnusableKey, match=why):
            VerificationKey.from_jwk(jwk)


def test_oversized_rsa_modulus_refused() -> None:
    """A10: a 16384-bit modulus (CPU denial of service) is refused."""
    n = (1 << 16383) | 1
    jwk = {"kty": "RSA", "n": b64(n.to_bytes(2048, "big")), "e": "AQAB"}
    with pytest.raises(UnusableKey, match="16384 bits"):
        VerificationKey.from_jwk(jwk)


def test_roca_fingerprint() -> None:
    """A modulus congruent to powers of 65537 modulo the ROCA primes is flagged; others not."""
    from apiguard.jws import _ROCA_PRIMES

    product = 1
    for prime in _ROCA_PRIMES:
        product *= prime
    # n = 65537^k mod M for every ROCA prime: the fingerprint by construction.
    assert has_roca_fingerprint(pow(65537, 12345, product) + product * (1 << 1900))
    assert not has_roca_fingerprint(2 * product + 2)  # 0 mod 3 is never a power of 65537


def test_algorithm_allow_list_filters_keys(rsa_jwk: dict[str, Any]) -> None:
    """A key binds to the intersection of its family and the allow-list, else is unusable."""
    key = VerificationKey.from_jwk(rsa_jwk, algorithms={"PS256", "ES256"})
    assert key.algorithms == {"PS256"}
    with pytest.raises(UnusableKey, match="allowed"):
        VerificationKey.from_jwk(rsa_jwk, algorithms={"ES256"})
    assert VerificationKey.from_jwk(OKP_JWK).algorithms == {"EdDSA"}


@pytest.mark.parametrize(
    ("jwk", "algorithms", "result"),
    [
        pytest.param({"k": b64(b"k" * 64)}, {"HS256", "HS512"}, {"HS256", "HS512"}, id="no-alg"),
        pytest.param({"k": b64(b"k" * 40)}, {"HS256", "HS512"}, {"HS256"}, id="no-alg-short"),
        pytest.param({"k": b64(b"k" * 16)}, {"HS256"}, "fits", id="too-short"),
        pytest.param(
            {"k": b64(b"k" * 64), "alg": "HS384"}, {"HS256"}, "fits", id="alg-not-allowed"
        ),
        pytest.param({"k": b64(b"k" * 64), "alg": "A256GCM"}, {"HS256"}, "only verify", id="aes"),
        pytest.param({"k": 5}, {"HS256"}, "k is not base64url", id="k-number"),
    ],
)
def test_oct_jwk(jwk: dict[str, Any], algorithms: set[str], result: Any) -> None:
    """A configured oct JWK verifies the HS* it is long enough for, within the allow-list."""
    jwk = {"kty": "oct", **jwk}
    if isinstance(result, set):
        assert VerificationKey.from_jwk(jwk, algorithms=algorithms, symmetric=True).algorithms == (
            result
        )
    else:
        with pytest.raises(UnusableKey, match=result):
            VerificationKey.from_jwk(jwk, algorithms=algorithms, symmetric=True)


def test_verify_refuses_alg_outside_the_key() -> None:
    """A key never verifies an algorithm it is not bound to (AlgorithmNotAllowed)."""
    key = VerificationKey.from_jwk(EC_JWK)
    jws = CompactJWS({"alg": "ES384"}, b"", b"\x00" * 96, b"x")
    with pytest.raises(AlgorithmNotAllowed):
        key.verify(jws)


def test_primitive_errors_read_as_invalid_signature(monkeypatch: pytest.MonkeyPatch) -> None:
    """A primitive raising ValueError or TypeError is an InvalidSignature, never a crash."""
    key = VerificationKey.from_jwk(EC_JWK)
    for error in (TypeError, ValueError):

        def broken(signature: bytes, message: bytes, error: type[Exception] = error) -> None:
            raise error("boom")

        monkeypatch.setitem(key._checks, "ES256", broken)  # type: ignore[arg-type]
        with pytest.raises(InvalidSignature):
            key.verify(CompactJWS({"alg": "ES256"}, b"", b"\x00" * 64, b"x"))


@pytest.mark.parametrize("size", [0, 63, 65, 72])
def test_ecdsa_signature_of_the_wrong_length_is_invalid(size: int) -> None:
    """ES256 takes exactly 64 bytes of R||S: shorter, longer or DER-sized ones never verify."""
    key = VerificationKey.from_jwk(EC_JWK)
    with pytest.raises(InvalidSignature):
        key.verify(CompactJWS({"alg": "ES256"}, b"", b"\x01" * size, b"x"))


def test_decode_compact_refuses_non_text() -> None:
    """A token that is not a str (bytes, None) is MalformedToken."""
    for value in (b"a.b.c", None, 5):
        with pytest.raises(MalformedToken):
            decode_compact(value)  # type: ignore[arg-type]


def test_decode_json_object_walks_escapes() -> None:
    """Escaped text is checked deeply; numbers and nested escapes decode normally."""
    assert decode_json_object(b'{"\\u0041": [1, {"b": "\\u00e9"}], "n": null}') == {
        "A": [1, {"b": "é"}],
        "n": None,
    }


@pytest.mark.parametrize(
    "data",
    [
        pytest.param(b'{"a":' * 33 + b"1" + b"}" * 33, id="objects-only-33-deep"),
        pytest.param(b' {"a":' + b"[" * 33 + b"]" * 33 + b"}", id="leading-space-lists"),
        pytest.param(b'{"a": "\\/", "b": "\\udc00"}', id="surrogate-after-other-escape"),
        pytest.param(b'{"a":"x","a":"y"}', id="duplicate"),
    ],
)
def test_decode_json_object_refuses_depth_surrogates_duplicates(data: bytes) -> None:
    """Nesting beyond 32, a lone surrogate and duplicate names are refused in any form."""
    with pytest.raises(MalformedToken):
        decode_json_object(data)


def test_decode_json_object_reads_escaped_slashes_and_shallow_nesting() -> None:
    """Escapes other than \\u, and lists or objects within the limit, decode normally."""
    assert decode_json_object(b'{"iss": "https:\\/\\/i.test\\/", "o": {"r": ["a"]}}') == {
        "iss": "https://i.test/",
        "o": {"r": ["a"]},
    }
    assert decode_json_object(b'{"a":' * 32 + b"1" + b"}" * 32) is not None


@pytest.mark.parametrize(
    ("url", "safe"),
    [
        pytest.param("https://issuer.test/jwks", True, id="https"),
        pytest.param("http://127.0.0.1:9000/", True, id="loopback"),
        pytest.param("http://127.8.9.10/", True, id="loopback-range"),
        pytest.param("http://localhost/", True, id="localhost"),
        pytest.param("http://[::1]/", True, id="loopback-v6"),
        pytest.param("http://issuer.test/", False, id="http"),
        pytest.param("http://10.0.0.1/", False, id="private"),
        pytest.param("http://localhost.evil.test/", False, id="localhost-prefix"),
        pytest.param("ftp://issuer.test/", False, id="ftp"),
        pytest.param("https://user:pw@issuer.test/", False, id="userinfo"),
        pytest.param("https:///path", False, id="no-host"),
        pytest.param("https://[::1/", False, id="unparsable"),
    ],
)
def test_is_safe_url(url: str, safe: bool) -> None:
    """B14: only https, or http to a loopback host, may be fetched."""
    assert is_safe_url(url) is safe


# --- KeySet ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "document",
    [
        pytest.param(b"\xff", id="bytes-not-utf8"),
        pytest.param("nope", id="text-not-json"),
        pytest.param("[" * 100_000, id="deep"),
        pytest.param("[]", id="array"),
        pytest.param({"keys": {}}, id="keys-object"),
    ],
)
def test_key_set_refuses_bad_documents(document: Any) -> None:
    """A JWKS that is not an object with a keys array is refused as a whole."""
    with pytest.raises(UnusableKey):
        KeySet.from_jwks(document)


def test_key_set_from_text_and_reuse(issuer: LocalIssuer) -> None:
    """Parsing text or bytes works, and unchanged keys are reused from the previous set."""
    text = json.dumps(issuer.jwks)
    first = KeySet.from_jwks(text)
    second = KeySet.from_jwks(text.encode(), previous=first)
    assert second.keys[0] is first.keys[0]
    assert len(second) == 1
    assert second.keys[0] in second
    assert object() not in second


def test_symmetric_set_holds_only_oct_keys(issuer: LocalIssuer) -> None:
    """A shared-secret key set with a public key in it is refused outright."""
    with pytest.raises(UnusableKey, match="only oct"):
        KeySet.from_jwks(issuer.jwks, symmetric=True, algorithms={"HS256"})


def test_select_rules(issuer: LocalIssuer, caplog: pytest.LogCaptureFixture) -> None:
    """select: exact kid, kid-less only when unambiguous, twins refused, wrong alg refused."""
    rsa = VerificationKey.from_jwk(issuer.current_key.public_jwk)
    ec = VerificationKey.from_jwk({**EC_JWK, "kid": "ec"})
    keys = KeySet([rsa, ec])
    kid = issuer.current_key.kid
    assert keys.select(kid, "RS256") is rsa
    assert keys.select(None, "ES256") is ec
    assert keys.select(None, "ES384") is None
    assert keys.select("other", "RS256") is None
    with pytest.raises(AlgorithmNotAllowed):
        keys.select("ec", "RS256")
    twins = KeySet([rsa, VerificationKey.from_jwk(issuer.current_key.public_jwk)])
    with caplog.at_level(logging.ERROR), pytest.raises(UnknownSigningKey):
        twins.select(kid, "RS256")
    assert "refusing" in caplog.text


# --- KeySource without a shell -----------------------------------------------------------------


def test_key_source_cold_failure_then_cooldown(issuer: LocalIssuer, clock: FakeClock) -> None:
    """After a failed cold fetch, lookups raise KeySetUnavailable until the cooldown ends."""
    source = KeySource(issuer=issuer.issuer, jwks_uri=issuer.jwks_uri, algorithms={"RS256"})
    request = source.lookup("key-1", "RS256", clock())
    assert isinstance(request, FetchRequest)
    source.receive(request, Response(500), clock())
    clock.advance(10)
    with pytest.raises(KeySetUnavailable) as caught:
        source.lookup("key-1", "RS256", clock())
    assert caught.value.retry_after == 20
    clock.advance(20)
    assert isinstance(source.lookup("key-1", "RS256", clock()), FetchRequest)


def test_key_source_unknown_kid_after_failed_refresh(issuer: LocalIssuer, clock: FakeClock) -> None:
    """An unknown kid while the last refresh failed is KeySetUnavailable (the keys may be new)."""
    source = KeySource(issuer=issuer.issuer, jwks_uri=issuer.jwks_uri, algorithms={"RS256"})
    request = source.lookup("key-1", "RS256", clock())
    assert isinstance(request, FetchRequest)
    source.receive(request, Response(200, body=json.dumps(issuer.jwks).encode()), clock())
    clock.advance(30)
    refresh = source.lookup("new", "RS256", clock())
    assert isinstance(refresh, FetchRequest)
    source.receive(refresh, OSError("unreachable"), clock())
    with pytest.raises(KeySetUnavailable, match="OSError"):
        source.lookup("new", "RS256", clock())
    assert isinstance(source.lookup(issuer.current_key.kid, "RS256", clock()), VerificationKey)


def test_remembered_header_still_meets_each_allow_list() -> None:
    """A header decoded once is shared, but each caller's allow-list applies to every token."""
    token = f"{b64(dumps({'alg': 'RS256', 'kid': 'shared'}))}.e30.c2ln"
    assert decode_compact(token, algorithms={"RS256"}).alg == "RS256"
    with pytest.raises(AlgorithmNotAllowed):
        decode_compact(token, algorithms={"ES256"})
    assert decode_compact(token, algorithms={"RS256", "PS256"}).kid == "shared"
