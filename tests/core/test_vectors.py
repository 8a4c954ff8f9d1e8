"""Public test vectors (Wycheproof, RFC 7520) through the JWS layer and the validator."""

from __future__ import annotations

import json
from typing import Any

import pytest

from apiguard import InvalidToken, MalformedToken, UnsupportedTokenType
from apiguard.jwks import KeySet
from apiguard.jws import (
    ASYMMETRIC_ALGORITHMS,
    HMAC_ALGORITHMS,
    SUPPORTED_ALGORITHMS,
    CompactJWS,
    UnusableKey,
    VerificationKey,
    decode_compact,
)

from .conftest import VECTORS, load_vectors, static_validator

WYCHEPROOF = "wycheproof/testvectors_v1/"
PRIVATE_MEMBERS = ("d", "p", "q", "dp", "dq", "qi", "oth", "k")


def _overrides() -> dict[tuple[str, int], str]:
    data = load_vectors("expectations-overrides.json")
    table = {(o["file"], o["tcId"]): o["strict"] for o in data["overrides"]}
    # Optional upstream expectations are met (ROCA), so they count as plain expectations.
    table.update({(o["file"], o["tcId"]): o["upstream"] for o in data["optional"]})
    return table


def _verify_token(key_set: KeySet, token: Any) -> str:
    """Run a token through the JWS layer: 'valid', or 'invalid' for an InvalidToken."""
    try:
        jws = decode_compact(token, algorithms=SUPPORTED_ALGORITHMS)
        key = key_set.select(jws.kid, jws.alg)
        if key is None:
            return "invalid"
        key.verify(jws)
    except InvalidToken:
        return "invalid"
    return "valid"


def _key_set(jwks: dict[str, Any], *, symmetric: bool) -> KeySet | None:
    algorithms = HMAC_ALGORITHMS if symmetric else ASYMMETRIC_ALGORITHMS
    try:
        return KeySet.from_jwks(jwks, algorithms=algorithms, symmetric=symmetric)
    except UnusableKey:
        return None


def test_every_vector_file_is_present_and_unaltered() -> None:
    """Each file MANIFEST.sha256 lists is in tests/vectors with its recorded digest."""
    import hashlib

    manifest = VECTORS / "MANIFEST.sha256"
    assert manifest.is_file(), "tests/vectors/MANIFEST.sha256 is missing"
    lines = manifest.read_text(encoding="utf-8").splitlines()
    assert len(lines) > 60
    wrong = []
    for line in lines:
        digest, name = line.split("  ", 1)
        path = VECTORS / name
        if not path.is_file() or hashlib.sha256(path.read_bytes()).hexdigest() != digest:
            wrong.append(name)
    assert wrong == []
    for licence in ("wycheproof/LICENSE", "jose-cookbook/LICENSE"):
        assert (VECTORS / licence).is_file()


def test_wycheproof_json_web_signature() -> None:
    """Every JWS vector meets its (overridden) expectation through decode, select and verify."""
    name = WYCHEPROOF + "json_web_signature_test.json"
    data, overrides = load_vectors(name), _overrides()
    failures, checked = [], 0
    for group in data["testGroups"]:
        jwk = group.get("public") or group["private"]
        key_set = _key_set({"keys": [jwk]}, symmetric=jwk.get("kty") == "oct")
        for case in group["tests"]:
            expected = overrides.get((name, case["tcId"]), case["result"])
            if expected == "exclude":
                continue
            got = "invalid" if key_set is None else _verify_token(key_set, case["jws"])
            checked += 1
            if got != expected:
                failures.append((case["tcId"], case["comment"], expected, got))
    assert failures == []
    assert checked == data["numberOfTests"] - 2  # all but the two excluded duplicates


def test_wycheproof_json_web_key() -> None:
    """Every JWK-set vector, ROCA included, meets its expectation (bad keys never verify)."""
    name = WYCHEPROOF + "json_web_key_test.json"
    data, overrides = load_vectors(name), _overrides()
    failures = []
    for group in data["testGroups"]:
        symmetric = "public" not in group
        key_set = _key_set(group.get("public") or group["private"], symmetric=symmetric)
        for case in group["tests"]:
            expected = overrides.get((name, case["tcId"]), case["result"])
            got = "invalid" if key_set is None else _verify_token(key_set, case["jws"])
            if got != expected:
                failures.append((case["tcId"], case["comment"], expected, got))
    assert failures == []


def test_wycheproof_json_web_encryption_refused_by_shape() -> None:
    """Five-segment JWEs are UnsupportedTokenType, mutilated ones MalformedToken; no fetch."""
    data = load_vectors(WYCHEPROOF + "json_web_encryption_test.json")
    tokens = [
        case["jwe"]
        for group in data["testGroups"]
        for case in group["tests"]
        if isinstance(case["jwe"], str)
    ]
    assert sum(token.count(".") == 4 for token in tokens) > 100
    # The validator's transport would fail the test if anything were fetched.
    with static_validator({"keys": []}) as validator:
        wrong = []
        for token in tokens:
            with pytest.raises(InvalidToken) as caught:
                validator.validate(token)
            # Four dots make a JWE; the upstream cases that drop a separator are plain junk.
            expected = UnsupportedTokenType if token.count(".") == 4 else MalformedToken
            if type(caught.value) is not expected:
                wrong.append((token[:40], type(caught.value).__name__))
        assert validator.health()["https://issuer.test/"].state == "missing"  # never fetched
    assert wrong == []


