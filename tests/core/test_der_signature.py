"""The ECDSA signature's DER form, built from its bytes, against cryptography's encoder."""

from __future__ import annotations

from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature
from hypothesis import given
from hypothesis import strategies as st

from apiguard.jws import der_signature

# P-256, P-384, P-521 (and secp256k1) integer sizes in a JWS signature.
_SIZES = st.sampled_from([32, 48, 66])


@st.composite
def _halves(draw: st.DrawFn) -> tuple[bytes, bytes]:
    size = draw(_SIZES)
    edge = st.sampled_from(
        [
            b"\0" * size,
            b"\0" * (size - 1) + b"\x01",
            b"\xff" * size,
            b"\x80" + b"\0" * (size - 1),
            b"\0\x80" + b"\0" * (size - 2),
        ]
    )
    half = st.one_of(edge, st.binary(min_size=size, max_size=size))
    return draw(half), draw(half)


@given(_halves())
def test_der_signature_equals_cryptographys_encoding(halves: tuple[bytes, bytes]) -> None:
    """Any R and S (leading zeros, high bits, zero, long lengths) encode as cryptography does."""
    r, s = halves
    expected = encode_dss_signature(int.from_bytes(r, "big"), int.from_bytes(s, "big"))
    assert der_signature(r, s) == expected
