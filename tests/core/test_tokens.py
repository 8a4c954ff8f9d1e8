"""Token shape, encoding, header and signature attacks (SECURITY §1 A-C) through a Validator."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, utils

from apiguard import (
    AlgorithmNotAllowed,
    InvalidSignature,
    InvalidToken,
    MalformedToken,
    UnknownSigningKey,
    UnsupportedCriticalHeader,
    UnsupportedTokenType,
    Validator,
)
from apiguard.testing import REMOVE, LocalIssuer

from .conftest import b64, dumps, signed

Make = Callable[[LocalIssuer], str]


def header(issuer: LocalIssuer, **members: Any) -> dict[str, Any]:
    """The issuer's usual header with members replaced (REMOVE drops one)."""
    key = issuer.current_key
    base: dict[str, Any] = {"alg": key.algorithm, "kid": key.kid, "typ": "JWT"}
    base.update(members)
    return {name: value for name, value in base.items() if value is not REMOVE}


def with_header(**members: Any) -> Make:
    return lambda issuer: signed(issuer, header(issuer, **members))


def unsigned(signature: str = "", **members: Any) -> Make:
    def make(issuer: LocalIssuer) -> str:
        return f"{b64(dumps(header(issuer, **members)))}.{b64(dumps(issuer.claims()))}.{signature}"

    return make


def raw_segments(head: bytes, payload: bytes | None = None) -> Make:
    """Signed over exact header bytes (and payload bytes, default the usual claims)."""
    return lambda issuer: signed(issuer, head, payload)


def mangle(change: Callable[[str], str]) -> Make:
    """A valid token rewritten by ``change`` (after signing)."""
    return lambda issuer: change(issuer.token())


def _hs256_with_public_key(form: str) -> Make:
    """HS256 token whose MAC key is a public form of the issuer's RSA key (A3)."""

    def make(issuer: LocalIssuer) -> str:
        import hashlib
        import hmac

        public = issuer.current_key.private_key.public_key()
        secrets = {
            "pem": public.public_bytes(
                serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
            ),
            "pkcs1": public.public_bytes(
                serialization.Encoding.PEM, serialization.PublicFormat.PKCS1
            ),
            "der": public.public_bytes(
                serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
            ),
            "ssh": public.public_bytes(
                serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH
            ),
            "jwk": json.dumps(issuer.current_key.public_jwk).encode(),
            "n": issuer.current_key.public_jwk["n"].encode(),
        }
        head = b64(dumps(header(issuer, alg="HS256")))
        body = b64(dumps(issuer.claims()))
        mac = hmac.new(secrets[form], f"{head}.{body}".encode(), hashlib.sha256).digest()
        return f"{head}.{body}.{b64(mac)}"

    return make


def _second_segment(token: str) -> str:
    return token.split(".")[1]


def _replace(old: str, new: str) -> Callable[[str], str]:
    return lambda token: token.replace(old, new, 1)


def _resize(token: str, delta: int) -> str:
    """Cut the signature by ``-delta`` bytes, or append ``delta`` zero bytes."""
    import base64

    head, body, sig = token.split(".")
    raw = base64.urlsafe_b64decode(sig + "==")
    raw = raw[:delta] if delta < 0 else raw + b"\x00" * delta
    return f"{head}.{body}.{b64(raw)}"


def _flip_signature(token: str) -> str:
    head, body, sig = token.split(".")
    first = "A" if sig[0] != "A" else "B"
    return f"{head}.{body}.{first}{sig[1:]}"


def _resign_payload(change: Callable[[str], str]) -> Make:
    """Sign over a payload segment text changed by ``change`` (the MAC covers it as sent)."""

    def make(issuer: LocalIssuer) -> str:
        import jwt

        key = issuer.current_key
        head = b64(dumps(header(issuer)))
        body = change(b64(dumps(issuer.claims())))
        signing_input = f"{head}.{body}".encode()
        sig = jwt.get_algorithm_by_name(key.algorithm).sign(signing_input, key.private_key)
        return f"{head}.{body}.{b64(sig)}"

    return make


def _noncanonical(segment: str) -> str:
    # Claims JSON ends in "}" (0x7D): its final base64url character has spare low bits.
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    if len(segment) % 4 in (2, 3):
        return segment[:-1] + alphabet[alphabet.index(segment[-1]) | 1]
    return segment + "A"  # length mod 4 == 1: impossible length