# --- primitive files through VerificationKey.verify ----------------------------------------


def _raw(alg: str, msg: bytes, sig: bytes) -> CompactJWS:
    return CompactJWS(header={"alg": alg}, payload=b"", signature=sig, signing_input=msg)


def _b64(data: bytes) -> str:
    import base64

    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _ec_jwk(group: dict[str, Any], crv: str, size: int) -> dict[str, Any]:
    if "publicKeyJwk" in group:
        return dict(group["publicKeyJwk"])
    point = group["publicKey"]

    def coordinate(hexa: str) -> str:
        value = int(hexa, 16).to_bytes(size + 1, "big")[-size:]
        return _b64(value)

    return {"kty": "EC", "crv": crv, "x": coordinate(point["wx"]), "y": coordinate(point["wy"])}


PRIMITIVES = [
    pytest.param("ecdsa_secp256r1_sha256_p1363_test.json", "ES256", id="ES256"),
    pytest.param("ecdsa_secp384r1_sha384_p1363_test.json", "ES384", id="ES384"),
    pytest.param("ecdsa_secp521r1_sha512_p1363_test.json", "ES512", id="ES512"),
    pytest.param("rsa_signature_2048_sha256_test.json", "RS256", id="RS256-2048"),
    pytest.param("rsa_signature_2048_sha384_test.json", "RS384", id="RS384-2048"),
    pytest.param("rsa_signature_2048_sha512_test.json", "RS512", id="RS512-2048"),
    pytest.param("rsa_signature_3072_sha256_test.json", "RS256", id="RS256-3072"),
    pytest.param("rsa_pss_2048_sha256_mgf1_32_test.json", "PS256", id="PS256"),
    pytest.param("rsa_pss_2048_sha384_mgf1_48_test.json", "PS384", id="PS384"),
    pytest.param("rsa_pss_4096_sha512_mgf1_64_test.json", "PS512", id="PS512"),
    pytest.param("ed25519_test.json", "EdDSA", id="EdDSA"),
]
CURVES = {"ES256": ("P-256", 32), "ES384": ("P-384", 48), "ES512": ("P-521", 66)}


def _primitive_key(group: dict[str, Any], alg: str) -> VerificationKey:
    if alg in CURVES:
        jwk = _ec_jwk(group, *CURVES[alg])
    elif alg.startswith("RS"):
        jwk = dict(group["keyJwk"])
    else:
        jwk = dict(group["publicKeyJwk"])
    jwk.pop("kid", None)
    return VerificationKey.from_jwk(jwk, algorithms={alg})


@pytest.mark.parametrize(("filename", "alg"), PRIMITIVES)
def test_wycheproof_signature_primitive(filename: str, alg: str) -> None:
    """Valid signatures verify, invalid ones raise InvalidSignature and nothing else."""
    data = load_vectors(WYCHEPROOF + filename)
    failures = []
    for group in data["testGroups"]:
        key = _primitive_key(group, alg)
        for case in group["tests"]:
            jws = _raw(alg, bytes.fromhex(case["msg"]), bytes.fromhex(case["sig"]))
            try:
                key.verify(jws)
                got = "valid"
            except InvalidToken as exc:
                got = "invalid" if type(exc).__name__ == "InvalidSignature" else repr(exc)
            expected = case["result"]
            if expected == "acceptable" and "MissingNull" in case["flags"]:
                continue  # either outcome is fine (expectations-overrides.json)
            if got != expected:
                failures.append((case["tcId"], case["comment"], expected, got))
    assert failures == []


@pytest.mark.parametrize("bits", [256, 384, 512])
def test_wycheproof_hmac(bits: int) -> None:
    """Full-length tags verify as upstream says; truncated tags never; short keys are refused."""
    data = load_vectors(WYCHEPROOF + f"hmac_sha{bits}_test.json")
    alg = f"HS{bits}"
    failures, refused = [], 0
    for group in data["testGroups"]:
        for case in group["tests"]:
            secret = bytes.fromhex(case["key"])
            try:
                key = VerificationKey.from_secret(secret, algorithms={alg})
            except UnusableKey:
                assert group["keySize"] < bits, case["tcId"]
                refused += 1
                continue
            assert group["keySize"] >= bits
            truncated = group["tagSize"] != bits
            expected = "invalid" if truncated else case["result"]
            jws = _raw(alg, bytes.fromhex(case["msg"]), bytes.fromhex(case["tag"]))
            try:
                key.verify(jws)
                got = "valid"
            except InvalidToken as exc:
                got = "invalid" if type(exc).__name__ == "InvalidSignature" else repr(exc)
            if got != expected:
                failures.append((case["tcId"], expected, got))
    assert failures == []
    assert refused > 0