CASES = [
    # A1: alg none, every spelling, with and without a signature, with a real kid.
    *[
        pytest.param(unsigned(alg=alg, **sig), AlgorithmNotAllowed, id=f"A1-{alg}-{name}")
        for alg in ("none", "None", "NONE", "nOnE")
        for name, sig in (("empty", {}), ("garbage", {"signature": "c2ln"}))
    ],
    # A2: look-alikes and wrong types.
    pytest.param(with_header(alg="rs256"), AlgorithmNotAllowed, id="A2-lowercase"),
    pytest.param(with_header(alg="Rs256"), AlgorithmNotAllowed, id="A2-mixed-case"),
    pytest.param(with_header(alg="RS256 "), AlgorithmNotAllowed, id="A2-trailing-space"),
    pytest.param(with_header(alg="RS256\u0000"), AlgorithmNotAllowed, id="A2-nul"),
    pytest.param(with_header(alg=["RS256"]), MalformedToken, id="A2-list"),
    pytest.param(with_header(alg=None), MalformedToken, id="A2-null"),
    pytest.param(with_header(alg=REMOVE), MalformedToken, id="A2-absent"),
    pytest.param(with_header(alg="HS256"), AlgorithmNotAllowed, id="A2-HS256-for-RSA"),
    # A3: the public key as an HMAC secret, in every form.
    *[
        pytest.param(_hs256_with_public_key(form), AlgorithmNotAllowed, id=f"A3-{form}")
        for form in ("pem", "pkcs1", "der", "ssh", "jwk", "n")
    ],
    # A4: the RSA key with another family's or variant's algorithm.
    pytest.param(with_header(alg="ES256"), AlgorithmNotAllowed, id="A4-RSA-kid-ES256"),
    pytest.param(with_header(alg="PS256"), AlgorithmNotAllowed, id="A4-RS256-jwk-PS256"),
    # A8/A9: stripped, truncated, extended signatures.
    pytest.param(mangle(lambda t: t.rsplit(".", 1)[0] + "."), InvalidSignature, id="A8-h.p."),
    pytest.param(mangle(lambda t: t.rsplit(".", 1)[0]), MalformedToken, id="A8-h.p"),
    pytest.param(mangle(lambda t: _resize(t, -1)), InvalidSignature, id="A9-one-byte-short"),
    pytest.param(mangle(lambda t: _resize(t, -3)), InvalidSignature, id="A9-three-short"),
    pytest.param(mangle(lambda t: _resize(t, 1)), InvalidSignature, id="A9-one-byte-long"),
    pytest.param(mangle(_flip_signature), InvalidSignature, id="A9-modified"),
    # A13: crit in any shape.
    pytest.param(with_header(crit=["x"], x=1), UnsupportedCriticalHeader, id="A13-unknown"),
    pytest.param(with_header(crit=["exp"]), UnsupportedCriticalHeader, id="A13-registered"),
    pytest.param(with_header(crit=[]), UnsupportedCriticalHeader, id="A13-empty"),
    pytest.param(with_header(crit="x"), UnsupportedCriticalHeader, id="A13-string"),
    pytest.param(with_header(crit=["x"]), UnsupportedCriticalHeader, id="A13-absent-member"),
    pytest.param(with_header(crit=["x", "x"], x=1), UnsupportedCriticalHeader, id="A13-dup"),
    # A14: unencoded payload.
    pytest.param(with_header(b64=False, crit=["b64"]), UnsupportedCriticalHeader, id="A14-crit"),
    pytest.param(with_header(b64=False), MalformedToken, id="A14-without-crit"),
    pytest.param(with_header(b64=True), MalformedToken, id="A14-true"),
    # A15: a JWE by shape, never decrypted.
    pytest.param(lambda i: "eyJhbGciOiJSU0EtT0FFUCJ9.a.b.c.d", UnsupportedTokenType, id="A15"),
    pytest.param(lambda i: "....", UnsupportedTokenType, id="A15-empty-segments"),
    # A16: JSON serialization, or junk appended to a compact token.
    pytest.param(
        lambda i: json.dumps({"payload": "e30", "signatures": [{"protected": "e30"}]}),
        MalformedToken,
        id="A16-general",
    ),
    pytest.param(
        lambda i: json.dumps({"payload": "e30", "header": {"alg": "none"}, "signature": ""}),
        MalformedToken,
        id="A16-flattened",
    ),
    pytest.param(mangle(lambda t: t + '{"alg":"none"}'), MalformedToken, id="A16-appended"),
    # A17: nested JWT.
    pytest.param(with_header(cty="JWT"), UnsupportedTokenType, id="A17-cty-JWT"),
    pytest.param(with_header(cty="application/jwt"), UnsupportedTokenType, id="A17-media"),
    # B1-B3: kid abuse.
    pytest.param(with_header(kid="../../../../dev/null"), UnknownSigningKey, id="B1-traversal"),
    pytest.param(with_header(kid=""), UnknownSigningKey, id="B1-empty"),
    pytest.param(with_header(kid="x' UNION SELECT '1';--"), UnknownSigningKey, id="B2-sql"),
    pytest.param(with_header(kid="|sleep 10"), UnknownSigningKey, id="B2-shell"),
    pytest.param(with_header(kid=1), MalformedToken, id="B3-number"),
    pytest.param(with_header(kid={"a": 1}), MalformedToken, id="B3-object"),
    pytest.param(with_header(kid=["key-1"]), MalformedToken, id="B3-array"),
    pytest.param(with_header(kid=None), MalformedToken, id="B3-null"),
    pytest.param(with_header(kid="k" * 10_000), UnknownSigningKey, id="B3-10KB"),
    pytest.param(with_header(kid="key-1\n\x00"), UnknownSigningKey, id="B3-control"),
    pytest.param(with_header(kid="k\u0435y-1"), UnknownSigningKey, id="B3-confusable"),
    # C1-C5: shape and encoding.
    pytest.param(lambda i: "abc", MalformedToken, id="C1-one-segment"),
    pytest.param(lambda i: "a.b.c.d", MalformedToken, id="C1-four-segments"),
    pytest.param(lambda i: "a.b.c.d.e.f", MalformedToken, id="C1-six-segments"),
    pytest.param(lambda i: "." * 1_000_000, MalformedToken, id="C1-million-dots"),
    pytest.param(lambda i: "." * 2, MalformedToken, id="C2-dots"),
    pytest.param(mangle(lambda t: "." + t.split(".", 1)[1]), MalformedToken, id="C2-no-header"),
    pytest.param(
        mangle(lambda t: t.replace(_second_segment(t), "", 1)), InvalidSignature, id="C2-no-body"
    ),
    pytest.param(mangle(lambda t: t.replace(".", "=.", 1)), MalformedToken, id="C3-padding"),
    pytest.param(mangle(lambda t: t + "=="), MalformedToken, id="C3-padding-sig"),
    *[
        pytest.param(mangle(_replace("J", junk)), MalformedToken, id=f"C4-{name}")
        for name, junk in (
            ("plus", "+"),
            ("slash", "/"),
            ("space", " "),
            ("newline", "\n"),
            ("question", "?"),
            ("hash", "#"),
            ("percent", "%"),
            ("non-ascii", "é"),
        )
    ],
    pytest.param(_resign_payload(_noncanonical), MalformedToken, id="C5-noncanonical"),
    pytest.param(_resign_payload(lambda s: s + "A"), MalformedToken, id="C5-length-mod-4"),
    pytest.param(_resign_payload(lambda s: s + "?"), MalformedToken, id="C4-question-signed"),
    # C6: duplicate member names.
    pytest.param(
        raw_segments(b'{"alg":"none","alg":"RS256","kid":"key-1"}'), MalformedToken, id="C6-head"
    ),
    pytest.param(
        lambda i: signed(i, payload=dumps(i.claims())[:-1] + b', "sub": "admin"}'),
        MalformedToken,
        id="C6-claims",
    ),
    # C8-C12: depth, size, text, types.
    pytest.param(
        lambda i: signed(i, payload=b'{"x":' + b"[" * 5000 + b"]" * 5000 + b"}"),
        MalformedToken,
        id="C8-deep-5000",
    ),
    pytest.param(
        lambda i: signed(i, payload=b'{"x":' + b"[" * 40 + b"]" * 40 + b"}"),
        MalformedToken,
        id="C8-deep-40",
    ),
    pytest.param(lambda i: signed(i, x="y" * 100_000), MalformedToken, id="C9-100KB"),
    pytest.param(lambda i: "a" * (16 << 20), MalformedToken, id="C9-16MB"),
    pytest.param(
        lambda i: signed(i, payload=dumps(i.claims())[:-1] + b', "x": "\xff"}'),
        MalformedToken,
        id="C10-bad-utf8",
    ),
    pytest.param(
        lambda i: signed(i, payload=b"\xef\xbb\xbf" + dumps(i.claims())),
        MalformedToken,
        id="C10-bom",
    ),
    pytest.param(
        lambda i: signed(i, payload=dumps(i.claims())[:-1] + b', "sub": "\\ud800"}'),
        MalformedToken,
        id="C10-lone-surrogate",
    ),
    pytest.param(
        lambda i: signed(i, payload=dumps(i.claims())[:-1] + b', "\\udfff": 1}'),
        MalformedToken,
        id="C10-lone-surrogate-name",
    ),
    *[
        pytest.param(lambda i, p=payload: signed(i, payload=p), MalformedToken, id=f"C11-{name}")
        for name, payload in (
            ("array", b"[]"),
            ("string", b'"x"'),
            ("number", b"1"),
            ("null", b"null"),
        )
    ],
    *[
        pytest.param(raw_segments(head), MalformedToken, id=f"C11-header-{name}")
        for name, head in (("array", b"[]"), ("string", b'"x"'), ("null", b"null"))
    ],
    pytest.param(with_header(typ=1), MalformedToken, id="C12-typ-number"),
    pytest.param(with_header(cty=["JWT"]), MalformedToken, id="C12-cty-list"),
    pytest.param(with_header(zip="DEF"), MalformedToken, id="C12-zip"),
    # C7: hostile numbers.
    pytest.param(
        lambda i: signed(i, payload=dumps(i.claims())[:-1] + b', "x": NaN}'),
        MalformedToken,
        id="C7-NaN",
    ),
    pytest.param(
        lambda i: signed(i, payload=dumps(i.claims())[:-1] + b', "x": -Infinity}'),
        MalformedToken,
        id="C7-Infinity",
    ),
    pytest.param(
        lambda i: signed(i, payload=dumps(i.claims())[:-1] + b', "x": 1e400}'),
        MalformedToken,
        id="C7-1e400",
    ),
    pytest.param(
        lambda i: signed(i, payload=dumps(i.claims())[:-1] + b', "x": ' + b"9" * 5000 + b"}"),
        MalformedToken,
        id="C7-5000-digits",
    ),
]


@pytest.mark.parametrize(("make", "error"), CASES)
def test_bad_token_rejected_as_leaf(
    make: Make, error: type[InvalidToken], issuer: LocalIssuer, validator: Validator
) -> None:
    """Each hostile token is refused as exactly the expected InvalidToken leaf."""
    token = make(issuer)
    with pytest.raises(InvalidToken) as caught:
        validator.validate(token)
    assert type(caught.value) is error


def test_unknown_header_members_are_ignored(issuer: LocalIssuer, validator: Validator) -> None:
    """Unregistered header members (not listed in crit) do not stop a valid token."""
    token = signed(issuer, header(issuer, x5t="abc", foo={"bar": [1]}))
    assert validator.validate(token).subject == "auth0|user-1"


@pytest.mark.parametrize(
    "members",
    [
        pytest.param({"jku": "https://attacker.test/jwks.json"}, id="jku"),
        pytest.param({"x5u": "https://attacker.test/cert.pem"}, id="x5u"),
        pytest.param({"jwk": "attacker"}, id="jwk"),
        pytest.param({"x5c": ["MIIB"]}, id="x5c"),
    ],
)
def test_embedded_key_headers_are_never_used(
    members: dict[str, Any], issuer: LocalIssuer, clock: Any
) -> None:
    """B4: a token signed by an attacker key that carries key headers fails; nothing is fetched."""
    attacker = LocalIssuer(clock=clock, algorithm="ES256")
    if members.get("jwk") == "attacker":
        members = {"jwk": attacker.current_key.public_jwk}
    seen: list[str] = []

    def handle(request: Any) -> Any:
        seen.append(str(request.url))
        return issuer.handle(request)

    import httpx

    client = httpx.Client(transport=httpx.MockTransport(handle))
    validator = Validator(
        issuer=issuer.issuer, audience=issuer.audience, clock=clock, http_client=client
    )
    forged_same_kid = attacker.token(header={"kid": issuer.current_key.kid, **members})
    forged_own_kid = attacker.token(header={"kid": "attacker-1", **members})
    with pytest.raises(InvalidToken) as first:
        validator.validate(forged_same_kid)
    with pytest.raises(InvalidToken) as second:
        validator.validate(forged_own_kid)
    client.close()
    assert type(first.value) is AlgorithmNotAllowed  # ES256 on the issuer's RSA key
    assert type(second.value) is UnknownSigningKey
    assert all("attacker" not in url for url in seen)