# --- RFC 7520, the JOSE cookbook -------------------------------------------------------------

COOKBOOK_JWS = [
    pytest.param("jws/4_1.rsa_v15_signature.json", id="4.1-RS256"),
    pytest.param("jws/4_2.rsa-pss_signature.json", id="4.2-PS384"),
    pytest.param("jws/4_3.ecdsa_signature.json", id="4.3-ES512"),
    pytest.param("jws/4_4.hmac-sha2_integrity_protection.json", id="4.4-HS256"),
    pytest.param("curve25519/jws.json", id="8037-EdDSA"),
]


def _public(jwk: dict[str, Any]) -> dict[str, Any]:
    return {name: value for name, value in jwk.items() if name not in PRIVATE_MEMBERS}


@pytest.mark.parametrize("path", COOKBOOK_JWS)
def test_cookbook_jws_verifies_but_is_no_jwt(path: str) -> None:
    """The RFC 7520 compact JWS verify at the JWS layer; as JWTs they are MalformedToken."""
    example = load_vectors("jose-cookbook/" + path)
    jwk, alg, token = example["input"]["key"], example["input"]["alg"], example["output"]["compact"]
    jws = decode_compact(token)
    if jwk["kty"] == "oct":
        key = VerificationKey.from_jwk(jwk, algorithms={alg}, symmetric=True)
        options: dict[str, Any] = {"shared_secret": key.key, "algorithms": [alg]}
        validator = static_validator({"keys": []}, jwks_uri=None, **options)
    else:
        key = VerificationKey.from_jwk(_public(jwk), algorithms={alg})
        validator = static_validator({"keys": [_public(jwk)]}, algorithms=[alg])
    key.verify(jws)
    assert jws.payload.decode() == example["input"]["payload"]
    with validator, pytest.raises(MalformedToken, match="JSON"):
        validator.validate(token)


def _must_reject() -> list[Any]:
    names = [
        "jws/4_5.signature_with_detached_content.json",
        "jws/4_6.protecting_specific_header_fields.json",
        "jws/4_7.protecting_content_only.json",
        "jws/4_8.multiple_signatures.json",
        "rfc7797/4.2.hmac-sha2_b64_false.json",
        "rfc7797/hmac-sha2_b64_false.json",
        "jwe/5_1.key_encryption_using_rsa_v15_and_aes-hmac-sha2.json",
        "jwe/5_2.key_encryption_using_rsa-oaep_with_aes-gcm.json",
        "jwe/5_3.key_wrap_using_pbes2-aes-keywrap_with-aes-cbc-hmac-sha2.json",
        "jwe/5_4.key_agreement_with_key_wrapping_using_ecdh-es_and_aes-keywrap_with_aes-gcm.json",
        "jwe/5_5.key_agreement_using_ecdh-es_with_aes-cbc-hmac-sha2.json",
        "jwe/5_6.direct_encryption_using_aes-gcm.json",
        "jwe/5_7.key_wrap_using_aes-gcm_keywrap_with_aes-cbc-hmac-sha2.json",
        "jwe/5_8.key_wrap_using_aes-keywrap_with_aes-gcm.json",
        "jwe/5_9.compressed_content.json",
        "jwe/5_10.including_additional_authentication_data.json",
        "jwe/5_11.protecting_specific_header_fields.json",
        "jwe/5_12.protecting_content_only.json",
        "jwe/5_13.encrypting_to_multiple_recipients.json",
    ]
    return [pytest.param(name, id=name.split("/")[-1].split(".")[0]) for name in names]


COOKBOOK_SECRET = "hJtXIZ2uSN5kbQfbtTNWbpdmhkV8FJG-Onbc6mxCcYg"  # RFC 7520 §3.5


@pytest.mark.parametrize("path", _must_reject())
def test_cookbook_non_jwt_forms_refused(path: str) -> None:
    """Detached, JSON-serialized, b64=false and JWE examples are all refused as InvalidToken."""
    example = load_vectors("jose-cookbook/" + path)
    forms = [value for name, value in example["output"].items() if name != "compact"]
    tokens = [json.dumps(form) for form in forms]
    if "compact" in example["output"]:
        tokens.append(example["output"]["compact"])
    secret = VerificationKey.from_jwk(
        {"kty": "oct", "k": COOKBOOK_SECRET}, algorithms={"HS256"}, symmetric=True
    ).key
    with static_validator({"keys": []}, jwks_uri=None, shared_secret=secret) as validator:
        for token in tokens:
            with pytest.raises(InvalidToken) as caught:
                validator.validate(token)
            if token.startswith("{"):
                assert type(caught.value) is MalformedToken
            elif path.startswith("jwe/"):
                assert type(caught.value) is UnsupportedTokenType