@pytest.mark.parametrize(
    ("r", "s"),
    [
        pytest.param(0, 0, id="zero"),
        pytest.param(0, 1, id="r0-s1"),
        pytest.param("n", "n", id="n-n"),
        pytest.param("n", 1, id="r-n"),
        pytest.param("n-1", "n-1", id="n-1"),
        pytest.param(1, "n", id="s-n"),
    ],
)
def test_psychic_ecdsa_signatures_rejected(r: Any, s: Any, clock: Any) -> None:
    """A5: ES256 signatures with r or s of 0 or >= n are InvalidSignature."""
    n = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551
    values = {"n": n, "n-1": n - 1, 0: 0, 1: 1}
    es = LocalIssuer(clock=clock, algorithm="ES256")
    head, body, _ = es.token().split(".")
    sig = values[r].to_bytes(32, "big") + values[s].to_bytes(32, "big")
    with es.validator() as validator, pytest.raises(InvalidToken) as caught:
        validator.validate(f"{head}.{body}.{b64(sig)}")
    assert type(caught.value) is InvalidSignature


@pytest.mark.parametrize(
    "variant",
    [
        pytest.param("der", id="der"),
        pytest.param("leading-zero", id="65-bytes"),
        pytest.param("trailing-zeros", id="trailing-zeros"),
    ],
)
def test_ecdsa_signature_encoding_tricks_rejected(variant: str, clock: Any) -> None:
    """A6: an ES256 signature that is not exactly 64 bytes of R||S is InvalidSignature."""
    es = LocalIssuer(clock=clock, algorithm="ES256")
    head, body, sig = es.token().split(".")
    if variant == "der":
        der = es.current_key.private_key.sign(f"{head}.{body}".encode(), ec.ECDSA(hashes.SHA256()))
        assert utils.decode_dss_signature(der)  # a genuine DER signature of this input
        raw = der
    else:
        import base64

        good = base64.urlsafe_b64decode(sig + "==")
        raw = b"\x00" + good if variant == "leading-zero" else good + b"\x00\x00"
    with es.validator() as validator, pytest.raises(InvalidToken) as caught:
        validator.validate(f"{head}.{body}.{b64(raw)}")
    assert type(caught.value) is InvalidSignature


def test_high_s_signature_accepted(clock: Any) -> None:
    """A6: a malleated (high-S) ES256 signature still verifies: no signature is canonical."""
    import base64

    n = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551
    es = LocalIssuer(clock=clock, algorithm="ES256")
    head, body, sig = es.token().split(".")
    raw = base64.urlsafe_b64decode(sig + "==")
    s = int.from_bytes(raw[32:], "big")
    flipped = raw[:32] + (n - s).to_bytes(32, "big")
    with es.validator() as validator:
        assert validator.validate(f"{head}.{body}.{b64(flipped)}").issuer == es.issuer


def test_forged_expired_token_reads_invalid_signature(
    issuer: LocalIssuer, validator: Validator
) -> None:
    """D12: an expired token with a bad signature is InvalidSignature (no claim oracle)."""
    token = _flip_signature(issuer.token(expires_in=-3600))
    with pytest.raises(InvalidToken) as caught:
        validator.validate(token)
    assert type(caught.value) is InvalidSignature


def test_junk_kid_floods_trigger_no_refresh(issuer: LocalIssuer, validator: Validator) -> None:
    """B3: a kid over the length cap never triggers a JWKS refetch, even off cooldown."""
    validator.validate(issuer.token())
    before = issuer.requests.copy()
    issuer.clock.advance(60)  # type: ignore[attr-defined]
    with pytest.raises(UnknownSigningKey):
        validator.validate(issuer.token(header={"kid": "k" * 300}))
    assert issuer.requests == before
